// The Request a Workers-style fetch() function gets (node-calls.mjs runFetch). Runs inside the
// sandbox: Node's standard library only.
//
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

import { NativeResponse, RESPONSE_STATE } from './lazy-response.mjs';

/** The Request for a call: lazy where it can be, else made at once as before (the same errors). */
export function callRequest(call, body) {
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
  return new NativeResponse(null, { headers })[RESPONSE_STATE].headersList;
}

let LAZY;
let SLOTS;
try {
  const sample = new Request('http://localhost/', { method: 'POST', headers: { 'x-a': '1' }, body: 'x' });
  const bySlot = Object.fromEntries(Object.getOwnPropertySymbols(sample).map((s) => [s.description, s]));
  const response = new NativeResponse(null, { headers: { 'x-a': '1' } });
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

const EMPTY = Buffer.alloc(0);
