// The Response class a node function sees (node-host.mjs installs it as globalThis.Response).
// Runs inside the sandbox: Node's standard library only.
//
// `new Response('text')` costs ≈ 9 µs a call in Node 20 (undici 6), most of it the ReadableStream
// undici makes over the text at once (Node 20 makes every web stream "transferable" with a
// prototype swap and a copy of its properties), although the host reads the text itself and
// never that stream (node-calls.mjs bodySource). So a string body is given a stream only when
// something asks for it: the Response is made by undici with no body, and its body record — what
// undici keeps as { stream, source, length } — is one whose `stream` is made on first touch,
// exactly as undici would have made it (a byte stream of the UTF-8 text). Everything undici does
// with a body (body, bodyUsed, text(), clone(), …) goes through that `stream`, so the Response
// behaves as one made at once. Response.json() is made the same way. The class is a Proxy of the
// real one: `instanceof Response`, its prototype, its statics and subclasses are undici's own (an
// `instanceof` through the Proxy costs ≈ 0.25 µs). Anything else — another body type, a status
// that allows no body, a string that is not well formed, another undici than expected — is made
// by undici as before, with its own errors.

const Native = globalThis.Response;
/** undici's own class, whatever globalThis.Response becomes. */
export const NativeResponse = Native;
/** Where undici keeps a Response's insides (its status, headers and body record); undefined in another undici. */
const STATE = Object.getOwnPropertySymbols(new Native('')).find((s) => s.description === 'state');
export { STATE as RESPONSE_STATE };

/** undici's body record for a string, with the stream made when first asked for. */
class LazyBody {
  constructor(source) {
    this.source = source;
    this.length = Buffer.byteLength(source);
    /** The stream, once made (or set by undici: clone() replaces it with one half of a tee). */
    this.made = undefined;
  }

  get stream() {
    if (this.made === undefined) {
      const bytes = new TextEncoder().encode(this.source);
      this.made = new ReadableStream({
        type: 'bytes',
        pull(controller) {
          if (bytes.byteLength > 0) controller.enqueue(bytes);
          controller.close();
        },
      });
    }
    return this.made;
  }

  set stream(stream) {
    this.made = stream;
  }
}

/**
 * The text of a Response made here that nothing has read or asked the stream of, as bytes;
 * undefined for any other (node-calls.mjs then reads it as before).
 */
export function untouchedText(response) {
  const body = STATE === undefined ? undefined : response[STATE]?.body;
  return body instanceof LazyBody && body.made === undefined ? Buffer.from(body.source) : undefined;
}

/** Statuses a Response may not have a body with (undici refuses them itself: left to it). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

let proxy;

function construct(target, args, newTarget) {
  // `new Response(…)` itself: undici's class as the new target (the Proxy as one is a slow path in V8).
  const as = newTarget === proxy ? target : newTarget;
  const [body, init] = args;
  if (typeof body !== 'string' || !body.isWellFormed()) return Reflect.construct(target, args, as);
  const response = Reflect.construct(target, [null, init], as);
  if (NULL_BODY.has(response.status)) return Reflect.construct(target, args, as); // throws as undici does
  return withLazyBody(response, body, 'text/plain;charset=UTF-8');
}

/** A Response made with no body given `text` as its body, and `type` as its content-type unless its init set one (as undici does). */
function withLazyBody(response, text, type) {
  response[STATE].body = new LazyBody(text);
  if (!response.headers.has('content-type')) response.headers.append('content-type', type);
  return response;
}

/**
 * Response.json(data, init): the same, its JSON text kept as a string body is (undici keeps the
 * bytes). Whatever it would refuse — no argument, a null or invalid init, a value JSON cannot
 * write, a null-body status — is handed to undici's own json(), for its errors in its order.
 */
function json(...args) {
  const [data, init] = args;
  let response;
  let text;
  try {
    text = args.length === 0 || init === null ? undefined : JSON.stringify(data);
    if (text !== undefined) response = new Native(null, init);
  } catch {
    response = undefined;
  }
  if (response === undefined || NULL_BODY.has(response.status)) return Native.json(...args);
  return withLazyBody(response, text, 'application/json');
}

function get(target, key, receiver) {
  return key === 'json' ? json : Reflect.get(target, key, receiver);
}

/** The Response to install; undici's own where its insides are not as this expects. */
export function lazyResponseClass() {
  if (!selfCheck()) return Native;
  proxy = new Proxy(Native, { construct, get });
  // What `response.constructor` gives, for undici's Responses (fetch()) as for these.
  Object.defineProperty(Native.prototype, 'constructor', { value: proxy, writable: true, enumerable: false, configurable: true });
  return proxy;
}

/** undici keeps a string body as this file expects: { stream, source, length } under its state symbol, none for a null body. */
function selfCheck() {
  if (STATE === undefined) return false;
  const body = new Native('é')[STATE]?.body;
  const keys = body ? Object.keys(body).sort().join() : '';
  return keys === 'length,source,stream' && body.source === 'é' && body.length === 2 && body.stream instanceof ReadableStream
    && new Native(null)[STATE]?.body == null;
}
