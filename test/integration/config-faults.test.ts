// The routes database failing under a running gateway: its table renamed away for several sync
// periods, the file replaced by garbage and then by a good copy, an older backup restored into
// it, and a write lock held across start-up (in WAL mode no writer holds readers out, so a lock
// matters only for the schema step). The gateway keeps serving its last good routes, says what
// is wrong on /readyz and /metrics, retries every period, and picks up the next good database.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, fn, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

// /metrics is read first: a sync may land between the two requests, and /readyz, read second,
// then already says what the metric said (CI once saw the metric failing beside a stale /readyz).
async function configState(g: Gateway): Promise<{ ready: Record<string, unknown>; failing: number }> {
  const metrics = await (await fetch(`${g.admin}/metrics`)).text();
  const ready = await (await fetch(`${g.admin}/readyz`)).json();
  return { ready, failing: Number(/^faas_config_sync_failing (\d)$/m.exec(metrics)?.[1]) };
}

function servingFromMemory(s: { ready: Record<string, unknown>; failing: number }): boolean {
  return s.failing === 1 && (s.ready.config as { servingFromMemory?: boolean }).servingFromMemory === true;
}

describe('the routes database fails', () => {
  it('its schema gone for several sync periods: serves from memory, says so, and catches up after', async () => {
    gw = await startGateway([], { workers: 1, syncMs: 200 });
    const g = gw;
    expect((await fetch(`${g.http}/hello`)).status).toBe(200);
    const op = g.sql();
    op.exec('ALTER TABLE functions RENAME TO functions_moved'); // an operator's migration gone wrong
    const { ready } = await eventually(async () => {
      const s = await configState(g);
      return servingFromMemory(s) && s;
    }, 5000);
    expect(ready).toMatchObject({ ready: true, config: { servingFromMemory: true, lastError: expect.stringMatching(/no such table: functions/) } });
    await sleep(600); // a few more periods, all failing
    for (let i = 0; i < 5; i++) expect((await fetch(`${g.http}/hello`)).status).toBe(200);

    op.exec('ALTER TABLE functions_moved RENAME TO functions');
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/later', fn({ runtime: 'python', code: 'def handle(r):\n    return "later"\n' }));
    const later = await eventually(async () => {
      const r = await fetch(`${g.http}/later`);
      return r.status === 200 && r;
    }, 5000);
    expect(await later.text()).toBe('later');
    expect((await configState(g)).failing).toBe(0);
    expect(g.logs()).toMatch(/"msg":"routes synced".*"ok":false/);
  }, 30_000);

  it('its file replaced by garbage: serves from memory and says so; then by a good copy: reads it in full', async () => {
    gw = await startGateway([], { workers: 1, syncMs: 200 });
    const g = gw;
    expect((await fetch(`${g.http}/hello`)).status).toBe(200);
    // A good copy made now, with one route more and one less, to move in later.
    // The operator holds no connection while replacing the file: the old file's WAL goes with the
    // gateway's connection to it (README, Operations).
    const copy = path.join(g.dir, 'copy.db');
    const op = new Database(g.dbPath);
    op.exec(`VACUUM INTO '${copy}'`);
    op.close();
    const other = new Database(copy);
    other.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/from-copy', fn({ runtime: 'python', code: 'def handle(r):\n    return "copy"\n' }));
    other.prepare("DELETE FROM functions WHERE k = 'GET:/hello'").run();
    other.close();

    const garbage = path.join(g.dir, 'garbage.db');
    fs.writeFileSync(garbage, Buffer.alloc(64 * 1024, 'not a database '));
    fs.renameSync(garbage, g.dbPath);
    const { ready } = await eventually(async () => {
      const s = await configState(g);
      return servingFromMemory(s) && s;
    }, 5000);
    expect(ready).toMatchObject({ config: { servingFromMemory: true, lastError: expect.stringMatching(/replaced by one that cannot be used: .*not a database/) } });
    for (let i = 0; i < 3; i++) expect((await fetch(`${g.http}/hello`)).status).toBe(200);

    fs.rmSync(g.dbPath);
    await eventually(async () => ((await configState(g)).ready.config as { lastError?: string }).lastError?.includes('is gone'), 5000);
    expect((await fetch(`${g.http}/hello`)).status).toBe(200);
    expect(fs.existsSync(g.dbPath)).toBe(false); // not recreated empty behind the operator's back

    fs.renameSync(copy, g.dbPath);
    const fromCopy = await eventually(async () => {
      const r = await fetch(`${g.http}/from-copy`);
      return r.status === 200 && r;
    }, 5000);
    expect(await fromCopy.text()).toBe('copy');
    expect((await fetch(`${g.http}/hello`)).status).toBe(404); // the new file does not have it
    expect((await configState(g)).failing).toBe(0);
  }, 30_000);

  it('an older backup restored into the same file (sqlite3 .restore) is read in full', async () => {
    gw = await startGateway([], { workers: 1, syncMs: 200 });
    const g = gw;
    const backup = path.join(g.dir, 'backup.db');
    expect(spawnSync('sqlite3', [g.dbPath, `.backup '${backup}'`]).status).toBe(0);
    const op = g.sql();
    op.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/after-backup', fn({ runtime: 'python', code: 'def handle(r):\n    return "new"\n' }));
    await eventually(async () => (await fetch(`${g.http}/after-backup`)).status === 200, 5000);

    const restore = spawnSync('sqlite3', [g.dbPath, `.restore '${backup}'`], { encoding: 'utf8' });
    expect(restore.stderr).toBe('');
    // The backup's change log ends before the one the gateway has read: without a full read,
    // nothing would look changed and /after-backup would be served for good.
    await eventually(async () => (await fetch(`${g.http}/after-backup`)).status === 404, 5000);
    expect((await fetch(`${g.http}/hello`)).status).toBe(200);
  }, 30_000);

  it('a write lock held across start-up: not ready, says why, and loads the routes once it is released', async () => {
    let holder: Database.Database | undefined;
    gw = await startGateway([], {
      workers: 1, syncMs: 200,
      beforeStart: (dbPath) => {
        holder = new Database(dbPath);
        holder.exec('BEGIN IMMEDIATE; CREATE TABLE operator_scratch(x)'); // an operator's transaction left open
      },
    });
    const g = gw;
    try {
      const res = await fetch(`${g.admin}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { reasons: string[] };
      expect(body.reasons.join('; ')).toMatch(/routes have never loaded: .*locked/);
      expect((await fetch(`${g.http}/hello`)).status).toBe(404);
      await sleep(1000); // five sync periods, every one of them busy
      expect((await fetch(`${g.admin}/readyz`)).status).toBe(503);
    } finally {
      holder!.exec('COMMIT');
      holder!.close();
    }
    await eventually(async () => (await fetch(`${g.http}/hello`)).status === 200, 5000);
    expect((await fetch(`${g.admin}/readyz`)).status).toBe(200);
  }, 30_000);
});
