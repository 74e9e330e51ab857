// Faults a client can see: a function or worker dying mid-call (502), a function at its
// max_concurrency (503 + Retry-After), a worker busy with a long call or gone silent (avoided),
// a hung worker (found by health pings, its calls failed, replaced), a deleted socket file,
// a row the gateway cannot use (the last good config keeps serving).
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fn, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

interface WorkerRow { id: string; pid: number; inFlight: number; available: boolean; restarts: number; socket: string | null }
const workers = async (): Promise<WorkerRow[]> => (await fetch(`${gw.admin}/workers`)).json();

beforeAll(async () => {
  gw = await startGateway([], { workers: 2 });
  const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  insert.run('GET:/exit', fn({ runtime: 'node', code: 'export default { fetch() { process.exit(3) } }' }));
  insert.run('GET:/sleep', fn({ runtime: 'node', code:
    'export default { async fetch(r) { await new Promise((ok) => setTimeout(ok, Number(new URL(r.url).searchParams.get("ms")))); return new Response("slept") } }' }));
  insert.run('GET:/spin', fn({ runtime: 'node', code:
    'export default { fetch(r) { const end = Date.now() + Number(new URL(r.url).searchParams.get("ms")); while (Date.now() < end); return new Response("spun") } }' }));
  insert.run('GET:/one-at-a-time', fn({ runtime: 'node', max_concurrency: 1, code:
    'export default { async fetch() { await new Promise((ok) => setTimeout(ok, 400)); return new Response("done") } }' }));
  await eventually(async () => (await fetch(`${gw.http}/sleep?ms=1`)).status === 200);
});
afterAll(async () => {
  await gw?.stop();
});

describe('faults', () => {
  it('502 FUNCTION_CRASHED when the function process dies, and the next call works', async () => {
    const res = await fetch(`${gw.http}/exit`);
    expect(res.status).toBe(502);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_CRASHED');
    expect(body.message).toMatch(/exited \(code 3\)/);
    expect((await fetch(`${gw.http}/sleep?ms=1`)).status).toBe(200);
  });

  it('502 WORKER_DIED at once for the calls of a worker killed mid-call', async () => {
    const call = fetch(`${gw.http}/sleep?ms=5000`);
    const busy = await eventually(async () => (await workers()).find((w) => w.inFlight > 0));
    const killedAt = Date.now();
    process.kill(busy.pid, 'SIGKILL');
    const res = await call;
    expect(res.status).toBe(502);
    expect(res.headers.get('x-faas-worker')).toBe(busy.id);
    expect((await res.json()).code).toBe('WORKER_DIED');
    expect(Date.now() - killedAt).toBeLessThan(1000);
    await eventually(async () => (await workers()).every((w) => w.available), 10_000);
  });

  it('503 FUNCTION_AT_CAPACITY with Retry-After only once max_concurrency is reached on every worker', async () => {
    const replies = await Promise.all(Array.from({ length: 5 }, () => fetch(`${gw.http}/one-at-a-time`)));
    const served = replies.filter((r) => r.status === 200);
    expect(new Set(served.map((r) => r.headers.get('x-faas-worker'))).size).toBe(2); // one call on each worker
    expect(served.length).toBe(2);
    const refused = replies.filter((r) => r.status === 503);
    expect(refused.length).toBe(3);
    for (const r of refused) {
      expect(r.headers.get('retry-after')).toBe('1');
      expect((await r.json()).code).toBe('FUNCTION_AT_CAPACITY');
    }
  });

  // With --policy lowest-score (the C original) none of them went elsewhere here; round-robin, half.
  it('while one worker runs a long CPU-bound call, at least 90 % of light calls go elsewhere', async () => {
    await fetch(`${gw.http}/spin?ms=1`); // started where it will run
    const long = fetch(`${gw.http}/spin?ms=3000`);
    const busy = await eventually(async () => (await workers()).find((w) => w.inFlight > 0), 2000);
    const served: string[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await fetch(`${gw.http}/sleep?ms=1`);
      expect(r.status).toBe(200);
      served.push(r.headers.get('x-faas-worker')!);
    }
    expect((await long).status).toBe(200);
    expect(served.filter((id) => id !== busy.id).length / served.length).toBeGreaterThanOrEqual(0.9);
  });

  it('a worker that stops reporting gets no calls within 1.5 s', async () => {
    const [silent] = await workers();
    process.kill(silent!.pid, 'SIGSTOP');
    try {
      await sleep(1500);
      for (let i = 0; i < 10; i++) {
        const r = await fetch(`${gw.http}/sleep?ms=1`);
        expect(r.status).toBe(200);
        expect(r.headers.get('x-faas-worker')).not.toBe(silent!.id);
      }
      expect((await workers()).find((w) => w.id === silent!.id)!.available).toBe(false);
    } finally {
      process.kill(silent!.pid, 'SIGCONT');
    }
    await eventually(async () => (await workers()).every((w) => w.available), 5000);
  });

  it('a hung worker (SIGSTOP) is found by its health pings: its call gets 502 and it is replaced', async () => {
    const call = fetch(`${gw.http}/sleep?ms=20000`);
    const busy = await eventually(async () => (await workers()).find((w) => w.inFlight > 0));
    const stoppedAt = Date.now();
    process.kill(busy.pid, 'SIGSTOP');
    try {
      const res = await call;
      expect(res.status).toBe(502);
      const body = await res.json();
      expect(body.code).toBe('WORKER_DIED');
      expect(body.message).toMatch(/answered no health ping for \d+ s \(hung\)/);
      expect(Date.now() - stoppedAt).toBeLessThan(13_000); // HUNG_AFTER_MS (10 s) plus a ping period or two
    } finally {
      try {
        process.kill(busy.pid, 'SIGCONT'); // gone already if the fix works
      } catch { /* killed */ }
    }
    const replaced = await eventually(async () => (await workers()).find((w) => w.id === busy.id && w.pid !== busy.pid && w.available), 10_000);
    expect(replaced.restarts).toBeGreaterThan(busy.restarts);
    expect(gw.logs()).toContain('"msg":"worker hung; killed"');
  }, 30_000);

  it('no worker reporting: 503 NO_WORKER_AVAILABLE with Retry-After, /readyz says so, and both recover', async () => {
    const all = await workers();
    for (const w of all) process.kill(w.pid, 'SIGSTOP');
    try {
      await sleep(1500); // two report periods: both are stale (a call sent before would wait on a stopped worker)
      const res = await fetch(`${gw.http}/sleep?ms=1`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect((await res.json()).code).toBe('NO_WORKER_AVAILABLE');
      const ready = await fetch(`${gw.admin}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ ready: false, reasons: ['no worker is connected and reporting'], workers: { up: 0, known: 2 } });
    } finally {
      for (const w of all) process.kill(w.pid, 'SIGCONT');
    }
    await eventually(async () => (await fetch(`${gw.admin}/readyz`)).status === 200, 5000);
    expect((await fetch(`${gw.http}/sleep?ms=1`)).status).toBe(200);
  });

  it('a worker whose socket file is deleted listens on it again, and keeps serving', async () => {
    const w = await eventually(async () => (await workers()).find((x) => x.available && x.socket));
    const socket = w.socket!;
    const inode = fs.statSync(socket).ino;
    fs.rmSync(socket);
    const back = await eventually(async () => fs.existsSync(socket) && fs.statSync(socket).ino !== inode, 3000);
    expect(back).toBe(true);
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(socket, () => {
        c.destroy();
        resolve();
      });
      c.on('error', reject);
    });
    expect(gw.logs()).toContain('socket file removed or replaced; listening on it again');
    expect((await fetch(`${gw.http}/sleep?ms=1`)).status).toBe(200);
  });

  it('a row the gateway cannot use keeps the last good config and shows why at /routes', async () => {
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.path', '/nonexistent/fn.js', '$.code', NULL) WHERE k = 'GET:/hello'").run();
    const route = await eventually(async () => {
      const routes = (await (await fetch(`${gw.admin}/routes`)).json()).routes as Array<{ key: string; state: string; error?: string }>;
      return routes.find((r) => r.key === 'GET:/hello' && r.state === 'stale');
    });
    expect(route.error).toContain('/nonexistent/fn.js');
    const res = await fetch(`${gw.http}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello from faas\n');
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_config_errors 1$/m);
  });
});
