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
  CALLBACK_URL_INVALID: { status: 400, meaning: 'An async call\'s `X-Callback-Url` is not an absolute http:// or https:// URL (at most 2048 characters), or points at the gateway\'s own public or admin port on this host. Nothing was stored.', fix: 'Send an http(s) URL of a receiver that is not the gateway itself.' },
  INVOCATION_NOT_FOUND: { status: 404, meaning: 'No async invocation has this id: it was never accepted, or it finished more than its route\'s `async.ttl_s` ago and was deleted.', fix: 'Check the id (the `Location` of the 202); read results within ttl_s of their end, or raise async.ttl_s.' },
  INVOCATION_NOT_RETRYABLE: { status: 409, meaning: 'Admin API: only a failed invocation (a dead letter) can be retried; this one is queued, running or succeeded.', fix: 'Retry it once it has failed; GET /api/v1/invocations?state=failed lists those.' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The request body is over the limit (6 MiB by default).', fix: 'Send a smaller body, or raise --max-body-bytes.' },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line and headers are over the limit (16 KiB by default). The connection is closed.', fix: 'Send fewer or smaller headers (large cookies, tokens), or raise --max-header-bytes.' },
  FUNCTION_ERROR: { status: 500, meaning: 'The function threw, or failed to load.', fix: 'Read the gateway log for the request id; fix the function.' },
  FUNCTION_RESPONSE_INVALID: { status: 500, meaning: 'The function returned something that is not a response (CONTRACT §3 lists the shapes).', fix: 'Return a Response, a {statusCode, headers, body} object, or for python str/bytes/dict.' },
  FUNCTION_CRASHED: { status: 502, meaning: "The function's process died mid-request (crash, killed, out of memory).", fix: 'Read the gateway log for the request id; the next call gets a fresh instance.' },
  WORKER_DIED: { status: 502, meaning: 'The worker serving the call died or dropped its connection mid-request.', fix: 'Retry; the gateway restarts the worker.' },
  WORKER_PROTOCOL_ERROR: { status: 502, meaning: 'The worker sent a frame the gateway could not read; the connection was reset.', fix: 'Report a bug with the gateway log.' },
  NO_WORKER_AVAILABLE: { status: 503, meaning: 'No worker is connected and reporting (all dead, starting, or silent).', fix: 'Retry after `Retry-After` seconds; operators check GET /workers on the admin port.' },
  FUNCTION_AT_CAPACITY: { status: 503, meaning: 'Every worker that could take it runs `max_concurrency` calls of the function, or refused it because its memory budget is held by instances in use (a worker that refuses a call passes it to the next; nothing is queued at the gateway).', fix: 'Retry after `Retry-After` seconds; raise max_concurrency or the memory budget, or add workers.' },
  FUNCTION_BUILDING: { status: 503, meaning: 'The route is new and the gateway is still installing its dependencies or compiling it (`npm ci`, `pip install`, `go build`); a route that had a version before keeps serving that one meanwhile.', fix: 'Retry after `Retry-After` seconds; GET /routes on the admin port shows the build (state `building`), and a failed build as the row error.' },
  FUNCTION_UNAVAILABLE: { status: 503, meaning: 'The function could not be started (sandbox or runtime missing on this host).', fix: 'Operators read the gateway log; the row error shows on GET /routes.' },
  SHUTTING_DOWN: { status: 503, meaning: 'The gateway is stopping (SIGTERM): it finishes the calls it has, takes no new ones, and closes the connection.', fix: 'Retry after `Retry-After` seconds, on a new connection (another instance, or this one once restarted).' },
  TOO_MANY_CONNECTIONS: { status: 503, meaning: 'The gateway has more than `--max-connections` client connections open; the request is refused and its connection closed.', fix: 'Retry after `Retry-After` seconds on a new connection, and reuse connections instead of opening many; operators raise --max-connections (and the open-files limit).' },
  OVERLOADED: { status: 503, meaning: 'The gateway has `--max-in-flight` calls in flight already (all routes, all workers together).', fix: 'Retry after `Retry-After` seconds; operators raise --max-in-flight or add capacity.' },
  QUEUE_FULL: { status: 503, meaning: 'The route already has 100,000 async invocations waiting; the call was not stored.', fix: 'Retry after `Retry-After` seconds; operators raise async.concurrency or add workers so that the queue drains.' },
  QUEUE_UNAVAILABLE: { status: 503, meaning: 'The async call could not be written to the invocations database (disk full, database unwritable); it was not stored.', fix: 'Retry after `Retry-After` seconds; operators read the gateway log (`async invocations could not be written`).' },
  FUNCTION_TIMEOUT: { status: 504, meaning: 'The function ran past its `timeout_ms`; its instance was replaced.', fix: 'Make the function faster or raise timeout_ms.' },
  // The admin port (README "Admin API" and "API").
  ADMIN_TOKEN_MISSING: { status: 401, meaning: 'The gateway runs with `--admin-token-file` and the admin request carried no `Authorization: Bearer` token; `WWW-Authenticate` says so.', fix: 'Send `Authorization: Bearer TOKEN` (the faas commands: --admin-token-file or FAAS_ADMIN_TOKEN_FILE; the dashboard asks for it).' },
  ADMIN_TOKEN_INVALID: { status: 401, meaning: 'The bearer token sent to the admin port is not the one in `--admin-token-file`.', fix: 'Send the token the gateway was started with; a changed file counts after a restart.' },
  ADMIN_HOST_NOT_ALLOWED: { status: 403, meaning: 'The admin port has no token and is reached by a name other than loopback (`localhost`, `127.0.0.1`, `[::1]`): what a web page does with DNS rebinding.', fix: 'Use http://127.0.0.1:PORT or http://localhost:PORT (an ssh tunnel keeps that name), or give the gateway --admin-token-file.' },
  ADMIN_ORIGIN_NOT_ALLOWED: { status: 403, meaning: 'A request that changes something came from a web page of another origin (its `Origin` or `Sec-Fetch-Site` says so); nothing was changed.', fix: 'Call the admin API from its own dashboard, or from a client that is not a browser page.' },
  INVALID_REQUEST: { status: 400, meaning: 'An admin API request could not be used: its body is not the JSON asked for, or a header (`If-Match`) or query parameter is malformed. The message names which and why.', fix: 'Fix what the message names.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'An admin API request body was not sent as `Content-Type: application/json` (`application/merge-patch+json` is also taken by PATCH).', fix: 'Send the header; curl: -H "content-type: application/json".' },
  VALIDATION_FAILED: { status: 422, meaning: "The function's key or config breaks the gateway's rules — the schema's triggers and `faas deploy` apply the same ones — or this host cannot serve it; `problems` lists every one. Nothing was written.", fix: 'Fix each problem listed; README "Routes" gives every field\'s rule.' },
  FUNCTION_NOT_FOUND: { status: 404, meaning: 'The functions table has no row for this key.', fix: 'Check the key (METHOD:/path, URL-encoded in the API path); GET /api/v1/functions lists them.' },
  API_KEY_NOT_FOUND: { status: 404, meaning: 'There is no API key of this name.', fix: 'GET /api/v1/keys lists the names.' },
  API_KEY_EXISTS: { status: 409, meaning: 'An API key of this name exists already.', fix: 'Revoke it first, or pick another name.' },
  PRECONDITION_FAILED: { status: 412, meaning: "`If-Match` named a version the row does not have any more (someone changed or deleted it since it was read), or `If-None-Match: *` found a row. Nothing was written; the message gives the row's version now.", fix: 'GET the function again, reapply the change to what is there now, and send its ETag in If-Match.' },
  PRECONDITION_REQUIRED: { status: 428, meaning: 'A PUT that would replace an existing function, or a DELETE, came without `If-Match`: it could silently undo another operator\'s change.', fix: 'Send the ETag of the version you read as If-Match, or `If-Match: *` to replace or delete whatever version is there.' },
  DATABASE_BUSY: { status: 503, meaning: 'Another writer held the database longer than the admin API waits (250 ms, so as not to stall the gateway); nothing was written.', fix: 'Retry after `Retry-After` seconds; look for a long transaction in an operator\'s SQL client.' },
  CLUSTER_DB_UNAVAILABLE: { status: 503, meaning: 'With --cluster-db, writes go to the cluster\'s PostgreSQL, and it could not be reached (or did not answer in time); nothing was written. The gateway keeps serving its copy.', fix: 'Retry after `Retry-After` seconds; /readyz says whether the node is connected, and the message says what PostgreSQL or the network said.' },
  INTERNAL_ERROR: { status: 500, meaning: 'The admin API could not read or write the database for another reason (the message gives SQLite\'s).', fix: 'Read the message and the gateway log; /readyz says whether the gateway can still read its database.' },
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

/** The JSON body of an error response (CONTRACT §4); `problems`, when given, lists every problem the message joins (422). */
export function errorBody(code: ErrorCode, message: string, problems?: readonly string[]): string {
  const status = ERRORS[code].status;
  return JSON.stringify({ statusCode: status, code, error: reasonPhrase(status), message, ...(problems && { problems }) });
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
