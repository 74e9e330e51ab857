// The request path's async stage (README "Async invocations"): a call with
// `X-Faas-Invocation-Type: Event` or `Prefer: respond-async` is not run now but stored, and
// answered 202 with its invocation id and status URL once the store has it on disk; and
// GET /.faas/invocations/ID answers that URL. server.ts asks asks() of every request past its
// route's checks (auth, rate limit, CORS, limits: an async call passes them as a sync one does),
// then uses accept() instead of the fleet; the body is read whole first, streamed or not.
import { randomBytes } from 'node:crypto';
import { callbackUrlProblem } from '../async/callbacks.js';
import { MAX_QUEUED_PER_ROUTE, type Dispatcher } from '../async/dispatcher.js';
import { invocationView, STATUS_PATH } from '../async/view.js';
import { GatewayError } from '../errors.js';
import type { StreamedBody } from '../protocol/body-stream.js';
import type { InvocationRow } from '../routes/invocation-store.js';
import { endAnswer, writeGatewayHeaders } from './end-answer.js';
import type { Invocation, InvocationResult } from '../calls.js';
import type { HttpResponse } from './uws.js';

export { STATUS_PATH };

/** 128 random bits, base64url: 22 characters. Whoever holds one may read the invocation. */
const ID = /^[A-Za-z0-9_-]{22}$/;
/** Headers only the gateway sets on a function's request: dropped from what a client sends, sync or async. */
const GATEWAY_ONLY = new Set(['x-faas-attempt', 'x-faas-invocation-id']);
/** Headers that are the gateway's instructions, not the function's business: not stored. */
const INSTRUCTIONS = new Set(['x-faas-invocation-type', 'x-callback-url']);

export interface AsyncCallsDeps {
  readonly dispatcher: Pick<Dispatcher, 'accept' | 'waiting'>;
  readonly read: (id: string) => InvocationRow | undefined;
  /** The gateway's public and admin ports once bound: a callback to them is refused. */
  readonly ownPorts: () => readonly number[];
  readonly now?: () => number;
}

export interface AsyncCalls {
  /**
   * True when the request asks to be run asynchronously (or names an invocation type that is
   * not one: accept() refuses it). Removes the headers only the gateway may set.
   */
  asks(headers: string[]): boolean;
  /** Stores the call; resolves with the 202 once it is on disk. Rejects with GatewayError. */
  accept(inv: Invocation): Promise<InvocationResult>;
  /** The status URL: the invocation's JSON, or why not (404, 405). */
  status(path: string, method: string): string | GatewayError;
}

export function createAsyncCalls(deps: AsyncCallsDeps): AsyncCalls {
  const now = deps.now ?? Date.now;
  return {
    asks(headers) {
      let asked = false;
      for (let i = headers.length - 2; i >= 0; i -= 2) {
        const name = headers[i]!;
        if (name === 'x-faas-invocation-type') asked ||= !/^requestresponse$/i.test(headers[i + 1]!.trim());
        else if (name === 'prefer') asked ||= prefersAsync(headers[i + 1]!);
        else if (GATEWAY_ONLY.has(name)) headers.splice(i, 2);
      }
      return asked;
    },

    async accept(inv) {
      const type = header(inv.headers, 'x-faas-invocation-type')?.trim();
      if (type !== undefined && !/^(event|requestresponse)$/i.test(type)) {
        throw new GatewayError('BAD_REQUEST', `x-faas-invocation-type must be Event or RequestResponse (got ${JSON.stringify(type.slice(0, 100))})`);
      }
      const callbackUrl = header(inv.headers, 'x-callback-url')?.trim();
      if (callbackUrl !== undefined) {
        const problem = callbackUrlProblem(callbackUrl, deps.ownPorts());
        if (problem) throw new GatewayError('CALLBACK_URL_INVALID', problem);
      }
      const waiting = deps.dispatcher.waiting(inv.route.key);
      if (waiting >= MAX_QUEUED_PER_ROUTE) {
        throw new GatewayError('QUEUE_FULL', `${inv.route.key} has ${waiting} async invocations waiting, its limit; retry later`);
      }
      const body = inv.bodyIn ? await whole(inv.bodyIn) : inv.body;
      const id = randomBytes(16).toString('base64url');
      const headers: string[] = [];
      for (let i = 0; i + 1 < inv.headers.length; i += 2) {
        if (!INSTRUCTIONS.has(inv.headers[i]!)) headers.push(inv.headers[i]!, inv.headers[i + 1]!);
      }
      try {
        await deps.dispatcher.accept({ id, route: inv.route.key, requestId: inv.requestId, method: inv.method, path: inv.path, query: inv.query,
          headers, body, clientIp: inv.clientIp, callbackUrl, created: now() });
      } catch (err) {
        throw new GatewayError('QUEUE_UNAVAILABLE', `the call could not be stored: ${(err as Error).message}`);
      }
      const location = `${STATUS_PATH}${id}`;
      return {
        status: 202, headers: ['content-type', 'application/json', 'location', location],
        body: Buffer.from(JSON.stringify({ invocationId: id, status: location })),
        workerId: '', cold: false, fnMs: 0, cpuUs: undefined, memPeak: undefined,
      };
    },

    status(path, method) {
      if (method !== 'GET' && method !== 'HEAD') {
        return new GatewayError('METHOD_NOT_ALLOWED', `${STATUS_PATH}ID answers GET and HEAD only`);
      }
      const id = path.slice(STATUS_PATH.length);
      const row = ID.test(id) ? deps.read(id) : undefined;
      if (!row) return new GatewayError('INVOCATION_NOT_FOUND', 'no async invocation has this id (never accepted, or deleted ttl_s after it finished)');
      return JSON.stringify(invocationView(row));
    },
  };
}

/** Writes the status URL's 200 (a HEAD without its body). */
export function answerStatus(res: HttpResponse, json: string, requestId: string, server: string | undefined, head: boolean): void {
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('content-type', 'application/json');
    res.writeHeader('cache-control', 'no-store');
    res.writeHeader('x-request-id', requestId);
    writeGatewayHeaders(res, server, undefined);
    endAnswer(res, json, head);
  });
}

/** RFC 7240: `Prefer: respond-async`, among other preferences (`respond-async, wait=5`). */
export function prefersAsync(value: string): boolean {
  for (const part of value.split(',')) if (part.split(';')[0]!.trim().toLowerCase() === 'respond-async') return true;
  return false;
}

function header(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** A streamed request body, whole: async calls are stored before they run. */
function whole(body: StreamedBody): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    body.replay({
      chunk: (b) => parts.push(b),
      end: (failure) => (failure ? reject(new GatewayError(failure.code, failure.message)) : resolve(Buffer.concat(parts))),
    });
  });
}
