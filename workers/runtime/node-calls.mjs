// One call of a node function, Workers style (runFetch) or Lambda style (runLambda): the
// request as the function sees it, and its answer as { status, headers, body } or { invalid }.
// Pure (no I/O): node-host.mjs runs it per invoke frame, scripts/micro/request-path.mjs
// measures it; with the frame layout both use (encodeHostFrame, HostFrameReader). Runs inside the sandbox:
// Node's standard library only.
import { format } from 'node:util';

const TEXTUAL = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

function headerObject(flat) {
  const out = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out[flat[i]] = out[flat[i]] === undefined ? flat[i + 1] : `${out[flat[i]]},${flat[i + 1]}`;
  }
  return out;
}

/** The W3C traceparent the gateway set for this call (its last header), or undefined. */
function traceparentOf(headers) {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === 'traceparent') return headers[i + 1];
  return undefined;
}

export async function runFetch(fn, self, call, body, env) {
  const headers = new Headers();
  for (let i = 0; i + 1 < call.headers.length; i += 2) {
    try { headers.append(call.headers[i], call.headers[i + 1]); } catch { /* a header undici refuses */ }
  }
  const host = headers.get('host') ?? 'localhost';
  const url = `http://${host}${call.path}${call.query ? `?${call.query}` : ''}`;
  const hasBody = call.method !== 'GET' && call.method !== 'HEAD';
  const request = new Request(url, { method: call.method, headers, body: hasBody ? body : undefined });
  const ctx = { waitUntil() {}, passThroughOnException() {}, requestId: call.requestId, traceparent: traceparentOf(call.headers) };
  const response = await fn.call(self, request, env, ctx);
  if (!(response instanceof Response)) {
    return { invalid: `fetch() must return a Response (got ${response === null ? 'null' : typeof response})` };
  }
  const out = [];
  response.headers.forEach((value, name) => { if (name !== 'set-cookie') out.push(name, value); });
  for (const cookie of response.headers.getSetCookie()) out.push('set-cookie', cookie);
  return { status: response.status, headers: out, body: bodySource(response) ?? Buffer.from(await response.arrayBuffer()) };
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

export async function runLambda(fn, call, body, functionName, memoryMb) {
  const headers = headerObject(call.headers);
  const params = new URLSearchParams(call.query);
  const query = {};
  const multiQuery = {};
  for (const [k, v] of params) {
    query[k] = v;
    (multiQuery[k] ??= []).push(v);
  }
  const textual = TEXTUAL.test(headers['content-type'] ?? 'text/plain');
  const event = {
    httpMethod: call.method,
    path: call.path,
    resource: call.path,
    headers,
    queryStringParameters: params.size > 0 ? query : null,
    multiValueQueryStringParameters: params.size > 0 ? multiQuery : null,
    body: body.length === 0 ? null : textual ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: body.length > 0 && !textual,
    requestContext: { requestId: call.requestId, httpMethod: call.method, path: call.path, stage: '$default', requestTimeEpoch: Date.now() },
  };
  const context = {
    awsRequestId: call.requestId,
    traceparent: traceparentOf(call.headers),
    functionName,
    memoryLimitInMB: memoryMb,
    getRemainingTimeInMillis: () => Math.max(0, call.deadlineMs - Date.now()),
  };
  const result = await fn(event, context);
  if (result === undefined || result === null) return { invalid: 'handler returned nothing; return { statusCode, headers, body }' };
  if (typeof result !== 'object' || !('statusCode' in result)) {
    // Like API Gateway's HTTP APIs: a value without statusCode is a 200 JSON body.
    const text = typeof result === 'string' ? result : JSON.stringify(result);
    return { status: 200, headers: ['content-type', typeof result === 'string' ? 'text/plain; charset=utf-8' : 'application/json'], body: Buffer.from(text) };
  }
  const status = Number(result.statusCode);
  if (!Number.isInteger(status) || status < 100 || status > 599) return { invalid: `statusCode must be an integer 100–599 (got ${format(result.statusCode)})` };
  const out = [];
  for (const [k, v] of Object.entries(result.headers ?? {})) out.push(k.toLowerCase(), String(v));
  for (const [k, vs] of Object.entries(result.multiValueHeaders ?? {})) for (const v of vs) out.push(k.toLowerCase(), String(v));
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
