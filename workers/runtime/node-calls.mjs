// One call of a node function, Workers style (runFetch) or Lambda style (runLambda): the
// request as the function sees it, and its answer as { status, headers, body } or { invalid }.
// Pure (no I/O): node-host.mjs runs it per invoke frame, scripts/micro/request-path.mjs
// measures it; with the frame layout both use (encodeHostFrame, HostFrameReader). Runs inside the sandbox:
// Node's standard library only.
import { format } from 'node:util';
import { isUtf8 } from 'node:buffer';
import { callRequest } from './lazy-request.mjs';
import { NativeResponse, RESPONSE_STATE as STATE, untouchedText } from './lazy-response.mjs';

const TEXTUAL = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

/** The W3C traceparent the gateway set for this call (its last header), or undefined. */
function traceparentOf(headers) {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === 'traceparent') return headers[i + 1];
  return undefined;
}

/**
 * `body`: the request body, whole (a Buffer) or still arriving (a ReadableStream). `waitUntil`:
 * where ctx.waitUntil puts its promises. The answer's body is bytes, or, when the function
 * answered with a stream (a ReadableStream, a TransformStream's readable, an async generator,
 * a fetch() passed through), `stream`: read it as it is produced.
 */
export async function runFetch(fn, self, call, body, env, waitUntil = []) {
  const request = callRequest(call, body);
  const ctx = {
    waitUntil(promise) { waitUntil.push(Promise.resolve(promise)); },
    // Workers' "fail open to the origin": there is no origin behind a route here, so an
    // exception is answered as any other (500 FUNCTION_ERROR). Accepted so that code calling it runs.
    passThroughOnException() {},
    requestId: call.requestId,
    traceparent: traceparentOf(call.headers),
    clientIp: call.clientIp,
  };
  const response = await fn.call(self, request, env, ctx);
  if (!(response instanceof NativeResponse)) { // undici's class: the Proxy functions see is slower to instanceof
    return { invalid: `fetch() must return a Response (got ${response === null ? 'null' : typeof response})` };
  }
  const out = [];
  response.headers.forEach((value, name) => { if (name !== 'set-cookie') out.push(name, value); });
  for (const cookie of response.headers.getSetCookie()) out.push('set-cookie', cookie);
  const known = bodySource(response);
  if (known) return { status: response.status, headers: out, body: known };
  if (streamed(response)) return { status: response.status, headers: out, stream: response.body };
  return { status: response.status, headers: out, body: Buffer.from(await response.arrayBuffer()) };
}

/** A body made from a stream (not from a string, bytes, a Blob, a form): it is sent as it is produced. */
function streamed(response) {
  if (response.body === null || response.bodyUsed) return false;
  const state = STATE && response[STATE];
  return !state || state.body?.source == null;
}

// undici keeps what a Response was made from (a string, bytes) beside the stream it would read
// it through; reading it there saves ~7 µs a call. Anything else, or a body the function has
// touched, goes through arrayBuffer(), which also throws the right error for a used body.
function bodySource(response) {
  const text = untouchedText(response);
  if (text !== undefined) return text;
  const state = STATE && response[STATE];
  if (!state || response.bodyUsed) return undefined;
  const body = state.body;
  if (body == null) return EMPTY;
  if (body.stream?.locked) return undefined;
  const src = body.source;
  if (typeof src === 'string') return Buffer.from(src);
  if (src instanceof Uint8Array) return Buffer.from(src.buffer, src.byteOffset, src.byteLength); // undici's own copy
  return undefined;
}
const EMPTY = Buffer.alloc(0);

// ---- Lambda style ---------------------------------------------------------------------------
// What the Lambda Node runtime and API Gateway do around a handler: the REST API event (v1), or
// the HTTP API / Function URL payload (v2) for a route with "event": "v2"; the context; the
// callback; and the proxy result turned into an answer. Names and ids that stand for AWS
// resources (ARN, log group and stream) are local labels (README "Lambda").

export async function runLambda(fn, call, body, functionName, memoryMb) {
  const event = call.event === 'v2' ? eventV2(call, body) : eventV1(call, body);
  return lambdaAnswer(await callHandler(fn, event, call, functionName, memoryMb));
}

/** The event and context of a streamified handler (lambda-stream.mjs), as runLambda makes them; no callback. */
export function lambdaStreamInput(call, body, functionName, memoryMb) {
  const event = call.event === 'v2' ? eventV2(call, body) : eventV1(call, body);
  return { event, context: lambdaContext(call, functionName, memoryMb, () => {}) };
}

/**
 * Calls the handler as the Lambda Node runtime does: the answer is what its promise settles to,
 * or what it passes to callback / context.done / succeed / fail, whichever comes first. A value
 * returned without a promise is the answer too when the handler takes no callback (fewer than 3
 * parameters) and the value is not undefined; otherwise the call waits for the callback, and a
 * handler that never calls it is stopped by the worker at timeout_ms.
 */
function callHandler(fn, event, call, functionName, memoryMb) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const ok = (result) => {
      if (!settled) { settled = true; resolve(result); }
    };
    const fail = (err) => {
      if (!settled) { settled = true; reject(err); }
    };
    const callback = (err, result) => (err !== undefined && err !== null ? fail(err) : ok(result));
    const context = lambdaContext(call, functionName, memoryMb, callback);
    const returned = fn(event, context, callback); // a synchronous throw rejects this promise
    if (typeof returned?.then === 'function') returned.then(ok, fail);
    else if (returned !== undefined && fn.length < 3) ok(returned);
  });
}

// One per instance, as Lambda's log stream is: `YYYY/MM/DD/[$LATEST]` and a random id.
const LOG_STREAM = `${new Date().toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${crypto.randomUUID().replaceAll('-', '')}`;

function lambdaContext(call, functionName, memoryMb, callback) {
  return {
    functionName,
    functionVersion: '$LATEST', // a route serves its latest row
    // Account 000000000000 and partition "faas": no AWS resource has this ARN; the name is
    // URI-encoded so that splitting on ":" finds it where it would in a real one.
    invokedFunctionArn: `arn:faas:lambda:local:000000000000:function:${encodeURIComponent(functionName)}`,
    memoryLimitInMB: String(memoryMb), // a string, as Lambda's is
    awsRequestId: call.requestId,
    logGroupName: `/faas/${functionName}`,
    logStreamName: LOG_STREAM,
    traceparent: traceparentOf(call.headers),
    // Accepted and ignored: an instance runs many calls at once, so its event loop is never
    // "this call's" to wait for; the answer goes out when the handler gives it.
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, call.deadlineMs - Date.now()),
    done: callback,
    succeed: (result) => callback(null, result),
    fail: (err) => callback(err ?? 'handled'), // the runtime's own word for fail() without an error
  };
}

/** API Gateway REST API (payload 1.0): headers and query parameters single (the last value) and multi. */
function eventV1(call, body) {
  const headers = {};
  const multiValueHeaders = {};
  const h = call.headers;
  for (let i = 0; i + 1 < h.length; i += 2) {
    own(headers, h[i], h[i + 1]);
    listOf(multiValueHeaders, h[i]).push(h[i + 1]);
  }
  let query = null;
  let multiQuery = null;
  for (const [k, v] of new URLSearchParams(call.query)) {
    own((query ??= {}), k, v);
    listOf((multiQuery ??= {}), k).push(v);
  }
  const now = Date.now();
  const encoded = body.length > 0 ? eventBody(headers['content-type'], body) : { body: null, isBase64Encoded: false };
  return {
    resource: call.path, // routes are exact paths: the resource is the path
    path: call.path,
    httpMethod: call.method,
    headers: new Proxy(headers, CASELESS),
    multiValueHeaders: new Proxy(multiValueHeaders, CASELESS),
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      resourcePath: call.path,
      httpMethod: call.method,
      path: call.path,
      stage: '$default',
      requestId: call.requestId,
      requestTime: clfTime(now),
      requestTimeEpoch: now,
      protocol: 'HTTP/1.1',
      domainName: headers.host ?? 'localhost',
      identity: { sourceIp: sourceIp(call, headers['x-forwarded-for']), userAgent: headers['user-agent'] ?? null },
    },
    ...encoded,
  };
}

/** HTTP API / Function URL (payload 2.0): repeated headers and parameters comma-joined, cookies apart. */
function eventV2(call, body) {
  const headers = {};
  let cookies;
  const h = call.headers;
  for (let i = 0; i + 1 < h.length; i += 2) {
    if (h[i] === 'cookie') (cookies ??= []).push(...h[i + 1].split(/;\s*/).filter(Boolean));
    else own(headers, h[i], Object.hasOwn(headers, h[i]) ? `${headers[h[i]]},${h[i + 1]}` : h[i + 1]);
  }
  let query;
  for (const [k, v] of new URLSearchParams(call.query)) own((query ??= {}), k, Object.hasOwn(query, k) ? `${query[k]},${v}` : v);
  const now = Date.now();
  const host = headers.host ?? 'localhost';
  const routeKey = `${call.method} ${call.path}`;
  return {
    version: '2.0',
    routeKey,
    rawPath: call.path,
    rawQueryString: call.query,
    ...(cookies && { cookies }),
    headers,
    ...(query && { queryStringParameters: query }),
    requestContext: {
      domainName: host,
      domainPrefix: host.split('.')[0],
      http: { method: call.method, path: call.path, protocol: 'HTTP/1.1', sourceIp: sourceIp(call, headers['x-forwarded-for']), userAgent: headers['user-agent'] ?? null },
      requestId: call.requestId,
      routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now,
    },
    // No body: no `body` field, as API Gateway sends it.
    ...(body.length > 0 ? eventBody(headers['content-type'], body) : { isBase64Encoded: false }),
  };
}

/** A text body (text/*, JSON, XML, form) that is valid UTF-8 as a string, anything else base64, as API Gateway does with binary media types. */
function eventBody(contentType, body) {
  return TEXTUAL.test(contentType ?? 'text/plain') && isUtf8(body)
    ? { body: body.toString('utf8'), isBase64Encoded: false }
    : { body: body.toString('base64'), isBase64Encoded: true };
}

/** The client's address the gateway saw; before it says, the last X-Forwarded-For hop. */
function sourceIp(call, forwarded) {
  return call.clientIp ?? forwarded?.split(',').at(-1).trim() ?? null;
}

// A header or parameter named __proto__ (or constructor, …) is data, as in the JSON event Lambda parses.
function own(obj, key, value) {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}
function listOf(obj, key) {
  if (!Object.hasOwn(obj, key)) own(obj, key, []);
  return obj[key];
}

// REST APIs keep the header case the client sent; ours arrive lower-cased (HTTP/2 and HTTP APIs
// send them so): headers['Content-Type'] finds content-type, as Lambda code often reads it.
const CASELESS = {
  get: (t, k) => (typeof k !== 'string' || k in t ? t[k] : t[k.toLowerCase()]),
  has: (t, k) => k in t || (typeof k === 'string' && k.toLowerCase() in t),
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfSecond = -1;
let clfText = '';
/** Common Log Format, as API Gateway's requestTime: 09/Apr/2015:12:34:56 +0000 (made once a second: ~0.4 µs). */
function clfTime(ms) {
  const second = Math.floor(ms / 1000);
  if (second !== clfSecond) {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    clfText = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
    clfSecond = second;
  }
  return clfText;
}

/**
 * The handler's result as API Gateway turns it into an answer: { statusCode, headers,
 * multiValueHeaders, cookies, body, isBase64Encoded }; a value without statusCode is a 200 body
 * (JSON, or text for a string), as HTTP APIs do.
 */
function lambdaAnswer(result) {
  if (result === undefined || result === null) return { invalid: 'the handler returned nothing; return { statusCode, headers, body }' };
  if (typeof result !== 'object' || !('statusCode' in result)) {
    const text = typeof result === 'string' ? result : JSON.stringify(result);
    return { status: 200, headers: ['content-type', typeof result === 'string' ? 'text/plain; charset=utf-8' : 'application/json'], body: Buffer.from(text) };
  }
  const status = Number(result.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) return { invalid: `statusCode must be an integer 100–599 (got ${format('%j', result.statusCode)})` };
  const out = [];
  const multi = result.multiValueHeaders;
  // A name in both: API Gateway sends the multiValueHeaders values only.
  const inMulti = multi ? new Set(Object.keys(multi).map((k) => k.toLowerCase())) : undefined;
  for (const [k, v] of Object.entries(result.headers ?? {})) {
    if (v !== undefined && v !== null && !inMulti?.has(k.toLowerCase())) out.push(k.toLowerCase(), String(v));
  }
  if (multi) {
    for (const [k, vs] of Object.entries(multi)) for (const v of Array.isArray(vs) ? vs : [vs]) if (v !== undefined && v !== null) out.push(k.toLowerCase(), String(v));
  }
  const cookies = result.cookies;
  if (cookies) for (const c of Array.isArray(cookies) ? cookies : [cookies]) out.push('set-cookie', String(c));
  const raw = result.body ?? '';
  const bodyOut = Buffer.isBuffer(raw) ? raw
    : typeof raw === 'string' ? Buffer.from(raw, result.isBase64Encoded ? 'base64' : 'utf8')
    : Buffer.from(JSON.stringify(raw));
  return { status, headers: out, body: bodyOut };
}

/** A frame to the worker (workers/instance-frames.ts): [u32 frame bytes, u32 meta bytes, meta JSON] and the body beside it. */
export function encodeHostFrame(meta, body) {
  const json = JSON.stringify(meta);
  const jsonBytes = Buffer.byteLength(json);
  const len = body ? body.length : 0;
  const head = Buffer.allocUnsafe(8 + jsonBytes);
  head.writeUInt32BE(4 + jsonBytes + len, 0);
  head.writeUInt32BE(jsonBytes, 4);
  head.write(json, 8);
  return len > 0 ? [head, body] : [head];
}

/**
 * Splits the byte stream from the worker into frames: push() each chunk, get back the whole
 * frames, in order. Chunks are kept as they came and a frame is copied out once, when whole
 * (as ChunkQueue does on the worker's side, in src/protocol/frames.ts).
 */
export class HostFrameReader {
  chunks = [];
  buffered = 0;

  push(chunk) {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames = [];
    while (this.buffered >= 8) {
      if (this.chunks[0].length < 8) this.chunks = [Buffer.concat(this.chunks)];
      const frameBytes = this.chunks[0].readUInt32BE(0);
      if (this.buffered < 4 + frameBytes) break;
      const metaBytes = this.chunks[0].readUInt32BE(4);
      const whole = this.take(4 + frameBytes);
      frames.push({ msg: JSON.parse(whole.subarray(8, 8 + metaBytes).toString('utf8')), body: whole.subarray(8 + metaBytes) });
    }
    return frames;
  }

  take(n) {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const need = n - at;
      if (c.length <= need) {
        c.copy(out, at);
        at += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, at, 0, need);
        this.chunks[0] = c.subarray(need);
        at = n;
      }
    }
    return out;
  }
}
