// --cluster-redis on one host: two real gateways sharing one redis-server hold a route's
// rate_limit together (10/s, burst 10, across both); Redis killed, each serves at its share
// (half) from a local bucket and says so on /readyz and /metrics; Redis back, the takes go to
// Redis again. (The several-host version, behind HAProxy, is in cluster.test.ts.)
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, sleep, startGateway, type Gateway } from './harness.js';
import { NO_REDIS, startRedis, type RedisServer } from './redis-server.js';

const ROUTE = 'GET:/limited';
const LIMIT = { rps: 10, burst: 10 };
const ROW = JSON.stringify({ runtime: 'node', rate_limit: LIMIT, code: 'export default { fetch: () => new Response("ok") }' });
/** Calls let through beyond rps × t + burst: a take that lands as a token refills, timing at the edges. */
const TOLERANCE = 2;

/** A counter or gauge from a gateway's /metrics. */
async function metric(gw: Gateway, name: string): Promise<number> {
  const text = await (await fetch(`${gw.admin}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function readyz(gw: Gateway): Promise<{ ready: boolean; warnings: string[] }> {
  return (await fetch(`${gw.admin}/readyz`)).json();
}

/** Calls /limited on every gateway, two loops each, for `ms`: what each accepted (200) and refused (429). */
async function hammer(gws: Gateway[], ms: number): Promise<{ accepted: number[]; refused: number; seconds: number }> {
  const accepted = gws.map(() => 0);
  let refused = 0;
  const started = performance.now();
  const loop = async (i: number): Promise<void> => {
    while (performance.now() - started < ms) {
      const res = await fetch(`${gws[i]!.http}/limited`);
      await res.arrayBuffer();
      if (res.status === 200) accepted[i]!++;
      else if (res.status === 429) refused++;
      else throw new Error(`unexpected ${res.status} from gateway ${i}`);
      await sleep(5);
    }
  };
  await Promise.all(gws.flatMap((_, i) => [loop(i), loop(i)]));
  return { accepted, refused, seconds: (performance.now() - started) / 1000 };
}

describe.skipIf(NO_REDIS !== undefined)(`two gateways with --cluster-redis${NO_REDIS ? ` (skipped: ${NO_REDIS})` : ''}`, () => {
  let redis: RedisServer;
  let a: Gateway;
  let b: Gateway;

  beforeAll(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([startGateway(['--cluster-redis', redis.url], { workers: 1 }),
      startGateway(['--cluster-redis', redis.url], { workers: 1 })]);
    for (const gw of [a, b]) gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(ROUTE, ROW);
    // Served on both (the calls that find it take tokens: the bucket refills meanwhile) and counted by both.
    await eventually(async () => (await Promise.all([a, b].map((gw) => fetch(`${gw.http}/limited`)))).every((r) => r.status !== 404), 10_000);
    await eventually(async () => (await metric(a, 'faas_cluster_nodes')) === 2 && (await metric(b, 'faas_cluster_nodes')) === 2, 5000);
    await sleep(1200); // full again
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('says at start that rate limits are cluster-wide, and where', () => {
    expect(a.logs()).toMatch(/"msg":"cluster rate limits on[^"]*".*"redis":"unix:\/\/[^"]*redis\.sock"/);
  });

  it('holds the limit across both gateways: at most 10/s × t + 10 in all, and close to it', async () => {
    const takes = async (name: string): Promise<number> => (await metric(a, name)) + (await metric(b, name));
    const takesBefore = await takes('faas_rate_limit_redis_takes_total');
    const fallbackBefore = await takes('faas_rate_limit_fallback_takes_total');
    const run = await hammer([a, b], 3000);
    const total = run.accepted[0]! + run.accepted[1]!;
    const bound = LIMIT.rps * run.seconds + LIMIT.burst;
    console.log(`[cluster rate limit] ${run.seconds.toFixed(2)} s: accepted ${run.accepted.join(' + ')} = ${total} (bound ${bound.toFixed(1)}), refused ${run.refused}`);
    expect(total).toBeLessThanOrEqual(bound + TOLERANCE);
    expect(total).toBeGreaterThanOrEqual(bound - 4);
    expect(run.accepted[0]).toBeGreaterThan(0);
    expect(run.accepted[1]).toBeGreaterThan(0);
    // Every call took from Redis (a take slower than 50 ms on a loaded machine is the fallback's: counted, and rare).
    const fromRedis = (await takes('faas_rate_limit_redis_takes_total')) - takesBefore;
    const fromFallback = (await takes('faas_rate_limit_fallback_takes_total')) - fallbackBefore;
    expect(fromRedis + fromFallback).toBe(total + run.refused);
    expect(fromFallback).toBeLessThanOrEqual((total + run.refused) / 20);
  });

  it('Redis killed: each serves at its share (5/s, burst 5), counts the fallback, and warns on /readyz', async () => {
    await redis.kill();
    for (const gw of [a, b]) {
      await eventually(async () => (await readyz(gw)).warnings.some((w) => /cluster Redis .* unreachable/.test(w)), 5000);
      const ready = await readyz(gw);
      expect(ready.ready).toBe(true);
      expect(ready.warnings.find((w) => w.includes('cluster Redis'))).toMatch(/each at 1\/2 of the route's limit/);
      expect(await metric(gw, 'faas_cluster_redis_up')).toBe(0);
    }
    const run = await hammer([a, b], 3000);
    const share = (LIMIT.rps / 2) * run.seconds + LIMIT.burst / 2;
    console.log(`[cluster rate limit] Redis away, ${run.seconds.toFixed(2)} s: accepted ${run.accepted.join(' and ')} (share ${share.toFixed(1)} each)`);
    for (const n of run.accepted) {
      expect(n).toBeLessThanOrEqual(share + TOLERANCE);
      expect(n).toBeGreaterThanOrEqual(share - 3);
    }
    for (const gw of [a, b]) expect(await metric(gw, 'faas_rate_limit_fallback_takes_total')).toBeGreaterThanOrEqual(run.accepted[0]!);
    expect((await metric(a, 'faas_rate_limit_redis_errors_total')) + (await metric(b, 'faas_rate_limit_redis_errors_total'))).toBeGreaterThanOrEqual(2);
    expect(a.logs()).toMatch(/"level":"warn".*"msg":"cluster Redis unreachable/);
  });

  it('Redis back: the takes go to Redis again and the warning is gone', async () => {
    await redis.start();
    for (const gw of [a, b]) {
      await eventually(async () => (await metric(gw, 'faas_cluster_redis_up')) === 1, 5000);
      expect((await readyz(gw)).warnings.filter((w) => w.includes('cluster Redis'))).toEqual([]);
      const before = await metric(gw, 'faas_rate_limit_redis_takes_total');
      const fallbackBefore = await metric(gw, 'faas_rate_limit_fallback_takes_total');
      expect([200, 429]).toContain((await fetch(`${gw.http}/limited`)).status);
      expect(await metric(gw, 'faas_rate_limit_redis_takes_total')).toBe(before + 1);
      expect(await metric(gw, 'faas_rate_limit_fallback_takes_total')).toBe(fallbackBefore);
    }
    // The gateway's log is buffered: the line comes within its flush interval.
    await eventually(async () => /"msg":"cluster Redis reachable: rate limits are cluster-wide again/.test(a.logs()), 3000);
  });

  it('reads a body while the take is in Redis: calls get theirs whole, a refused one gets 429 and its connection stays usable', async () => {
    a.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('POST:/sized', JSON.stringify({ runtime: 'node', rate_limit: { rps: 0.1, burst: 2 },
      code: 'export default { async fetch(req) { return new Response(String((await req.arrayBuffer()).byteLength)) } }' }));
    // Served once /routes says so: a call to find out would take a token.
    await eventually(async () => JSON.stringify(await (await fetch(`${a.admin}/routes`)).json()).includes('"key":"POST:/sized","state":"ok"'), 5000);
    const post = async (bytes: number): Promise<string> => {
      const res = await fetch(`${a.http}/sized`, { method: 'POST', body: Buffer.alloc(bytes, 120) });
      return `${res.status} ${res.status === 200 ? await res.text() : (await res.json()).code}`;
    };
    expect(await post(10)).toBe('200 10');
    expect(await post(3_000_000)).toBe('200 3000000'); // many reads: the call starts with the first
    expect(await post(3_000_000)).toBe('429 RATE_LIMITED');
    expect((await fetch(`${a.http}/limited`)).status).not.toBe(404);
  });

  it('survives a client that goes away while its take waits on a hung Redis', async () => {
    redis.pause(); // the next take waits TAKE_TIMEOUT_MS, then falls back
    try {
      for (let i = 0; i < 3; i++) {
        const socket = net.connect(Number(new URL(a.http).port), '127.0.0.1');
        await new Promise((r) => socket.once('connect', r));
        socket.write('GET /limited HTTP/1.1\r\nhost: x\r\n\r\n');
        await sleep(10);
        socket.destroy();
      }
      await sleep(200);
    } finally {
      redis.resume();
    }
    expect(a.proc.exitCode).toBeNull();
    expect(a.logs()).not.toContain('request handler failed');
    expect([200, 429]).toContain((await fetch(`${a.http}/limited`)).status);
  });
});
