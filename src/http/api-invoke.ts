// POST /api/v1/functions/{key}/invoke (api-v1.ts routes here): calls a function from the admin
// port, as the dashboard's "invoke" form does, through the same fleet as the public port, and
// answers what a client would have got — status, headers, body, timing — with what the function
// printed during that call (the LogBook's `output` entries of its request id).
//
// The method and path are the key's; the request gives the query, headers and body. The call is
// the gateway's own: it skips the route's auth and rate limit (the admin port is the operator's),
// and counts like any call (metrics, live stats, the access log). A call that fails in the
// gateway or the function (FUNCTION_ERROR, FUNCTION_TIMEOUT, NO_WORKER_AVAILABLE, …) is still an
// answer here (200, its `status` and `code` inside, its body the error JSON the public port
// sends), so its output can be seen; what refuses the management request itself — no function
// served at the key, a malformed request — is the API's error JSON.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { errorBody, GatewayError } from '../errors.js';
import type { LogBook, LogEntry } from '../observe/log-book.js';
import type { RouteTable } from '../routes/route-table.js';
import { ApiError, isObject, type Answer } from './api-io.js';
import { traceContext } from './pipeline/trace.js';
import type { Answered, Invocation, InvocationResult } from '../calls.js';

/** A streamed answer is read up to this much; the rest is cancelled and `truncated` says so. */
export const INVOKE_MAX_ANSWER_BYTES = 1024 * 1024;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
// eslint-disable-next-line no-control-regex
const HEADER_VALUE = /^[^\x00\r\n]{0,8192}$/;
/** Framing is the gateway's to set. */
const DROPPED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'traceparent']);
const FIELDS = ['query', 'headers', 'body', 'bodyBase64'];

export interface InvokeDeps {
  /** The table the public port serves from. */
  readonly table: () => RouteTable;
  /** The public port's call path (fleet.invoke); rejects with GatewayError. */
  readonly call: (inv: Invocation) => Promise<InvocationResult>;
  readonly logs: LogBook;
  /** --max-body-bytes: the public port's limit applies to the body sent here too. */
  readonly maxBodyBytes: number;
  /** Metrics, live stats and the access log, as for a call on the public port. */
  readonly observe?: (answered: Answered) => void;
}

interface OutputLine {
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/** What the call request asks for, checked; every problem at once. */
function parseRequest(body: unknown, maxBodyBytes: number): { query: string; headers: string[]; body: Buffer } {
  const problems: string[] = [];
  if (!isObject(body)) throw new ApiError('INVALID_REQUEST', `the body must be a JSON object {"query"?, "headers"?, "body"? or "bodyBase64"?} (got ${JSON.stringify(body)?.slice(0, 80)})`);
  for (const name of Object.keys(body)) if (!FIELDS.includes(name)) problems.push(`${name} is not a known field; allowed fields: ${FIELDS.join(', ')}`);
  let query = '';
  if (body.query !== undefined) {
    if (typeof body.query !== 'string' || /[\s#]/.test(body.query)) problems.push(`query must be a string without spaces or "#", the part after "?" (got ${JSON.stringify(body.query)?.slice(0, 80)})`);
    else query = body.query.replace(/^\?/, '');
  }
  const headers: string[] = [];
  if (body.headers !== undefined) {
    if (!isObject(body.headers)) problems.push('headers must be an object of header names to string values');
    else {
      for (const [name, value] of Object.entries(body.headers)) {
        if (!HEADER_NAME.test(name)) problems.push(`headers: ${JSON.stringify(name)} is not a header name`);
        else if (typeof value !== 'string' || !HEADER_VALUE.test(value)) problems.push(`headers.${name} must be a string without line breaks (got ${JSON.stringify(value)?.slice(0, 80)})`);
        else if (!DROPPED.has(name.toLowerCase())) headers.push(name.toLowerCase(), value);
      }
    }
  }
  let bytes = Buffer.alloc(0);
  if (body.body !== undefined && body.bodyBase64 !== undefined) problems.push('send body or bodyBase64, not both');
  else if (body.body !== undefined) {
    if (typeof body.body !== 'string') problems.push(`body must be a string (got ${JSON.stringify(body.body)?.slice(0, 80)}); bodyBase64 takes bytes`);
    else bytes = Buffer.from(body.body, 'utf8');
  } else if (body.bodyBase64 !== undefined) {
    if (typeof body.bodyBase64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(body.bodyBase64)) problems.push('bodyBase64 must be base64 text');
    else bytes = Buffer.from(body.bodyBase64, 'base64');
  }
  if (problems.length > 0) throw new ApiError('INVALID_REQUEST', problems.join('; '));
  if (bytes.length > maxBodyBytes) throw new ApiError('PAYLOAD_TOO_LARGE', `the call's body of ${bytes.length} bytes is over the gateway's limit of ${maxBodyBytes} bytes (--max-body-bytes)`);
  if (bytes.length > 0) headers.push('content-length', String(bytes.length));
  if (!headers.includes('host')) headers.push('host', 'localhost');
  return { query, headers, body: bytes };
}

/** Text when the bytes are UTF-8, else base64; a cut answer may end inside a character, dropped. */
function bodyField(bytes: Buffer, truncated: boolean): { body: string } | { bodyBase64: string } {
  for (let drop = 0; drop <= (truncated ? 3 : 0) && drop <= bytes.length; drop++) {
    try {
      return { body: new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, bytes.length - drop)) };
    } catch {
      /* not UTF-8 (yet) */
    }
  }
  return { bodyBase64: bytes.toString('base64') };
}

/** A streamed answer's bytes, to INVOKE_MAX_ANSWER_BYTES; past it the stream is cancelled. */
function drain(result: InvocationResult): Promise<{ bytes: Buffer; truncated: boolean; fnMs: number; failure?: string }> {
  const stream = result.stream!;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let cut = false;
    const finish = (truncated: boolean, fnMs: number, failure?: string): void => {
      if (done) return;
      done = true;
      resolve({ bytes: Buffer.concat(chunks), truncated, fnMs, ...(failure !== undefined && { failure }) });
    };
    stream.consume({
      chunk: (bytes) => {
        if (done) return;
        if (size + bytes.length > INVOKE_MAX_ANSWER_BYTES) {
          chunks.push(Buffer.from(bytes.subarray(0, INVOKE_MAX_ANSWER_BYTES - size)));
          cut = true;
          finish(true, result.fnMs);
          stream.cancel(); // may end the stream at once: its "went away" is ours, not a failure
          return;
        }
        chunks.push(Buffer.from(bytes));
        size += bytes.length;
        stream.ack(bytes.length);
      },
      end: (failure, tail) => cut || finish(false, tail?.fnMs ?? result.fnMs, failure && `${failure.code}: ${failure.message}`),
    });
  });
}

export async function invokeFunction(deps: InvokeDeps | undefined, key: string, body: unknown): Promise<Answer> {
  if (deps === undefined) throw new ApiError('ROUTE_NOT_FOUND', 'this gateway does not take calls through the admin API');
  const request = parseRequest(body, deps.maxBodyBytes);
  const route = deps.table().get(key);
  if (route === undefined) {
    throw new ApiError('ROUTE_NOT_FOUND', `the gateway serves no function at ${key} (GET /api/v1/functions/${encodeURIComponent(key)} and GET /api/v1/routes say why)`);
  }
  const colon = key.indexOf(':');
  const method = key.slice(0, colon);
  const path = key.slice(colon + 1);
  const requestId = randomUUID();
  const trace = traceContext(undefined, requestId);
  const output: OutputLine[] = [];
  const stop = deps.logs.follow((e: LogEntry) => {
    if (e.kind === 'output' && e.requestId === requestId && e.stream !== undefined) output.push({ stream: e.stream, text: e.text ?? '' });
  });
  const started = performance.now();
  const headers = [...request.headers, 'traceparent', trace.child];
  const observed = { route: route.key, method, path, requestId, traceId: trace.traceId };
  try {
    let result: InvocationResult;
    try {
      result = await deps.call({ route, requestId, method, path, query: request.query, headers, body: request.body, clientIp: '127.0.0.1' });
    } catch (err) {
      const failed = err instanceof GatewayError ? err : new GatewayError('WORKER_PROTOCOL_ERROR', `internal error: ${String(err)}`);
      const ms = performance.now() - started;
      deps.observe?.({ ...observed, status: failed.status, ms, fnMs: 0, cold: false, worker: failed.workerId,
        cpuUs: failed.usage?.cpuUs, memPeak: failed.usage?.memPeak, code: failed.code, message: failed.message });
      return {
        status: 200,
        body: { requestId, status: failed.status, code: failed.code, headers: [['content-type', 'application/json']],
          body: errorBody(failed.code, failed.message), ms: round(ms), fnMs: 0, cold: false, worker: failed.workerId ?? null, output },
      };
    }
    let bytes = result.body;
    let truncated = false;
    let fnMs = result.fnMs;
    let failure: string | undefined;
    if (result.stream) ({ bytes, truncated, fnMs, failure } = await drain(result));
    const ms = performance.now() - started;
    deps.observe?.({ ...observed, status: result.status, ms, fnMs, cold: result.cold, worker: result.workerId,
      cpuUs: result.cpuUs, memPeak: result.memPeak, code: undefined, message: failure });
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < result.headers.length; i += 2) pairs.push([result.headers[i]!, result.headers[i + 1]!]);
    await new Promise<void>((resolve) => setImmediate(resolve)); // output read in the same socket read as the end
    return {
      status: 200,
      body: { requestId, status: result.status, headers: pairs, ...bodyField(bytes, truncated), ...(truncated && { truncated: true }),
        ...(failure !== undefined && { streamError: failure }),
        ms: round(ms), fnMs: round(fnMs), cold: result.cold, worker: result.workerId, output },
    };
  } finally {
    stop();
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
