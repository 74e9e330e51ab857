// The direct data path (README "Data paths"): warm node instances take calls from the gateway
// over a socket of their own, lent by their worker. What a client sees must not change: a
// timed-out call is 504 and its instance replaced, a crashed instance 502, a SIGKILLed worker
// 502, a function that writes junk on the socket cannot take the gateway down; and the worker
// still owns the instance (max_concurrency, replacement on a new version, the idle reaper).
// The suites run on both paths (FAAS_DATA_PATH=worker for the worker hop, see .ci/run); these
// cases pin the direct path on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fn, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

interface Lent { instance: string; key: string; version: number; slots: number; busy: number; open: boolean }
interface WorkerRow { id: string; pid: number; lent: Lent[]; restarts: number; available: boolean }
const workers = async (): Promise<WorkerRow[]> => (await fetch(`${gw.admin}/workers`)).json();
const lentFor = async (key: string): Promise<Lent | undefined> => (await workers()).flatMap((w) => w.lent).find((l) => l.key === key && l.open);

beforeAll(async () => {
  // Idle instances are reaped after a second (the reaper looks every 10 s); the others are kept warm.
  gw = await startGateway(['--data-path', 'direct'], { workers: 1, env: { FAAS_IDLE_TTL_MS: '1000' } });
  const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  insert.run('GET:/d/sleep', fn({ runtime: 'node', timeout_ms: 1000, min_warm: 1, code:
    'export default { async fetch(r) { const ms = Number(new URL(r.url).searchParams.get("ms")); await new Promise((ok) => setTimeout(ok, ms)); ' +
    'console.log("slept", ms); return new Response("slept " + ms, { headers: { "x-pid": String(process.pid) } }) } }' }));
  insert.run('GET:/d/exit', fn({ runtime: 'node', code:
    'export default { fetch(r) { if (new URL(r.url).searchParams.has("now")) process.exit(7); return new Response("alive") } }' }));
  insert.run('GET:/d/junk', fn({ runtime: 'node', min_warm: 1, code:
    'import fs from "node:fs"; export default { fetch(r) { const how = new URL(r.url).searchParams.get("how"); ' +
    'if (how === "length") fs.writeSync(5, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])); ' +
    'if (how === "json") { const meta = Buffer.from("{not json"); const h = Buffer.alloc(8); h.writeUInt32BE(4 + meta.length, 0); h.writeUInt32BE(meta.length, 4); fs.writeSync(5, Buffer.concat([h, meta])) } ' +
    'if (how === "forged") { const meta = Buffer.from(JSON.stringify({ t: "result", id: 1, status: 200, headers: null })); const h = Buffer.alloc(8); h.writeUInt32BE(4 + meta.length, 0); h.writeUInt32BE(meta.length, 4); fs.writeSync(5, Buffer.concat([h, meta])) } ' +
    'return new Response("written " + how) } }' }));
  insert.run('GET:/d/one', fn({ runtime: 'node', max_concurrency: 2, min_warm: 1, code:
    'export default { async fetch() { await new Promise((ok) => setTimeout(ok, 500)); return new Response("done") } }' }));
  insert.run('GET:/d/stream', fn({ runtime: 'node', min_warm: 1, code:
    'const me = crypto.randomUUID(); export default { fetch(r) { const q = new URL(r.url).searchParams; const n = Number(q.get("n")); const tag = q.get("tag"); let i = 0; ' +
    'return new Response(new ReadableStream({ async pull(c) { if (i === n) return c.close(); if (i > 0) await new Promise((ok) => setTimeout(ok, 40)); ' +
    'c.enqueue(new TextEncoder().encode(tag + " " + i++ + "\\n")) } }), { headers: { "x-instance": me } }) } }' }));
  await eventually(async () => (await fetch(`${gw.http}/d/sleep?ms=1`)).status === 200);
});
afterAll(async () => {
  await gw?.stop();
});

describe('the direct data path', () => {
  it('a warm instance is lent to the gateway, and its calls (with their output) go there', async () => {
    const lent = await eventually(() => lentFor('GET:/d/sleep'));
    expect(lent.slots).toBeGreaterThan(0);
    const res = await fetch(`${gw.http}/d/sleep?ms=5`);
    expect(await res.text()).toBe('slept 5');
    expect(res.headers.get('server-timing')).toContain('start;desc=warm');
    // The function's output reaches the log tagged with its call, as from a worker.
    const id = res.headers.get('x-request-id')!;
    await eventually(async () => gw.logs().split('\n').some((l) => l.includes('"msg":"function output"') && l.includes(id) && l.includes('slept 5')));
    expect(gw.logs()).toContain('"dataPath":"direct"');
  });

  it('a call past its timeout_ms is 504 and its instance is replaced; the next call works on a new one', async () => {
    const before = await eventually(() => lentFor('GET:/d/sleep'));
    const res = await fetch(`${gw.http}/d/sleep?ms=3000`);
    expect(res.status).toBe(504);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_TIMEOUT');
    expect(body.message).toMatch(/timeout_ms of 1000 ms; its instance was replaced/);
    await eventually(async () => gw.instanceLog('GET:/d/sleep').some((l) => l.msg === 'instance exited' && l.instance === before.instance));
    const next = await fetch(`${gw.http}/d/sleep?ms=1`);
    expect(next.status).toBe(200);
    const after = await eventually(() => lentFor('GET:/d/sleep'));
    expect(after.instance).not.toBe(before.instance);
  });

  it('an instance that dies mid-call is 502 FUNCTION_CRASHED with its exit code, and the next call works', async () => {
    expect(await (await fetch(`${gw.http}/d/exit`)).text()).toBe('alive');
    await eventually(() => lentFor('GET:/d/exit'));
    const res = await fetch(`${gw.http}/d/exit?now=1`);
    expect(res.status).toBe(502);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_CRASHED');
    expect(body.message).toMatch(/exited \(code 7\)/);
    expect(await (await fetch(`${gw.http}/d/exit`)).text()).toBe('alive');
  });

  it.each(['length', 'json', 'forged'])('a function writing junk (%s) on the socket breaks only its own instance', async (how) => {
    expect((await fetch(`${gw.http}/d/junk?how=none`)).status).toBe(200);
    await eventually(() => lentFor('GET:/d/junk'));
    const res = await fetch(`${gw.http}/d/junk?how=${how}`);
    // The call was on the socket it broke: 502, unless its own answer got through first.
    expect([200, 502]).toContain(res.status);
    if (res.status === 502) expect((await res.json()).code).toBe('FUNCTION_CRASHED');
    await eventually(async () => (await lentFor('GET:/d/junk')) === undefined || (await fetch(`${gw.http}/d/junk?how=none`)).status === 200);
    expect((await fetch(`${gw.http}/d/junk?how=none`)).status).toBe(200);
    expect((await fetch(`${gw.http}/d/sleep?ms=1`)).status).toBe(200); // the gateway is fine
  });

  it('max_concurrency holds across the instance: calls past it are refused, 503 FUNCTION_AT_CAPACITY', async () => {
    expect((await fetch(`${gw.http}/d/one`)).status).toBe(200);
    const lent = await eventually(async () => { const l = await lentFor('GET:/d/one'); return l?.slots === 2 && l; });
    expect(lent.slots).toBe(2);
    const answers = await Promise.all([0, 1, 2, 3].map(() => fetch(`${gw.http}/d/one`)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 503, 503]);
  });

  it('a new version retires the lent instance once its calls have ended: none is cut short', async () => {
    const before = await eventually(() => lentFor('GET:/d/sleep'));
    const long = fetch(`${gw.http}/d/sleep?ms=700`);
    await sleep(100);
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.memory_mb', 160) WHERE k = 'GET:/d/sleep'").run();
    await eventually(async () => (await fetch(`${gw.http}/d/sleep?ms=1`)).status === 200 && (await lentFor('GET:/d/sleep'))?.instance !== before.instance, 10_000);
    const res = await long;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('slept 700');
    await eventually(async () => gw.instanceLog('GET:/d/sleep').some((l) => l.msg === 'instance exited' && l.instance === before.instance));
  });

  it('an instance replaced mid-stream: its stream and the calls around it are each answered once, whole', async () => {
    const key = 'GET:/d/stream';
    const before = await eventually(() => lentFor(key));
    const lines = (tag: string, n: number): string => Array.from({ length: n }, (_, i) => `${tag} ${i}\n`).join('');
    const call = async (tag: string, n: number) => {
      const r = await fetch(`${gw.http}/d/stream?n=${n}&tag=${tag}`, { headers: { 'x-request-id': `dp-${tag}` } });
      return { tag, status: r.status, instance: r.headers.get('x-instance'), text: await r.text(), endedAt: Date.now() };
    };
    const long = call('long', 40); // 40 chunks 40 ms apart: ≈ 1.6 s
    await sleep(100);
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.memory_mb', 160) WHERE k = ?").run(key);
    const shorts: Array<ReturnType<typeof call>> = [];
    const replacedAt = eventually(async () => {
      shorts.push(call(`s${shorts.length}`, 2));
      const now = await lentFor(key);
      return now !== undefined && now.instance !== before.instance && Date.now();
    }, 10_000, 40);
    const [replaced, stream] = [await replacedAt, await long];
    shorts.push(call(`s${shorts.length}`, 2)); // one more, on the new instance
    const answers = await Promise.all(shorts);

    expect(stream.status).toBe(200);
    expect(stream.text).toBe(lines('long', 40));
    expect(replaced, 'the new instance was lent while the stream still ran').toBeLessThan(stream.endedAt);
    for (const a of answers) expect([a.status, a.text]).toEqual([200, lines(a.tag, 2)]);
    expect(new Set(answers.map((a) => a.instance)).size, 'short calls were answered by the old instance and the new').toBeGreaterThanOrEqual(2);
    // Each answered once: one access log line per call, once every call's line is written.
    const ids = ['long', ...answers.map((a) => a.tag)].map((tag) => `dp-${tag}`);
    await eventually(async () => ids.every((id) => gw.accessLog(id).length > 0));
    for (const id of ids) expect(gw.accessLog(id), id).toHaveLength(1);
    await eventually(async () => gw.instanceLog(key).some((l) => l.msg === 'instance exited' && l.instance === before.instance));
  });

  it('an idle lent instance is reaped by its worker (the gateway tells it of use) and the next call starts another', async () => {
    const before = await eventually(() => lentFor('GET:/d/exit'));
    await eventually(async () => gw.instanceLog('GET:/d/exit').some((l) => l.msg === 'instance exited' && l.instance === before.instance), 20_000);
    expect(await lentFor('GET:/d/exit')).toBeUndefined();
    expect(await (await fetch(`${gw.http}/d/exit`)).text()).toBe('alive');
  }, 30_000);

  it('a SIGKILLed worker: its direct calls are 502 WORKER_DIED, and the restarted worker serves', async () => {
    await eventually(() => lentFor('GET:/d/sleep'));
    const [w] = await workers();
    const call = fetch(`${gw.http}/d/sleep?ms=800`);
    await sleep(200);
    process.kill(w!.pid, 'SIGKILL');
    const res = await call;
    expect(res.status).toBe(502);
    expect((await res.json()).code).toBe('WORKER_DIED');
    await eventually(async () => (await workers()).some((x) => x.pid !== w!.pid && x.available), 15_000);
    expect(await (await fetch(`${gw.http}/d/sleep?ms=1`)).text()).toBe('slept 1');
  }, 30_000);
});

describe('--data-path worker', () => {
  it('lends nothing: every call goes through the worker', async () => {
    const other = await startGateway(['--data-path', 'worker'], { workers: 1 });
    try {
      other.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/w/hi', fn({ runtime: 'node', code: 'export default { fetch: () => new Response("hi") }' }));
      await eventually(async () => (await fetch(`${other.http}/w/hi`)).status === 200);
      await sleep(300);
      const rows = (await (await fetch(`${other.admin}/workers`)).json()) as WorkerRow[];
      expect(rows.flatMap((r) => r.lent)).toEqual([]);
      expect(other.logs()).toContain('"dataPath":"worker"');
    } finally {
      await other.stop();
    }
  });
});
