// One call of a node function, Workers style (runFetch) or Lambda style (runLambda): the
// request as the function sees it, and its answer as { status, headers, body } or { invalid }.
// Pure (no I/O): node-host.mjs runs it per invoke frame, scripts/micro/request-path.mjs
// measures it; with the frame layout both use (encodeHostFrame, HostFrameReader). Runs inside the sandbox:
// Node's standard library only.
import { format } from 'node:util';
import { isUtf8 } from 'node:buffer';

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
  if (!(response instanceof Response)) {
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

// ---- The request a fetch() function gets ------------------------------------------------------
// A real Request costs ~10 µs to make (undici 6, Node 20): its AbortSignal alone ~3 µs (Node
// makes one with Object.setPrototypeOf on an EventTarget), each header appended twice (once to
// the Headers given as init, once copied into the Request's own), the URL parsed, the init
// converted; ~30 µs more for a body (a ReadableStream over it). Most functions read the URL, the
// method and a header or two. So the function gets a lazy Request: an object whose prototype is
// Request.prototype's child (instanceof Request, its methods and getters), which answers url,
// method and headers itself and builds the real Request the first time anything else is asked
// (body, text(), clone(), signal, new Request(it), fetch(it), …): undici's own getters and
// methods read its internal slots (symbol-keyed properties, found below on a Request made here),
// and each slot is a getter here that builds the Request and then becomes that Request's own.
// The headers it handed out before stay its headers (the same object, still live): its state's
// header list, which undici reads to copy the request (clone, new Request, fetch), is read from
// them. Where anything here is not as expected (another undici), requests are made at once, as before.

/** The Request for a call: lazy where it can be, else made at once as before (the same errors). */
function callRequest(call, body) {
  const hasBody = call.method !== 'GET' && call.method !== 'HEAD';
  if (LAZY !== undefined && PLAIN_METHODS.has(call.method)) {
    const href = plainHref(call);
    if (href !== undefined) {
      const req = Object.create(LAZY);
      req[CALL] = { href, method: call.method, headers: call.headers, body: hasBody ? body : undefined, own: undefined, built: false, used: false };
      return req;
    }
  }
  return new Request(urlOf(call), { method: call.method, headers: headersOf(call.headers), body: hasBody ? body : undefined, ...(hasBody && !Buffer.isBuffer(body) && { duplex: 'half' }) });
}

/** The Headers of a call, as the gateway sent them; a header undici refuses is left out. */
function headersOf(list) {
  const headers = new Headers();
  for (let i = 0; i + 1 < list.length; i += 2) {
    try { headers.append(list[i], list[i + 1]); } catch { /* a header undici refuses */ }
  }
  return headers;
}

/** The URL as the function sees it: its host is the Host header as Headers.get('host') has it, else localhost. */
function urlOf(call) {
  const list = call.headers;
  let host;
  let hosts = 0;
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i];
    if (name === 'host' || (name.length === 4 && name.toLowerCase() === 'host')) { // names arrive lower-cased; Headers would match any case
      host = list[i + 1];
      hosts++;
    }
  }
  // One plain value is what Headers keeps; several (comma-joined), or one Headers trims or refuses: ask it.
  if (hosts > 1 || (hosts === 1 && !PLAIN_VALUE.test(host))) host = headersOf(list).get('host');
  return `http://${host ?? 'localhost'}${call.path}${call.query ? `?${call.query}` : ''}`;
}
const PLAIN_VALUE = /^[\x21-\x7e]+$/;

/**
 * The request's URL, serialized, as Request's url getter gives it; undefined where making the
 * Request would throw (a URL it cannot parse, or one with credentials): that one is made at once.
 */
function plainHref(call) {
  let url;
  try { url = new URL(urlOf(call)); } catch { return undefined; }
  if (url.username || url.password) return undefined;
  return url.href;
}

// Methods Request keeps as they are (others it normalizes, warns about or refuses: made at once).
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
const CALL = Symbol('faas call');

/** Builds the real Request behind a lazy one, once, and makes its slots the lazy one's own. */
function build(req) {
  const c = req[CALL];
  if (c.built) return;
  c.built = true;
  const hasBody = c.body !== undefined;
  const real = new Request(c.href, {
    method: c.method, headers: c.own ?? headersOf(c.headers), body: c.body, ...(hasBody && !Buffer.isBuffer(c.body) && { duplex: 'half' }),
  });
  c.body = undefined;
  // A body read here already (readBody): the real one is read too, so that it is as used (bodyUsed, a locked stream, clone() refused).
  if (c.used) real.arrayBuffer().catch(() => {});
  for (const key of Object.getOwnPropertySymbols(real)) {
    Object.defineProperty(req, key, Object.getOwnPropertyDescriptor(real, key));
  }
  if (c.own !== undefined) {
    // The Headers the function already has stay the request's: its header list is theirs.
    const own = c.own;
    req[SLOTS.headers] = own;
    Object.defineProperty(req[SLOTS.state], 'headersList', {
      get: () => headerListOf(own), set(list) { Object.defineProperty(this, 'headersList', { value: list, writable: true, enumerable: true, configurable: true }); },
      enumerable: true, configurable: true,
    });
  }
}

/** `finish` of the body's bytes, as Request's method (`plain`) gives it, for a body not yet made a stream. */
function readBody(req, plain, finish) {
  const c = req[CALL];
  if (c === undefined || c.built || c.used || !(c.body === undefined || Buffer.isBuffer(c.body))) return plain.call(req);
  try {
    if (c.body === undefined) return Promise.resolve(finish(EMPTY)); // no body: read as empty, and not used, any number of times
    c.used = true;
    return Promise.resolve(finish(c.body));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A copy of what `headers` hold, as undici's header list of a Request made with them. */
function headerListOf(headers) {
  return new Response(null, { headers })[RESPONSE_STATE].headersList;
}

let LAZY;
let SLOTS;
let RESPONSE_STATE;
try {
  const sample = new Request('http://localhost/', { method: 'POST', headers: { 'x-a': '1' }, body: 'x' });
  const bySlot = Object.fromEntries(Object.getOwnPropertySymbols(sample).map((s) => [s.description, s]));
  const response = new Response(null, { headers: { 'x-a': '1' } });
  RESPONSE_STATE = Object.getOwnPropertySymbols(response).find((s) => s.description === 'state');
  if (bySlot.state && bySlot.headers && bySlot.signal && sample[bySlot.headers] === sample.headers
    && sample[bySlot.state].headersList && RESPONSE_STATE && response[RESPONSE_STATE].headersList?.get('x-a', true) === '1') {
    SLOTS = bySlot;
    const proto = Object.create(Request.prototype);
    for (const key of Object.values(bySlot)) {
      Object.defineProperty(proto, key, {
        get() { return this[CALL] === undefined ? undefined : (build(this), this[key]); },
        set(value) {
          if (this[CALL] !== undefined) build(this);
          Object.defineProperty(this, key, { value, writable: true, enumerable: true, configurable: true });
        },
        configurable: true,
      });
    }
    const plain = (name) => Object.getOwnPropertyDescriptor(Request.prototype, name).get;
    const [url, method, headers] = [plain('url'), plain('method'), plain('headers')];
    Object.defineProperties(proto, {
      url: { get() { const c = this[CALL]; return c === undefined || c.built ? url.call(this) : c.href; }, configurable: true },
      method: { get() { const c = this[CALL]; return c === undefined || c.built ? method.call(this) : c.method; }, configurable: true },
      headers: { get() { const c = this[CALL]; return c === undefined || c.built ? headers.call(this) : (c.own ??= headersOf(c.headers)); }, configurable: true },
    });
    // A body the function reads whole, before anything else, is read from the bytes: not
    // through the stream a real Request puts over it (~30 µs), with undici's own decoding.
    const decoder = new TextDecoder();
    const text = (bytes) => decoder.decode(bytes); // strips a BOM, replaces bad UTF-8, as undici's utf8DecodeBytes
    for (const [name, finish] of [
      ['text', text], ['json', (bytes) => JSON.parse(text(bytes))],
      ['arrayBuffer', (bytes) => new Uint8Array(bytes).buffer], ['bytes', (bytes) => new Uint8Array(bytes)],
    ]) {
      const plainMethod = Request.prototype[name];
      if (typeof plainMethod !== 'function') continue;
      Object.defineProperty(proto, name, {
        value: { [name]() { return readBody(this, plainMethod, finish); } }[name],
        writable: true, enumerable: true, configurable: true,
      });
    }
    LAZY = proto;
  }
} catch { /* made at once */ }

/** A body made from a stream (not from a string, bytes, a Blob, a form): it is sent as it is produced. */
function streamed(response) {
  if (response.body === null || response.bodyUsed) return false;
  const state = STATE && response[STATE];
  return !state || state.body?.source == null;
}

// undici keeps what a Response was made from (a string, bytes) beside the stream it would read
// it through; reading it there saves ~7 µs a call. Anything else, or a body the function has
// touched, goes through arrayBuffer(), which also throws the right error for a used body.
const STATE = Object.getOwnPropertySymbols(new Response('')).find((s) => s.description === 'state');
function bodySource(response) {
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
