// Async invocations (README "Async invocations"): the 202 and its status URL through to the
// function's answer, retries with the attempt number the function sees, dead letters and their
// retry on the admin API, callbacks to a local HTTP server (and the URLs refused), and 1000 calls
// accepted in a burst surviving a SIGKILL of the gateway: all run after the restart, none twice
// under the same attempt number.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invocationsDbPath } from '../../src/routes/invocation-store.js';
import { deploy, eventually, sleep, startGateway, type Gateway } from './harness.js';

/** Says what it ran as (the invocation and attempt) in its log and its answer. */
const ECHO = `export default { async fetch(request) {
  const id = request.headers.get('x-faas-invocation-id');
  const attempt = request.headers.get('x-faas-attempt');
  console.log('RAN ' + id + ' ' + attempt);
  const wait = Number(new URL(request.url).searchParams.get('sleep') ?? 0);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  return Response.json({ id, attempt: attempt === null ? null : Number(attempt), body: await request.text(),
    invocationType: request.headers.get('x-faas-invocation-type') }, { status: 201, headers: { 'x-answer': 'yes' } });
} }`;
/** 503 for the first ?fail= attempts, then 200. */
const FLAKY = `export default { async fetch(request) {
  const attempt = Number(request.headers.get('x-faas-attempt'));
  console.log('RAN ' + request.headers.get('x-faas-invocation-id') + ' ' + attempt);
  const fail = Number(new URL(request.url).searchParams.get('fail') ?? 0);
  return attempt <= fail ? new Response('not yet', { status: 503 }) : new Response('done at ' + attempt);
} }`;
const BROKEN = "export default { fetch() { return new Response('broken', { status: 500 }) } }";
const FIXED = "export default { fetch(request) { return new Response('fixed at ' + request.headers.get('x-faas-attempt')) } }";

const EVENT = { 'x-faas-invocation-type': 'Event' };

let gw: Gateway;

/** An async call's 202; returns its id and status URL. */
async function callAsync(g: Gateway, route: string, init: RequestInit = {}): Promise<{ id: string; location: string }> {
  const res = await fetch(`${g.http}${route}`, { method: 'POST', ...init, headers: { ...EVENT, ...(init.headers as Record<string, string>) } });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(202);
  expect(res.headers.get('location')).toBe(`/.faas/invocations/${body.invocationId}`);
  expect(body.status).toBe(res.headers.get('location'));
  expect(body.invocationId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  return { id: body.invocationId, location: body.status };
}

async function statusOf(g: Gateway, id: string): Promise<Record<string, any>> {
  const res = await fetch(`${g.http}/.faas/invocations/${id}`);
  expect(res.status).toBe(200);
  return res.json();
}

/** Waits until the invocation is in one of `states`. */
function until(g: Gateway, id: string, states: string[], timeoutMs = 20_000): Promise<Record<string, any>> {
  return eventually(async () => {
    const s = await statusOf(g, id);
    return states.includes(s.state) ? s : undefined;
  }, timeoutMs, 50);
}

/** Every `RAN id attempt` a function printed, from a gateway's log: id → attempts, in order. */
function runs(logs: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of logs.matchAll(/"text":"RAN ([A-Za-z0-9_-]{22}) (\d+)"/g)) {
    const list = out.get(m[1]!) ?? [];
    list.push(Number(m[2]));
    out.set(m[1]!, list);
  }
  return out;
}

beforeAll(async () => {
  gw = await startGateway();
  await deploy(gw, 'POST:/async/echo', { runtime: 'node', code: ECHO });
  await deploy(gw, 'POST:/async/flaky', { runtime: 'node', code: FLAKY, async: { retries: 3, backoff_ms: 50 } });
  await deploy(gw, 'POST:/async/broken', { runtime: 'node', code: BROKEN, async: { retries: 1, backoff_ms: 50 } });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

describe('async invocations', () => {
  it('answers 202 with the status URL, which goes from queued to succeeded with the function\'s answer', async () => {
    const { id } = await callAsync(gw, '/async/echo?sleep=300', { body: 'hello async' });
    const early = await statusOf(gw, id);
    expect(['queued', 'running']).toContain(early.state);
    expect(early.route).toBe('POST:/async/echo');
    const done = await until(gw, id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ invocationId: id, state: 'succeeded', attempts: 1, error: null });
    expect(done.result.status).toBe(201);
    expect(done.result.headers['x-answer']).toBe('yes');
    expect(JSON.parse(done.result.body)).toEqual({ id, attempt: 1, body: 'hello async', invocationType: null });
    expect(done.result).toMatchObject({ isBase64Encoded: false, truncated: false });

    // Prefer: respond-async (RFC 7240) asks the same.
    const res = await fetch(`${gw.http}/async/echo`, { method: 'POST', headers: { prefer: 'wait=5, respond-async' }, body: 'x' });
    expect(res.status).toBe(202);
    expect((await until(gw, (await res.json()).invocationId, ['succeeded'])).result.status).toBe(201);

    // A body that arrives in many reads is stored whole.
    const big = 'x'.repeat(300 * 1024);
    const large = await callAsync(gw, '/async/echo', { body: big });
    const stored = await until(gw, large.id, ['succeeded', 'failed']);
    expect(JSON.parse(stored.result.body).body.length).toBe(big.length);

    // The admin port shows the same invocation.
    const admin = await (await fetch(`${gw.admin}/api/v1/invocations/${id}`)).json();
    expect(admin).toMatchObject({ invocationId: id, state: 'succeeded', attempts: 1 });
  });

  it('404s an unknown id, 405s another method; a sync call never sees the attempt headers a client sends', async () => {
    const unknown = await fetch(`${gw.http}/.faas/invocations/AAAAAAAAAAAAAAAAAAAAAA`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).code).toBe('INVOCATION_NOT_FOUND');
    expect((await fetch(`${gw.http}/.faas/invocations/nope`)).status).toBe(404);
    const post = await fetch(`${gw.http}/.faas/invocations/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');

    const sync = await fetch(`${gw.http}/async/echo`, { method: 'POST', headers: { 'x-faas-attempt': '7', 'x-faas-invocation-id': 'forged' } });
    expect(sync.status).toBe(201);
    expect(await sync.json()).toMatchObject({ id: null, attempt: null });
    const bad = await fetch(`${gw.http}/async/echo`, { method: 'POST', headers: { 'x-faas-invocation-type': 'Later' } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('BAD_REQUEST');
    const requestResponse = await fetch(`${gw.http}/async/echo`, { method: 'POST', headers: { 'x-faas-invocation-type': 'RequestResponse' } });
    expect(requestResponse.status).toBe(201);
  });

  it('retries 5xx answers with backoff, each attempt numbered for the function, and counts the retries', async () => {
    const { id } = await callAsync(gw, '/async/flaky?fail=2');
    const done = await until(gw, id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ state: 'succeeded', attempts: 3 });
    expect(done.result).toMatchObject({ status: 200, body: 'done at 3' });
    expect(done.error).toEqual({ code: 'FUNCTION_STATUS', message: 'the function answered 503' }); // the last failure is kept
    await eventually(async () => runs(gw.logs()).get(id)?.length === 3);
    expect(runs(gw.logs()).get(id)).toEqual([1, 2, 3]);
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(Number(/^faas_async_retries_total\{route="POST:\/async\/flaky"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^faas_async_queue_depth\{route="POST:\/async\/flaky"\} 0/m);
  });

  it('keeps a call whose retries are spent as a dead letter, which the admin API lists and retries', async () => {
    const { id } = await callAsync(gw, '/async/broken', { body: 'keep me' });
    const failed = await until(gw, id, ['failed', 'succeeded']);
    expect(failed).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'FUNCTION_STATUS', message: 'the function answered 500' } });
    expect(failed.result).toMatchObject({ status: 500, body: 'broken' });

    const list = await (await fetch(`${gw.admin}/api/v1/invocations?state=failed&route=${encodeURIComponent('POST:/async/broken')}`)).json();
    expect(list.invocations.map((i: { invocationId: string }) => i.invocationId)).toContain(id);
    expect((await (await fetch(`${gw.admin}/metrics`)).text())).toMatch(/^faas_async_dead_letters_total\{route="POST:\/async\/broken"\} [1-9]/m);

    // Only a failed one can be retried.
    const ok = await callAsync(gw, '/async/echo');
    await until(gw, ok.id, ['succeeded']);
    const refused = await fetch(`${gw.admin}/api/v1/invocations/${ok.id}/retry`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect((await refused.json()).code).toBe('INVOCATION_NOT_RETRYABLE');
    expect((await fetch(`${gw.admin}/api/v1/invocations/AAAAAAAAAAAAAAAAAAAAAA/retry`, { method: 'POST' })).status).toBe(404);

    // Fixed by the operator, retried: one more attempt, its number going on from the last.
    gw.sql().prepare("UPDATE functions SET v = json_set(v, '$.code', ?) WHERE k = 'POST:/async/broken'").run(FIXED);
    await eventually(async () => (await (await fetch(`${gw.http}/async/broken`, { method: 'POST' })).text()).startsWith('fixed'));
    const retried = await fetch(`${gw.admin}/api/v1/invocations/${id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    const done = await until(gw, id, ['succeeded', 'failed']);
    expect(done).toMatchObject({ state: 'succeeded', attempts: 3, result: { status: 200, body: 'fixed at 3' } });
  });

  it('POSTs the answer to X-Callback-Url (OpenFaaS style), and refuses other schemes and the gateway\'s own ports', async () => {
    const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    let failFirst = true;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        if (failFirst) { // the first delivery is refused: the gateway tries again
          failFirst = false;
          res.writeHead(503).end();
          return;
        }
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const { id } = await callAsync(gw, '/async/echo', { headers: { 'x-callback-url': url }, body: 'call me back' });
      await eventually(async () => received.length > 0, 15_000);
      expect(received[0]!.headers).toMatchObject({ 'x-function-status': '201', 'x-call-id': id, 'x-faas-invocation-id': id, 'x-faas-state': 'succeeded',
        'x-function-name': 'POST:/async/echo', 'content-type': 'application/json' });
      expect(JSON.parse(received[0]!.body)).toMatchObject({ id, attempt: 1, body: 'call me back' });
      const s = await eventually(async () => {
        const v = await statusOf(gw, id);
        return v.callback?.state === 'delivered' ? v : undefined;
      });
      expect(s.callback).toMatchObject({ url, state: 'delivered', attempts: 2 });
    } finally {
      server.close();
    }

    const own = [new URL(gw.http).port, new URL(gw.admin).port];
    for (const target of ['ftp://127.0.0.1/x', 'file:///etc/passwd', 'not a url', `http://127.0.0.1:${own[0]}/async/echo`,
      `http://localhost:${own[1]}/api/v1/invocations`, `http://[::1]:${own[0]}/`]) {
      const res = await fetch(`${gw.http}/async/echo`, { method: 'POST', headers: { ...EVENT, 'x-callback-url': target } });
      expect(res.status, target).toBe(400);
      expect((await res.json()).code).toBe('CALLBACK_URL_INVALID');
    }
  });
});

describe('async invocations across a SIGKILL of the gateway', () => {
  it('runs every one of 1000 calls accepted in a burst, none twice under the same attempt number', async () => {
    const first = await startGateway([], { workers: 2 });
    let second: Gateway | undefined;
    try {
      await deploy(first, 'POST:/burst', { runtime: 'node', code: ECHO, async: { concurrency: 8, retries: 5, backoff_ms: 100 } });
      const ids: string[] = [];
      // 1000 at once, over as many connections as the client opens.
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
        fetch(`${first.http}/burst?sleep=20`, { method: 'POST', headers: EVENT, body: `n=${i}` }).then(async (r) => ({ status: r.status, body: await r.json() }))));
      for (const a of answers) {
        expect(a.status, JSON.stringify(a.body)).toBe(202);
        ids.push(a.body.invocationId);
      }
      expect(new Set(ids).size).toBe(1000);
      const acceptMs = performance.now() - t0;
      // Killed while most wait and some run: nothing gets to finish or write.
      const exited = new Promise((r) => first.proc.once('exit', r));
      first.proc.kill('SIGKILL');
      await exited;
      const queue = new Database(invocationsDbPath(first.dbPath), { readonly: true });
      const before = queue.prepare('SELECT state, count(*) AS n FROM invocations GROUP BY state').all() as Array<{ state: string; n: number }>;
      queue.close();
      expect(before.reduce((n, r) => n + r.n, 0)).toBe(1000); // all 1000 on disk before their 202
      expect(before.find((r) => r.state === 'queued')?.n ?? 0).toBeGreaterThan(0); // the kill came before the end

      await sleep(500); // its workers see the gateway gone and exit
      second = await startGateway([], { workers: 2, dir: first.dir });
      const g = second;
      const states = await eventually(async () => {
        const db = new Database(invocationsDbPath(g.dbPath), { readonly: true });
        try {
          const rows = db.prepare('SELECT id, state, attempts, result_body FROM invocations').all() as Array<{ id: string; state: string; attempts: number; result_body: Buffer | null }>;
          return rows.every((r) => r.state === 'succeeded' || r.state === 'failed') ? rows : undefined;
        } finally {
          db.close();
        }
      }, 90_000, 500).catch(async (err) => {
        throw new Error(`${String(err)}; ${JSON.stringify(await (await fetch(`${g.admin}/metrics`)).text().then((t) => t.split('\n').filter((l) => l.startsWith('faas_async'))))}`);
      });
      expect(states.length).toBe(1000);
      expect(states.filter((r) => r.state !== 'succeeded')).toEqual([]);
      // Those cut short by the kill ran again, under attempt 2 (or later).
      const runningAtKill = before.find((r) => r.state === 'running')?.n ?? 0;
      expect(states.filter((r) => r.attempts > 1).length).toBeGreaterThanOrEqual(runningAtKill);
      for (const r of states) {
        const answer = JSON.parse(r.result_body!.toString());
        expect(answer.id).toBe(r.id); // each ran as itself
        expect(answer.attempt).toBe(r.attempts);
      }
      // What the functions printed, both gateways: an invocation run more than once ran under
      // increasing attempt numbers, never the same one twice. (The killed gateway's last 100 ms
      // of log may be lost: a run missing here is not an error, a repeated attempt is.)
      const ran = runs(first.logs() + second.logs());
      let twice = 0;
      for (const id of ids) {
        const attempts = ran.get(id) ?? [];
        expect(new Set(attempts).size, `${id} ran as attempts ${attempts.join(', ')}`).toBe(attempts.length);
        if (attempts.length > 1) twice++;
      }
      expect(second.logs()).toMatch(/async invocations queued/);
      console.log(`burst: 1000 accepted in ${acceptMs.toFixed(0)} ms; ${before.map((r) => `${r.n} ${r.state}`).join(', ')} at the kill; ${twice} ran more than once (each with a new attempt number)`);
    } finally {
      await second?.stop(); // removes the folder the two shared
      if (!second) await first.stop();
    }
  }, 180_000);
});
