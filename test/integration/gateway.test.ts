// The whole path, real from end to end: HTTP → uWS gateway → SQLite route map → worker over
// a Unix stream socket → a bubblewrap sandbox → back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway(['--max-body-bytes', '65536']);
});
afterAll(async () => {
  await gw?.stop();
});

describe('demo routes on a fresh database', () => {
  it('serves a Workers-style node function with the contract headers', async () => {
    const res = await fetch(`${gw.http}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from faas\n');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-faas-worker')).toMatch(/^w[12]$/);
    expect(res.headers.get('server-timing')).toMatch(/gateway;dur=[\d.]+, function;dur=[\d.]+, start;desc=(cold|warm)/);
    // Its cold start adopted a pre-started node sandbox (inline code, default memory_mb).
    const started = gw.logs().split('\n').filter((l) => l.includes('"msg":"instance started"') && l.includes('GET:/hello#'));
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(started[0]!).prestarted).toBe(true);
  });

  it('serves a Lambda-style node function (POST /echo)', async () => {
    const res = await fetch(`${gw.http}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ a: 1 });
  });

  it('serves a python function', async () => {
    const res = await fetch(`${gw.http}/py/hello`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'from python', path: '/py/hello' });
    const started = gw.logs().split('\n').filter((l) => l.includes('"msg":"instance started"') && l.includes('GET:/py/hello#'));
    expect(JSON.parse(started[0]!).prestarted).toBe(true); // a pre-started python sandbox adopted it
  });

  it('keeps the client request id', async () => {
    const res = await fetch(`${gw.http}/hello`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123');
  });
});

describe('errors', () => {
  it('404 with a JSON body naming the key', async () => {
    const res = await fetch(`${gw.http}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: 'no function is mapped to GET:/nope' });
  });

  it('405 with Allow when the path exists for another method', async () => {
    const res = await fetch(`${gw.http}/echo`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect((await res.json()).code).toBe('METHOD_NOT_ALLOWED');
  });

  it('413 for a body over the limit, declared or streamed', async () => {
    const res = await fetch(`${gw.http}/echo`, { method: 'POST', body: Buffer.alloc(70_000, 1) });
    expect(res.status).toBe(413);
    expect((await res.json()).code).toBe('PAYLOAD_TOO_LARGE');
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(10_000));
        c.close();
      },
    });
    const chunked = await fetch(`${gw.http}/echo`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('a body under the limit arrives whole', async () => {
    const body = Buffer.alloc(60_000, 7);
    const res = await fetch(`${gw.http}/echo`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });

  it('500 FUNCTION_ERROR when the function throws, and the worker keeps serving', async () => {
    const res = await deploy(gw, 'GET:/throws', { runtime: 'node', code: 'export default { fetch() { throw new TypeError("boom") } }' });
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_ERROR');
    expect(body.message).toContain('TypeError: boom');
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
  });

  it('500 FUNCTION_RESPONSE_INVALID for a header that would split the response; reserved headers stay the gateway\'s', async () => {
    const split = await deploy(gw, 'GET:/split',
      { runtime: 'node', code: 'exports.handler = async () => ({ statusCode: 200, headers: { "x-a": "1\\r\\nx-evil: 1" }, body: "x" })' });
    expect(split.status).toBe(500);
    expect(split.headers.get('x-evil')).toBeNull();
    const body = await split.json();
    expect(body.code).toBe('FUNCTION_RESPONSE_INVALID');
    expect(body.message).toContain('invalid value for header x-a');
    await deploy(gw, 'GET:/reserved',
      { runtime: 'node', code: 'exports.handler = async () => ({ statusCode: 201, headers: { "x-request-id": "forged", "x-faas-worker": "forged", "x-mine": "ok" }, body: "x" })' });
    const reserved = await fetch(`${gw.http}/reserved`, { headers: { 'x-request-id': 'mine' } });
    expect(reserved.status).toBe(201);
    expect(reserved.headers.get('x-request-id')).toBe('mine');
    expect(reserved.headers.get('x-faas-worker')).toMatch(/^w[12]$/);
    expect(reserved.headers.get('x-mine')).toBe('ok');
  });

  it('500 FUNCTION_ERROR naming the cause when the code does not load', async () => {
    const res = await deploy(gw, 'GET:/broken', { runtime: 'python', code: 'def handle(:\n' });
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_ERROR');
    expect(body.message).toMatch(/failed to load: .*SyntaxError/s);
  });
});

describe('the fleet', () => {
  it('spreads requests over the workers and says which one served', async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 10 && seen.size < 2; round++) {
      const replies = await Promise.all(Array.from({ length: 8 }, () => fetch(`${gw.http}/hello`)));
      for (const r of replies) {
        expect(r.status).toBe(200);
        seen.add(r.headers.get('x-faas-worker')!);
        await r.arrayBuffer();
      }
    }
    expect([...seen].sort()).toEqual(['w1', 'w2']);
  });

  it('/workers shows a fresh score for each worker', async () => {
    const workers = await (await fetch(`${gw.admin}/workers`)).json();
    expect(workers.map((w: { id: string }) => w.id).sort()).toEqual(['w1', 'w2']);
    for (const w of workers) {
      expect(w.connected).toBe(true);
      expect(w.msSinceReport).toBeLessThan(1500);
      for (const part of ['score', 'cpu', 'mem', 'io']) {
        expect(w[part]).toBeGreaterThanOrEqual(0);
        expect(w[part]).toBeLessThanOrEqual(100);
      }
      expect(w.pid).toBeGreaterThan(0);
      expect(w.socket).toContain(gw.runDir);
    }
  });

  it('a killed worker is restarted and the gateway keeps serving', async () => {
    const before = await (await fetch(`${gw.admin}/workers`)).json();
    const w1 = before.find((w: { id: string }) => w.id === 'w1');
    process.kill(w1.pid, 'SIGKILL');
    await eventually(async () => {
      const ws = await (await fetch(`${gw.admin}/workers`)).json();
      const again = ws.find((w: { id: string }) => w.id === 'w1');
      return again.pid !== w1.pid && again.available && again.restarts >= 1;
    }, 10_000);
    for (let i = 0; i < 10; i++) expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
  });

  it('admin endpoints answer', async () => {
    expect((await fetch(`${gw.admin}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.admin}/readyz`);
    expect(ready.status).toBe(200);
    expect((await ready.json()).ready).toBe(true);
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_requests_total\{route="GET:\/hello",status="200"\} \d+$/m);
    expect(metrics).toMatch(/^faas_worker_score\{worker="w1"\} [\d.]+$/m);
    expect(metrics).toMatch(/^faas_config_sync_age_seconds [\d.]+$/m);
    const routes = await (await fetch(`${gw.admin}/routes`)).json();
    expect(routes.routes.map((r: { key: string }) => r.key)).toContain('GET:/hello');
  });
});
