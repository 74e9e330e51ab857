// The public HTTP server: read the request, look up its route, hand it to the fleet, write
// the answer. The only module besides admin.ts that touches uWebSockets.js.
//
// uWS rules that matter here (STYLE.md): register onAborted before any await, read everything
// from `req` synchronously (it is invalid after the handler returns), and cork every write
// that happens after an await.
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { GatewayError, errorBody, statusLine } from '../errors.js';
import type { Log } from '../protocol/log.js';
import type { Answered, Invocation, InvocationResult } from '../calls.js';
import type { RouteTable } from '../routes/route-store.js';
import type { Limit, RateLimiter } from './rate-limit.js';
import type { ClusterRateLimiter } from './rate-limit-redis.js';
import { answerStatus, STATUS_PATH, type AsyncCalls } from './async-accept.js';
import { corsHeaders, headerOf, preflight, withHead, type Headers } from './cors.js';
import { answerPreflight, endAnswer, headLength, writeGatewayHeaders } from './end-answer.js';
import { forward, type Cidr } from './forwarded.js';
import { RequestBody } from './request-body.js';
import { streamAnswer, type StreamState } from './stream-answer.js';
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp } from './uws.js';

export interface ServerDeps {
  readonly routes: () => RouteTable;
  /** Runs the call on a worker; rejects with GatewayError. */
  readonly invoke: (inv: Invocation) => Promise<InvocationResult>;
  readonly maxBodyBytes: number;
  /** Time the whole body has to arrive in, from the request's headers; past it, 408 and close. */
  readonly bodyTimeoutMs: number;
  /** Request line plus header lines, in bytes; past it, 431. */
  readonly maxHeaderBytes: number;
  /** Calls this server may have in flight at once (reading their body or running); past it, 503 OVERLOADED. */
  readonly maxInFlight: number;
  /** Client connections open past --max-connections (0 when under it): requests get 503 TOO_MANY_CONNECTIONS and close. */
  readonly excessConnections: () => number;
  /** True once the gateway is stopping: new requests get 503 SHUTTING_DOWN and their connection is closed. */
  readonly draining: () => boolean;
  /** Buckets for routes with rate_limit. */
  readonly limiter: RateLimiter;
  /** With --cluster-redis: the buckets in Redis, used instead of `limiter` (whose takes answer at once). */
  readonly clusterLimiter?: ClusterRateLimiter;
  /** Peers whose X-Forwarded-For and kin are believed (--trusted-proxies). */
  readonly trustedProxies: readonly Cidr[];
  /** The Server header of every answer; undefined: none (--server-header off). */
  readonly serverHeader: string | undefined;
  readonly log: Log;
  /** Async invocations (async-accept.ts): stored and answered 202, and their status URL; undefined: none. */
  readonly asyncCalls?: AsyncCalls;
  /** Called once per answered request, for metrics, live stats and the access log. */
  readonly observe: (answered: Answered) => void;
}

/** Headers a function may not set: framing and the gateway's own headers are the gateway's business. */
const RESERVED = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer',
  'proxy-connection', 'date', 'x-request-id', 'x-faas-worker', 'server-timing']);
/** The gateway's rate-limit fields replace a function's own on a route with rate_limit. */
const LIMIT_HEADERS = new Set(['ratelimit', 'ratelimit-policy', 'retry-after']);
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** W3C Trace Context: version-traceid-parentid-flags; later versions may append fields. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
/** Seconds a client should wait after a 503: workers restart and report within about a second. */
const RETRY_AFTER_S = '1';

/** A body being read, and what to do if it is still incomplete at its deadline. */
interface Reading {
  readonly deadline: number;
  readonly expire: () => void;
}

const EMPTY = Buffer.alloc(0);
const BODY_ABORTED = { code: 'FUNCTION_ERROR', message: 'the client went away mid-body' } as const;

/** Says the connection will not serve another request (uWS closes it at its idle timeout). */
const CLOSING: ReadonlyArray<readonly [string, string]> = [['connection', 'close']];
/** How often bodies past their deadline are looked for: one timer for all, not one per request. */
const BODY_SWEEP_MS = 250;

export function createServer(deps: ServerDeps): TemplatedApp {
  const app = uws().App();
  const calls: InFlight = { inFlight: 0, reading: new Set() };
  setInterval(() => {
    const now = performance.now();
    for (const r of calls.reading) {
      if (r.deadline > now) continue;
      calls.reading.delete(r);
      r.expire();
    }
  }, BODY_SWEEP_MS).unref();
  app.any('/*', (res, req) => {
    try {
      handle(deps, calls, res, req);
    } catch (err) {
      // A bug here must not take the process down: uWS would abort on an unanswered request.
      deps.log({ level: 'error', msg: 'request handler failed', error: err instanceof Error ? err.stack : String(err) });
      try {
        res.cork(() => res.writeStatus('500 Internal Server Error').end('', true));
      } catch {
        /* already answered or aborted */
      }
    }
  });
  return app;
}

/** Calls past the checks and not answered yet, across all connections (--max-in-flight). */
interface InFlight {
  inFlight: number;
  /** Bodies being read, for the --body-timeout-ms sweep. */
  readonly reading: Set<Reading>;
}

function handle(deps: ServerDeps, calls: InFlight, res: HttpResponse, req: HttpRequest): void {
  const started = performance.now();
  /** `answered`: an answer went out (a 413 or 408 while a streamed body's call still ran; the call's own then is dropped). */
  const state: StreamState & { counted: boolean; answered: boolean } = { aborted: false, counted: false, answered: false };
  /** Ends this request's share of calls.inFlight: once, whether answered or aborted. */
  const release = (): void => {
    if (!state.counted) return;
    state.counted = false;
    calls.inFlight--;
  };
  // A closure, not `this`: uWS calls onAborted without the response as `this` (PERF.md).
  /** Set while the body is being read: its deadline leaves the sweep if the client goes. */
  let bodyRead: Reading | undefined;
  /** Set while a streamed body is being read: the function learns of a client that went mid-body. */
  let bodyIn: RequestBody | undefined;
  res.onAborted(() => {
    state.aborted = true;
    state.cancel?.();
    release();
    if (bodyRead) calls.reading.delete(bodyRead);
    bodyIn?.end(BODY_ABORTED);
  });

  const method = req.getCaseSensitiveMethod().toUpperCase();
  const head = method === 'HEAD'; // answered without a body, by the GET route when the path has no HEAD route
  const path = req.getUrl();
  const query = req.getQuery() ?? '';
  const headers: string[] = [];
  let contentLength: string | undefined;
  let chunked = false;
  let clientRequestId: string | undefined;
  let apiKey: string | undefined;
  let authorization: string | undefined;
  let traceparent: string | undefined;
  let conflictingLength = false;
  let headerBytes = method.length + path.length + query.length + 12; // "GET /p?q HTTP/1.1\r\n"
  req.forEach((name, value) => {
    headers.push(name, value);
    headerBytes += name.length + value.length + 4;
    if (name === 'content-length') {
      conflictingLength ||= contentLength !== undefined && contentLength !== value;
      contentLength = value;
    }
    else if (name === 'transfer-encoding') chunked = true;
    else if (name === 'x-request-id' && REQUEST_ID.test(value)) clientRequestId = value;
    else if (name === 'x-api-key') apiKey ??= value;
    else if (name === 'authorization') authorization ??= value;
    else if (name === 'traceparent') traceparent = traceparent === undefined ? value : ''; // twice: invalid
  });
  const requestId = clientRequestId ?? randomUUID();
  const trace = traceContext(traceparent, clientRequestId === undefined ? requestId : undefined);

  const fail = (err: GatewayError, extra?: ReadonlyArray<readonly [string, string]>, close = false): void => {
    release();
    if (state.aborted || state.answered) return;
    state.answered = true;
    res.cork(() => {
      res.writeStatus(statusLine(err.status));
      res.writeHeader('content-type', 'application/json');
      res.writeHeader('x-request-id', requestId);
      if (err.workerId) res.writeHeader('x-faas-worker', err.workerId);
      const cpuUs = err.usage?.cpuUs; // a function's error answer: what its instance used meanwhile
      res.writeHeader('server-timing',
        `gateway;dur=${(performance.now() - started).toFixed(3)}` + (cpuUs === undefined ? '' : `, cpu;dur=${cpuTiming(cpuUs)}`));
      for (const [k, v] of extra ?? []) res.writeHeader(k, v);
      writeGatewayHeaders(res, deps.serverHeader, cors);
      if (err.status === 503) res.writeHeader('retry-after', RETRY_AFTER_S);
      endAnswer(res, errorBody(err.code, err.message), head, close);
    });
    deps.observe({ route: routeKey, method, path, status: err.status, ms: performance.now() - started, fnMs: 0, cold: false,
      worker: err.workerId, cpuUs: err.usage?.cpuUs, memPeak: err.usage?.memPeak, code: err.code, message: err.message, requestId,
      traceId: trace.traceId });
  };
  let routeKey: string | undefined; // set once the route is known, for metrics
  let cors: Headers | undefined; // set once a route with cors is known
  // A refusal before the body is read: uWS reads and discards a body nobody takes, so the client
  // sees the answer instead of a reset while it is still writing (nginx's lingering close).
  const refuseEarly = (err: GatewayError, extra?: ReadonlyArray<readonly [string, string]>, close = false): void => {
    if (contentLength !== undefined || chunked) res.onData(() => {});
    fail(err, extra, close);
  };

  if (deps.draining()) {
    refuseEarly(new GatewayError('SHUTTING_DOWN', 'the gateway is shutting down; retry on a new connection'), undefined, true);
    return;
  }

  const excess = deps.excessConnections();
  if (excess > 0) {
    refuseEarly(new GatewayError('TOO_MANY_CONNECTIONS', `the gateway has ${excess} client connections more than its limit (--max-connections)`), undefined, true);
    return;
  }

  // uWS itself refuses, without an answer, a request it cannot parse — both Content-Length and
  // Transfer-Encoding, a Transfer-Encoding other than chunked, more than 100 headers, garbage —
  // reads nothing more from that connection and closes it at its idle timeout (10 s). What it
  // lets through is checked here.
  if (conflictingLength) {
    fail(new GatewayError('BAD_REQUEST', 'content-length is given twice with different values'), undefined, true);
    return;
  }
  if (headerBytes > deps.maxHeaderBytes) {
    // Closed after, as Node does: uWS serves nothing more on a connection after such a request.
    fail(new GatewayError('HEADERS_TOO_LARGE', `the request line and headers are ${headerBytes} bytes, over the limit of ${deps.maxHeaderBytes} bytes`), undefined, true);
    return;
  }

  if (deps.asyncCalls && path.startsWith(STATUS_PATH)) {
    const found = deps.asyncCalls.status(path, method);
    if (typeof found !== 'string') refuseEarly(found, found.code === 'METHOD_NOT_ALLOWED' ? [['allow', 'GET, HEAD']] : undefined);
    else {
      if (contentLength !== undefined || chunked) res.onData(() => {});
      answerStatus(res, found, requestId, deps.serverHeader, head);
      deps.observe({ route: undefined, method, path, status: 200, ms: performance.now() - started, fnMs: 0, cold: false, worker: undefined,
        cpuUs: undefined, memPeak: undefined, code: undefined, message: undefined, requestId, traceId: trace.traceId });
    }
    return;
  }

  const key = `${method}:${path}`;
  const table = deps.routes();
  const route = table.get(key) ?? (head ? table.get(`GET:${path}`) : undefined);
  routeKey = route?.key;
  if (!route) {
    const pre = method === 'OPTIONS' ? preflight(table, path, headers) : undefined;
    if (pre) {
      routeKey = pre.route.key;
      if (pre.error) {
        refuseEarly(pre.error, pre.headers);
        return;
      }
      answerPreflight(res, pre.headers, requestId, deps.serverHeader); // no function is called
      deps.observe({ route: routeKey, method, path, status: 204, ms: performance.now() - started, fnMs: 0, cold: false,
        worker: undefined, cpuUs: undefined, memPeak: undefined, code: undefined, message: undefined, requestId, traceId: trace.traceId });
      return;
    }
    const allowed = withHead(table.allowedMethods(path));
    if (allowed.length > 0) {
      fail(new GatewayError('METHOD_NOT_ALLOWED', `${path} has no function for ${method}; it has ${allowed.join(', ')}`), [['allow', allowed.join(', ')]]);
    } else {
      fail(new GatewayError('ROUTE_NOT_FOUND', `no function is mapped to ${key}`));
    }
    return;
  }

  const clientIp = forward(headers, res.getRemoteAddress(), deps.trustedProxies);
  if (route.config.cors) cors = corsHeaders(route.config.cors, headerOf(headers, 'origin'));
  let client: string | undefined;
  if (route.config.auth === 'api-key') {
    const bearer = authorization !== undefined ? BEARER.exec(authorization)?.[1] : undefined;
    const presented = apiKey ?? bearer;
    if (presented === undefined) {
      refuseEarly(new GatewayError('API_KEY_MISSING', `${route.key} needs an API key: send x-api-key or Authorization: Bearer`), [['www-authenticate', 'Bearer realm="faas"']]);
      return;
    }
    const name = table.keys.check(presented);
    if (name === undefined) {
      refuseEarly(new GatewayError('API_KEY_INVALID', 'the API key is not valid (unknown or revoked)'), [['www-authenticate', 'Bearer realm="faas", error="invalid_token"']]);
      return;
    }
    // The key is the gateway's business: the function never sees it (it may log what it gets).
    removeHeader(headers, apiKey !== undefined ? 'x-api-key' : 'authorization');
    client = `key ${name}`;
  }
  let limitHeaders: ReadonlyArray<readonly [string, string]> | undefined;
  /** With --cluster-redis, the verdict comes later: the call waits for it (dispatch), its body read meanwhile. */
  let allowedLater: Promise<boolean> | undefined;
  const rateLimit = route.config.rateLimit;
  if (rateLimit && deps.clusterLimiter) {
    allowedLater = deps.clusterLimiter.take(route.key, client ?? `ip ${clientIp}`, rateLimit).then((verdict) => {
      if (verdict.allowed) limitHeaders = verdict.headers;
      else fail(overLimit(route.key, rateLimit), verdict.headers); // after onAborted: nothing if the client went; a body is read and dropped
      return verdict.allowed;
    });
  } else if (rateLimit) {
    const verdict = deps.limiter.take(route.key, client ?? `ip ${clientIp}`, rateLimit);
    if (!verdict.allowed) {
      refuseEarly(overLimit(route.key, rateLimit), verdict.headers);
      return;
    }
    limitHeaders = verdict.headers;
  }

  if (calls.inFlight >= deps.maxInFlight) {
    refuseEarly(new GatewayError('OVERLOADED', `the gateway has ${calls.inFlight} calls in flight, its limit (--max-in-flight)`));
    return;
  }
  // From here the call counts, until it is answered or its client has gone.
  calls.inFlight++;
  state.counted = true;

  const declared = contentLength === undefined ? undefined : Number(contentLength);
  if (contentLength !== undefined && (!/^\d+$/.test(contentLength) || !Number.isSafeInteger(declared))) {
    fail(new GatewayError('BAD_REQUEST', `content-length must be a non-negative integer (got ${JSON.stringify(contentLength)})`), undefined, true);
    return;
  }
  if (declared !== undefined && declared > deps.maxBodyBytes) {
    refuseEarly(new GatewayError('PAYLOAD_TOO_LARGE', `request body of ${declared} bytes is over the limit of ${deps.maxBodyBytes} bytes`));
    return;
  }

  // The function is called as a child span of the client's trace (or of a new one).
  if (traceparent !== undefined) removeHeader(headers, 'traceparent');
  headers.push('traceparent', trace.child);
  // An async call is stored and answered 202 instead (async-accept.ts).
  const invoke = deps.asyncCalls?.asks(headers) ? deps.asyncCalls.accept : deps.invoke;

  const dispatch = (body: Buffer, bodyIn?: RequestBody): void => {
    if (allowedLater) { // --cluster-redis: called once the limit allows it, unless answered (429, 408, 413) or gone meanwhile
      const allowed = allowedLater;
      allowedLater = undefined;
      void allowed.then((yes) => {
        if (yes && !state.aborted && !state.answered) dispatch(body, bodyIn);
      });
      return;
    }
    invoke({ route, requestId, method, path, query, headers, body, bodyIn, clientIp })
      .then((result) => {
        release();
        if (state.aborted || state.answered) {
          result.stream?.cancel();
          return;
        }
        const totalMs = performance.now() - started;
        state.answered = true;
        res.cork(() => {
          res.writeStatus(statusLine(result.status));
          const h = result.headers;
          for (let i = 0; i + 1 < h.length; i += 2) {
            const name = h[i]!;
            if (!RESERVED.has(name) && !(limitHeaders && LIMIT_HEADERS.has(name)) && !(cors && name.startsWith('access-control-'))
              && !(deps.serverHeader !== undefined && name === 'server')) res.writeHeader(name, h[i + 1]!);
          }
          res.writeHeader('x-request-id', requestId);
          if (result.workerId !== '') res.writeHeader('x-faas-worker', result.workerId); // '': stored for later (202)
          res.writeHeader('server-timing',
            `gateway;dur=${(totalMs - result.fnMs).toFixed(3)}, function;dur=${result.fnMs.toFixed(3)}, start;desc=${result.cold ? 'cold' : 'warm'}` +
            (result.cpuUs === undefined ? '' : `, cpu;dur=${cpuTiming(result.cpuUs)}`));
          if (limitHeaders) for (const [k, v] of limitHeaders) res.writeHeader(k, v);
          writeGatewayHeaders(res, deps.serverHeader, cors);
          if (result.stream) streamAnswer(res, result.stream, state, head, (tail, failure) => {
            deps.observe({ route: route.key, method, path, status: result.status, ms: performance.now() - started, fnMs: tail?.fnMs ?? result.fnMs,
              cold: result.cold, worker: result.workerId, cpuUs: tail?.cpuUs, memPeak: tail?.memPeak, code: failure?.code,
              message: failure && `the answer was cut short: ${failure.message}`, requestId, traceId: trace.traceId });
          });
          else endAnswer(res, result.body, head, false, head ? headLength(result.body, result.headers) : 0);
        });
        if (result.stream) return; // observed when it ends
        deps.observe({ route: route.key, method, path, status: result.status, ms: totalMs, fnMs: result.fnMs, cold: result.cold,
          worker: result.workerId, cpuUs: result.cpuUs, memPeak: result.memPeak, code: undefined, message: undefined, requestId,
          traceId: trace.traceId });
      }, (err: unknown) => {
        fail(err instanceof GatewayError ? err : new GatewayError('WORKER_PROTOCOL_ERROR', `internal error: ${String(err)}`));
      });
  };

  if (declared === undefined && !chunked) {
    dispatch(Buffer.alloc(0));
    return;
  }
  // A client that sends its body too slowly (or not at all) is answered 408 before uWS's own
  // 10 s timeout would close it without a word. The connection is not closed at once: a client
  // still writing would get a reset, and with it lose the answer; the rest of the body is read
  // and dropped until uWS's timeout closes it (nginx's lingering close).
  let finished = false;
  const reading: Reading = {
    deadline: started + deps.bodyTimeoutMs,
    expire: () => {
      if (finished) return;
      finished = true;
      fail(new GatewayError('REQUEST_TIMEOUT', `the request body did not arrive within ${deps.bodyTimeoutMs} ms (--body-timeout-ms)`), CLOSING);
      bodyIn?.end({ code: 'FUNCTION_ERROR', message: `the request body did not arrive within ${deps.bodyTimeoutMs} ms` });
    },
  };
  calls.reading.add(reading);
  const settle = (): boolean => {
    calls.reading.delete(reading);
    if (finished) return false;
    finished = true;
    return true;
  };
  bodyRead = reading;
  readBody(res, deps.maxBodyBytes, state, {
    whole: (body) => {
      if (settle()) dispatch(body);
    },
    first: (chunk) => {
      bodyIn = new RequestBody();
      bodyIn.push(chunk);
      dispatch(EMPTY, bodyIn);
    },
    rest: (chunk, last) => {
      bodyIn!.push(chunk);
      if (last && settle()) bodyIn!.end();
    },
    tooLarge: () => {
      if (!settle()) return;
      bodyIn?.end({ code: 'FUNCTION_ERROR', message: `the request body is over the limit of ${deps.maxBodyBytes} bytes` });
      fail(new GatewayError('PAYLOAD_TOO_LARGE', `request body is over the limit of ${deps.maxBodyBytes} bytes`));
    },
  });
}

function overLimit(key: string, limit: Limit): GatewayError {
  return new GatewayError('RATE_LIMITED', `over the rate limit of ${key} (${limit.rps}/s, burst ${limit.burst})`);
}

/** µs as server-timing's milliseconds, to the µs: 1234 → "1.234". */
export function cpuTiming(us: number): string {
  return (us / 1000).toFixed(3);
}

/**
 * The trace this request belongs to and the traceparent the function gets: a new span id under
 * the client's trace id and flags, or a new trace (from the request's own random id when there
 * is one) when the client sent no valid traceparent. An invalid one is replaced, as the spec asks.
 */
export function traceContext(header: string | undefined, uuid: string | undefined): { traceId: string; child: string } {
  const m = header !== undefined ? TRACEPARENT.exec(header) : null;
  const valid = m !== null && m[1] !== 'ff' && !(m[1] === '00' && m[5] !== undefined) && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!);
  const traceId = valid ? m[2]! : hex32(uuid ?? randomUUID());
  const flags = valid ? m[4]! : '00'; // a trace started here is not recorded: no sampled flag
  return { traceId, child: `00-${traceId}-${spanId()}-${flags}` };
}

/** A UUID's 32 hex digits (a regex replace costs twice as much). */
function hex32(uuid: string): string {
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(14, 18) + uuid.slice(19, 23) + uuid.slice(24);
}

/** Random bytes for span ids, drawn 4 KiB at a time: one crypto call per 512 requests. */
let spanPool = Buffer.alloc(0);
let spanAt = 0;

function spanId(): string {
  if (spanAt + 8 > spanPool.length) {
    spanPool = randomBytes(4096);
    spanAt = 0;
  }
  const id = spanPool.toString('hex', spanAt, spanAt + 8);
  spanAt += 8;
  return id === '0000000000000000' ? spanId() : id; // all zeros is not a valid span id
}

/** Removes every `name` header from a flat [name, value, …] list. */
function removeHeader(headers: string[], name: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === name) headers.splice(i, 2);
}

/** What readBody hands on: a body that came in one piece, or the pieces of a longer one as they come. */
interface BodyParts {
  whole(body: Buffer): void;
  /** The first piece of a body that did not arrive at once: the call can start. */
  first(chunk: Buffer): void;
  rest(chunk: Buffer, last: boolean): void;
  tooLarge(): void;
}

/**
 * Reads the body with onData, counting as it goes so an over-limit body is refused as soon as
 * it crosses the limit; the rest is read and dropped so the client can read the 413. A body
 * that arrives in one read is handed on whole (the common case: one frame to the worker); a
 * longer one piece by piece, as it comes (request-body.ts). uWS reuses each chunk's memory
 * after the callback returns, so chunks are copied.
 */
function readBody(res: HttpResponse, maxBytes: number, state: { aborted: boolean }, parts: BodyParts): void {
  let received = 0;
  let refused = false;
  let streaming = false;
  res.onData((chunk, isLast) => {
    if (refused || state.aborted) return;
    if (chunk.byteLength === 0 && !isLast) return; // uWS's first call may come before any byte of the body
    if (received + chunk.byteLength > maxBytes) {
      refused = true;
      parts.tooLarge();
      return;
    }
    const bytes = Buffer.from(new Uint8Array(chunk));
    received += bytes.length;
    if (streaming) parts.rest(bytes, isLast);
    else if (isLast) parts.whole(bytes);
    else {
      streaming = true;
      parts.first(bytes);
    }
  });
}
