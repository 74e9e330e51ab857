// The management API (/api/v1 on the admin port) on a real gateway: every operation, every error
// status, ETag/If-Match under concurrency, SQL and the API seeing each other's rows, and who may
// use it (loopback names without a token, the bearer token with one, no changes from foreign
// origins, no start when exposed without a token). Every answer is checked against the OpenAPI
// document the gateway serves (openapi-check.ts), and the last test asks that every documented
// operation was called.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startGateway, type Gateway } from './harness.js';
import { checkAnswer, operations, unknownKeywords, validate } from './openapi-check.js';

const CLI = path.resolve('dist/src/cli/main.js');
const HELLO = "export default { fetch: (request) => new Response('v1 ' + new URL(request.url).pathname) }";
const HELLO2 = "export default { fetch: () => new Response('v2') }";

let gw: Gateway;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let doc: any;
const covered = new Set<string>();

interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/**
 * Calls the API and checks the answer against the document's `op` ("PUT /functions/{key}"), when
 * given. A body that is not a string is sent as JSON.
 */
async function api(method: string, urlPath: string, opts: { op?: string; body?: unknown; headers?: Record<string, string>; base?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${opts.base ?? gw.admin}/api/v1${urlPath}`, { method, headers, ...(body !== undefined && { body }) });
  const text = await res.text();
  let parsed: unknown = text;
  if (res.headers.get('content-type')?.startsWith('application/json')) parsed = JSON.parse(text);
  if (opts.op) {
    expect(checkAnswer(doc, opts.op, res.status, res.headers.get('content-type'), parsed)).toEqual([]);
    covered.add(`${opts.op} ${res.status}`);
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

const enc = (key: string): string => encodeURIComponent(key);
const call = (urlPath: string, init?: RequestInit): Promise<Response> => fetch(`${gw.http}${urlPath}`, init);
let operator: ReturnType<Gateway['sql']>;
const row = (key: string): { v: string; version: number } | undefined => operator
  .prepare('SELECT f.v AS v, c.seq AS version FROM functions f JOIN functions_changes c ON c.k = f.k WHERE f.k = ?').get(key) as { v: string; version: number } | undefined;

beforeAll(async () => {
  // A sync period far longer than the tests: whatever is live at once, the API's write made live.
  gw = await startGateway([], { workers: 1, syncMs: 600_000 });
  operator = gw.sql();
  doc = await (await fetch(`${gw.admin}/api/v1/openapi.json`)).json();
});
afterAll(async () => {
  await gw?.stop();
});

describe('the OpenAPI document', () => {
  it('is served at /api/v1/openapi.json, OpenAPI 3.1, every $ref resolving', async () => {
    const r = await api('GET', '/openapi.json', { op: 'GET /openapi.json' });
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    // Every $ref resolves, and the checker knows every keyword the document uses.
    expect(unknownKeywords(doc)).toEqual([]);
    expect(validate(doc, { $ref: '#/components/schemas/Error' }, { statusCode: 404, code: 'FUNCTION_NOT_FOUND', error: 'Not Found', message: 'x' })).toEqual([]);
    expect(validate(doc, { $ref: '#/components/schemas/Error' }, { statusCode: 404, code: 'NO_SUCH_CODE', error: 'Not Found', message: 'x' })).not.toEqual([]);
  });
});

describe('functions', () => {
  let version = 0;

  it('PUT creates a function and answers 201 once it is served (the sync period is 10 minutes)', async () => {
    const r = await api('PUT', `/functions/${enc('GET:/api-test')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: HELLO } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ key: 'GET:/api-test', change: 'created', config: { runtime: 'node', code: HELLO }, serving: { state: 'ok' } });
    version = r.body.version;
    expect(r.headers.get('etag')).toBe(`"${version}"`);
    expect(r.headers.get('location')).toBe('/api/v1/functions/GET%3A%2Fapi-test');
    const served = await call('/api-test');
    expect(served.status).toBe(200);
    expect(await served.text()).toBe('v1 /api-test');
    // SQL sees the row the API wrote, at the version the API gave.
    expect(row('GET:/api-test')).toEqual({ v: JSON.stringify({ runtime: 'node', code: HELLO }), version });
  });

  it('GET gives the whole config, its version as ETag and what the gateway serves; /functions/GET/path is the same', async () => {
    const r = await api('GET', `/functions/${enc('GET:/api-test')}`, { op: 'GET /functions/{key}' });
    expect(r.status).toBe(200);
    expect(r.headers.get('etag')).toBe(`"${version}"`);
    expect(r.body).toMatchObject({ key: 'GET:/api-test', version, config: { runtime: 'node', code: HELLO }, serving: { state: 'ok', version } });
    expect(typeof r.body.updated).toBe('number');
    const readable = await api('GET', '/functions/GET/api-test', { op: 'GET /functions/{key}' });
    expect(readable.body).toEqual(r.body);
    const missing = await api('GET', `/functions/${enc('GET:/nope')}`, { op: 'GET /functions/{key}' });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'FUNCTION_NOT_FOUND', message: 'no function GET:/nope' });
    expect((await api('GET', '/functions/GET%3A%2', { op: 'GET /functions/{key}' })).body.code).toBe('INVALID_REQUEST');
  });

  it('lists functions without code unless ?code=1, a page at a time', async () => {
    const all = await api('GET', '/functions', { op: 'GET /functions' });
    expect(all.status).toBe(200);
    const mine = all.body.functions.find((f: { key: string }) => f.key === 'GET:/api-test');
    expect(mine.config.code).toBeUndefined();
    expect(mine.codeBytes).toBe(Buffer.byteLength(HELLO));
    expect(all.body.functions.map((f: { key: string }) => f.key)).toEqual([...all.body.functions.map((f: { key: string }) => f.key)].sort());
    const withCode = await api('GET', '/functions?code=1', { op: 'GET /functions' });
    expect(withCode.body.functions.find((f: { key: string }) => f.key === 'GET:/api-test').config.code).toBe(HELLO);
    const first = await api('GET', '/functions?limit=1', { op: 'GET /functions' });
    expect(first.body.functions).toHaveLength(1);
    expect(first.body.next).toBe(first.body.functions[0].key);
    const second = await api('GET', `/functions?limit=1&after=${enc(first.body.next)}`, { op: 'GET /functions' });
    expect(second.body.functions[0].key).toBe(all.body.functions[1].key);
    const bad = await api('GET', '/functions?limit=0&code=yes', { op: 'GET /functions' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('code must be 0 or 1 (got "yes"); limit must be an integer between 1 and 10000 (got "0")');
  });

  it('PUT over an existing function needs If-Match: 428 without, 412 for another version, 200 with its own', async () => {
    const key = `/functions/${enc('GET:/api-test')}`;
    const body = { runtime: 'node', code: HELLO2 };
    const without = await api('PUT', key, { op: 'PUT /functions/{key}', body });
    expect(without.status).toBe(428);
    expect(without.body.code).toBe('PRECONDITION_REQUIRED');
    expect(without.body.message).toContain(`send If-Match: "${version}"`);
    const stale = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'if-match': `"${version - 1}"` } });
    expect(stale.status).toBe(412);
    expect(stale.body.message).toContain(`is at version ${version}`);
    const notNew = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'if-none-match': '*' } });
    expect(notNew.status).toBe(412);
    const garbled = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'if-match': 'v14' } });
    expect(garbled.status).toBe(400);
    expect(garbled.body.message).toContain('If-Match must be * or entity tags');
    expect(row('GET:/api-test')!.version).toBe(version); // none of them wrote
    const ok = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'if-match': `"${version}"` } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ change: 'updated', serving: { state: 'ok' } });
    expect(ok.body.version).toBeGreaterThan(version);
    version = ok.body.version;
    expect(await (await call('/api-test')).text()).toBe('v2');
    const again = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'if-match': '*' } });
    expect(again.body.change).toBe('redeployed'); // the same config again: a new version, as faas deploy gives
    expect(again.body.version).toBeGreaterThan(version);
    version = again.body.version;
  });

  it('PATCH merges into the config (null removes a field), If-Match optional', async () => {
    const key = `/functions/${enc('GET:/api-test')}`;
    const r = await api('PATCH', key, { op: 'PATCH /functions/{key}', body: { timeout_ms: 5000, env: { A: '1' } },
      headers: { 'content-type': 'application/merge-patch+json' } });
    expect(r.status).toBe(200);
    expect(r.body.config).toEqual({ runtime: 'node', code: HELLO2, timeout_ms: 5000, env: { A: '1' } });
    expect(JSON.parse(row('GET:/api-test')!.v)).toEqual(r.body.config);
    const removed = await api('PATCH', key, { op: 'PATCH /functions/{key}', body: { env: null }, headers: { 'if-match': r.headers.get('etag')! } });
    expect(removed.status).toBe(200);
    expect(removed.body.config).toEqual({ runtime: 'node', code: HELLO2, timeout_ms: 5000 });
    version = removed.body.version;
    const missing = await api('PATCH', `/functions/${enc('GET:/nope')}`, { op: 'PATCH /functions/{key}', body: { timeout_ms: 1 } });
    expect(missing.status).toBe(404);
  });

  it('of two PATCHes with the same If-Match exactly one wins, the other gets 412', async () => {
    const key = `/functions/${enc('GET:/api-test')}`;
    const answers = await Promise.all([1000, 2000].map((t) =>
      api('PATCH', key, { op: 'PATCH /functions/{key}', body: { timeout_ms: t }, headers: { 'if-match': `"${version}"` } })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 412]);
    const winner = answers.find((a) => a.status === 200)!;
    const loser = answers.find((a) => a.status === 412)!;
    expect(loser.body.message).toContain(`is at version ${winner.body.version}`);
    expect(JSON.parse(row('GET:/api-test')!.v).timeout_ms).toBe(winner.body.config.timeout_ms);
    version = winner.body.version;
  });

  it('refuses a bad config with 422 listing every problem, in the words of the schema\'s triggers, writing nothing', async () => {
    const r = await api('PUT', `/functions/${enc('GET:/api-bad')}`, { op: 'PUT /functions/{key}',
      body: { runtime: 'ruby', code: 'x', timeout_ms: '5s', timeout: 1, rate_limit: { rps: 0, burst: 1 } } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('VALIDATION_FAILED');
    expect(r.body.problems.slice(1)).toEqual([
      'v.runtime must be one of "node", "python", "wasm", "go" (got "ruby")',
      'v.timeout_ms must be an integer between 1 and 900000 (got "5s")',
      'v.rate_limit.rps must be a number greater than 0 (got 0)',
    ]);
    expect(r.body.problems[0]).toMatch(/^v\.timeout is not a known field \(did you mean "timeout_ms"\?\); allowed fields: runtime, /);
    expect(r.body.message).toBe(`GET:/api-bad: refused, nothing written: ${r.body.problems.join('; ')}`);
    expect(row('GET:/api-bad')).toBeUndefined();
    // The operator's SQL client is refused for the same rule, in the same words.
    expect(() => operator.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/api-bad', JSON.stringify({ runtime: 'ruby', code: 'x' })))
      .toThrow('v.runtime must be one of "node", "python", "wasm"');
    const key = await api('PUT', `/functions/${enc('get:/lower')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: HELLO } });
    expect(key.status).toBe(422);
    expect(key.body.problems[0]).toContain("functions.k must be 'METHOD:/path' with METHOD in upper case");
    const host = await api('PUT', `/functions/${enc('GET:/api-bad')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', path: '/nonexistent/fn.mjs' } });
    expect(host.status).toBe(422);
    expect(host.body.problems).toEqual(['v.path "/nonexistent/fn.mjs" does not exist on this host']);
    const patched = await api('PATCH', `/functions/${enc('GET:/api-test')}`, { op: 'PATCH /functions/{key}', body: { memory_mb: 1 } });
    expect(patched.status).toBe(422);
    expect(patched.body.problems).toEqual(['v.memory_mb must be an integer between 16 and 16384 (got 1)']);
  });

  it('answers 400 naming what is wrong with a body that is not JSON or a bad If-Match, 415 without the JSON content type, 413 over 8 MiB', async () => {
    const key = `/functions/${enc('GET:/api-bad')}`;
    const broken = await api('PUT', key, { op: 'PUT /functions/{key}', body: '{"runtime": "node",' });
    expect(broken.status).toBe(400);
    expect(broken.body).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(broken.body.message).toMatch(/^the request body is not valid JSON: /);
    const empty = await api('PUT', key, { op: 'PUT /functions/{key}', body: ' ' });
    expect(empty.body.message).toBe('the request body is empty; send a JSON object');
    const text = await api('PUT', key, { op: 'PUT /functions/{key}', body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const big = await api('PUT', key, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: 'x'.repeat(8 * 1024 * 1024) } });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(row('GET:/api-bad')).toBeUndefined();
    const mine = `/functions/${enc('GET:/api-test')}`;
    const huge = 'x'.repeat(8 * 1024 * 1024 + 1);
    expect((await api('PATCH', mine, { op: 'PATCH /functions/{key}', body: huge })).status).toBe(413);
    expect((await api('POST', '/keys', { op: 'POST /keys', body: huge })).status).toBe(413);
    expect((await api('PATCH', mine, { op: 'PATCH /functions/{key}', body: '{"timeout_ms": 1}', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    expect((await api('PATCH', mine, { op: 'PATCH /functions/{key}', body: {}, headers: { 'if-match': '14' } })).status).toBe(400);
    expect((await api('DELETE', mine, { op: 'DELETE /functions/{key}', headers: { 'if-match': 'W/14' } })).status).toBe(400);
    expect((await api('PATCH', mine, { op: 'PATCH /functions/{key}', body: '[1,' })).status).toBe(400);
  });

  it('sees a row SQL wrote, with its version, and says the gateway has not read it yet', async () => {
    operator.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/from-sql', JSON.stringify({ runtime: 'node', code: HELLO, timeout_ms: 700 }));
    const r = await api('GET', `/functions/${enc('GET:/from-sql')}`, { op: 'GET /functions/{key}' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ version: row('GET:/from-sql')!.version, config: { timeout_ms: 700 }, serving: { state: 'pending' } });
  });

  it('versions: the kept history, one version with its config, and putting an old one back', async () => {
    const url = `/functions/${enc('GET:/api-test')}/versions`;
    const one = await api('GET', url, { op: 'GET /functions/{key}/versions' });
    expect(one.status).toBe(200);
    expect(one.body.kept).toBe(20);
    const list = one.body.versions as Array<{ version: number }>;
    // created, replaced with v2, patched, and one of the two racing patches: all kept, newest first.
    expect(list.length).toBeGreaterThanOrEqual(4);
    expect(list[0]).toEqual({ version, updated: expect.any(Number), deleted: false, row: true, served: true, runtime: 'node', codeBytes: expect.any(Number) });
    expect(list.map((v) => v.version)).toEqual([...list.map((v) => v.version)].sort((x, y) => y - x));
    const first = list[list.length - 1]!.version;
    const old = await api('GET', `${url}/${first}`, { op: 'GET /functions/{key}/versions/{version}' });
    expect(old.status).toBe(200);
    expect(old.headers.get('etag')).toBe(`"${first}"`);
    expect(old.body).toEqual({ key: 'GET:/api-test', version: first, updated: expect.any(Number), deleted: false, row: false, config: { runtime: 'node', code: HELLO } });
    const missing = await api('GET', `${url}/999999`, { op: 'GET /functions/{key}/versions/{version}' });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toMatch(/no kept version 999999/);

    // A row the triggers let through and the gateway cannot serve: a path that does not exist.
    operator.prepare("UPDATE functions SET v = json_set(v, '$.path', '/nonexistent/x.mjs', '$.code', NULL) WHERE k = ?").run('GET:/api-test');
    const bad = row('GET:/api-test')!.version;
    // Any write through the API syncs the gateway now: this one creates another function.
    expect((await api('PUT', `/functions/${enc('POST:/api-other')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: HELLO } })).status).toBe(201);
    const two = await api('GET', url, { op: 'GET /functions/{key}/versions' });
    expect(two.body.versions.slice(0, 2)).toEqual([
      { version: bad, updated: expect.any(Number), deleted: false, row: true, served: false, runtime: 'node', error: 'v.path "/nonexistent/x.mjs" does not exist on this host' },
      { version, updated: expect.any(Number), deleted: false, row: false, served: true, runtime: 'node', codeBytes: expect.any(Number) },
    ]);
    const got = await api('GET', `/functions/${enc('GET:/api-test')}`, { op: 'GET /functions/{key}' });
    expect(got.body.serving).toEqual({ state: 'stale', version, error: 'v.path "/nonexistent/x.mjs" does not exist on this host' });
    expect(await (await call('/api-test')).text()).toBe('v2'); // the last good config

    // Putting the first version back is a PUT of its config over the bad row: a new version.
    const back = await api('PUT', `/functions/${enc('GET:/api-test')}`, { op: 'PUT /functions/{key}', body: old.body.config, headers: { 'if-match': `"${bad}"` } });
    expect(back.status).toBe(200);
    expect(await (await call('/api-test')).text()).toBe('v1 /api-test');
    const three = await api('GET', url, { op: 'GET /functions/{key}/versions' });
    expect(three.body.versions[0]).toMatchObject({ version: back.body.version, row: true, served: true });
    const none = await api('GET', `/functions/${enc('GET:/nope')}/versions`, { op: 'GET /functions/{key}/versions' });
    expect(none.status).toBe(404);
    version = back.body.version;
  });

  it('DELETE needs If-Match, and answers once the gateway has dropped the function', async () => {
    const key = `/functions/${enc('POST:/api-other')}`;
    expect((await call('/api-other', { method: 'POST' })).status).toBe(200);
    const without = await api('DELETE', key, { op: 'DELETE /functions/{key}' });
    expect(without.status).toBe(428);
    const stale = await api('DELETE', key, { op: 'DELETE /functions/{key}', headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(412);
    const r = await api('DELETE', key, { op: 'DELETE /functions/{key}', headers: { 'if-match': '*' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ key: 'POST:/api-other', deleted: true, serving: null });
    expect((await call('/api-other', { method: 'POST' })).status).toBe(404);
    expect(row('POST:/api-other')).toBeUndefined();
    const history = await api('GET', `/functions/${enc('POST:/api-other')}/versions`, { op: 'GET /functions/{key}/versions' });
    expect(history.body.versions.map((v: { deleted: boolean; row: boolean }) => [v.deleted, v.row])).toEqual([[true, false], [false, false]]);
    const again = await api('DELETE', key, { op: 'DELETE /functions/{key}', headers: { 'if-match': '*' } });
    expect(again.status).toBe(404);
    const readable = await api('DELETE', '/functions/GET/from-sql', { op: 'DELETE /functions/{key}', headers: { 'if-match': `"${row('GET:/from-sql')!.version}"` } });
    expect(readable.status).toBe(200);
  });

  it('answers 405 with Allow for a method a path does not take, and 404 for a path it does not have', async () => {
    const r = await api('POST', '/functions', { body: {} });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
    expect(validate(doc, { $ref: '#/components/schemas/Error' }, r.body)).toEqual([]);
    expect(r.body.code).toBe('METHOD_NOT_ALLOWED');
    const none = await api('GET', '/nothing-here');
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('ROUTE_NOT_FOUND');
    expect(none.body.message).toContain('/api/v1/openapi.json');
  });
});

describe('API keys', () => {
  it('POST makes a key, shown once, accepted at once; GET lists names; DELETE revokes it at once', async () => {
    expect((await api('PUT', `/functions/${enc('GET:/api-private')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: HELLO, auth: 'api-key' } })).status).toBe(201);
    const made = await api('POST', '/keys', { op: 'POST /keys', body: { name: 'api-bot' } });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'api-bot', live: true });
    expect(made.body.key).toMatch(/^faas_[A-Za-z0-9_-]{43}$/);
    expect(made.headers.get('cache-control')).toBe('no-store');
    expect((await call('/api-private', { headers: { 'x-api-key': made.body.key } })).status).toBe(200);
    const list = await api('GET', '/keys', { op: 'GET /keys' });
    expect(list.body.keys).toEqual([{ name: 'api-bot', created: made.body.created }]);
    expect(JSON.stringify(list.body)).not.toContain(made.body.key);
    const taken = await api('POST', '/keys', { op: 'POST /keys', body: { name: 'api-bot' } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('API_KEY_EXISTS');
    const bad = await api('POST', '/keys', { op: 'POST /keys', body: { name: 'no spaces', extra: 1 } });
    expect(bad.status).toBe(422);
    expect(bad.body.problems).toEqual(['extra is not a known field; allowed fields: name', 'name must be 1–64 characters of A–Z, a–z, 0–9, ".", "_" or "-" (got "no spaces")']);
    expect((await api('POST', '/keys', { op: 'POST /keys', body: 'nope' })).status).toBe(400);
    expect((await api('POST', '/keys', { op: 'POST /keys', body: '{"name":"x"}', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    const revoked = await api('DELETE', '/keys/api-bot', { op: 'DELETE /keys/{name}' });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ name: 'api-bot', revoked: true, live: true });
    expect((await call('/api-private', { headers: { 'x-api-key': made.body.key } })).status).toBe(401);
    expect((await api('DELETE', '/keys/api-bot', { op: 'DELETE /keys/{name}' })).status).toBe(404);
  });
});

describe('read views', () => {
  it('workers, routes, stats and logs, as the admin port\'s own endpoints give them', async () => {
    const workers = await api('GET', '/workers', { op: 'GET /workers' });
    expect(workers.body).toHaveLength(1);
    const routes = await api('GET', '/routes', { op: 'GET /routes' });
    expect(routes.body.routes.map((r: { key: string }) => r.key)).toContain('GET:/hello');
    await api('GET', '/stats', { op: 'GET /stats' });
    const logs = await api('GET', '/logs?limit=5', { op: 'GET /logs' });
    expect(logs.status).toBe(200);
    expect((await api('GET', '/logs?limit=0', { op: 'GET /logs' })).status).toBe(400);
    const stream = new AbortController();
    const res = await fetch(`${gw.admin}/api/v1/logs?follow=1`, { signal: stream.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    covered.add('GET /logs 200');
    stream.abort();
  });
});

describe('who may use it', () => {
  it('refuses a change from a page of another origin, and a name other than loopback while there is no token', async () => {
    const key = `/functions/${enc('GET:/csrf')}`;
    const body = { runtime: 'node', code: HELLO };
    const foreign = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.body.code).toBe('ADMIN_ORIGIN_NOT_ALLOWED');
    const site = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { 'sec-fetch-site': 'cross-site' } });
    expect(site.status).toBe(403);
    expect(row('GET:/csrf')).toBeUndefined();
    const own = await api('PUT', key, { op: 'PUT /functions/{key}', body, headers: { origin: gw.admin } });
    expect(own.status).toBe(201);
    // DNS rebinding: the browser would send the attacker's name as Host.
    const rebound = await rawGet(gw.admin, '/api/v1/functions', { host: 'evil.example:9090' });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body)).toMatchObject({ code: 'ADMIN_HOST_NOT_ALLOWED' });
    expect((await rawGet(gw.admin, '/api/v1/functions', { host: 'localhost:9090' })).status).toBe(200);
  });

  it('refuses to start with --admin-host 0.0.0.0 and no token file, saying what to do', () => {
    const r = spawnSync(process.execPath, [CLI, 'gateway', '--admin-host', '0.0.0.0', '--db', path.join(gw.dir, 'never.db')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('faas: invalid configuration:\n  - --admin-host 0.0.0.0 would open the admin API (functions with their code and env, API keys) '
      + 'beyond this machine without a token: give --admin-token-file PATH too');
    expect(fs.existsSync(path.join(gw.dir, 'never.db'))).toBe(false);
  });

  describe('with --admin-token-file', () => {
    let secured: Gateway;
    let tokenFile: string;
    const TOKEN = 'a'.repeat(20) + '0123456789abcdef';

    beforeAll(async () => {
      tokenFile = path.join(gw.dir, 'admin-token');
      fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
      secured = await startGateway(['--admin-host', '0.0.0.0', '--admin-token-file', tokenFile], { workers: 1 });
    });
    afterAll(async () => {
      await secured?.stop();
    });

    it('needs Authorization: Bearer on every request but the dashboard page and /healthz', async () => {
      const none = await api('GET', '/functions', { op: 'GET /functions', base: secured.admin });
      expect(none.status).toBe(401);
      expect(none.body.code).toBe('ADMIN_TOKEN_MISSING');
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="faas-admin"');
      const wrong = await api('GET', '/functions', { op: 'GET /functions', base: secured.admin, headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status).toBe(401);
      expect(wrong.body.code).toBe('ADMIN_TOKEN_INVALID');
      expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
      const auth = { authorization: `Bearer ${TOKEN}` };
      expect((await api('GET', '/functions', { op: 'GET /functions', base: secured.admin, headers: auth })).status).toBe(200);
      const put = await api('PUT', `/functions/${enc('GET:/secured')}`, { op: 'PUT /functions/{key}', base: secured.admin, headers: auth, body: { runtime: 'node', code: HELLO } });
      expect(put.status).toBe(201);
      expect((await fetch(`${secured.admin}/metrics`)).status).toBe(401);
      expect((await fetch(`${secured.admin}/routes`, { headers: auth })).status).toBe(200);
      expect((await fetch(`${secured.admin}/healthz`)).status).toBe(200);
      const page = await fetch(`${secured.admin}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('id="token-form"');
      // With a token any name may reach it (it is exposed on purpose); changes from foreign pages are still refused.
      expect((await rawGet(secured.admin, '/api/v1/functions', { host: 'gateway.internal:9090', ...auth })).status).toBe(200);
      expect((await api('DELETE', `/functions/${enc('GET:/secured')}`, { op: 'DELETE /functions/{key}', base: secured.admin,
        headers: { ...auth, 'if-match': '*', origin: 'http://evil.example' } })).status).toBe(403);
    });

    it('the faas commands send the token from FAAS_ADMIN_TOKEN_FILE or --admin-token-file', async () => {
      const env = { ...process.env, FAAS_DB: secured.dbPath, FAAS_ADMIN: secured.admin };
      const without = await faas(env, 'routes', '--json');
      expect(without.code).toBe(1);
      expect(without.err).toContain('answered GET /routes with 401 (the admin API wants its token: --admin-token-file or FAAS_ADMIN_TOKEN_FILE)');
      const fromEnv = await faas({ ...env, FAAS_ADMIN_TOKEN_FILE: tokenFile }, 'routes', '--json');
      expect(fromEnv.code).toBe(0);
      expect(JSON.parse(fromEnv.out).routes.map((r: { key: string }) => r.key)).toContain('GET:/secured');
      const fromFlag = await faas(env, 'top', '--once', '--json', '--admin-token-file', tokenFile);
      expect(fromFlag.code).toBe(0);
    });

    it('refuses a token file others can read, at start, with the other problems', () => {
      const open = path.join(gw.dir, 'open-token');
      fs.writeFileSync(open, TOKEN);
      fs.chmodSync(open, 0o644);
      const r = spawnSync(process.execPath, [CLI, 'gateway', '--admin-token-file', open, '--port', 'x'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`--admin-token-file must name a file holding the admin API's token: ${open} is readable by every user (mode 644); chmod 600 ${open}`);
      expect(r.stderr).toContain('--port must be an integer');
    });
  });
});

describe('invoke', () => {
  const ECHO = 'export default { async fetch(request) { const body = await request.text(); console.log("got " + body); '
    + 'console.error("header " + request.headers.get("x-test")); '
    + 'return new Response("echo " + new URL(request.url).search + " " + body, { status: 201, headers: { "x-echo": "yes" } }); } }';
  const THROWS = 'export default { fetch() { console.log("about to fail"); throw new Error("broken on purpose"); } }';

  it('calls a function through the workers as the public port would, with its answer, timing and what it printed', async () => {
    expect((await api('PUT', `/functions/${enc('POST:/api-invoke')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: ECHO } })).status).toBe(201);
    const r = await api('POST', `/functions/${enc('POST:/api-invoke')}/invoke`, { op: 'POST /functions/{key}/invoke',
      body: { query: 'a=1', headers: { 'X-Test': 'hi' }, body: 'hello' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 201, body: 'echo ?a=1 hello', cold: expect.any(Boolean), worker: expect.any(String) });
    expect(r.body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.headers).toContainEqual(['x-echo', 'yes']);
    expect(r.body.ms).toBeGreaterThan(0);
    expect(r.body.ms).toBeGreaterThanOrEqual(r.body.fnMs);
    // stdout and stderr are two pipes: their lines' order between them is not kept.
    expect(r.body.output.map((o: { stream: string; text: string }) => `${o.stream} ${o.text.trim()}`).sort()).toEqual(['stderr header hi', 'stdout got hello']);
    // The same request id in the recent log.
    const logs = await api('GET', `/logs?route=${enc('POST:/api-invoke')}`, { op: 'GET /logs' });
    expect(logs.body.entries.filter((e: { requestId: string }) => e.requestId === r.body.requestId)).toHaveLength(2);
  });

  it('answers a call that failed as the public port would (its status and code), with what it printed first', async () => {
    expect((await api('PUT', `/functions/${enc('GET:/api-invoke-throws')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: THROWS } })).status).toBe(201);
    const r = await api('POST', `/functions/${enc('GET:/api-invoke-throws')}/invoke`, { op: 'POST /functions/{key}/invoke', body: {} });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 500, code: 'FUNCTION_ERROR' });
    expect(JSON.parse(r.body.body)).toMatchObject({ statusCode: 500, code: 'FUNCTION_ERROR' });
    expect(r.body.output.map((o: { text: string }) => o.text.trim())).toContain('about to fail');
  });

  it('reads a streamed answer to the end, and past 1 MiB cuts it (truncated) and cancels the rest', async () => {
    const STREAM = 'export default { fetch(request) { const chunks = Number(new URL(request.url).searchParams.get("n")); let i = 0; '
      + 'const bytes = new TextEncoder().encode("x".repeat(65536)); console.log("streaming " + chunks); '
      + 'return new Response(new ReadableStream({ pull(c) { if (i++ < chunks) c.enqueue(bytes); else c.close(); } })); } }';
    expect((await api('PUT', `/functions/${enc('GET:/api-invoke-stream')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: STREAM } })).status).toBe(201);
    const key = `/functions/${enc('GET:/api-invoke-stream')}/invoke`;
    const whole = await api('POST', key, { op: 'POST /functions/{key}/invoke', body: { query: 'n=4' } });
    expect(whole.body).toMatchObject({ status: 200 });
    expect(whole.body.body).toHaveLength(4 * 65536);
    expect(whole.body.truncated).toBeUndefined();
    expect(whole.body.output.map((o: { text: string }) => o.text.trim())).toEqual(['streaming 4']);
    const cut = await api('POST', key, { op: 'POST /functions/{key}/invoke', body: { query: 'n=64' } });
    expect(cut.body).toMatchObject({ status: 200, truncated: true });
    expect(cut.body.body).toHaveLength(1024 * 1024);
    // The function is not stuck on the stream it was cancelled on.
    expect((await api('POST', key, { op: 'POST /functions/{key}/invoke', body: { query: 'n=1' } })).body.body).toHaveLength(65536);
  });

  it('refuses a key the gateway does not serve (404), a bad request (400, 415) and a body over --max-body-bytes (413)', async () => {
    const missing = await api('POST', `/functions/${enc('GET:/nope')}/invoke`, { op: 'POST /functions/{key}/invoke', body: {} });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('ROUTE_NOT_FOUND');
    const key = `/functions/${enc('POST:/api-invoke')}/invoke`;
    const bad = await api('POST', key, { op: 'POST /functions/{key}/invoke', body: { method: 'GET', headers: { 'bad name': 'x' }, body: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('method is not a known field; allowed fields: query, headers, body, bodyBase64; headers: "bad name" is not a header name; '
      + 'body must be a string (got 1); bodyBase64 takes bytes');
    expect((await api('POST', key, { op: 'POST /functions/{key}/invoke', body: '{}', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    const big = await api('POST', key, { op: 'POST /functions/{key}/invoke', body: { body: 'x'.repeat(7 * 1024 * 1024) } });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await api('GET', key)).status).toBe(405);
  });
});

describe('async invocations', () => {
  const BROKEN = "export default { fetch: () => new Response('broken', { status: 500 }) }";
  const EVENT = { 'x-faas-invocation-type': 'Event' };

  /** An async call on the public port: its 202's invocation id. */
  async function callAsync(route: string, body: string): Promise<string> {
    const res = await call(route, { method: 'POST', headers: EVENT, body });
    const accepted = await res.json();
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    return accepted.invocationId;
  }

  /** Polls GET /invocations/{id} (each answer checked against the document) until it is in one of `states`. */
  function until(id: string, states: string[]): Promise<Answer> {
    return eventually(async () => {
      const r = await api('GET', `/invocations/${id}`, { op: 'GET /invocations/{id}' });
      return states.includes(r.body.state) ? r : undefined;
    }, 20_000);
  }

  let succeeded = '';

  it('lists and shows an invocation that succeeded, page by page and by state and route; 404 for an unknown id', async () => {
    expect((await api('PUT', `/functions/${enc('POST:/api-async')}`, { op: 'PUT /functions/{key}', body: { runtime: 'node', code: HELLO } })).status).toBe(201);
    succeeded = await callAsync('/api-async', 'first');
    const second = await callAsync('/api-async', 'second');
    const one = await until(succeeded, ['succeeded', 'failed']);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ invocationId: succeeded, status: `/.faas/invocations/${succeeded}`, route: 'POST:/api-async', state: 'succeeded', attempts: 1,
      requestBytes: 5, error: null, result: { status: 200, body: 'v1 /api-async', isBase64Encoded: false, truncated: false } });
    expect(one.headers.get('cache-control')).toBe('no-store');
    await until(second, ['succeeded', 'failed']);

    const route = `route=${enc('POST:/api-async')}`;
    const all = await api('GET', `/invocations?${route}`, { op: 'GET /invocations' });
    expect(all.status).toBe(200);
    expect(all.body.invocations.map((i: { invocationId: string }) => i.invocationId)).toEqual([succeeded, second]);
    expect(all.body.invocations[0].result).toEqual({ status: 200 }); // a list leaves the answer's headers and body out
    expect(all.body.next).toBeNull();
    const first = await api('GET', `/invocations?${route}&state=succeeded&limit=1`, { op: 'GET /invocations' });
    expect(first.body.invocations.map((i: { invocationId: string }) => i.invocationId)).toEqual([succeeded]);
    expect(first.body.next).toEqual(expect.any(Number));
    const next = await api('GET', `/invocations?${route}&limit=1&after=${first.body.next}`, { op: 'GET /invocations' });
    expect(next.body.invocations.map((i: { invocationId: string }) => i.invocationId)).toEqual([second]);
    expect((await api('GET', `/invocations?${route}&state=failed`, { op: 'GET /invocations' })).body).toEqual({ invocations: [], next: null });

    const bad = await api('GET', '/invocations?state=lost&limit=0', { op: 'GET /invocations' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('INVALID_REQUEST');
    expect(bad.body.message).toContain('state must be one of queued, running, succeeded, failed (got "lost")');
    expect(bad.body.message).toContain('limit must be between 1 and 1000');

    const unknown = await api('GET', '/invocations/AAAAAAAAAAAAAAAAAAAAAA', { op: 'GET /invocations/{id}' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('INVOCATION_NOT_FOUND');
  });

  it('retries a dead letter (202), and refuses a succeeded one (409) and an unknown id (404)', async () => {
    expect((await api('PUT', `/functions/${enc('POST:/api-async-broken')}`, { op: 'PUT /functions/{key}',
      body: { runtime: 'node', code: BROKEN, async: { retries: 0 } } })).status).toBe(201);
    const id = await callAsync('/api-async-broken', 'keep me');
    const dead = await until(id, ['failed', 'succeeded']);
    expect(dead.body).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'FUNCTION_STATUS', message: 'the function answered 500' },
      result: { status: 500, body: 'broken' } });
    const letters = await api('GET', `/invocations?state=failed&route=${enc('POST:/api-async-broken')}`, { op: 'GET /invocations' });
    expect(letters.body.invocations.map((i: { invocationId: string }) => i.invocationId)).toEqual([id]);

    const retried = await api('POST', `/invocations/${id}/retry`, { op: 'POST /invocations/{id}/retry' });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ invocationId: id });
    // Still broken: one more attempt, numbered on from the last, and a dead letter again.
    const again = await until(id, ['failed']);
    expect(again.body).toMatchObject({ state: 'failed', attempts: 2, requeuedAt: expect.any(String) });

    const refused = await api('POST', `/invocations/${succeeded}/retry`, { op: 'POST /invocations/{id}/retry' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('INVOCATION_NOT_RETRYABLE');
    const unknown = await api('POST', '/invocations/AAAAAAAAAAAAAAAAAAAAAA/retry', { op: 'POST /invocations/{id}/retry' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('INVOCATION_NOT_FOUND');
  });
});

describe('coverage', () => {
  it('every operation of the document was called and answered as documented', () => {
    const called = new Set([...covered].map((c) => c.split(' ').slice(0, 2).join(' ')));
    expect(operations(doc).filter((op) => !called.has(op))).toEqual([]);
    // And each documented 2xx/4xx status of the write operations was seen, but those that need a
    // failing database (503, 202) or a gateway that refuses a row after the API checked it.
    const unseen = operations(doc).flatMap((op) => {
      const [method, p] = op.split(' ');
      return Object.keys(doc.paths[p!][method!.toLowerCase()].responses).map((s) => `${op} ${s}`);
    }).filter((c) => !covered.has(c) && !/ (202|401|403|405|500|503)$/.test(c));
    expect(unseen).toEqual([]);
  });
});

/** A GET with headers fetch would not send (Host). */
function rawGet(base: string, urlPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: urlPath, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function faas(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 20_000 }, (err, out, errText) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out, err: errText });
    });
  });
}
