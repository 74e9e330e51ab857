// --cluster-db on one host: a real gateway whose database is a copy of a real PostgreSQL. Rows
// written with SQL in PostgreSQL are served within a second (LISTEN/NOTIFY; the backstop period
// here is a minute, so only the notification can do it); the local file refuses writes and says
// where to write; PostgreSQL stopped, the node keeps serving and says so; started again, it
// reconnects and catches up. (The several-host version, with HAProxy, is cluster.test.ts.)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_REFUSAL } from '../../src/routes/schema.js';
import { eventually, startGateway, type Gateway } from './harness.js';
import { postgresMissing, startPostgres, type Postgres } from './postgres.js';

const missing = postgresMissing();
const code = (text: string): string => `export default { fetch: () => new Response(${JSON.stringify(text)}) }`;
const row = (text: string): string => JSON.stringify({ runtime: 'node', code: code(text) });
const sqlText = (text: string): string => `'${text.replaceAll("'", "''")}'`;

describe.skipIf(missing !== undefined)('a gateway with --cluster-db', () => {
  let pg: Postgres;
  let gw: Gateway;
  const body = async (path: string): Promise<string> => {
    const r = await fetch(`${gw.http}${path}`);
    return `${r.status} ${await r.text()}`;
  };
  const servedWithin = async (path: string, expected: string, ms: number): Promise<number> => {
    const t0 = performance.now();
    await eventually(async () => (await body(path)) === expected, ms, 10);
    return performance.now() - t0;
  };
  const readyz = async (): Promise<{ status: number; body: Record<string, any> }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await fetch(`${gw.admin}/readyz`);
    return { status: r.status, body: await r.json() };
  };

  beforeAll(async () => {
    pg = await startPostgres();
    gw = await startGateway(['--cluster-db', pg.url, '--cluster-db-password-file', pg.passwordFile], { workers: 1, syncMs: 60_000 });
    await eventually(async () => (await readyz()).body.cluster?.connected === true, 10_000);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    pg?.destroy();
  });

  it('serves an INSERT, UPDATE and DELETE made in PostgreSQL within a second each', async () => {
    // A fresh node's demo routes are not in PostgreSQL: the copy dropped them.
    expect(await body('/hello')).toMatch(/^404 /);
    pg.psql(`INSERT INTO functions(k, v) VALUES ('GET:/c', ${sqlText(row('one'))})`);
    expect(await servedWithin('/c', '200 one', 1000)).toBeLessThan(1000);
    pg.psql(`UPDATE functions SET v = ${sqlText(row('two'))} WHERE k = 'GET:/c'`);
    expect(await servedWithin('/c', '200 two', 1000)).toBeLessThan(1000);
    pg.psql("DELETE FROM functions WHERE k = 'GET:/c'");
    await eventually(async () => (await body('/c')).startsWith('404 '), 1000, 10);
    expect(gw.logs()).toContain('cluster config copied');
  });

  it('PostgreSQL refuses a bad row in the words of the gateway, and the node never sees it', () => {
    expect(() => pg.psql(`INSERT INTO functions(k, v) VALUES ('GET:/bad', '{"runtime": "ruby", "code": "x"}')`)).toThrow(/v\.runtime must be one of "node", "python", "wasm"/);
  });

  it('refuses a write to the local copy, saying where to write', () => {
    const db = gw.sql();
    expect(() => db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/local', row('x'))).toThrow(COPY_REFUSAL);
    expect(() => db.prepare('INSERT INTO api_keys(name, hash) VALUES (?, ?)').run('local', '0'.repeat(64))).toThrow(COPY_REFUSAL);
    expect(db.prepare('SELECT url FROM cluster_source').pluck().get()).toBe(pg.url);
  });

  it('copies API keys: a key made in PostgreSQL opens a route with "auth": "api-key"', async () => {
    const hash = (await import('node:crypto')).createHash('sha256').update('faas_test-key-0123456789').digest('hex');
    pg.psql(`INSERT INTO functions(k, v) VALUES ('GET:/locked', ${sqlText(JSON.stringify({ runtime: 'node', code: code('in'), auth: 'api-key' }))});
      INSERT INTO api_keys(name, hash) VALUES ('ci', '${hash}')`);
    await eventually(async () => (await fetch(`${gw.http}/locked`, { headers: { 'x-api-key': 'faas_test-key-0123456789' } })).status === 200, 2000, 20);
    expect((await fetch(`${gw.http}/locked`)).status).toBe(401);
  });

  it('the admin API writes to PostgreSQL, answers once served, and gives the cluster\'s version as ETag', async () => {
    const api = (method: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${gw.admin}/api/v1/functions/${encodeURIComponent(key)}`, {
        method, headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    const made = await api('PUT', 'GET:/via-api', { runtime: 'node', code: code('api one') });
    expect(made.status).toBe(201);
    const version = Number(pg.psql("SELECT version FROM functions WHERE k = 'GET:/via-api'").trim());
    expect(made.headers.get('etag')).toBe(`"${version}"`);
    expect((await made.json()).serving).toEqual({ state: 'ok', version });
    expect(await body('/via-api')).toBe('200 api one');
    const stale = await api('PATCH', 'GET:/via-api', { timeout_ms: 1000 }, { 'if-match': `"${version - 1}"` });
    expect(stale.status).toBe(412);
    const patched = await api('PATCH', 'GET:/via-api', { code: code('api two') }, { 'if-match': `"${version}"` });
    expect(patched.status).toBe(200);
    const next = Number(JSON.parse(patched.headers.get('etag')!)); // larger; a sequence leaves gaps
    expect(next).toBeGreaterThan(version);
    expect(await body('/via-api')).toBe('200 api two');
    const refused = await api('PATCH', 'GET:/via-api', { memory_mb: 1 });
    expect(refused.status).toBe(422);
    const history = await (await fetch(`${gw.admin}/api/v1/functions/${encodeURIComponent('GET:/via-api')}/versions`)).json();
    expect(history.versions.map((v: { version: number; served: boolean }) => [v.version, v.served])).toEqual([[next, true], [version, false]]);
    const removed = await api('DELETE', 'GET:/via-api', undefined, { 'if-match': '*' });
    expect(removed.status).toBe(200);
    expect(pg.psql("SELECT count(*) FROM functions WHERE k = 'GET:/via-api'").trim()).toBe('0');
    expect(await body('/via-api')).toMatch(/^404 /);
  });

  it('faas deploy, rm and keys on a node write to PostgreSQL, and wait until the node serves the change', async () => {
    const faas = (...args: string[]): { status: number | null; out: string; err: string } => {
      const r = spawnSync(process.execPath, [path.resolve('dist/src/cli/main.js'), ...args, '--db', gw.dbPath], { encoding: 'utf8', timeout: 20_000,
        env: { ...process.env, FAAS_CLUSTER_DB_PASSWORD_FILE: pg.passwordFile, FAAS_ADMIN: gw.admin } });
      return { status: r.status, out: r.stdout, err: r.stderr };
    };
    const deployed = faas('deploy', 'GET:/from-cli', 'examples/fetch.mjs', '--runtime', 'node', '--admin', gw.admin);
    expect(deployed.err).toBe('');
    expect(deployed.status).toBe(0);
    expect(deployed.out).toContain(`GET:/from-cli: created in ${pg.url} (version ${pg.psql("SELECT version FROM functions WHERE k = 'GET:/from-cli'").trim()})`);
    expect(deployed.out).toMatch(/live/);
    expect((await fetch(`${gw.http}/from-cli`)).status).toBe(200);
    const key = faas('keys', 'create', 'from-cli');
    expect(key.status).toBe(0);
    expect(key.out).toMatch(/^faas_\S+\n$/);
    expect(pg.psql("SELECT name FROM api_keys WHERE name = 'from-cli'").trim()).toBe('from-cli');
    expect(faas('keys', 'revoke', 'from-cli').status).toBe(0);
    const removed = faas('rm', 'GET:/from-cli', '--admin', gw.admin);
    expect(removed.status).toBe(0);
    expect(removed.out).toContain(`GET:/from-cli: deleted from ${pg.url}`);
    expect((await fetch(`${gw.http}/from-cli`)).status).toBe(404);
  }, 60_000);

  it('keeps serving its copy while PostgreSQL is down, says so, and catches up when it is back', async () => {
    pg.psql(`INSERT INTO functions(k, v) VALUES ('GET:/kept', ${sqlText(row('kept'))})`);
    await servedWithin('/kept', '200 kept', 1000);
    pg.stop();
    await eventually(async () => (await readyz()).body.cluster?.connected === false, 5000);
    const ready = await readyz();
    expect(ready.status).toBe(200); // a config store outage must not drain the node
    expect(ready.body.warnings.join(' ')).toMatch(/cluster database .* is unreachable/);
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/^faas_cluster_connected 0$/m);
    expect(metrics).toMatch(/^faas_cluster_sync_age_seconds \d/m);
    expect(await body('/kept')).toBe('200 kept');
    const write = await fetch(`${gw.admin}/api/v1/functions/${encodeURIComponent('GET:/while-down')}`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ runtime: 'node', code: code('x') }) });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('1');
    expect(await write.json()).toMatchObject({ code: 'CLUSTER_DB_UNAVAILABLE', message: expect.stringMatching(/could not be reached: .*nothing was written/) });

    pg.start();
    pg.psql(`UPDATE functions SET v = ${sqlText(row('after'))} WHERE k = 'GET:/kept'`);
    // Reconnecting backs off to at most 5 s; the first read after it copies everything.
    await servedWithin('/kept', '200 after', 10_000);
    expect((await readyz()).body.warnings.join(' ')).not.toMatch(/cluster/);
  }, 30_000);

  it('a node that has never copied the cluster database is not ready, and says why', async () => {
    const lonely = await startGateway(['--cluster-db', 'postgres://faas@127.0.0.1:9/faas'], { workers: 1 });
    try {
      const r = await fetch(`${lonely.admin}/readyz`);
      expect(r.status).toBe(503);
      const body = await r.json();
      expect(body.reasons.join(' ')).toMatch(/no copy of the cluster database yet: .*ECONNREFUSED/);
      expect(body.cluster).toMatchObject({ source: 'postgres://faas@127.0.0.1:9/faas', connected: false });
    } finally {
      await lonely.stop();
    }
  });

  it('without --cluster-db on the same files, the database is its own source again', async () => {
    const dir = gw.dir;
    const exited = new Promise((resolve) => gw.proc.once('exit', resolve));
    gw.proc.kill('SIGTERM');
    await exited;
    gw = await startGateway([], { workers: 1, dir });
    expect(gw.logs()).toContain('without --cluster-db it is its own source again');
    gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/local', row('local'));
    await servedWithin('/local', '200 local', 2000);
    expect(await body('/kept')).toBe('200 after'); // what it had copied stays
  }, 30_000);
});

if (missing !== undefined) {
  describe('a gateway with --cluster-db', () => {
    it.skip(`skipped: ${missing}`, () => {});
  });
}
