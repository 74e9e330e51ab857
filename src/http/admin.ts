// The admin API (CONTRACT §5), on its own port (loopback unless --admin-host, which needs a
// token): health, readiness, Prometheus metrics, the fleet and route tables as JSON, live stats,
// the recent log, the dashboard, and the management API under /api/v1 (api-v1.ts). Every
// request passes admin-access.ts first: loopback names only without a token, the bearer token
// with one, and no changes from pages of another origin.
//
// Two endpoints stream Server-Sent Events: /events (a `history` event, then `stats` every
// second: what the dashboard draws) and /logs?follow=1 (each log entry as it is added, with
// its seq as the event id, so a client that reconnects with Last-Event-ID misses nothing the
// ring still holds). A client that cannot keep up (uWS reports backpressure) is disconnected
// rather than buffered for: it reconnects and, for logs, resumes from its last id.
import type { LogBook, LogEntry } from '../observe/log-book.js';
import { refuseAccess, type AdminAccess } from './admin-access.js';
import { registerApiV1, sendError, type ApiV1Deps } from './api-v1.js';
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp } from './uws.js';

export interface AdminDeps {
  /** { ready, ...details } — 503 when not ready. */
  readonly readiness: () => { ready: boolean } & Record<string, unknown>;
  readonly metrics: () => Promise<string>;
  readonly metricsContentType: string;
  readonly workers: () => unknown;
  readonly routes: () => unknown;
  /** GET /stats and each `stats` event: workers, routes, sync state and recent errors, now. */
  readonly stats: () => unknown;
  /** The first event on /events: what the charts need for the minutes before the page opened. */
  readonly history: () => unknown;
  readonly logs: LogBook;
  /** The page served at GET /. */
  readonly dashboard: string;
  /** Who may use the port (admin-access.ts); default: no token, loopback names only. */
  readonly access?: AdminAccess;
  /** The management API's writes and the gateway's view of each key (api-v1.ts); without it /api/v1 is not served. */
  readonly api?: Pick<ApiV1Deps, 'store' | 'syncNow' | 'routeStatus' | 'syncMs' | 'invoke'>;
  /** /api/v1/invocations: async invocations and their dead letters (invocations-api.ts). */
  readonly invocations?: { register(app: TemplatedApp, guard: (res: HttpResponse, req: HttpRequest) => boolean): void };
}

const STATS_EVERY_MS = 1000;
const DEFAULT_LOG_LIMIT = 100;
const MAX_LOG_LIMIT = 2000;
const SSE_HEARTBEAT_MS = 15_000;
const ENDPOINTS = 'GET /, /healthz, /readyz, /metrics, /workers, /routes, /stats, /events, /logs, and /api/v1 (/api/v1/openapi.json)';

export interface AdminServer {
  readonly app: TemplatedApp;
  /** Ends every event stream (shutdown). */
  close(): void;
}

export function createAdminServer(deps: AdminDeps): AdminServer {
  const app = uws().App();
  const streams = new Set<EventStream>();
  const access = deps.access ?? {};
  /** False after answering with the refusal when the request may not be served. */
  const guard = (res: HttpResponse, req: HttpRequest): boolean => {
    const refusal = refuseAccess(req, access);
    if (!refusal) return true;
    // uWS reads and drops a body nobody takes, so a client still writing reads the answer.
    if (req.getHeader('content-length') !== '' || req.getHeader('transfer-encoding') !== '') res.onData(() => {});
    sendError(res, refusal.code, refusal.message, refusal.headers);
    return false;
  };
  type Handler = (res: HttpResponse, req: HttpRequest) => void;
  const guarded = (handler: Handler): Handler => (res, req) => {
    if (guard(res, req)) handler(res, req);
  };
  const get = (path: string, handler: Handler): void => {
    app.get(path, guarded(handler));
  };
  get('/', (res) => {
    res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'text/html; charset=utf-8')
      .writeHeader('cache-control', 'no-cache').end(deps.dashboard));
  });
  get('/healthz', (res) => json(res, 200, { status: 'ok' }));
  get('/readyz', (res) => {
    const r = deps.readiness();
    json(res, r.ready ? 200 : 503, r);
  });
  get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    deps.metrics().then((body) => {
      if (!aborted) res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', deps.metricsContentType).end(body));
    }, (err: unknown) => {
      if (!aborted) json(res, 500, { statusCode: 500, code: 'METRICS_FAILED', error: 'Internal Server Error', message: String(err) });
    });
  });
  get('/workers', (res) => json(res, 200, deps.workers()));
  get('/routes', (res) => json(res, 200, deps.routes()));
  get('/stats', (res) => json(res, 200, deps.stats()));
  get('/events', (res) => {
    const stream = openStream(res, streams);
    stream.wantsStats = true;
    stream.send('history', JSON.stringify(deps.history()));
    stream.send('stats', JSON.stringify(deps.stats()));
  });
  const logs: Handler = (res, req) => {
    const query = new URLSearchParams(req.getQuery() ?? '');
    const lastEventId = req.getHeader('last-event-id');
    const problems: string[] = [];
    // Without `after`, a reconnecting EventSource's Last-Event-ID says where to resume from.
    const resumeFrom = lastEventId === '' ? 0 : Number(lastEventId);
    if (!query.has('after') && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) problems.push('Last-Event-ID must be a log seq, a non-negative integer');
    const after = intParam(query, 'after', resumeFrom, problems);
    const limit = intParam(query, 'limit', DEFAULT_LOG_LIMIT, problems);
    if (limit < 1 || limit > MAX_LOG_LIMIT) problems.push(`limit must be between 1 and ${MAX_LOG_LIMIT}`);
    const follow = query.get('follow');
    if (follow !== null && follow !== '0' && follow !== '1') problems.push(`follow must be 0 or 1 (got ${JSON.stringify(follow)})`);
    const route = query.get('route') ?? undefined;
    if (problems.length > 0) {
      json(res, 400, { statusCode: 400, code: 'BAD_REQUEST', error: 'Bad Request', message: problems.join('; ') });
      return;
    }
    if (follow !== '1') {
      json(res, 200, deps.logs.read(after, limit, route));
      return;
    }
    const stream = openStream(res, streams);
    const send = (e: LogEntry): void => {
      if (route === undefined || e.route === route) stream.send('log', JSON.stringify(e), e.seq);
    };
    // Entries the client has not seen yet (after a reconnect), then every new one.
    if (query.has('after') || lastEventId !== '') for (const e of deps.logs.read(after, MAX_LOG_LIMIT, route).entries) send(e);
    stream.onClose(deps.logs.follow(send));
  };
  get('/logs', logs);
  deps.invocations?.register(app, guard); // before /api/v1's catch-all
  if (deps.api) {
    registerApiV1(app, { ...deps.api, workers: deps.workers, routes: deps.routes, stats: deps.stats, logs }, guard);
  }
  app.any('/*', guarded((res, req) => json(res, 404, { statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found',
    message: `the admin API has no ${req.getMethod().toUpperCase()} ${req.getUrl()}; try ${ENDPOINTS}` })));

  const ticker = setInterval(() => {
    if (streams.size === 0) return;
    const stats = JSON.stringify(deps.stats());
    for (const s of streams) if (s.wantsStats) s.send('stats', stats);
  }, STATS_EVERY_MS);
  ticker.unref();
  const heartbeat = setInterval(() => {
    for (const s of streams) s.comment();
  }, SSE_HEARTBEAT_MS);
  heartbeat.unref();
  return {
    app,
    close: () => {
      clearInterval(ticker);
      clearInterval(heartbeat);
      for (const s of [...streams]) s.end();
    },
  };
}

interface EventStream {
  /** /events streams get a stats event every second; log streams only their entries. */
  wantsStats: boolean;
  send(event: string, data: string, id?: number): void;
  comment(): void;
  onClose(fn: () => void): void;
  end(): void;
}

function openStream(res: HttpResponse, streams: Set<EventStream>): EventStream {
  let open = true;
  const cleanups: Array<() => void> = [];
  const close = (): void => {
    if (!open) return;
    open = false;
    streams.delete(stream);
    for (const fn of cleanups) fn();
  };
  const write = (text: string): void => {
    if (!open) return;
    let ok = true;
    res.cork(() => {
      ok = res.write(text);
    });
    if (!ok) {
      // Not draining: drop the client rather than buffer for it. It reconnects.
      close();
      res.close();
    }
  };
  const stream: EventStream = {
    wantsStats: false,
    send: (event, data, id) => write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${data}\n\n`),
    comment: () => write(': keep-alive\n\n'),
    onClose: (fn) => cleanups.push(fn),
    end: () => {
      if (!open) return;
      close();
      res.cork(() => res.end());
    },
  };
  res.onAborted(close);
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache');
    res.write(': connected\n\n');
  });
  streams.add(stream);
  return stream;
}

function intParam(query: URLSearchParams, name: string, fallback: number, problems: string[]): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,15}$/.test(raw)) problems.push(`${name} must be a non-negative integer (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

const STATUS = { 200: '200 OK', 400: '400 Bad Request', 404: '404 Not Found', 500: '500 Internal Server Error', 503: '503 Service Unavailable' } as const;

function json(res: HttpResponse, status: keyof typeof STATUS, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.cork(() => res.writeStatus(STATUS[status]).writeHeader('content-type', 'application/json').end(text));
}
