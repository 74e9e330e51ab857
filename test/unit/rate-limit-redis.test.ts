// The cluster's token bucket (src/http/rate-limit-redis.ts) against a real redis-server: the Lua
// take, its TTL, two limiters as two nodes sharing one limit, and the local fallback at each
// node's share while Redis is killed or hangs.
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/config.js';
import { RateLimiter, type Verdict } from '../../src/http/rate-limit.js';
import { ClusterRateLimiter, NODES_BEFORE_FIRST_COUNT, TAKE_TIMEOUT_MS } from '../../src/http/rate-limit-redis.js';
import { parseRedisUrl, redactRedisUrl } from '../../src/http/redis-url.js';
import type { LogFields } from '../../src/protocol/log.js';
import { eventually, sleep } from '../integration/harness.js';
import { freePort, NO_REDIS, startRedis, type RedisServer } from '../integration/redis-server.js';

const header = (v: Verdict, name: string): string | undefined => v.headers.find(([k]) => k === name)?.[1];

describe('--cluster-redis URL', () => {
  it('takes redis://, rediss:// and unix:// URLs, and says the rule, never the password, for anything else', () => {
    for (const ok of ['redis://127.0.0.1', 'redis://:s3cret@redis.internal:6380/2', 'rediss://user:pw@[::1]:6379', 'unix:///run/redis/redis.sock']) {
      expect(parseRedisUrl(ok)).toEqual({ value: ok });
    }
    expect(loadGatewayConfig(['--cluster-redis', 'redis://10.0.0.5:6379/1'], {}).clusterRedis).toBe('redis://10.0.0.5:6379/1');
    expect(loadGatewayConfig([], {}).clusterRedis).toBeUndefined();
    expect(loadGatewayConfig([], { FAAS_CLUSTER_REDIS: 'unix:///tmp/r.sock' }).clusterRedis).toBe('unix:///tmp/r.sock');
    const problem = (raw: string): string => {
      try {
        loadGatewayConfig(['--cluster-redis', raw], {});
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(problem('http://:hunter2@redis:6379')).toMatch(/--cluster-redis must be a Redis URL \(scheme redis, rediss or unix\): redis:\/\/\[\[user\]:password@\]host/);
    expect(problem('http://:hunter2@redis:6379')).not.toContain('hunter2');
    expect(problem('http://:hunter2@redis:6379')).toContain('(got "http://:***@redis:6379/")');
    expect(problem('redis:6379')).toMatch(/--cluster-redis must name a host/);
    expect(problem('redis://h/db')).toMatch(/database number/);
    expect(problem('redis://h?password=x')).toMatch(/without \?query/);
    expect(problem('unix://host/run/r.sock')).toMatch(/absolute path/);
    expect(problem('localhost:6379')).toMatch(/must be a Redis URL/);
    expect(redactRedisUrl('redis://ops:p%40ss@h:1/0')).toBe('redis://ops:***@h:1/0');
    expect(redactRedisUrl('redis://h:1')).toBe('redis://h:1');
  });
});

describe.skipIf(NO_REDIS !== undefined)(`ClusterRateLimiter against redis-server${NO_REDIS ? ` (skipped: ${NO_REDIS})` : ''}`, () => {
  let redis: RedisServer;
  let raw: Redis;
  const limiters: ClusterRateLimiter[] = [];
  const logs: LogFields[] = [];
  const limiter = async (nodeId: string, url = redis.url, local?: RateLimiter): Promise<ClusterRateLimiter> => {
    const l = new ClusterRateLimiter({ url, nodeId, log: (f) => logs.push({ node: nodeId, ...f }), ...(local && { local }) });
    limiters.push(l);
    await l.ready(2000);
    return l;
  };

  beforeAll(async () => {
    redis = await startRedis();
    raw = new Redis({ path: new URL(redis.url).pathname, lazyConnect: true });
    raw.on('error', () => {}); // while the test has Redis killed
    await raw.connect();
  });
  afterEach(async () => {
    for (const l of limiters.splice(0)) await l.close();
    redis.resume();
    await redis.start(); // if a test left it killed
    await raw.flushall();
  });
  afterAll(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('lets a burst through, then refuses, with the same headers as the local bucket', async () => {
    const node = await limiter('a');
    expect(node.reachable).toBe(true);
    const limit = { rps: 0.5, burst: 3 };
    const local = new RateLimiter(100, () => 1000); // a stopped clock: what Redis does within these few ms
    for (let i = 0; i < 5; i++) {
      const fromRedis = await node.take('GET:/a', 'ip 1.2.3.4', limit);
      expect(fromRedis).toEqual(local.take('GET:/a', 'ip 1.2.3.4', limit));
    }
    const refused = await node.take('GET:/a', 'ip 1.2.3.4', limit);
    expect(refused.allowed).toBe(false);
    expect(header(refused, 'retry-after')).toBe('2');
    expect(header(refused, 'ratelimit-policy')).toBe('"burst";q=3;w=6');
    // Per route and client.
    expect((await node.take('GET:/a', 'ip 5.6.7.8', limit)).allowed).toBe(true);
    expect((await node.take('GET:/b', 'ip 1.2.3.4', limit)).allowed).toBe(true);
    expect(node.redisTakes).toBe(8);
    expect(node.fallbackTakes).toBe(0);
  });

  it('refills at rps, by Redis time, up to burst', async () => {
    const node = await limiter('a');
    const limit = { rps: 20, burst: 2 };
    const allowed = async (n: number): Promise<boolean[]> => {
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push((await node.take('GET:/r', 'ip 1', limit)).allowed);
      return out;
    };
    expect(await allowed(3)).toEqual([true, true, false]);
    await sleep(60); // one token (50 ms each), and a bit
    expect(await allowed(2)).toEqual([true, false]);
    await sleep(500); // ten tokens' time: capped at the burst
    expect(await allowed(3)).toEqual([true, true, false]);
  });

  it('expires a bucket when it would be full again, so Redis holds only recent clients', async () => {
    const node = await limiter('a');
    const key = 'faas:rl:GET:/t\nip 1';
    await node.take('GET:/t', 'ip 1', { rps: 2, burst: 4 }); // 3 left: full again in 500 ms
    const first = await raw.pttl(key);
    expect(first).toBeGreaterThan(400);
    expect(first).toBeLessThanOrEqual(500);
    for (let i = 0; i < 3; i++) await node.take('GET:/t', 'ip 1', { rps: 2, burst: 4 }); // empty: full in 2 s
    expect(await raw.pttl(key)).toBeGreaterThan(1900);
    expect(await raw.pttl(key)).toBeLessThanOrEqual(2000);
    await node.take('GET:/u', 'ip 1', { rps: 50, burst: 1 }); // full again in 20 ms
    await sleep(80);
    expect(await raw.exists('faas:rl:GET:/u\nip 1')).toBe(0);
  });

  it('shares one limit between two nodes, and counts them', async () => {
    const a = await limiter('a');
    const b = await limiter('b');
    await eventually(async () => a.nodes === 2 && b.nodes === 2, 3000);
    const limit = { rps: 10, burst: 10 };
    const started = performance.now();
    let accepted = 0;
    while (performance.now() - started < 1000) {
      const [x, y] = await Promise.all([a.take('GET:/s', 'ip 1', limit), b.take('GET:/s', 'ip 1', limit)]);
      accepted += Number(x.allowed) + Number(y.allowed);
      await sleep(5);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(accepted).toBeLessThanOrEqual(10 + 10 * seconds + 1);
    expect(accepted).toBeGreaterThanOrEqual(10 + 10 * seconds - 2);
    // A node that leaves is no longer counted.
    await b.close();
    await eventually(async () => a.nodes === 1, 3000);
  });

  it('falls back to a local bucket at its share while Redis is killed, and goes back to Redis when it returns', async () => {
    const a = await limiter('a');
    await limiter('b');
    await eventually(async () => a.nodes === 2, 3000);
    await redis.kill();
    const limit = { rps: 0.1, burst: 10 };
    const verdicts: Verdict[] = [];
    for (let i = 0; i < 7; i++) verdicts.push(await a.take('GET:/f', 'ip 1', limit));
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, true, true, false, false]); // 10 / 2 nodes
    expect(header(verdicts[0]!, 'ratelimit-policy')).toBe('"burst";q=5;w=100');
    expect(a.reachable).toBe(false);
    expect(a.fallbackTakes).toBe(7);
    expect(a.redisErrors).toBeGreaterThanOrEqual(1);
    expect(a.warnings()).toEqual([expect.stringMatching(/^cluster Redis unix:\/\/.*redis\.sock unreachable since .*each at 1\/2 of the route's limit$/)]);
    expect(logs.some((l) => l.node === 'a' && l.level === 'warn' && /cluster Redis unreachable/.test(l.msg))).toBe(true);

    await redis.start();
    await eventually(async () => a.reachable, 5000);
    expect(a.warnings()).toEqual([]);
    const before = a.redisTakes;
    expect((await a.take('GET:/f', 'ip 1', limit)).allowed).toBe(true); // Redis's bucket: it lost the old one, full again
    expect(a.redisTakes).toBe(before + 1);
    expect(logs.some((l) => l.node === 'a' && /cluster Redis reachable: rate limits are cluster-wide again/.test(l.msg))).toBe(true);
  });

  it('answers from the local bucket within the timeout when Redis hangs', async () => {
    const a = await limiter('a');
    redis.pause();
    try {
      const started = performance.now();
      const v = await a.take('GET:/h', 'ip 1', { rps: 1, burst: 4 });
      const ms = performance.now() - started;
      expect(v.allowed).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(TAKE_TIMEOUT_MS - 5);
      expect(ms).toBeLessThan(TAKE_TIMEOUT_MS + 200);
      expect(a.redisErrors).toBe(1);
      // The takes after it do not wait: Redis is tried again by the next heartbeat.
      const next = performance.now();
      await a.take('GET:/h', 'ip 1', { rps: 1, burst: 4 });
      expect(performance.now() - next).toBeLessThan(10);
      expect(a.fallbackTakes).toBe(2);
    } finally {
      redis.resume();
    }
    await eventually(async () => a.reachable, 5000);
  });

  it(`assumes ${NODES_BEFORE_FIRST_COUNT} nodes before it has ever reached Redis`, async () => {
    const nowhere = `unix://${new URL(redis.url).pathname}.missing`;
    const lone = await limiter('lone', nowhere);
    expect(lone.reachable).toBe(false);
    expect(lone.nodes).toBe(NODES_BEFORE_FIRST_COUNT);
    const allowed = [];
    for (let i = 0; i < 4; i++) allowed.push((await lone.take('GET:/n', 'ip 1', { rps: 1, burst: 4 })).allowed);
    expect(allowed).toEqual([true, true, false, false]);
  });

  it('logs in with a password from the URL, and never shows it', async () => {
    const port = await freePort();
    const secured = await startRedis({ port, password: 'hunter2-secret' });
    try {
      const node = await limiter('p', secured.url);
      expect(node.reachable).toBe(true);
      expect(node.address).toBe(`redis://:***@127.0.0.1:${port}`);
      expect((await node.take('GET:/p', 'ip 1', { rps: 1, burst: 1 })).allowed).toBe(true);
      const wrong = await limiter('w', `redis://:wrong@127.0.0.1:${port}`);
      expect(wrong.reachable).toBe(false);
      expect(JSON.stringify(logs)).not.toMatch(/hunter2|:wrong@/);
    } finally {
      for (const l of limiters.splice(0)) await l.close();
      await secured.stop();
    }
  });
});
