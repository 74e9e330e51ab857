// The Request a Workers-style function gets from runFetch (workers/runtime/node-calls.mjs) is
// made lazily: url, method and headers are answered without it, anything else builds the real
// one. Every probe here runs against it and against a Request made as runFetch made it before
// (new Headers, one append per header, then new Request): what the function sees must be the same.
import { describe, expect, it } from 'vitest';

interface Call { id: number; requestId: string; method: string; path: string; query: string; headers: string[]; deadlineMs: number }
interface NodeCalls {
  runFetch(fn: (req: Request) => unknown, self: unknown, call: Call, body: Buffer | ReadableStream<Uint8Array>, env: object): Promise<{ invalid?: string }>;
}
const modulePath = new URL('../../workers/runtime/node-calls.mjs', import.meta.url).href;
const calls = (await import(modulePath)) as NodeCalls;

/** The Request as runFetch made it before it was lazy. */
function eager(call: Call, body: Buffer | ReadableStream<Uint8Array>): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < call.headers.length; i += 2) {
    try { headers.append(call.headers[i]!, call.headers[i + 1]!); } catch { /* a header undici refuses */ }
  }
  const host = headers.get('host') ?? 'localhost';
  const url = `http://${host}${call.path}${call.query ? `?${call.query}` : ''}`;
  const hasBody = call.method !== 'GET' && call.method !== 'HEAD';
  return new Request(url, { method: call.method, headers, body: hasBody ? body : undefined, ...(hasBody && !Buffer.isBuffer(body) && { duplex: 'half' }) } as RequestInit);
}

/** What `probe` saw (or threw) given runFetch's request, and given the eager one. */
async function both<T>(call: Call, body: () => Buffer | ReadableStream<Uint8Array>, probe: (req: Request) => T | Promise<T>): Promise<{ lazy: unknown; eager: unknown; req: Request }> {
  const settle = async (f: () => T | Promise<T>) => {
    try { return { ok: await f() }; } catch (err) { return { threw: (err as Error).constructor.name, message: (err as Error).message }; }
  };
  let lazy: unknown;
  let req: Request | undefined;
  const out = await calls.runFetch(async (r) => {
    req = r;
    lazy = await settle(() => probe(r));
    return new Response('ok');
  }, undefined, call, body(), {});
  if (out.invalid) throw new Error(out.invalid);
  const eagerSeen = await settle(() => probe(eager(call, body())));
  return { lazy, eager: eagerSeen, req: req! };
}

const HEADERS = ['host', 'example.test:8080', 'user-agent', 'curl/8', 'accept', '*/*', 'x-dup', '1', 'x-dup', '2',
  'x-forwarded-for', '203.0.113.7', 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'];
const get: Call = { id: 1, requestId: 'r1', method: 'GET', path: '/a/b', query: 'q=1&r=x%20y', headers: HEADERS, deadlineMs: 0 };
const post: Call = { ...get, method: 'POST', headers: [...HEADERS, 'content-type', 'application/json'] };
const bytes = (s: string) => () => Buffer.from(s);
const none = () => Buffer.alloc(0);
const stream = (...parts: string[]) => () => new ReadableStream<Uint8Array>({
  start(c) { for (const p of parts) c.enqueue(new TextEncoder().encode(p)); c.close(); },
});
const entries = (h: Headers) => [...h];

describe('runFetch: the lazy Request', () => {
  it('is a Request, with url (query kept), method and headers as before', async () => {
    const r = await both(get, none, (req) => ({
      instance: req instanceof Request, ctor: req.constructor === Request, tag: Object.prototype.toString.call(req),
      url: req.url, method: req.method, ua: req.headers.get('user-agent'), dup: req.headers.get('x-dup'),
      all: entries(req.headers), same: req.headers === req.headers, headersIsHeaders: req.headers instanceof Headers,
      body: req.body, used: req.bodyUsed, keys: Object.keys(req), json: JSON.stringify(req),
    }));
    expect(r.lazy).toEqual(r.eager);
    expect((r.lazy as { ok: { url: string } }).ok.url).toBe('http://example.test:8080/a/b?q=1&r=x%20y');
  });

  it.each(['GET', 'HEAD'])('%s has no body: body null, text() empty any number of times, json() refused', async (method) => {
    const call = { ...get, method };
    const r = await both(call, none, async (req) => ({
      body: req.body, text: await req.text(), again: await req.text(), buf: (await req.arrayBuffer()).byteLength,
      used: req.bodyUsed, json: await req.json().catch((e: Error) => `${e.name}: ${e.message}`),
    }));
    expect(r.lazy).toEqual(r.eager);
  });

  it.each([
    ['text', (req: Request) => req.text()],
    ['json', (req: Request) => req.json()],
    ['arrayBuffer', async (req: Request) => [...new Uint8Array(await req.arrayBuffer())]],
    ['bytes', async (req: Request) => [...await (req as unknown as { bytes(): Promise<Uint8Array> }).bytes()]],
    ['blob', async (req: Request) => { const b = await req.blob(); return [b.type, await b.text()]; }],
  ])('reads a body with %s(), then it is used: a second read, clone() and new Request(it) are refused', async (_name, read) => {
    const r = await both(post, bytes('{"a":"é"}'), async (req) => {
      const first = await read(req);
      const second = await req.text().catch((e: Error) => `${e.name}: ${e.message}`);
      let clone: string;
      try { req.clone(); clone = 'cloned'; } catch (e) { clone = `${(e as Error).name}: ${(e as Error).message}`; }
      let copy: string;
      try { new Request(req); copy = 'copied'; } catch (e) { copy = `${(e as Error).name}: ${(e as Error).message}`; }
      return { first, second, clone, copy, used: req.bodyUsed, locked: req.body?.locked };
    });
    expect(r.lazy).toEqual(r.eager);
  });

  it('decodes text as undici does: a BOM dropped, bad UTF-8 replaced; bad JSON refused with the same error', async () => {
    const body = () => Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0xff, 0x69]);
    expect(await both(post, body, (req) => req.text()).then(({ lazy, eager: e }) => [lazy, e])).toSatisfy(([a, b]) => JSON.stringify(a) === JSON.stringify(b));
    const r = await both(post, bytes('{nope'), (req) => req.json());
    expect(r.lazy).toEqual(r.eager);
    expect((r.lazy as { threw: string }).threw).toBe('SyntaxError');
  });

  it('gives the body as a stream, for a whole body and for one still arriving', async () => {
    for (const body of [bytes('whole body'), stream('still ', 'arriving')]) {
      const r = await both(post, body, async (req) => {
        const s = req.body!;
        return { isStream: s instanceof ReadableStream, same: req.body === s, text: await new Response(s).text(), used: req.bodyUsed };
      });
      expect(r.lazy).toEqual(r.eager);
      expect((r.lazy as { ok: { text: string } }).ok.text).toMatch(/whole body|still arriving/);
    }
  });

  it('reads a body still arriving with text()', async () => {
    const r = await both(post, stream('a', 'b', 'c'), async (req) => [await req.text(), req.bodyUsed]);
    expect(r.lazy).toEqual({ ok: ['abc', true] });
    expect(r.eager).toEqual(r.lazy);
  });

  it('clones: headers and body both ways, the clone a Request of its own', async () => {
    const r = await both(post, bytes('twice'), async (req) => {
      req.headers.get('accept'); // headers handed out before the Request is built
      const c = req.clone();
      return { instance: c instanceof Request, url: c.url, method: c.method, headers: entries(c.headers), a: await c.text(), b: await req.text() };
    });
    expect(r.lazy).toEqual(r.eager);
  });

  it('keeps the headers it handed out live: changes show in clone(), new Request(it) and its own headers', async () => {
    const r = await both(post, bytes('x'), async (req) => {
      const h = req.headers;
      h.set('x-before', '1');
      const body = req.body; // builds the Request
      h.set('x-after', '2');
      h.delete('user-agent');
      const copy = new Request(req, { method: 'PUT' });
      return {
        same: req.headers === h, hasBody: body !== null, copy: entries(copy.headers), clone: entries(req.clone().headers),
        mine: entries(req.headers), copyMethod: copy.method, copyBody: await copy.text(),
      };
    });
    expect(r.lazy).toEqual(r.eager);
  });

  it('has a signal, not aborted; new Request(it) and Response(it.body) as with a real one', async () => {
    const r = await both(post, bytes('pass it on'), async (req) => {
      const signal = req.signal;
      const again = new Request(req);
      return {
        signal: signal instanceof AbortSignal, aborted: signal.aborted, same: req.signal === signal,
        url: again.url, headers: entries(again.headers), text: await new Response(again.body).text(), used: req.bodyUsed,
      };
    });
    expect(r.lazy).toEqual(r.eager);
  });

  it('is taken by fetch() as a Request (refused the same way for a URL nothing listens on)', async () => {
    const call = { ...get, headers: ['host', '127.0.0.1:1'] };
    const r = await both(call, none, async (req) => fetch(req).then(() => 'fetched', (e: Error) => `${e.name}: ${e.message}`));
    expect(r.lazy).toEqual(r.eager);
  });

  it('leaves out a header undici refuses, as before', async () => {
    const call = { ...get, headers: ['host', 'example.test', 'bad name', 'x', 'x-nul', 'a\0b', 'x-ok', 'yes'] };
    const r = await both(call, none, (req) => ({ all: entries(req.headers), url: req.url }));
    expect(r.lazy).toEqual(r.eager);
    expect((r.lazy as { ok: { all: string[][] } }).ok.all).toEqual([['host', 'example.test'], ['x-ok', 'yes']]);
  });

  it.each([
    ['no Host', ['x-a', '1']],
    ['two Hosts', ['host', 'a.test', 'host', 'b.test']],
    ['a Host with spaces around', ['host', '  c.test  ']],
    ['a Host with credentials', ['host', 'user:pw@d.test']],
    ['a Host that is no host', ['host', 'a b']],
    ['a refused Host', ['host', 'e.test\0']],
    ['an upper-case Host and the default port', ['host', 'F.Test:80']],
    ['a Host header named in capitals', ['Host', 'g.test']],
  ])('makes the URL from %s as before (or refuses it the same way)', async (_what, headers) => {
    const call = { ...get, path: '/p/../q/é', headers };
    const lazy = await calls.runFetch((req) => new Response(req.url), undefined, call, Buffer.alloc(0), {})
      .then((out) => ({ out: (out as { body?: Buffer }).body?.toString() }), (e: Error) => ({ threw: `${e.name}: ${e.message}` }));
    let reference: object;
    try { reference = { out: eager(call, Buffer.alloc(0)).url }; } catch (e) { reference = { threw: `${(e as Error).name}: ${(e as Error).message}` }; }
    expect(lazy).toEqual(reference);
  });

  it.each(['PATCH', 'OPTIONS', 'DELETE', 'PUT', 'get', 'CONNECT', 'PROPFIND'])('takes method %s as before', async (method) => {
    const call = { ...get, method };
    const lazy = await calls.runFetch((req) => new Response(req.method), undefined, call, Buffer.alloc(0), {})
      .then((out) => ({ out: (out as { body?: Buffer }).body?.toString() }), (e: Error) => ({ threw: `${e.name}: ${e.message}` }));
    let reference: object;
    try { reference = { out: eager(call, Buffer.alloc(0)).method }; } catch (e) { reference = { threw: `${(e as Error).name}: ${(e as Error).message}` }; }
    expect(lazy).toEqual(reference);
  });

  it('is never built for a function that reads only url, method and headers', async () => {
    const r = await both(get, none, (req) => [req.url, req.method, req.headers.get('accept')]);
    expect(r.lazy).toEqual(r.eager);
    expect(Object.getOwnPropertySymbols(r.req).map((s) => s.description)).toEqual(['faas call']);
  });
});
