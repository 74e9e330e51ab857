// The Response class node functions get (workers/runtime/lazy-response.mjs) makes a string body's
// stream only when asked for it. Every probe here runs against a Response made by it and one made
// by undici's own class: what the function (and undici) sees must be the same.
import { describe, expect, it } from 'vitest';

interface LazyResponseModule {
  lazyResponseClass(): typeof Response;
  untouchedText(r: Response): Buffer | undefined;
}
const mod = (await import(new URL('../../workers/runtime/lazy-response.mjs', import.meta.url).href)) as LazyResponseModule;
const Native = globalThis.Response;
const Lazy = mod.lazyResponseClass();

type Probe = (r: Response, R: typeof Response) => unknown;

async function settle(f: () => unknown): Promise<unknown> {
  try {
    return { ok: await f() };
  } catch (err) {
    return { threw: (err as Error).constructor.name, message: (err as Error).message };
  }
}

/** What `probe` sees of `new R(...args)` with R the lazy class and with undici's own. */
async function both(args: unknown[] | (() => unknown[]), probe: Probe): Promise<{ lazy: unknown; native: unknown }> {
  const argsOf = typeof args === 'function' ? args : () => args;
  const lazy = await settle(() => probe(Reflect.construct(Lazy, argsOf()) as Response, Lazy));
  const native = await settle(() => probe(Reflect.construct(Native, argsOf()) as Response, Native));
  return { lazy, native };
}

async function same(args: unknown[] | (() => unknown[]), probe: Probe): Promise<unknown> {
  const { lazy, native } = await both(args, probe);
  expect(lazy).toEqual(native);
  return lazy;
}

const head = (r: Response) => ({ status: r.status, statusText: r.statusText, ok: r.ok, type: r.type, url: r.url, redirected: r.redirected,
  headers: [...r.headers], used: r.bodyUsed });

describe('lazyResponseClass', () => {
  it('is in place: undici is as it expects, and a string body has no stream until asked', () => {
    expect(Lazy).not.toBe(Native);
    const r = new Lazy('hello');
    expect(mod.untouchedText(r)?.toString()).toBe('hello');
    void r.body; // asked for: from now on the body is read as undici reads it
    expect(mod.untouchedText(r)).toBeUndefined();
    expect(mod.untouchedText(new Native('hello'))).toBeUndefined();
  });

  it('answers status, headers and a default content-type as undici does', async () => {
    await same(['hello'], head);
    await same(['', { status: 201, statusText: 'Made', headers: { 'X-A': 'b' } }], head);
    const own = await same(['<p>', { headers: [['content-type', 'text/html'], ['x-b', '1']] }], head);
    expect(JSON.stringify(own)).toContain('text/html');
    await same(['x', { headers: new Headers({ 'Content-Type': 'application/json' }) }], head);
  });

  it('reads the body every way as undici does, once', async () => {
    for (const read of ['text', 'arrayBuffer', 'json', 'blob', 'formData', 'bytes'] as const) {
      const out = await same(['{"a":1}'], async (r) => {
        const f = (r as unknown as Record<string, () => Promise<unknown>>)[read];
        if (typeof f !== 'function') return 'no such method';
        const v = await f.call(r);
        const shown = v instanceof ArrayBuffer ? Buffer.from(v).toString() : v instanceof Blob ? `${v.type}:${await v.text()}` : v;
        return { shown, used: r.bodyUsed, again: await settle(() => f.call(r)) };
      });
      // formData() refuses a text/plain body, here as there; every other read works once
      if (read !== 'formData') expect(out).toMatchObject({ ok: { used: true, again: { threw: 'TypeError' } } });
    }
    await same(['héllo ☃'], async (r) => [await r.text(), r.bodyUsed]);
    await same([''], async (r) => [r.body === null, await r.text(), r.bodyUsed]);
  });

  it('gives the same stream: a byte stream, read chunk by chunk or with a BYOB reader', async () => {
    await same(['chunked'], async (r) => {
      const body = r.body!;
      const reader = body.getReader();
      const parts: string[] = [];
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(Buffer.from(value).toString());
      }
      return { parts, isStream: body instanceof ReadableStream, same: r.body === body, used: r.bodyUsed, locked: body.locked };
    });
    await same(['byob'], async (r) => {
      const reader = r.body!.getReader({ mode: 'byob' });
      const { value } = await reader.read(new Uint8Array(16));
      return Buffer.from(value!).toString();
    });
    await same(['locked'], async (r) => {
      r.body!.getReader();
      return [r.bodyUsed, await settle(() => r.text())];
    });
  });

  it('clones as undici does, before and after a read', async () => {
    await same(['twice'], async (r) => {
      const c = r.clone();
      return [await c.text(), await r.text(), c instanceof Response, c.constructor === Response];
    });
    await same(['used'], async (r) => {
      await r.text();
      return settle(() => r.clone());
    });
  });

  it('refuses what undici refuses, with its errors', async () => {
    for (const status of [101, 103, 204, 205, 304]) {
      const out = await same(['body', { status }], head);
      expect(out).toMatchObject({ threw: expect.any(String) });
    }
    await same(['x', { status: 99 }], head);
    await same(['x', { statusText: 'bad\n' }], head);
    await same(['x', { headers: { 'bad name': 'v' } }], head);
    await same([null, { status: 204 }], head);
  });

  it('makes Response.json() as undici does', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const made = async (R: typeof Response, args: unknown[]) => settle(async () => {
      const r = (R.json as (...a: unknown[]) => Response)(...args);
      return [head(r), await r.text(), r.bodyUsed];
    });
    const cases: unknown[][] = [[{ a: 1, s: 'é\ud800' }], [[1, 'two'], { status: 201, headers: { 'x-a': 'b' } }],
      ['text', { headers: { 'content-type': 'application/problem+json' } }], [{}, { status: 204 }], [{}, { status: 99 }],
      [undefined], [() => 1], [1n], [], [{ a: 1 }, null], [1n, 5], [{ a: 1 }, 'x'], [cyclic]];
    for (const args of cases) expect(await made(Lazy, args)).toEqual(await made(Native, args));
    expect(mod.untouchedText(Lazy.json({ a: 1 }))?.toString()).toBe('{"a":1}');
    expect(Lazy.json({ a: 1 })).toBeInstanceOf(Native);
  });

  it('leaves other bodies to undici: bytes, streams, forms, a string that is not well formed', async () => {
    await same([new Uint8Array([104, 105])], async (r) => [await r.text(), mod.untouchedText(r)]);
    await same([new URLSearchParams('a=1&b=2')], async (r) => [head(r), await r.text()]);
    await same(['\ud800x'], async (r) => [await r.text(), mod.untouchedText(r)]);
    await same(() => [new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('s')); c.close(); } })], async (r) => r.text());
    await same([undefined], async (r) => [r.body, await r.text()]);
  });

  it('is undici\'s class to instanceof, constructor, statics and subclasses', async () => {
    const fromNative = new Native('n'); // as fetch() answers: undici's own
    expect(fromNative instanceof Lazy).toBe(true);
    expect(new Lazy('l') instanceof Native).toBe(true);
    expect(Object.getPrototypeOf(new Lazy('l'))).toBe(Native.prototype);
    expect(new Lazy('l').constructor).toBe(Lazy);
    expect(Lazy.name).toBe('Response');
    expect(Object.prototype.toString.call(new Lazy('l'))).toBe('[object Response]');
    expect(await Lazy.json({ a: 1 }).text()).toBe('{"a":1}');
    expect(Lazy.redirect('http://example.test/', 302).headers.get('location')).toBe('http://example.test/');
    expect(Lazy.error().type).toBe('error');

    class Mine extends Lazy {
      extra(): string { return 'mine'; }
    }
    const m = new Mine('sub', { status: 202 });
    expect(m).toBeInstanceOf(Mine);
    expect(m).toBeInstanceOf(Native);
    expect([m.extra(), m.status, m.headers.get('content-type')]).toEqual(['mine', 202, 'text/plain;charset=UTF-8']);
    expect(mod.untouchedText(m)?.toString()).toBe('sub');
    expect(await m.text()).toBe('sub');
  });
});
