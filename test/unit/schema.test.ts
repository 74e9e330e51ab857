// The schema's triggers: they refuse what the TypeScript rules refuse, in the same words, keep
// `updated` current, and log every change in commit order. Checked with better-sqlite3's SQLite
// and, when it is installed, with the sqlite3 CLI that operators use (3.40 on Debian 12).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseFunctionConfig } from '../../src/routes/function-config.js';
import { parseRouteKey } from '../../src/routes/route-key.js';
import { migrate, SCHEMA_VERSION, seedDemoRoutes, VERSIONS_KEPT } from '../../src/routes/schema.js';
import { ROW_CASES as CASES } from '../fixtures/function-rows.js';

/** A key's kept versions, newest first, as [seq, v]. */
function history(db: Database.Database, k: string): Array<[number, string | null]> {
  return db.prepare('SELECT seq, v FROM functions_versions WHERE k = ? ORDER BY seq DESC').raw().all(k) as Array<[number, string | null]>;
}

/** Version 6's change-log triggers: the log only, no history. */
function createTriggersV6(db: Database.Database): void {
  const next = '(SELECT coalesce(max(seq), 0) + 1 FROM functions_changes)';
  const log = (k: string): string => `INSERT INTO functions_changes(k, seq) VALUES (${k}, ${next}) ON CONFLICT(k) DO UPDATE SET seq = excluded.seq;`;
  db.exec(`DROP TRIGGER functions_log_insert; DROP TRIGGER functions_log_update; DROP TRIGGER functions_log_delete;
    CREATE TRIGGER functions_log_insert AFTER INSERT ON functions BEGIN ${log('NEW.k')} END;
    CREATE TRIGGER functions_log_update AFTER UPDATE OF k, v ON functions WHEN OLD.v IS NOT NEW.v BEGIN ${log('NEW.k')} END;
    CREATE TRIGGER functions_log_delete AFTER DELETE ON functions BEGIN ${log('OLD.k')} END;`);
}

function fresh(): Database.Database {
  const db = new Database(':memory:');
  migrate(db);
  return db;
}
/** The trigger's message for inserting (k, v), or undefined when the row is accepted. */
function refusal(db: Database.Database, k: unknown, v: unknown): string | undefined {
  try {
    db.transaction(() => {
      db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(k, v);
      throw new RollBack();
    })();
  } catch (err) {
    if (err instanceof RollBack) return undefined;
    return (err as Error).message;
  }
  return undefined;
}
class RollBack extends Error {}

const V = (extra: Record<string, unknown> = {}): string => JSON.stringify({ runtime: 'node', code: 'x', ...extra });

describe('schema triggers', () => {
  it.each(CASES)('%s %s → %s', (k, v, message) => {
    const db = fresh();
    const refused = refusal(db, k, v);
    if (message === null) expect(refused).toBeUndefined();
    else expect(refused).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The gateway's own parser agrees on what is valid.
    expect(parseRouteKey(k).ok && parseFunctionConfig(v).ok).toBe(message === null);
  });

  it('refuses NULL or BLOB keys and values, and bad UPDATEs too', () => {
    const db = fresh();
    seedDemoRoutes(db);
    expect(refusal(db, null, V())).toMatch(/^functions\.k must be/);
    expect(refusal(db, 'GET:/x', Buffer.from('{}'))).toMatch(/^v must be valid JSON/);
    expect(() => db.exec("UPDATE functions SET v = json_set(v, '$.timeout_ms', '5s') WHERE k = 'GET:/hello'")).toThrow(/^v\.timeout_ms must be an integer/);
    expect(() => db.exec("UPDATE functions SET k = 'GET:/a?b' WHERE k = 'GET:/hello'")).toThrow(/^functions\.k path must not contain "\?"/);
  });

  it('refuses mode "thread" but for wasm, and image but with mode "container"', () => {
    const db = fresh();
    expect(refusal(db, 'GET:/t', V({ mode: 'thread' }))).toBe('v.mode "thread" is for runtime "wasm" only');
    expect(refusal(db, 'GET:/t', JSON.stringify({ runtime: 'wasm', mode: 'thread', code: 'AGFzbQ==' }))).toBeUndefined();
    expect(refusal(db, 'GET:/i', V({ image: '/srv/img' }))).toBe('v.image needs "mode": "container"');
    expect(refusal(db, 'GET:/i', V({ mode: 'container', image: 'python 3' }))).toMatch(/^v\.image must be the absolute path/);
    expect(refusal(db, 'GET:/i', V({ mode: 'container', image: '-rm' }))).toMatch(/^v\.image must be the absolute path/); // no flag for the engine
    expect(refusal(db, 'GET:/i', V({ mode: 'container', image: 'python:3.12-slim' }))).toBeUndefined();
  });

  it('keeps updated current in ms, whatever the operator writes', () => {
    const db = fresh();
    const before = Date.now();
    db.prepare('INSERT INTO functions(k, v, updated) VALUES (?, ?, 7)').run('GET:/a', V());
    const updated = (): number => db.prepare("SELECT updated FROM functions WHERE k = 'GET:/a'").pluck().get() as number;
    expect(updated()).toBeGreaterThanOrEqual(before - 1);
    expect(updated()).toBeLessThanOrEqual(Date.now() + 1);
    db.exec("UPDATE functions SET updated = 5 WHERE k = 'GET:/a'");
    expect(updated()).toBeGreaterThanOrEqual(before - 1);
    db.pragma('recursive_triggers = ON'); // the touch trigger must not recurse forever
    db.exec("UPDATE functions SET v = json_set(v, '$.memory_mb', 256), updated = 1 WHERE k = 'GET:/a'");
    expect(updated()).toBeGreaterThanOrEqual(before - 1);
  });

  it('logs inserts, updates, renames and deletes with increasing seqs, and no-op updates not at all', () => {
    const db = fresh();
    const log = (): Array<[string, number]> =>
      (db.prepare('SELECT k, seq FROM functions_changes ORDER BY seq').raw().all() as Array<[string, number]>);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/a', V());
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/b', V());
    db.exec("UPDATE functions SET v = v WHERE k = 'GET:/a'");
    expect(log()).toEqual([['GET:/a', 1], ['GET:/b', 2]]);
    db.exec("UPDATE functions SET v = json_set(v, '$.auth', 'api-key') WHERE k = 'GET:/a'");
    db.exec("UPDATE functions SET k = 'GET:/c' WHERE k = 'GET:/b'");
    db.exec("DELETE FROM functions WHERE k = 'GET:/a'");
    expect(log()).toEqual([['GET:/a', 6], ['GET:/b', 4], ['GET:/c', 5]].sort((x, y) => (x[1] as number) - (y[1] as number)));
    db.prepare('INSERT OR REPLACE INTO functions(k, v) VALUES (?, ?)').run('GET:/c', V({ code: 'y' }));
    expect(log().at(-1)).toEqual(['GET:/c', 7]);
  });
});

describe('migrate', () => {
  it('creates version 1 once', () => {
    const db = new Database(':memory:');
    expect(migrate(db)).toEqual({ from: 0, to: SCHEMA_VERSION, created: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION, created: false });
  });

  it('rebuilds an unversioned functions table, keeping its rows (bad ones too) and logging them', () => {
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE functions (k TEXT PRIMARY KEY, v TEXT NOT NULL, updated INTEGER NOT NULL);
      INSERT INTO functions VALUES ('GET:/old', '${V()}', 1), ('bad key', '{}', 2);`);
    expect(migrate(db).created).toBe(false);
    expect(db.prepare('SELECT k FROM functions_changes ORDER BY seq').pluck().all()).toEqual(['GET:/old', 'bad key']);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/new', V()); // the default exists now
    expect(refusal(db, 'bad', '{}')).toMatch(/^functions\.k/);
  });

  it('moves a version 1 database to 2: its triggers learn min_warm, its rows stay', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/kept', V());
    db.exec("DROP TRIGGER functions_check_insert; CREATE TRIGGER functions_check_insert BEFORE INSERT ON functions WHEN json_extract(NEW.v, '$.min_warm') IS NOT NULL BEGIN SELECT RAISE(ABORT, 'v has a field that is not a known field'); END;");
    db.pragma('user_version = 1');
    expect(refusal(db, 'GET:/warm', V({ min_warm: 1 }))).toMatch(/not a known field/); // what version 1 said
    expect(migrate(db)).toEqual({ from: 1, to: SCHEMA_VERSION, created: false });
    expect(refusal(db, 'GET:/warm', V({ min_warm: 1 }))).toBeUndefined();
    expect(refusal(db, 'GET:/warmer', V({ min_warm: 9 }))).toBe('v.min_warm must be an integer between 0 and 4');
    expect(db.prepare('SELECT k FROM functions').pluck().all()).toEqual(['GET:/kept']);
  });

  it('moves a version 3 database to 4: its triggers learn cpu and isolation, its rows and keys stay', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/kept', V());
    db.exec("DROP TRIGGER functions_check_insert; CREATE TRIGGER functions_check_insert BEFORE INSERT ON functions WHEN json_extract(NEW.v, '$.cpu') IS NOT NULL BEGIN SELECT RAISE(ABORT, 'v has a field that is not a known field'); END;");
    db.pragma('user_version = 3');
    expect(refusal(db, 'GET:/cpu', V({ cpu: 0.5 }))).toMatch(/not a known field/); // what version 3 said
    expect(migrate(db)).toEqual({ from: 3, to: SCHEMA_VERSION, created: false });
    expect(refusal(db, 'GET:/cpu', V({ cpu: 0.5 }))).toBeUndefined();
    expect(refusal(db, 'GET:/cpu2', V({ cpu: 99 }))).toBe('v.cpu must be a number of cores between 0.1 and 16 (0.5 is half a core)');
    expect(db.prepare('SELECT k FROM functions').pluck().all()).toEqual(['GET:/kept']);
  });

  it('moves a version 4 database to 5: its triggers learn event and cors, its rows and keys stay', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/kept', V());
    db.exec("DROP TRIGGER functions_check_insert; CREATE TRIGGER functions_check_insert BEFORE INSERT ON functions WHEN json_extract(NEW.v, '$.cors') IS NOT NULL OR json_extract(NEW.v, '$.event') IS NOT NULL BEGIN SELECT RAISE(ABORT, 'v has a field that is not a known field'); END;");
    db.pragma('user_version = 4');
    const cors = V({ cors: { origins: ['https://a.example'] }, event: 'v2' });
    expect(refusal(db, 'GET:/cors', cors)).toMatch(/not a known field/); // what version 4 said
    expect(migrate(db)).toEqual({ from: 4, to: SCHEMA_VERSION, created: false });
    expect(refusal(db, 'GET:/cors', cors)).toBeUndefined();
    expect(refusal(db, 'GET:/cors2', V({ cors: { origins: ['*'], credentials: true } }))).toMatch(/^v\.cors\.credentials cannot be true with the origin "\*"/);
    expect(refusal(db, 'GET:/event', V({ event: 'v3' }))).toBe('v.event must be one of "v1", "v2"');
    expect(db.prepare('SELECT k FROM functions').pluck().all()).toEqual(['GET:/kept']);
  });

  it('moves a version 5 database to 6: its triggers learn async, its rows stay', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/kept', V());
    db.exec("DROP TRIGGER functions_check_insert; CREATE TRIGGER functions_check_insert BEFORE INSERT ON functions WHEN json_extract(NEW.v, '$.async') IS NOT NULL BEGIN SELECT RAISE(ABORT, 'v has a field that is not a known field'); END;");
    db.pragma('user_version = 5');
    const withAsync = V({ async: { concurrency: 2 } });
    expect(refusal(db, 'GET:/async', withAsync)).toMatch(/not a known field/); // what version 5 said
    expect(migrate(db)).toEqual({ from: 5, to: SCHEMA_VERSION, created: false });
    expect(refusal(db, 'GET:/async', withAsync)).toBeUndefined();
    expect(refusal(db, 'GET:/async2', V({ async: { retries: -1 } }))).toBe('v.async.retries must be an integer between 0 and 10');
    expect(db.prepare('SELECT k FROM functions').pluck().all()).toEqual(['GET:/kept']);
  });

  it('moves a version 6 database to 7: each row starts its history at its current version, and changes are kept from then', () => {
    const db = new Database(':memory:');
    migrate(db);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/kept', V());
    // What version 6 was: no history table, triggers that write none.
    db.exec('DROP TABLE functions_versions');
    createTriggersV6(db);
    db.pragma('user_version = 6');
    db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(V({ code: 'two' }), 'GET:/kept');
    expect(migrate(db)).toEqual({ from: 6, to: SCHEMA_VERSION, created: false });
    const seq = (k: string): number => db.prepare('SELECT seq FROM functions_changes WHERE k = ?').pluck().get(k) as number;
    expect(history(db, 'GET:/kept')).toEqual([[seq('GET:/kept'), V({ code: 'two' })]]);
    db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(V({ code: 'three' }), 'GET:/kept');
    expect(history(db, 'GET:/kept').map(([, v]) => v)).toEqual([V({ code: 'three' }), V({ code: 'two' })]);
  });

  it('keeps every insert, update, rename and delete in functions_versions, the newest VERSIONS_KEPT of each key', () => {
    const db = new Database(':memory:');
    migrate(db);
    const insert = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    insert.run('GET:/a', V({ code: 'a1' }));
    db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(V({ code: 'a2' }), 'GET:/a');
    db.exec("UPDATE functions SET v = v WHERE k = 'GET:/a'"); // no change, no version
    expect(history(db, 'GET:/a')).toEqual([[2, V({ code: 'a2' })], [1, V({ code: 'a1' })]]);
    db.exec("UPDATE functions SET k = 'GET:/b' WHERE k = 'GET:/a'"); // a rename deletes the old key
    expect(history(db, 'GET:/a')[0]).toEqual([3, null]);
    expect(history(db, 'GET:/b')).toEqual([[4, V({ code: 'a2' })]]);
    db.exec("DELETE FROM functions WHERE k = 'GET:/b'");
    expect(history(db, 'GET:/b')[0]).toEqual([5, null]);
    // A failed statement leaves no version behind.
    expect(refusal(db, 'GET:/b', '{}')).toBeDefined();
    expect(history(db, 'GET:/b')).toHaveLength(2);
    for (let i = 0; i < VERSIONS_KEPT + 5; i++) db.prepare('INSERT OR REPLACE INTO functions(k, v) VALUES (?, ?)').run('GET:/c', V({ code: `c${i}` }));
    const kept = history(db, 'GET:/c');
    expect(kept).toHaveLength(VERSIONS_KEPT);
    expect(kept[0]![1]).toBe(V({ code: `c${VERSIONS_KEPT + 4}` }));
  });

  it('refuses a database from a newer gateway', () => {
    const db = new Database(':memory:');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(/newer than this gateway understands/);
  });
});

const cli = ['/usr/bin/sqlite3', '/usr/local/bin/sqlite3'].find((p) => fs.existsSync(p));

describe.skipIf(cli === undefined)('the sqlite3 CLI on a database the gateway made', () => {
  it('gets the default for updated, and the triggers refuse with their message', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-cli-'));
    try {
      const file = path.join(dir, 'faas.db');
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      migrate(db);
      db.close();
      const run = (sql: string) => spawnSync(cli!, ['-bail', file, sql], { encoding: 'utf8' });
      const version = run('SELECT sqlite_version()').stdout.trim();

      const before = Date.now();
      const ok = run(`INSERT INTO functions(k, v) VALUES ('GET:/cli', '{"runtime":"python","code":"x"}'); SELECT updated FROM functions WHERE k = 'GET:/cli';`);
      expect(ok.stderr, `sqlite3 ${version}`).toBe('');
      expect(Number(ok.stdout.trim())).toBeGreaterThanOrEqual(before - 1);
      expect(Number(ok.stdout.trim())).toBeLessThanOrEqual(Date.now() + 1);

      const badKey = run(`INSERT INTO functions(k, v) VALUES ('get /x', '{"runtime":"node","code":"x"}')`);
      expect(badKey.status).not.toBe(0);
      expect(badKey.stderr).toContain("functions.k must be 'METHOD:/path' with METHOD in upper case");
      const badTimeout = run(`UPDATE functions SET v = json_set(v, '$.timeout_ms', '5s') WHERE k = 'GET:/cli'`);
      expect(badTimeout.stderr).toContain('v.timeout_ms must be an integer between 1 and 900000');
      const badEnv = run(`UPDATE functions SET v = json_set(v, '$.env', json('{"A": 1}')) WHERE k = 'GET:/cli'`);
      expect(badEnv.stderr).toContain('v.env must be an object whose values are strings');
      const cors = (value: string) => run(`UPDATE functions SET v = json_set(v, '$.cors', json('${value}')) WHERE k = 'GET:/cli'`);
      expect(cors('{"origins": ["https://a.example"], "headers": ["X-Token"], "credentials": true}').stderr).toBe('');
      expect(cors('{"origins": ["https://a.example/app"]}').stderr).toContain('v.cors.origins must be a non-empty array of origins');
      expect(cors('{"origins": ["*"], "credentials": true}').stderr).toContain('v.cors.credentials cannot be true with the origin "*"');
      expect(run(`SELECT k, seq FROM functions_changes`).stdout.trim()).toBe('GET:/cli|2');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
