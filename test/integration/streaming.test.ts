// Streamed answers and streamed request bodies through the real gateway, read on raw sockets
// where the moment bytes arrive matters: an SSE function's events arrive as they are sent, a
// client that stops reading stops the function's stream, a client that goes cancels it, a
// stream that breaks off is cut, a request body reaches the function while it is still being
// sent, and ctx.waitUntil work outlives the answer. Timings are measured by scripts/bench-stream.mjs,
// not here: these check order and bounds with wide margins.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
let port: number;

// One function for several routes' worth of cases, told apart by ?mode=, so that they share one
// instance and its module state (counters the test reads back).
const STREAMS = `
const MiB = 1024 * 1024;
const state = { pulled: 0, cancelled: false, background: 'none' };
const enc = new TextEncoder();
export default {
  async fetch(request, env, ctx) {
    const mode = new URL(request.url).searchParams.get('mode');
    if (mode === 'sse') {
      let n = 0;
      return new Response(new ReadableStream({
        async pull(c) {
          if (n === 5) return c.close();
          if (n > 0) await new Promise((r) => setTimeout(r, 200));
          c.enqueue(enc.encode('data: ' + n++ + '\\n\\n'));
        },
      }), { headers: { 'content-type': 'text/event-stream' } });
    }
    if (mode === 'big') {
      const size = Number(new URL(request.url).searchParams.get('mib')) * MiB;
      const chunk = new Uint8Array(64 * 1024).fill(120);
      state.pulled = 0;
      state.cancelled = false;
      return new Response(new ReadableStream({
        pull(c) {
          if (state.pulled >= size) return c.close();
          state.pulled += chunk.length;
          c.enqueue(chunk);
        },
        cancel() { state.cancelled = true; },
      }));
    }
    if (mode === 'state') return Response.json(state);
    if (mode === 'generator') {
      async function* parts() { for (let i = 0; i < 3; i++) yield enc.encode('part ' + i + '\\n'); }
      return new Response(ReadableStream.from(parts()), { headers: { 'content-type': 'text/plain' } });
    }
    if (mode === 'transform') {
      const { readable, writable } = new TransformStream();
      (async () => {
        const w = writable.getWriter();
        for (const word of ['one ', 'two ', 'three']) { await w.write(enc.encode(word)); await new Promise((r) => setTimeout(r, 20)); }
        await w.close();
      })();
      return new Response(readable);
    }
    if (mode === 'broken') {
      let sent = false;
      return new Response(new ReadableStream({
        pull(c) {
          if (sent) throw new Error('the upstream went away');
          sent = true;
          c.enqueue(enc.encode('first part;'));
        },
      }));
    }
    if (mode === 'echo') return new Response(request.body, { headers: { 'content-type': 'application/octet-stream' } });
    if (mode === 'wait') {
      state.background = 'started';
      ctx.waitUntil(new Promise((r) => setTimeout(r, Number(new URL(request.url).searchParams.get('ms')))).then(() => {
        state.background = 'done';
        console.log('background work done');
      }));
      return new Response('answered while ' + state.background);
    }
    return new Response('unknown mode', { status: 400 });
  },
};`;

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
  port = Number(new URL(gw.http).port);
  await deploy(gw, 'GET:/s', { runtime: 'node', code: STREAMS, timeout_ms: 20_000 });
  await deploy(gw, 'POST:/s', { runtime: 'node', code: STREAMS, timeout_ms: 20_000 });
});
afterAll(async () => {
  await gw?.stop();
});

/** A raw HTTP/1.1 exchange: what arrived, and when each piece did (ms since the request was written). */
interface Raw {
  readonly socket: net.Socket;
  readonly pieces: Array<{ at: number; text: string }>;
  bytes: number;
  closed: boolean;
  text(): string;
}

function request(head: string): Raw {
  const socket = net.connect(port, '127.0.0.1');
  const started = Date.now();
  const raw: Raw = { socket, pieces: [], bytes: 0, closed: false, text: () => raw.pieces.map((p) => p.text).join('') };
  socket.write(head);
  socket.on('data', (d: Buffer) => {
    raw.bytes += d.length;
    if (raw.pieces.length < 200) raw.pieces.push({ at: Date.now() - started, text: d.toString('latin1') });
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    raw.closed = true;
  });
  return raw;
}

const get = (query: string): string => `GET /s?${query} HTTP/1.1\r\nHost: test\r\n\r\n`;

async function state(): Promise<{ pulled: number; cancelled: boolean; background: string }> {
  return (await fetch(`${gw.http}/s?mode=state`)).json();
}

describe('streamed answers', () => {
  it('an SSE function: each event reaches the client as it is sent, chunked, not all at the end', async () => {
    const r = request(get('mode=sse'));
    await eventually(async () => r.text().includes('data: 4'), 5000);
    const at = (n: number): number => r.pieces.find((p) => p.text.includes(`data: ${n}`))!.at;
    expect(r.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.text()).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    expect(r.text()).toMatch(/\r\ncontent-type: text\/event-stream\r\n/i);
    // Events are 200 ms apart at the function: buffered, they would all arrive together.
    expect(at(4) - at(0)).toBeGreaterThan(500);
    expect(at(1) - at(0)).toBeGreaterThan(100);
    r.socket.destroy();
  });

  it('an async generator and a TransformStream are streamed as well', async () => {
    const gen = await fetch(`${gw.http}/s?mode=generator`);
    expect(gen.headers.get('transfer-encoding')).toBe('chunked');
    expect(await gen.text()).toBe('part 0\npart 1\npart 2\n');
    const t = await fetch(`${gw.http}/s?mode=transform`);
    expect(await t.text()).toBe('one two three');
  });

  it('a streamed answer is not held to the 6 MiB buffered cap: 40 MiB pass through whole', async () => {
    const res = await fetch(`${gw.http}/s?mode=big&mib=40`);
    expect(res.status).toBe(200);
    let bytes = 0;
    for await (const chunk of res.body!) bytes += chunk.length;
    expect(bytes).toBe(40 * 1024 * 1024);
  });

  it('a client that stops reading stops the function being read; it resumes where it stopped', async () => {
    const r = request(get('mode=big&mib=64'));
    await eventually(async () => r.bytes > 1024 * 1024);
    r.socket.pause();
    // Whatever the sockets on the way hold fills, then the function is no longer pulled.
    const stalled = await eventually(async () => {
      const before = (await state()).pulled;
      await sleep(500);
      const after = (await state()).pulled;
      return before === after && after;
    }, 10_000);
    expect(stalled).toBeLessThan(32 * 1024 * 1024); // far short of the 64 MiB it would produce unchecked
    r.socket.resume();
    await eventually(async () => r.closed || r.bytes >= 64 * 1024 * 1024, 20_000);
    expect((await state()).pulled).toBe(64 * 1024 * 1024);
    r.socket.destroy();
  }, 40_000);

  it('a client that goes away cancels the function\'s stream', async () => {
    const r = request(get('mode=big&mib=64'));
    await eventually(async () => r.bytes > 512 * 1024);
    r.socket.destroy();
    await eventually(async () => (await state()).cancelled);
    expect((await state()).pulled).toBeLessThan(64 * 1024 * 1024);
  });

  it('a stream that breaks off is cut short: no final chunk, the connection closed, and the access log says why', async () => {
    const r = request(get('mode=broken'));
    await eventually(async () => r.closed);
    expect(r.text()).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(r.text()).toContain('first part;');
    expect(r.text()).not.toMatch(/\r\n0\r\n\r\n$/); // the terminating chunk never came
    await eventually(async () => /"path":"\/s".*"code":"FUNCTION_ERROR".*the answer was cut short: .*the upstream went away/.test(gw.logs()));
  });
});

describe('python: a generator as the body', () => {
  const PY = `
import time

def handle(request):
    mode = request.query.get("mode")
    if mode == "fail-early":
        def bad():
            raise ValueError("before the first item")
            yield "x"
        return bad()
    if mode == "big":
        def big():
            for _ in range(int(request.query["mib"]) * 16):
                yield b"y" * 65536
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"}, "body": big()}
    def events():
        for i in range(4):
            yield "data: %d\\n\\n" % i
            time.sleep(0.2)
    return {"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "body": events()}
`;
  beforeAll(async () => {
    await deploy(gw, 'GET:/py', { runtime: 'python', code: PY });
  });

  it('each item reaches the client as it is yielded', async () => {
    const r = request('GET /py HTTP/1.1\r\nHost: test\r\n\r\n');
    await eventually(async () => r.text().endsWith('0\r\n\r\n'), 5000);
    expect(r.text()).toMatch(/\r\ncontent-type: text\/event-stream\r\n/i);
    const at = (n: number): number => r.pieces.find((p) => p.text.includes(`data: ${n}`))!.at;
    expect(at(3) - at(0)).toBeGreaterThan(400); // yielded 200 ms apart
    r.socket.destroy();
  });

  it('past the buffered cap: 20 MiB yielded in 64 KiB pieces arrive whole', async () => {
    const res = await fetch(`${gw.http}/py?mode=big&mib=20`);
    expect((await res.arrayBuffer()).byteLength).toBe(20 * 1024 * 1024);
  });

  it('a generator that fails before its first item is a plain 500 FUNCTION_ERROR', async () => {
    const res = await fetch(`${gw.http}/py?mode=fail-early`);
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: 'FUNCTION_ERROR', message: 'ValueError: before the first item' });
  });
});

describe('Lambda response streaming (awslambda.streamifyResponse)', () => {
  const STREAMIFIED = `
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.queryStringParameters?.fail) throw new Error('failed before writing');
  responseStream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-kind': 'streamed' } });
  responseStream.setContentType('text/plain');
  for (let i = 0; i < 3; i++) {
    responseStream.write('line ' + i + ' ' + event.httpMethod + ' ' + context.awsRequestId.length + '\\n');
    await new Promise((r) => setTimeout(r, 150));
  }
  await pipeline(Readable.from(['piped ', 'end']), responseStream);
});`;

  beforeAll(async () => {
    await deploy(gw, 'GET:/streamified', { runtime: 'node', code: STREAMIFIED });
  });

  it('streams what the handler writes, with the status and headers of HttpResponseStream.from', async () => {
    const r = request('GET /streamified HTTP/1.1\r\nHost: test\r\n\r\n');
    await eventually(async () => r.text().endsWith('end\r\n0\r\n\r\n'), 5000);
    expect(r.text()).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(r.text()).toMatch(/\r\nx-kind: streamed\r\n/);
    expect(r.text()).toMatch(/\r\ncontent-type: text\/plain\r\n/);
    expect(r.text()).toContain('line 0 GET 36');
    const at = (needle: string): number => r.pieces.find((p) => p.text.includes(needle))!.at;
    expect(at('piped') - at('line 0')).toBeGreaterThan(250); // written 150 ms apart, not sent at the end
    r.socket.destroy();
  });

  it('a handler that throws before writing is an error answer', async () => {
    const res = await fetch(`${gw.http}/streamified?fail=1`);
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: 'FUNCTION_ERROR', message: expect.stringContaining('failed before writing') });
  });
});

describe('streamed request bodies', () => {
  it('the function reads the body while the client is still sending it (full duplex echo)', async () => {
    const r = request('POST /s?mode=echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n');
    // The echo of the first piece arrives while the rest has not been sent.
    await eventually(async () => r.text().includes('hello '), 5000);
    expect(r.text()).not.toContain('world');
    r.socket.write('5\r\nworld\r\n0\r\n\r\n');
    await eventually(async () => /world\r\n0\r\n\r\n$/.test(r.text()), 5000);
    r.socket.destroy();
  });

  it('a body of several MiB with content-length arrives whole, byte for byte', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const res = await fetch(`${gw.http}/s?mode=echo`, { method: 'POST', body });
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });
});

describe('ctx.waitUntil', () => {
  it('the answer does not wait for it, and it finishes even when the instance is being replaced meanwhile', async () => {
    const res = await fetch(`${gw.http}/s?mode=wait&ms=1500`);
    expect(await res.text()).toBe('answered while started');
    // A new version retires the instance now: without waitUntil it would be stopped at once.
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.memory_mb', 160) WHERE k = 'GET:/s'").run();
    await eventually(async () => (await state()).background === 'none'); // the new version's instance serves
    await eventually(async () => gw.instanceLog('GET:/s').some((l) => l.msg === 'instance exited'), 8000);
    // The old instance stopped only after its background work was done. Its output is logged by
    // whoever sent the call (the worker, or on the direct path the gateway, whose log is buffered): by time, not place.
    const line = await eventually(async () => gw.logs().split('\n').find((l) => l.includes('background work done')), 2000);
    expect(line).toContain(`"requestId":"${res.headers.get('x-request-id')}"`); // its output is still the call's
    const exited = gw.instanceLog('GET:/s').find((l) => l.msg === 'instance exited')!;
    expect(Date.parse(JSON.parse(line!).time as string)).toBeLessThanOrEqual(Date.parse(exited.time as string));
  });
});
