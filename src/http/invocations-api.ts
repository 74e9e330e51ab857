// Async invocations on the admin port (README "Async invocations"): the list (dead letters
// among them), one invocation, and a dead letter's retry.
//
//   GET  /api/v1/invocations?state=failed&route=POST:/x&after=SEQ&limit=N   oldest first; `next` is the next page's `after`
//   GET  /api/v1/invocations/ID                                              what its status URL shows
//   POST /api/v1/invocations/ID/retry                                        a failed one back to the queue (202)
//
// Registered by admin.ts behind its access guard (admin-access.ts), before /api/v1's catch-all.
import type { Dispatcher } from '../async/dispatcher.js';
import { invocationView } from '../async/view.js';
import { ERRORS, errorBody, statusLine, type ErrorCode } from '../errors.js';
import type { InvocationRow, InvocationState, ListQuery } from '../routes/invocation-store.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

const BASE = '/api/v1/invocations';
const STATES: readonly InvocationState[] = ['queued', 'running', 'succeeded', 'failed'];
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

export interface InvocationsApiDeps {
  readonly read: (id: string) => InvocationRow | undefined;
  readonly list: (q: ListQuery) => InvocationRow[];
  readonly retry: Dispatcher['retry'];
}

/** What admin.ts needs: registers the routes on its app, each behind its guard. */
export interface InvocationsApi {
  register(app: TemplatedApp, guard: (res: HttpResponse, req: HttpRequest) => boolean): void;
}

export function invocationsApi(deps: InvocationsApiDeps): InvocationsApi {
  return {
    register(app, guard) {
      app.get(BASE, (res, req) => {
        if (!guard(res, req)) return;
        const query = new URLSearchParams(req.getQuery() ?? '');
        const problems: string[] = [];
        const state = query.get('state') ?? undefined;
        if (state !== undefined && !(STATES as readonly string[]).includes(state)) problems.push(`state must be one of ${STATES.join(', ')} (got ${JSON.stringify(state)})`);
        const after = intParam(query, 'after', 0, problems);
        const limit = intParam(query, 'limit', DEFAULT_LIMIT, problems);
        if (limit < 1 || limit > MAX_LIMIT) problems.push(`limit must be between 1 and ${MAX_LIMIT}`);
        if (problems.length > 0) {
          fail(res, 'INVALID_REQUEST', problems.join('; '));
          return;
        }
        const route = query.get('route') ?? undefined;
        const rows = deps.list({ ...(state !== undefined && { state: state as InvocationState }), ...(route !== undefined && { route }), after, limit });
        reply(res, 200, { invocations: rows.map((r) => invocationView(r, false)), next: rows.length === limit ? rows[rows.length - 1]!.seq : null });
      });
      app.get(`${BASE}/:id`, (res, req) => {
        if (!guard(res, req)) return;
        const row = deps.read(req.getParameter(0) ?? '');
        if (!row) fail(res, 'INVOCATION_NOT_FOUND', 'no async invocation has this id (never accepted, or deleted ttl_s after it finished)');
        else reply(res, 200, invocationView(row));
      });
      app.post(`${BASE}/:id/retry`, (res, req) => {
        if (!guard(res, req)) return;
        if (req.getHeader('content-length') !== '' || req.getHeader('transfer-encoding') !== '') res.onData(() => {}); // no body is read
        const id = req.getParameter(0) ?? '';
        const outcome = deps.retry(id);
        if (outcome === 'not-found') fail(res, 'INVOCATION_NOT_FOUND', 'no async invocation has this id (never accepted, or deleted ttl_s after it finished)');
        else if (outcome !== 'queued') fail(res, 'INVOCATION_NOT_RETRYABLE', `the invocation is ${outcome.state}; only a failed one can be retried`);
        else {
          const row = deps.read(id);
          reply(res, 202, row ? invocationView(row) : { invocationId: id, state: 'queued' });
        }
      });
    },
  };
}

function intParam(query: URLSearchParams, name: string, fallback: number, problems: string[]): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,15}$/.test(raw)) problems.push(`${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

function reply(res: HttpResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.cork(() => res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(text));
}

function fail(res: HttpResponse, code: ErrorCode, message: string): void {
  reply(res, ERRORS[code].status, JSON.parse(errorBody(code, message)));
}
