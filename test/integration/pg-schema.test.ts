// The cluster schema in a real PostgreSQL: the functions table refuses the same rows as SQLite's,
// with the same first message (one corpus through both), keeps versions and history, and
// notifies once per statement. The migration is idempotent and refuses a newer schema.
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migratePg, NOTIFY_CHANNEL, PG_SCHEMA_VERSION } from '../../src/cluster/pg-schema.js';
import { migrate, VERSIONS_KEPT } from '../../src/routes/schema.js';
import { ROW_CASES, V } from '../fixtures/function-rows.js';
import { postgresMissing, startPostgres, withPassword, type Postgres } from './postgres.js';

const missing = postgresMissing();

describe.skipIf(missing !== undefined)('the cluster schema in PostgreSQL', () => {
  let server: Postgres;
  let client: pg.Client;
  const sqlite = new Database(':memory:');
  migrate(sqlite);

  beforeAll(async () => {
    server = await startPostgres();
    client = new pg.Client({ connectionString: withPassword(server.url) });
    await client.connect();
    expect(await migratePg(client)).toEqual({ from: 0, to: PG_SCHEMA_VERSION });
  }, 60_000);
  afterAll(async () => {
    await client?.end();
    server?.destroy();
  });

  async function pgRefusal(k: string, v: string): Promise<string | undefined> {
    await client.query('BEGIN');
    try {
      await client.query('INSERT INTO functions(k, v) VALUES ($1, $2)', [k, v]);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      await client.query('ROLLBACK');
    }
  }

  function sqliteRefusal(k: string, v: string): string | undefined {
    const save = sqlite.prepare('SAVEPOINT s');
    save.run();
    try {
      sqlite.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(k, v);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      sqlite.prepare('ROLLBACK TO s').run();
      sqlite.prepare('RELEASE s').run();
    }
  }

  it(`refuses exactly what SQLite refuses, with the same message (${ROW_CASES.length} rows)`, async () => {
    const differ: string[] = [];
    for (const [k, v, message] of ROW_CASES) {
      const inPg = await pgRefusal(k, v);
      const inSqlite = sqliteRefusal(k, v);
      if (inPg !== inSqlite) differ.push(`${k} ${v.slice(0, 80)}: PostgreSQL ${JSON.stringify(inPg)} / SQLite ${JSON.stringify(inSqlite)}`);
      if (message === null) expect(inPg, `${k} ${v}`).toBeUndefined();
      else expect(inPg, `${k} ${v}`).toBeDefined();
    }
    expect(differ).toEqual([]);
  });

  it('refuses a bad API key row in the words SQLite uses', async () => {
    await expect(client.query("INSERT INTO api_keys(name, hash) VALUES ('bad name', $1)", ['0'.repeat(64)])).rejects.toThrow(/^api_keys\.name must be 1–64 characters/);
    await expect(client.query("INSERT INTO api_keys(name, hash) VALUES ('ok', 'ABC')")).rejects.toThrow(/^api_keys\.hash must be the SHA-256/);
  });

  it('gives each change a new version, keeps history (deletions too), and leaves a no-op UPDATE alone', async () => {
    const version = async (): Promise<number> => Number((await client.query("SELECT version FROM functions WHERE k = 'GET:/h'")).rows[0].version);
    await client.query("INSERT INTO functions(k, v) VALUES ('GET:/h', $1)", [V({ code: 'one' })]);
    const one = await version();
    await client.query("UPDATE functions SET v = v WHERE k = 'GET:/h'");
    expect(await version()).toBe(one);
    await client.query("UPDATE functions SET v = $1 WHERE k = 'GET:/h'", [V({ code: 'two' })]);
    const two = await version();
    expect(two).toBeGreaterThan(one);
    await client.query("DELETE FROM functions WHERE k = 'GET:/h'");
    const history = (await client.query("SELECT version, v FROM functions_versions WHERE k = 'GET:/h' ORDER BY version DESC")).rows;
    expect(history.map((r) => r.v)).toEqual([null, V({ code: 'two' }), V({ code: 'one' })]);
    expect(Number(history[1].version)).toBe(two);
    for (let i = 0; i < VERSIONS_KEPT + 3; i++) await client.query("INSERT INTO functions(k, v) VALUES ('GET:/h', $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v", [V({ code: `c${i}` })]);
    expect(Number((await client.query("SELECT count(*) AS n FROM functions_versions WHERE k = 'GET:/h'")).rows[0].n)).toBe(VERSIONS_KEPT);
  });

  it('notifies once per statement and bumps faas_config.version', async () => {
    const listener = new pg.Client({ connectionString: withPassword(server.url) });
    await listener.connect();
    const seen: string[] = [];
    listener.on('notification', (n) => seen.push(`${n.channel}:${n.payload}`));
    await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
    const before = Number((await client.query('SELECT version FROM faas_config')).rows[0].version);
    await client.query("INSERT INTO functions(k, v) VALUES ('GET:/n1', $1), ('GET:/n2', $1)", [V()]);
    await client.query("DELETE FROM functions WHERE k LIKE 'GET:/n%'");
    const deadline = Date.now() + 2000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([`${NOTIFY_CHANNEL}:functions`, `${NOTIFY_CHANNEL}:functions`]);
    expect(Number((await client.query('SELECT version FROM faas_config')).rows[0].version)).toBe(before + 2);
    await listener.end();
  });

  it('migrates once: a second run changes nothing, a newer schema is refused', async () => {
    expect(await migratePg(client)).toEqual({ from: PG_SCHEMA_VERSION, to: PG_SCHEMA_VERSION });
    await client.query('UPDATE faas_schema SET version = $1', [PG_SCHEMA_VERSION + 1]);
    await expect(migratePg(client)).rejects.toThrow(/newer than this gateway understands/);
    await client.query('UPDATE faas_schema SET version = $1', [PG_SCHEMA_VERSION]);
  });
});

if (missing !== undefined) {
  describe('the cluster schema in PostgreSQL', () => {
    it.skip(`skipped: ${missing}`, () => {});
  });
}
