// Every error code a client can see, with its HTTP status and what to do about it.
import { STATUS_CODES } from 'node:http';

// The README's error table is checked against this list by test/unit/errors.test.ts.

export interface ErrorSpec {
  readonly status: number;
  /** Meaning, as the README states it. */
  readonly meaning: string;
  /** How the caller or the operator fixes it. */
  readonly fix: string;
}

export const ERRORS = {
  ROUTE_NOT_FOUND: { status: 404, meaning: 'No function is mapped to this METHOD:path.', fix: 'Check the method and path; operators add the route with an INSERT into functions.' },
  METHOD_NOT_ALLOWED: { status: 405, meaning: 'The path has functions, but not for this method; `Allow` lists the methods that exist.', fix: 'Use one of the methods in `Allow`.' },
  BAD_REQUEST: { status: 400, meaning: 'The request could not be read (malformed, or ambiguous framing: a Content-Length given twice with different values). The connection is closed. Requests uWebSockets.js cannot parse at all — both Content-Length and Transfer-Encoding, a Transfer-Encoding other than `chunked`, more than 100 headers, garbage — get no answer: uWebSockets.js reads nothing more from the connection and closes it at its idle timeout (10 s).', fix: 'Send well-formed HTTP/1.1.' },
  API_KEY_MISSING: { status: 401, meaning: 'The route has `"auth": "api-key"` and the request carried no key; `WWW-Authenticate` says how to send one.', fix: 'Send the key as `x-api-key: KEY` or `Authorization: Bearer KEY`; operators make keys with `faas keys create NAME`.' },
  API_KEY_INVALID: { status: 401, meaning: 'The key sent is not one the gateway knows (mistyped, or revoked).', fix: 'Check the key; a revoked key stops working within one sync period (5 s).' },
  CORS_ORIGIN_NOT_ALLOWED: { status: 403, meaning: "A CORS preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) came from an origin that is not in the route's `cors.origins`; no function was called.", fix: 'Call from an allowed origin; operators add the origin to cors.origins.' },
  RATE_LIMITED: { status: 429, meaning: "Over the route's `rate_limit` for this client (its API key, or its IP address); `Retry-After` says when a call will be accepted, `RateLimit` and `RateLimit-Policy` give the budget.", fix: 'Wait `Retry-After` seconds; operators raise rate_limit.rps or burst.' },
  REQUEST_TIMEOUT: { status: 408, meaning: 'The request body did not arrive within `--body-timeout-ms` (5 s) of its headers; the connection serves nothing more.', fix: 'Send the body promptly; operators may raise --body-timeout-ms, but uWS itself closes a connection 8-12 s after its last answer.' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The request body is over the limit (6 MiB by default).', fix: 'Send a smaller body, or raise --max-body-bytes.' },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line and headers are over the limit (16 KiB by default). The connection is closed.', fix: 'Send fewer or smaller headers (large cookies, tokens), or raise --max-header-bytes.' },
  FUNCTION_ERROR: { status: 500, meaning: 'The function threw, or failed to load.', fix: 'Read the gateway log for the request id; fix the function.' },
  FUNCTION_RESPONSE_INVALID: { status: 500, meaning: 'The function returned something that is not a response (CONTRACT §3 lists the shapes).', fix: 'Return a Response, a {statusCode, headers, body} object, or for python str/bytes/dict.' },
  FUNCTION_CRASHED: { status: 502, meaning: "The function's process died mid-request (crash, killed, out of memory).", fix: 'Read the gateway log for the request id; the next call gets a fresh instance.' },
  WORKER_DIED: { status: 502, meaning: 'The worker serving the call died or dropped its connection mid-request.', fix: 'Retry; the gateway restarts the worker.' },
  WORKER_PROTOCOL_ERROR: { status: 502, meaning: 'The worker sent a frame the gateway could not read; the connection was reset.', fix: 'Report a bug with the gateway log.' },
  NO_WORKER_AVAILABLE: { status: 503, meaning: 'No worker is connected and reporting (all dead, starting, or silent).', fix: 'Retry after `Retry-After` seconds; operators check GET /workers on the admin port.' },
  FUNCTION_AT_CAPACITY: { status: 503, meaning: 'Every worker that could take it runs `max_concurrency` calls of the function, or refused it because its memory budget is held by instances in use (a worker that refuses a call passes it to the next; nothing is queued at the gateway).', fix: 'Retry after `Retry-After` seconds; raise max_concurrency or the memory budget, or add workers.' },
  FUNCTION_UNAVAILABLE: { status: 503, meaning: 'The function could not be started (sandbox or runtime missing on this host).', fix: 'Operators read the gateway log; the row error shows on GET /routes.' },
  SHUTTING_DOWN: { status: 503, meaning: 'The gateway is stopping (SIGTERM): it finishes the calls it has, takes no new ones, and closes the connection.', fix: 'Retry after `Retry-After` seconds, on a new connection (another instance, or this one once restarted).' },
  TOO_MANY_CONNECTIONS: { status: 503, meaning: 'The gateway has more than `--max-connections` client connections open; the request is refused and its connection closed.', fix: 'Retry after `Retry-After` seconds on a new connection, and reuse connections instead of opening many; operators raise --max-connections (and the open-files limit).' },
  OVERLOADED: { status: 503, meaning: 'The gateway has `--max-in-flight` calls in flight already (all routes, all workers together).', fix: 'Retry after `Retry-After` seconds; operators raise --max-in-flight or add capacity.' },
  FUNCTION_TIMEOUT: { status: 504, meaning: 'The function ran past its `timeout_ms`; its instance was replaced.', fix: 'Make the function faster or raise timeout_ms.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Unknown';
}

const STATUS_LINES: string[] = [];
/** "200 OK": the status line uWS writes, built once per status. */
export function statusLine(status: number): string {
  return STATUS_LINES[status] ??= `${status} ${reasonPhrase(status)}`;
}

/** The JSON body of an error response (CONTRACT §4). */
export function errorBody(code: ErrorCode, message: string): string {
  const status = ERRORS[code].status;
  return JSON.stringify({ statusCode: status, code, error: reasonPhrase(status), message });
}

/** An error the gateway answers with; `code` picks the status and is what clients match on. */
export class GatewayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The worker that produced it, when there was one (for `x-faas-worker`). */
    readonly workerId?: string,
    /** A function's error answer: its instance's CPU µs and peak memory during the call, where known (ResultMessage). */
    readonly usage?: { readonly cpuUs?: number; readonly memPeak?: number },
  ) {
    super(message);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}
