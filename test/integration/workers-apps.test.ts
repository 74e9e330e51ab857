// Workers-style functions in the shapes people write them, through the real gateway: a Hono app
// and an itty-router app, each deployed as a `path` folder holding its index.mjs and the router
// in node_modules (copied from this checkout's devDependencies, as `npm install` in the folder
// would put it), and the Cloudflare docs' SSE (a TransformStream written by a task running on
// after the Response is returned) and ctx.waitUntil logging patterns, a stream cut at timeout_ms,
// and examples/sse.mjs and examples/hono-app as they are. Streams are read with fetch's body
// reader, noting when each event arrives: buffered, they would all come at the end.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fn, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

const HONO_APP = `
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';

const app = new Hono();
app.get('/hono/hello/:name', (c) => c.json({ hello: c.req.param('name') }));
app.post('/hono/echo', async (c) => c.json({ got: await c.req.json(), type: c.req.header('content-type') }));
app.get('/hono/headers', (c) => c.json({ custom: c.req.header('x-custom'), agent: c.req.header('user-agent'), url: c.req.url, q: c.req.query('q') }));
app.get('/hono/sse', (c) => streamSSE(c, async (stream) => {
  let id = 0;
  stream.onAbort(() => console.log('hono sse aborted after ' + id + ' events'));
  while (!stream.aborted && id < Number(c.req.query('n') ?? 5)) {
    await stream.writeSSE({ event: 'tick', data: JSON.stringify({ n: id }), id: String(id++) });
    await stream.sleep(100);
  }
}));
export default app;
`;

const ITTY_APP = `
import { AutoRouter } from 'itty-router';

const router = AutoRouter();
router
  .get('/itty/hello/:name', ({ name }) => ({ hello: name }))
  .post('/itty/echo', async (request) => ({ got: await request.json() }));
export default router;
`;

// The Workers docs' streaming shape: the Response goes back at once, a task writes the stream.
const WORKERS_SSE = `
export default {
  async fetch(request, env, ctx) {
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const encoder = new TextEncoder();
    (async () => {
      for (let i = 0; i < 5; i++) {
        await writer.write(encoder.encode('event: tick\\ndata: ' + JSON.stringify({ i }) + '\\n\\n'));
        await new Promise((r) => setTimeout(r, 150));
      }
      await writer.close();
    })();
    return new Response(readable, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } });
  },
};`;

// A stream still going at timeout_ms.
const ENDLESS = `
export default {
  fetch() {
    let n = 0;
    return new Response(new ReadableStream({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 50));
        c.enqueue(new TextEncoder().encode('data: ' + n++ + '\\n\\n'));
      },
    }), { headers: { 'content-type': 'text/event-stream' } });
  },
};`;

// "Log to an external service without delaying the answer": ctx.waitUntil(fetch(…)) in Workers;
// the sandbox has no network, so the shipment is a timer.
const WAIT_UNTIL_LOGGING = `
function shipLog(line) {
  return new Promise((r) => setTimeout(r, 1000)).then(() => console.log('shipped: ' + line));
}
export default {
  async fetch(request, env, ctx) {
    ctx.waitUntil(shipLog(request.method + ' ' + new URL(request.url).pathname + ' ' + ctx.requestId));
    return new Response('ok');
  },
};`;

/** A folder the sandbox user (uid 65534) can read: dirs 755, files 644. */
function readableByAll(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) readableByAll(p);
    else if (e.isFile()) fs.chmodSync(p, 0o644);
  }
}

/** An app folder in the gateway's temp dir: its index.mjs and node_modules/PKG copied from this checkout's node_modules. */
function appFolder(name: string, index: string, pkg: string): string {
  const dir = path.join(gw.dir, name);
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.mjs'), index);
  fs.cpSync(path.resolve('node_modules', pkg), path.join(dir, 'node_modules', pkg), { recursive: true });
  readableByAll(dir);
  return dir;
}

/** Reads a streamed body as it arrives: its text, and each SSE event with when it came (ms since the call). */
async function readEvents(res: Response, started: number, stopAfter = Infinity): Promise<{ text: string; events: Array<{ at: number; data: string }> }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const events: Array<{ at: number; data: string }> = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const whole = text.split('\n\n').slice(0, -1);
    for (const block of whole.slice(events.length)) events.push({ at: Date.now() - started, data: /^data: (.*)$/m.exec(block)?.[1] ?? '' });
    if (events.length >= stopAfter) {
      await reader.cancel();
      break;
    }
  }
  return { text, events };
}

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
  const hono = appFolder('hono-app', HONO_APP, 'hono');
  const itty = appFolder('itty-app', ITTY_APP, 'itty-router');
  const example = appFolder('hono-example', fs.readFileSync('examples/hono-app/index.mjs', 'utf8'), 'hono');
  // Routes are exact METHOD:PATH keys: one row per concrete path, each the whole app's folder.
  const rows: Array<[string, Record<string, unknown>]> = [
    ['GET:/hono/hello/world', { runtime: 'node', path: hono }],
    ['POST:/hono/echo', { runtime: 'node', path: hono }],
    ['GET:/hono/headers', { runtime: 'node', path: hono }],
    ['GET:/hono/sse', { runtime: 'node', path: hono, timeout_ms: 20_000 }],
    ['GET:/hono/nowhere', { runtime: 'node', path: hono }],
    ['GET:/itty/hello/there', { runtime: 'node', path: itty }],
    ['POST:/itty/echo', { runtime: 'node', path: itty }],
    ['GET:/itty/nowhere', { runtime: 'node', path: itty }],
    ['GET:/workers/sse', { runtime: 'node', code: WORKERS_SSE }],
    ['GET:/workers/log', { runtime: 'node', code: WAIT_UNTIL_LOGGING }],
    ['GET:/workers/endless', { runtime: 'node', code: ENDLESS, timeout_ms: 1000 }],
    ['GET:/api/hello', { runtime: 'node', path: example, env: { GREETING: 'hi' } }],
    ['POST:/api/echo', { runtime: 'node', path: example }],
    ['GET:/api/events', { runtime: 'node', path: example }],
    ['GET:/clock', { runtime: 'node', code: fs.readFileSync('examples/sse.mjs', 'utf8') }],
  ];
  const sql = gw.sql();
  const insert = sql.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  sql.transaction(() => {
    for (const [k, v] of rows) insert.run(k, fn(v));
  })();
  // One transaction: the sync that serves one row serves them all.
  await eventually(async () => (await fetch(`${gw.http}/workers/log`)).status === 200, 10_000);
});
afterAll(async () => {
  await gw?.stop();
});

describe('a Hono app deployed as a folder with node_modules/hono', () => {
  it('answers a route with a path parameter as JSON', async () => {
    const res = await fetch(`${gw.http}/hono/hello/world`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ hello: 'world' });
  });

  it('parses a POSTed JSON body and echoes it', async () => {
    const body = { items: [1, 2, 3], nested: { ok: true }, text: 'héllo' };
    const res = await fetch(`${gw.http}/hono/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ got: body, type: 'application/json' });
  });

  it('sees the client\'s headers, the full URL and the query string', async () => {
    const res = await fetch(`${gw.http}/hono/headers?q=find+me`, { headers: { 'x-custom': 'from the client', 'user-agent': 'workers-apps-test/1' } });
    expect(await res.json()).toEqual({ custom: 'from the client', agent: 'workers-apps-test/1', url: `${gw.http}/hono/headers?q=find+me`, q: 'find me' });
  });

  it('a path the app has no route for gets Hono\'s own 404, not the gateway\'s', async () => {
    const res = await fetch(`${gw.http}/hono/nowhere`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('404 Not Found');
  });

  it('streamSSE: each event reaches the client as it is written, 100 ms apart', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.http}/hono/sse?n=5`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('transfer-encoding')).toBe('chunked'); // the gateway's own framing, once
    const { text, events } = await readEvents(res, started);
    expect(events.map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((n) => JSON.stringify({ n })));
    expect(text).toMatch(/^event: tick\ndata: \{"n":0\}\nid: 0\n\n/);
    // Written 100 ms apart: buffered until the end they would arrive within a few ms of each other.
    expect(events[4]!.at - events[0]!.at).toBeGreaterThan(250);
    expect(events[1]!.at - events[0]!.at).toBeGreaterThan(40);
  });

  it('streamSSE: a client that goes away aborts the stream (stream.onAbort runs)', async () => {
    const res = await fetch(`${gw.http}/hono/sse?n=1000`);
    const { events } = await readEvents(res, Date.now(), 3);
    expect(events).toHaveLength(3);
    const aborted = await eventually(async () => /hono sse aborted after (\d+) events/.exec(gw.logs()) ?? undefined, 5000);
    expect(Number(aborted[1])).toBeLessThan(50); // stopped near where the client left, not run to 1000
  });
});

describe('an itty-router AutoRouter app deployed as a folder', () => {
  it('answers a route with a path parameter, an object returned as JSON', async () => {
    const res = await fetch(`${gw.http}/itty/hello/there`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ hello: 'there' });
  });

  it('parses a POSTed JSON body', async () => {
    const res = await fetch(`${gw.http}/itty/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,{"b":null}]}' });
    expect(await res.json()).toEqual({ got: { a: [1, { b: null }] } });
  });

  it('a path the app has no route for gets AutoRouter\'s 404 JSON', async () => {
    const res = await fetch(`${gw.http}/itty/nowhere`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ status: 404, error: 'Not Found' });
  });
});

describe('the Cloudflare Workers docs\' patterns', () => {
  it('SSE from a TransformStream returned at once and written by a task: events arrive as written', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.http}/workers/sse`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const { text, events } = await readEvents(res, started);
    expect(events.map((e) => e.data)).toEqual([0, 1, 2, 3, 4].map((i) => JSON.stringify({ i })));
    expect(text.startsWith('event: tick\ndata: {"i":0}\n\n')).toBe(true);
    // Written 150 ms apart (600 ms from the first to the last).
    expect(events[4]!.at - events[0]!.at).toBeGreaterThan(400);
    expect(events[1]!.at - events[0]!.at).toBeGreaterThan(60);
  });

  it('timeout_ms bounds the whole stream: one still going then is cut, without its final chunk', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.http}/workers/endless`);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const cut = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return false;
        text += new TextDecoder().decode(value);
      }
    })().catch((err: Error) => err);
    expect(cut).toBeInstanceOf(Error); // a cut connection, not a stream that ended
    expect(text).toContain('data: 3\n\n');
    expect(Date.now() - started).toBeGreaterThan(900);
    await eventually(async () => /"path":"\/workers\/endless".*"code":"FUNCTION_TIMEOUT"/.test(gw.logs()));
  });

  it('ctx.waitUntil(…): the answer does not wait for the log shipment, which runs on after it even as the instance is retired', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.http}/workers/log`);
    expect(await res.text()).toBe('ok');
    const answeredAfter = Date.now() - started;
    const requestId = res.headers.get('x-request-id')!;
    const line = `shipped: GET /workers/log ${requestId}`;
    expect(gw.logs()).not.toContain(line); // the shipment takes 1 s; the answer came first
    expect(answeredAfter).toBeLessThan(1000);
    // A new version retires the instance now: what keeps it until the shipment is done is waitUntil.
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.memory_mb', 160) WHERE k = 'GET:/workers/log'").run();
    // (It is retired by the new version's first call, once the gateway serves that version.)
    await eventually(async () => {
      await (await fetch(`${gw.http}/workers/log`)).text();
      return gw.instanceLog('GET:/workers/log').some((l) => l.msg === 'instance exited');
    }, 8000, 200);
    // Its output is logged by whoever sent the call (the worker, or on the direct path the gateway,
    // whose log is buffered): it must be there, and from before the instance exited (by time, not place).
    const shipped = await eventually(async () => gw.logs().split('\n').find((l) => l.includes(line)), 2000);
    const exited = gw.instanceLog('GET:/workers/log').find((l) => l.msg === 'instance exited')!;
    expect(Date.parse(JSON.parse(shipped).time as string)).toBeLessThanOrEqual(Date.parse(exited.time as string));
  });
});

describe('the examples', () => {
  it('examples/sse.mjs: an event a second, as they are produced', async () => {
    const started = Date.now();
    const res = await fetch(`${gw.http}/clock?count=3`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const { text, events } = await readEvents(res, started);
    expect(events.map((e) => JSON.parse(e.data).n)).toEqual([0, 1, 2]);
    expect(text).toMatch(/^id: 0\nevent: tick\ndata: \{"n":0,"time":"[^"]+"\}\n\n/);
    expect(events[2]!.at - events[0]!.at).toBeGreaterThan(1500);
  });

  it('examples/hono-app: its routes, the route\'s env as c.env, ctx as c.executionCtx, and its SSE', async () => {
    const hello = await fetch(`${gw.http}/api/hello?name=you`);
    expect(await hello.json()).toEqual({ greeting: 'hi, you', requestId: hello.headers.get('x-request-id') });
    const echo = await fetch(`${gw.http}/api/echo`, { method: 'POST', headers: { 'user-agent': 'curl/8' }, body: '{"x":1}' });
    expect(await echo.json()).toEqual({ got: { x: 1 }, agent: 'curl/8' });
    const started = Date.now();
    const { events } = await readEvents(await fetch(`${gw.http}/api/events`), started, 2);
    expect(events.map((e) => JSON.parse(e.data).n)).toEqual([0, 1]);
    expect(events[1]!.at - events[0]!.at).toBeGreaterThan(700);
    await eventually(async () => gw.logs().includes('the client left'));
  });
});
