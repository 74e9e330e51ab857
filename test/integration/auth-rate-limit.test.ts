// API keys and rate limits on the real gateway: keys made and revoked with the `faas keys` CLI
// on the gateway's own database, routes that ask for them, and token buckets per client.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

const CLI = path.resolve('dist/src/cli/main.js');
let gw: Gateway;

function keys(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, 'keys', ...args, '--db', gw.dbPath], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Answers with the request's headers, so a test can see what the function was given. */
const SHOW_HEADERS = 'export default { async fetch(req) { return Response.json(Object.fromEntries(req.headers)) } }';
// A slow refill (one token per 5 s) keeps the counts exact on a loaded machine.
const LIMIT = { rps: 0.2, burst: 2 };

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

describe('API keys', () => {
  let key = '';

  it('faas keys create prints the key alone, once, and refuses a name in use', () => {
    const made = keys('create', 'ci-bot');
    expect(made).toMatchObject({ code: 0, err: '' });
    expect(made.out).toMatch(/^faas_[A-Za-z0-9_-]{43}\n$/);
    key = made.out.trim();
    const again = keys('create', 'ci-bot');
    expect(again.code).toBe(1);
    expect(again.err).toContain('a key named "ci-bot" exists');
    expect(JSON.parse(keys('list', '--json').out)).toEqual([{ name: 'ci-bot', created: expect.stringMatching(/^\d{4}-/) }]);
    expect(keys('list').out).not.toContain(key);
    expect(keys('frobnicate').code).toBe(2);
  });

  it('401 without a key, with WWW-Authenticate; 401 with a wrong one', async () => {
    const first = await deploy(gw, 'GET:/private', { runtime: 'node', auth: 'api-key', code: SHOW_HEADERS });
    expect(first.status).toBe(401);
    const none = await fetch(`${gw.http}/private`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="faas"');
    expect(await none.json()).toMatchObject({ statusCode: 401, code: 'API_KEY_MISSING' });
    const wrong = await fetch(`${gw.http}/private`, { headers: { 'x-api-key': `${key}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="faas", error="invalid_token"');
    expect((await wrong.json()).code).toBe('API_KEY_INVALID');
    const notBearer = await fetch(`${gw.http}/private`, { headers: { authorization: `Basic ${key}` } });
    expect((await notBearer.json()).code).toBe('API_KEY_MISSING');
  });

  it('serves with the key in x-api-key or Authorization: Bearer, and the function never sees it', async () => {
    const viaHeader = await eventually(async () => {
      const res = await fetch(`${gw.http}/private`, { headers: { 'x-api-key': key, 'x-other': 'kept' } });
      return res.status === 200 && res; // the key reaches the gateway with its next sync
    });
    const seen = await viaHeader.json();
    expect(seen['x-other']).toBe('kept');
    expect(seen['x-api-key']).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(key);

    const viaBearer = await fetch(`${gw.http}/private`, { headers: { authorization: `Bearer ${key}` } });
    expect(viaBearer.status).toBe(200);
    expect((await viaBearer.json()).authorization).toBeUndefined();
  });

  it('refuses a body-carrying call before reading its body, and the connection stays usable', async () => {
    const res = await fetch(`${gw.http}/private`, { method: 'GET', headers: { 'content-length': '0' } });
    expect(res.status).toBe(401);
    gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('POST:/private', JSON.stringify({ runtime: 'node', auth: 'api-key', code: SHOW_HEADERS }));
    const post = await eventually(async () => {
      const r = await fetch(`${gw.http}/private`, { method: 'POST', body: 'x'.repeat(100_000) });
      return r.status !== 405 && r; // 405 until the gateway has synced the new row
    });
    expect(post.status).toBe(401);
    expect((await fetch(`${gw.http}/private`, { headers: { 'x-api-key': key } })).status).toBe(200);
  });

  it('a revoked key stops working within a sync period', async () => {
    expect(keys('revoke', 'ci-bot').code).toBe(0);
    const res = await eventually(async () => {
      const r = await fetch(`${gw.http}/private`, { headers: { 'x-api-key': key } });
      return r.status === 401 && r;
    }, 3000);
    expect((await res.json()).code).toBe('API_KEY_INVALID');
    const missing = keys('revoke', 'ci-bot');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no key named "ci-bot"');
  });
});

describe('rate limits', () => {
  it('lets a burst through per client IP, then 429 with Retry-After and RateLimit fields', async () => {
    const first = await deploy(gw, 'GET:/limited', { runtime: 'node', rate_limit: LIMIT, code: SHOW_HEADERS });
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-policy')).toBe('"burst";q=2;w=10');
    expect(first.headers.get('ratelimit')).toMatch(/^"burst";r=1;t=\d+$/);
    const second = await fetch(`${gw.http}/limited`);
    expect(second.status).toBe(200);
    const third = await fetch(`${gw.http}/limited`);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^[1-5]$/);
    expect(third.headers.get('ratelimit')).toMatch(/^"burst";r=0;t=\d+$/);
    expect(third.headers.get('ratelimit-policy')).toBe('"burst";q=2;w=10');
    expect(await third.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200); // other routes are not limited
  });

  it('counts per API key on a route that asks for one', async () => {
    const a = keys('create', 'a').out.trim();
    const b = keys('create', 'b').out.trim();
    await deploy(gw, 'GET:/keyed', { runtime: 'node', auth: 'api-key', rate_limit: { rps: 0.2, burst: 1 }, code: SHOW_HEADERS });
    const call = (k: string): Promise<number> => fetch(`${gw.http}/keyed`, { headers: { 'x-api-key': k } }).then((r) => r.status);
    expect(await eventually(async () => (await call(a)) === 200)).toBe(true);
    expect(await call(a)).toBe(429);
    expect(await call(b)).toBe(200);
    expect(await call(b)).toBe(429);
  });

  it('shows the buckets and keys in /metrics', async () => {
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(text).toMatch(/^faas_api_keys 2$/m);
    expect(Number(/^faas_rate_limit_buckets (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^faas_requests_total\{route="GET:\/limited",status="429"\} 1$/m);
  });
});
