// RouteStore against a real SQLite file, with a second better-sqlite3 connection playing the
// operator who edits the table with plain SQL while the gateway syncs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RouteStore, type SyncOutcome } from '../../src/routes/route-store.js';

let dir: string;
let dbPath: string;
const opened: Array<{ close(): void }> = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-routes-'));
  dbPath = path.join(dir, 'nested', 'faas.db'); // open() creates the folder
});
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(busyTimeoutMs = 50): RouteStore {
  const store = RouteStore.open(dbPath, { busyTimeoutMs });
  opened.push(store);
  return store;
}
function operator(): Database.Database {
  const db = new Database(dbPath, { timeout: 50 });
  opened.push(db);
  return db;
}
const fn = (v: Record<string, unknown>): string => JSON.stringify(v);
const node = (body: string): string => fn({ runtime: 'node', code: `export default { fetch: () => new Response('${body}') }` });
function ok(outcome: SyncOutcome): SyncOutcome {
  if (!outcome.ok) throw new Error(outcome.error);
  return outcome;
}
const codeOf = (store: RouteStore, key: string): string | undefined => store.snapshot.get(key)?.config.code;

describe('RouteStore on a fresh database', () => {
  it('creates the schema and serves the three demo routes', () => {
    const store = open();
    const first = ok(store.sync());
    expect(first.changed).toBe(3);
    const table = store.snapshot;
    expect([...table.routes.keys()].sort()).toEqual(['GET:/hello', 'GET:/py/hello', 'POST:/echo']);
    const hello = table.get('GET:/hello')!;
    expect(hello).toMatchObject({ method: 'GET', path: '/hello', config: { runtime: 'node', mode: 'process', timeoutMs: 30000 } });
    expect(hello.config.code).toContain("new Response('hello from faas\\n')");
    expect(table.get('POST:/echo')!.config.code).toMatch(/^exports\.handler = async \(event\)/);
    expect(table.get('GET:/py/hello')!.config).toMatchObject({ runtime: 'python', code: expect.stringMatching(/^def handle\(request\):\n {4}return/) });
    expect(new Set([...table.routes.values()].map((r) => r.version)).size).toBe(3);
    expect(store.status()).toMatchObject({ lastSuccessAt: expect.any(Number), routes: [{ key: 'GET:/hello', state: 'ok', runtime: 'node' }, {}, {}] });
  });

  it('seeds only once: demo routes an operator deleted stay deleted', () => {
    ok(open().sync());
    operator().exec("DELETE FROM functions WHERE k = 'GET:/hello'");
    opened.splice(0).forEach((c) => c.close());
    const again = open();
    ok(again.sync());
    expect(again.snapshot.get('GET:/hello')).toBeUndefined();
    expect(again.snapshot.size).toBe(2);
  });

  it('refuses to open a file that is not a database, saying which', () => {
    fs.mkdirSync(path.dirname(dbPath), { recursive: true });
    fs.writeFileSync(dbPath, 'this is not a database, it is a text file that is long enough to have a header'.repeat(20));
    expect(() => RouteStore.open(dbPath)).toThrow(/cannot use .*faas\.db as the routes database: .*not a database/);
  });

  it('refuses a path it cannot create, saying which', () => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    expect(() => RouteStore.open(path.join(dir, 'file', 'faas.db'))).toThrow(/cannot use .*file\/faas\.db as the routes database: .*(EEXIST|ENOTDIR)/);
  });
});

describe('RouteStore.sync', () => {
  it('picks up INSERT, UPDATE and DELETE on the next sync, and keeps old Route objects intact', () => {
    const store = open();
    ok(store.sync());
    const op = operator();
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/a', node('a1'));
    expect(ok(store.sync()).changed).toBe(1);
    const before = store.snapshot;
    const inFlight = before.get('GET:/a')!;
    expect(inFlight.config.code).toContain('a1');

    op.prepare("UPDATE functions SET v = json_set(v, '$.timeout_ms', 5000) WHERE k = ?").run('GET:/a');
    expect(ok(store.sync()).changed).toBe(1);
    const after = store.snapshot.get('GET:/a')!;
    expect(after.config.timeoutMs).toBe(5000);
    expect(after.version).toBeGreaterThan(inFlight.version);
    // The request that started on the old config still has it, and it cannot be changed.
    expect(inFlight.config.timeoutMs).toBe(30000);
    expect(before.get('GET:/a')).toBe(inFlight);
    expect(Object.isFrozen(inFlight) && Object.isFrozen(inFlight.config)).toBe(true);

    op.prepare('DELETE FROM functions WHERE k = ?').run('GET:/a');
    expect(ok(store.sync()).changed).toBe(1);
    expect(store.snapshot.get('GET:/a')).toBeUndefined();
    expect(store.status().routes.map((r) => r.key)).not.toContain('GET:/a');
  });

  it('sees every change committed in the same millisecond, before and after a sync', () => {
    const store = open();
    ok(store.sync());
    const op = operator();
    const insert = op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    op.transaction(() => {
      insert.run('GET:/same-a', node('a'));
      insert.run('GET:/same-b', node('b'));
    })();
    insert.run('GET:/same-c', node('c'));
    const stamps = op.prepare("SELECT DISTINCT updated FROM functions WHERE k LIKE 'GET:/same-%'").pluck().all();
    process.stdout.write(`same-ms: 3 commits over ${stamps.length} distinct updated value(s)\n`);
    expect(ok(store.sync()).changed).toBe(3);
    // The C original's miss: a commit right after a sync, in the same second (or ms) as it.
    insert.run('GET:/same-d', node('d'));
    expect(ok(store.sync()).changed).toBe(1);
    for (const k of ['a', 'b', 'c', 'd']) expect(codeOf(store, `GET:/same-${k}`), k).toContain(`'${k}'`);
  });

  it('follows a rename: the old key disappears and the new one appears', () => {
    const store = open();
    ok(store.sync());
    operator().exec("UPDATE functions SET k = 'GET:/hi' WHERE k = 'GET:/hello'");
    expect(ok(store.sync()).changed).toBe(2);
    expect(store.snapshot.get('GET:/hello')).toBeUndefined();
    expect(store.snapshot.get('GET:/hi')?.config.code).toContain('hello from faas');
  });

  it('lists the methods a path has, for 405 and Allow', () => {
    const store = open();
    const op = operator();
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('DELETE:/hello', node('x'));
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('POST:/hello', node('x'));
    ok(store.sync());
    expect(store.snapshot.allowedMethods('/hello')).toEqual(['GET', 'POST', 'DELETE']);
    expect(store.snapshot.allowedMethods('/nope')).toEqual([]);
  });

  it('builds a new snapshot only when something changed', () => {
    const store = open();
    ok(store.sync());
    const table = store.snapshot;
    expect(ok(store.sync()).changed).toBe(0);
    operator().exec("UPDATE functions SET v = v WHERE k = 'GET:/hello'"); // a commit that changes nothing
    expect(ok(store.sync()).changed).toBe(0);
    expect(store.snapshot).toBe(table);
  });
});

describe('RouteStore with bad rows', () => {
  it('shows a row whose path does not exist as an error, and serves it once the path exists', () => {
    const store = open();
    const file = path.join(dir, 'handler.js');
    operator().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/file', fn({ runtime: 'node', path: file }));
    const outcome = ok(store.sync());
    expect(outcome.errors).toBe(1);
    expect(outcome.problems).toEqual([{ key: 'GET:/file', error: `v.path ${JSON.stringify(file)} does not exist on this host` }]);
    expect(store.snapshot.get('GET:/file')).toBeUndefined();
    expect(store.status().routes.find((r) => r.key === 'GET:/file')).toEqual({ key: 'GET:/file', state: 'error', error: expect.stringContaining('does not exist') });

    fs.writeFileSync(file, 'exports.handler = async () => "ok"');
    expect(ok(store.sync()).changed).toBe(1); // no database change: the row is retried by itself
    expect(store.snapshot.get('GET:/file')?.config.path).toBe(file);
    expect(store.status().routes.find((r) => r.key === 'GET:/file')?.state).toBe('ok');
  });

  it('keeps the last good config of a row that turns bad, shows it stale, and recovers', () => {
    const store = open();
    ok(store.sync());
    const good = store.snapshot.get('GET:/hello')!;
    const op = operator();
    const code = op.prepare("SELECT json_extract(v, '$.code') FROM functions WHERE k = 'GET:/hello'").pluck().get();
    op.exec("UPDATE functions SET v = json_remove(json_set(v, '$.path', '/nonexistent/fn.mjs'), '$.code') WHERE k = 'GET:/hello'"); // valid SQL-side, not on this host
    let outcome = ok(store.sync());
    expect(outcome.errors).toBe(1);
    expect(store.snapshot.get('GET:/hello')).toBe(good);
    expect(store.status().routes.find((r) => r.key === 'GET:/hello')).toEqual({
      key: 'GET:/hello', state: 'stale', version: good.version, updated: good.updated, runtime: 'node',
      error: 'v.path "/nonexistent/fn.mjs" does not exist on this host',
    });

    // Garbage that only gets past the schema because the operator dropped its trigger.
    op.exec('DROP TRIGGER functions_check_update');
    op.exec(`UPDATE functions SET v = '{"runtime":"node","code":"x","timeout":5}' WHERE k = 'GET:/py/hello'`);
    op.exec("UPDATE functions SET k = 'get:/lower' WHERE k = 'POST:/echo'");
    outcome = ok(store.sync());
    expect(outcome.errors).toBe(2);
    expect(store.snapshot.get('GET:/py/hello')?.config.runtime).toBe('python');
    expect(store.snapshot.get('POST:/echo')).toBeUndefined(); // renamed away: gone, as operators asked
    const byKey = new Map(store.status().routes.map((r) => [r.key, r]));
    expect(byKey.get('GET:/py/hello')).toMatchObject({ state: 'stale', error: expect.stringMatching(/^v\.timeout is not a known field \(did you mean "timeout_ms"\?\)/) });
    expect(byKey.get('get:/lower')).toMatchObject({ state: 'error', error: expect.stringMatching(/^functions\.k must be 'METHOD:\/path'/) });

    op.prepare("UPDATE functions SET v = json_remove(json_set(v, '$.code', ?), '$.path') WHERE k = 'GET:/hello'").run(code);
    ok(store.sync());
    expect(store.snapshot.get('GET:/hello')!.version).toBeGreaterThan(good.version);
    expect(store.status().routes.find((r) => r.key === 'GET:/hello')?.state).toBe('ok');
  });
});

describe('RouteStore when the database misbehaves', () => {
  it('is not blocked by a long writer (WAL) and sees its change once committed', () => {
    const store = open(50);
    ok(store.sync());
    const op = operator();
    op.exec('BEGIN IMMEDIATE');
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/late', node('late'));
    const during = ok(store.sync());
    expect(during.changed).toBe(0);
    expect(store.snapshot.get('GET:/late')).toBeUndefined();
    op.exec('COMMIT');
    expect(ok(store.sync()).changed).toBe(1);
    expect(store.snapshot.get('GET:/late')).toBeDefined();
  });

  it('opens a database locked by another writer, reports SQLITE_BUSY, and catches up once it is free', () => {
    fs.mkdirSync(path.dirname(dbPath), { recursive: true });
    const op = operator(); // a rollback-journal database, as a plain sqlite3 client makes one
    op.exec('CREATE TABLE unrelated(x); BEGIN EXCLUSIVE; INSERT INTO unrelated VALUES (1);');
    const store = open(20);
    expect(store.status().lastError).toMatch(/^SQLITE_BUSY/);
    const failed = store.sync();
    expect(failed).toMatchObject({ ok: false, changed: 0, error: expect.stringMatching(/^SQLITE_BUSY: database is locked/) });
    expect(store.snapshot.size).toBe(0);
    expect(store.status()).toMatchObject({ lastSyncAt: expect.any(Number), lastError: expect.any(String), lastErrorAt: expect.any(Number) });
    expect(store.status().lastSuccessAt).toBeUndefined();

    op.exec('COMMIT');
    expect(ok(store.sync()).changed).toBe(3); // migrated, seeded, loaded
    expect(store.status().lastError).toBeUndefined();
  });

  it('keeps serving the last snapshot while the schema is gone, and recovers when it is back', () => {
    const store = open();
    ok(store.sync());
    const table = store.snapshot;
    const op = operator();
    op.exec('ALTER TABLE functions RENAME TO functions_moved');
    const failed = store.sync();
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/no such table: functions/);
    expect(store.snapshot).toBe(table);
    expect(store.status()).toMatchObject({ lastError: expect.stringMatching(/no such table/), routes: expect.arrayContaining([expect.objectContaining({ key: 'GET:/hello', state: 'ok' })]) });

    op.exec('ALTER TABLE functions_moved RENAME TO functions');
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/back', node('back'));
    expect(ok(store.sync()).changed).toBe(1);
    expect(store.snapshot.size).toBe(4);
    expect(store.status().lastError).toBeUndefined();
  });
});

describe('RouteStore with 100k routes', () => {
  it('loads them once, then a sync with no change reads nothing', () => {
    const store = open();
    ok(store.sync());
    const op = operator();
    const insert = op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    const v = node('bulk');
    let t = performance.now();
    op.transaction(() => {
      for (let i = 0; i < 100_000; i++) insert.run(`GET:/bulk/${i}`, v);
    })();
    const insertMs = performance.now() - t;

    t = performance.now();
    expect(ok(store.sync()).changed).toBe(100_000);
    const loadMs = performance.now() - t;
    const table = store.snapshot;
    expect(table.size).toBe(100_003);

    t = performance.now();
    const idle = ok(store.sync());
    const idleMs = performance.now() - t;
    expect(idle.changed).toBe(0);
    expect(store.snapshot).toBe(table);

    op.prepare("UPDATE functions SET v = json_set(v, '$.timeout_ms', 1000) WHERE k = 'GET:/bulk/5'").run();
    t = performance.now();
    expect(ok(store.sync()).changed).toBe(1);
    const oneMs = performance.now() - t;
    expect(store.snapshot.get('GET:/bulk/5')?.config.timeoutMs).toBe(1000);
    expect(table.get('GET:/bulk/5')?.config.timeoutMs).toBe(30000);
    process.stdout.write(`100k routes: insert ${insertMs.toFixed(0)} ms, first sync ${loadMs.toFixed(0)} ms, ` +
      `no-change sync ${idleMs.toFixed(3)} ms, one-change sync ${oneMs.toFixed(1)} ms\n`);
  });
});
