// The node host's call code (workers/runtime/node-calls.mjs), run in-process: what a
// Workers-style function gets back to the client for every shape of Response body. The host
// reads a body made from a string or bytes without its stream; everything else (and a body the
// function already used) must still come out as the WHATWG API says.
import { describe, expect, it } from 'vitest';

interface Answer { status?: number; headers?: string[]; body?: Buffer; invalid?: string }
interface NodeCalls {
  runFetch(fn: (req: Request) => unknown, self: unknown, call: object, body: Buffer, env: object): Promise<Answer>;
  encodeHostFrame(meta: object, body?: Buffer): Buffer[];
}
// A path in a variable: tsc does not type the plain-JS module, and needs no declaration for it.
const modulePath = new URL('../../workers/runtime/node-calls.mjs', import.meta.url).href;
const calls = (await import(modulePath)) as NodeCalls;

const call = { id: 1, requestId: 'r1', method: 'POST', path: '/t', query: 'a=1', headers: ['host', 'example.test', 'x-a', 'b'], deadlineMs: 0 };

async function answer(make: (req: Request) => Response | Promise<Response>): Promise<Answer> {
  return calls.runFetch(make, undefined, call, Buffer.from('request body'), {});
}

describe('node-calls runFetch', () => {
  it('gives the function the request as sent', async () => {
    let seen: { url: string; method: string; header: string | null; text: string } | undefined;
    await answer(async (req) => {
      seen = { url: req.url, method: req.method, header: req.headers.get('x-a'), text: await req.text() };
      return new Response('ok');
    });
    expect(seen).toEqual({ url: 'http://example.test/t?a=1', method: 'POST', header: 'b', text: 'request body' });
  });

  it.each([
    ['a string', () => new Response('héllo'), 'héllo'],
    ['bytes', () => new Response(new TextEncoder().encode('bytes')), 'bytes'],
    ['Response.json', () => Response.json({ a: 1 }), '{"a":1}'],
    ['a Blob', () => new Response(new Blob(['blob'])), 'blob'],
    ['a stream', () => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('streamed')); c.close(); } })), 'streamed'],
    ['no body', () => new Response(null, { status: 204 }), ''],
    ['URLSearchParams', () => new Response(new URLSearchParams({ q: 'x y' })), 'q=x+y'],
  ])('returns the body of a Response made from %s', async (_what, make, text) => {
    const out = await answer(make);
    expect(out.body!.toString()).toBe(text);
  });

  it('sends the bytes as they were when the Response was made, though the function reuses its buffer', async () => {
    const shared = new TextEncoder().encode('first');
    const out = await answer(() => {
      const res = new Response(shared);
      shared.set(new TextEncoder().encode('later'));
      return res;
    });
    expect(out.body!.toString()).toBe('first');
  });

  it('refuses a Response whose body the function already read, as arrayBuffer() would', async () => {
    await expect(answer(async () => {
      const res = new Response('once');
      await res.text();
      return res;
    })).rejects.toThrow(TypeError);
  });

  it('passes status and headers, set-cookie one per line', async () => {
    const out = await answer(() => {
      const h = new Headers({ 'content-type': 'text/plain' });
      h.append('set-cookie', 'a=1');
      h.append('set-cookie', 'b=2');
      return new Response('x', { status: 201, headers: h });
    });
    expect(out.status).toBe(201);
    expect(out.headers).toEqual(['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
  });

  it('says what was wrong when fetch() returns something else', async () => {
    const out = await calls.runFetch(() => ({ status: 200 }), undefined, call, Buffer.alloc(0), {});
    expect(out.invalid).toBe('fetch() must return a Response (got object)');
  });
});

describe('node-calls encodeHostFrame', () => {
  it('frames the meta as JSON with the body beside it', () => {
    const [head, body] = calls.encodeHostFrame({ t: 'result', id: 3, status: 200, headers: [] }, Buffer.from('hé'));
    const json = JSON.stringify({ t: 'result', id: 3, status: 200, headers: [] });
    expect(head!.readUInt32BE(0)).toBe(4 + json.length + Buffer.byteLength('hé'));
    expect(head!.readUInt32BE(4)).toBe(json.length);
    expect(head!.subarray(8).toString()).toBe(json);
    expect(body!.toString()).toBe('hé');
    expect(calls.encodeHostFrame({ t: 'ready' })).toHaveLength(1);
  });
});

describe('node-calls HostFrameReader', () => {
  it('reads frames split at every byte, and several in one chunk', async () => {
    const reader = new (calls as unknown as { HostFrameReader: new () => { push(c: Buffer): Array<{ msg: { id: number }; body: Buffer }> } }).HostFrameReader();
    const frame = (id: number, body: string): Buffer => Buffer.concat(calls.encodeHostFrame({ t: 'invoke', id }, Buffer.from(body)));
    const all = Buffer.concat([frame(1, 'a'.repeat(70_000)), frame(2, ''), frame(3, 'xyz')]);
    const got = [];
    for (let i = 0; i < all.length; i += 4093) got.push(...reader.push(all.subarray(i, i + 4093)));
    const last = frame(4, 'b');
    for (let i = 0; i < last.length; i++) got.push(...reader.push(last.subarray(i, i + 1)));
    expect(got.map((f) => [f.msg.id, f.body.length])).toEqual([[1, 70_000], [2, 0], [3, 3], [4, 1]]);
    expect(new Set(got[0]!.body)).toEqual(new Set([97]));
  });
});
