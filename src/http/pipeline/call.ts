// One request on its way through the pipeline (server.ts): what was read of it, where it stands,
// and the one way to refuse it. uWS's rules (STYLE.md) are kept here and nowhere else: onAborted
// is registered first, everything is read from `req` in the constructor (it is invalid once the
// handler returns), and every write is corked, as it may come after an await.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Answered, Invocation, InvocationResult } from '../../calls.js';
import { errorBody, statusLine, type GatewayError } from '../../errors.js';
import type { Log } from '../../protocol/log.js';
import type { Route, RouteTable } from '../../routes/route-table.js';
import type { AsyncCalls } from '../async-accept.js';
import type { Headers } from '../cors.js';
import { endAnswer, writeGatewayHeaders } from '../end-answer.js';
import type { Cidr } from '../forwarded.js';
import type { RateLimiter } from '../rate-limit.js';
import type { ClusterRateLimiter } from '../rate-limit-redis.js';
import type { RequestBody } from '../request-body.js';
import type { StreamState } from '../stream-answer.js';
import type { HttpRequest, HttpResponse } from '../uws.js';
import { cpuTiming, traceContext } from './trace.js';

export interface ServerDeps {
  readonly routes: () => RouteTable;
  /** What is being built for a key that is not served yet (src/build/), if anything: its 404 becomes 503 FUNCTION_BUILDING. */
  readonly building?: (key: string) => string | undefined;
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

/** A body being read, for the --body-timeout-ms sweep. */
export interface Reading {
  readonly deadline: number;
  expire(): void;
}

/** What the server shares across requests: calls past the checks and not answered yet (--max-in-flight), bodies being read. */
export interface InFlight {
  inFlight: number;
  readonly reading: Set<Reading>;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
const RETRY_AFTER_S = '1';
const BODY_ABORTED = { code: 'FUNCTION_ERROR', message: 'the client went away mid-body' } as const;

export class Call {
  readonly started = performance.now();
  /** `answered`: an answer went out (a 413 or 408 while a streamed body's call still ran; the call's own then is dropped). */
  readonly state: StreamState & { counted: boolean; answered: boolean } = { aborted: false, counted: false, answered: false };
  readonly method: string;
  /** Answered without a body, by the GET route when the path has no HEAD route. */
  readonly head: boolean;
  readonly path: string;
  readonly query: string;
  /** Flat [name, value, …], as uWS gives them; the stages may remove what the function must not see. */
  readonly headers: string[] = [];
  readonly contentLength: string | undefined;
  readonly chunked: boolean;
  readonly apiKey: string | undefined;
  readonly authorization: string | undefined;
  readonly traceparent: string | undefined;
  /** Content-Length given twice with different values. */
  readonly conflictingLength: boolean;
  /** The request line and headers, as sent (near enough: "GET /p?q HTTP/1.1\r\n" and "name: value\r\n"). */
  readonly headerBytes: number;
  readonly requestId: string;
  readonly trace: { readonly traceId: string; readonly child: string };

  // Set by the stages, in the order a request meets them.
  table: RouteTable | undefined;
  route: Route | undefined;
  /** The key metrics count the answer under: the route's, or a preflight's. */
  routeKey: string | undefined;
  cors: Headers | undefined;
  clientIp = '';
  /** Who the rate limit counts: the API key's name, or undefined for the client's address. */
  client: string | undefined;
  limitHeaders: ReadonlyArray<readonly [string, string]> | undefined;
  /** With --cluster-redis, the limit's verdict comes later: the call waits for it, its body read meanwhile. */
  allowedLater: Promise<boolean> | undefined;
  /** Content-Length as a number, once checked. */
  declared: number | undefined;
  /** Set while the body is being read: its deadline leaves the sweep if the client goes. */
  bodyRead: Reading | undefined;
  /** Set while a streamed body is being read: the function learns of a client that went mid-body. */
  bodyIn: RequestBody | undefined;

  constructor(readonly deps: ServerDeps, readonly calls: InFlight, readonly res: HttpResponse, req: HttpRequest) {
    // An arrow, not a method: uWS calls onAborted without the response as `this` (PERF.md).
    res.onAborted(() => {
      this.state.aborted = true;
      this.state.cancel?.();
      this.release();
      if (this.bodyRead) calls.reading.delete(this.bodyRead);
      this.bodyIn?.end(BODY_ABORTED);
    });
    this.method = req.getCaseSensitiveMethod().toUpperCase();
    this.head = this.method === 'HEAD';
    this.path = req.getUrl();
    this.query = req.getQuery() ?? '';
    const headers = this.headers;
    let contentLength: string | undefined;
    let chunked = false;
    let clientRequestId: string | undefined;
    let apiKey: string | undefined;
    let authorization: string | undefined;
    let traceparent: string | undefined;
    let conflictingLength = false;
    let headerBytes = this.method.length + this.path.length + this.query.length + 12;
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
    this.contentLength = contentLength;
    this.chunked = chunked;
    this.apiKey = apiKey;
    this.authorization = authorization;
    this.traceparent = traceparent;
    this.conflictingLength = conflictingLength;
    this.headerBytes = headerBytes;
    this.requestId = clientRequestId ?? randomUUID();
    this.trace = traceContext(traceparent, clientRequestId === undefined ? this.requestId : undefined);
  }

  /** The call counts against --max-in-flight from here until it is answered or its client has gone. */
  count(): void {
    this.calls.inFlight++;
    this.state.counted = true;
  }

  /** Ends this request's share of calls.inFlight: once, whether answered or aborted. */
  release(): void {
    if (!this.state.counted) return;
    this.state.counted = false;
    this.calls.inFlight--;
  }

  /** Answers with the error JSON (CONTRACT §4), unless an answer went out or the client went; `close` ends the connection after. */
  fail(err: GatewayError, extra?: ReadonlyArray<readonly [string, string]>, close = false): void {
    this.release();
    if (this.state.aborted || this.state.answered) return;
    this.state.answered = true;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(statusLine(err.status));
      res.writeHeader('content-type', 'application/json');
      res.writeHeader('x-request-id', this.requestId);
      if (err.workerId) res.writeHeader('x-faas-worker', err.workerId);
      const cpuUs = err.usage?.cpuUs; // a function's error answer: what its instance used meanwhile
      res.writeHeader('server-timing',
        `gateway;dur=${(performance.now() - this.started).toFixed(3)}` + (cpuUs === undefined ? '' : `, cpu;dur=${cpuTiming(cpuUs)}`));
      for (const [k, v] of extra ?? []) res.writeHeader(k, v);
      writeGatewayHeaders(res, this.deps.serverHeader, this.cors);
      if (err.status === 503) res.writeHeader('retry-after', RETRY_AFTER_S);
      endAnswer(res, errorBody(err.code, err.message), this.head, close);
    });
    this.observe(err.status, { worker: err.workerId, cpuUs: err.usage?.cpuUs, memPeak: err.usage?.memPeak, code: err.code, message: err.message });
  }

  /**
   * A refusal before the body is read: uWS reads and discards a body nobody takes, so the client
   * sees the answer instead of a reset while it is still writing (nginx's lingering close).
   */
  refuseEarly(err: GatewayError, extra?: ReadonlyArray<readonly [string, string]>, close = false): void {
    this.dropBody();
    this.fail(err, extra, close);
  }

  /** Reads and drops a body no one will take. */
  dropBody(): void {
    if (this.contentLength !== undefined || this.chunked) this.res.onData(() => {});
  }

  /** Tells the observers (metrics, live stats, access log) of the answer. */
  observe(status: number, figures: Partial<Pick<Answered, 'fnMs' | 'cold' | 'worker' | 'cpuUs' | 'memPeak' | 'code' | 'message'>> = {}, ms = performance.now() - this.started): void {
    this.deps.observe({ route: this.routeKey, method: this.method, path: this.path, status, ms, fnMs: figures.fnMs ?? 0, cold: figures.cold ?? false,
      worker: figures.worker, cpuUs: figures.cpuUs, memPeak: figures.memPeak, code: figures.code, message: figures.message,
      requestId: this.requestId, traceId: this.trace.traceId });
  }
}

/** Removes every `name` header from a flat [name, value, …] list. */
export function removeHeader(headers: string[], name: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === name) headers.splice(i, 2);
}
