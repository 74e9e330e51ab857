// Operators reconfigure the gateway with plain SQL from the sqlite3 command-line client:
// every INSERT, UPDATE and DELETE is served within one sync period (5 s by default), with no
// restart and no failed request meanwhile; bad rows are refused by the schema.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fn, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

function sqlite3(sql: string): { status: number | null; stderr: string } {
  const r = spawnSync('sqlite3', ['-bail', gw.dbPath, sql], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

/** Polls GET path every 20 ms until check() passes; returns how long that took. */
async function until(path: string, check: (status: number, body: string) => boolean, limitMs = 8000): Promise<number> {
  const started = Date.now();
  for (;;) {
    const res = await fetch(`${gw.http}${path}`);
    if (check(res.status, await res.text())) return Date.now() - started;
    if (Date.now() - started > limitMs) throw new Error(`${path} did not change within ${limitMs} ms`);
    await sleep(20);
  }
}

beforeAll(async () => {
  gw = await startGateway([], { syncMs: 5000 }); // the default period, as operators get it
});
afterAll(async () => {
  await gw?.stop();
});

describe('live reconfiguration with sqlite3', () => {
  it('INSERT, UPDATE and DELETE are served within 5 s, with no failed request meanwhile', async () => {
    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const background = (async () => {
      while (!stop) {
        const r = await fetch(`${gw.http}/hello`);
        if (r.status !== 200) failures.push(`${r.status} ${await r.text()}`);
        else {
          await r.arrayBuffer();
          served++;
        }
      }
    })();

    const code = "def handle(request):\\n    return ''v1''\\n"; // JSON \n escapes inside a SQL string
    expect(sqlite3(`INSERT INTO functions(k, v) VALUES ('GET:/live', '{"runtime":"python","code":"${code}"}')`).status).toBe(0);
    const insertMs = await until('/live', (s, b) => s === 200 && b === 'v1');

    expect(sqlite3(`UPDATE functions SET v = json_set(v, '$.code', 'def handle(request):' || char(10) || '    return "v2"') WHERE k = 'GET:/live'`).status).toBe(0);
    const updateMs = await until('/live', (s, b) => s === 200 && b === 'v2');

    expect(sqlite3(`DELETE FROM functions WHERE k = 'GET:/live'`).status).toBe(0);
    const deleteMs = await until('/live', (s) => s === 404);

    stop = true;
    await background;
    process.stdout.write(`propagation: insert ${insertMs} ms, update ${updateMs} ms, delete ${deleteMs} ms (sync period 5000 ms); ${served} background requests\n`);
    for (const ms of [insertMs, updateMs, deleteMs]) expect(ms).toBeLessThanOrEqual(5500);
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(10);
  });

  it('two changes committed in the same millisecond are both served', async () => {
    const body = (s: string) => fn({ runtime: 'node', code: `export default { fetch: () => new Response('${s}') }` });
    const db = gw.sql();
    db.transaction(() => {
      db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/same-a', body('a'));
      db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/same-b', body('b'));
    })();
    db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(body('a2'), 'GET:/same-a');
    await until('/same-a', (s, b) => s === 200 && b === 'a2');
    await until('/same-b', (s, b) => s === 200 && b === 'b', 500);
  });

  it('refuses bad rows with a message naming the field and the rule', () => {
    const badKey = sqlite3(`INSERT INTO functions(k, v) VALUES ('get /x', '{"runtime":"node","code":"x"}')`);
    expect(badKey.status).not.toBe(0);
    expect(badKey.stderr).toMatch(/functions\.k must be/);
    const badJson = sqlite3(`INSERT INTO functions(k, v) VALUES ('GET:/x', '{runtime: node}')`);
    expect(badJson.status).not.toBe(0);
    expect(badJson.stderr).toMatch(/v must be .*JSON/i);
    const badRuntime = sqlite3(`INSERT INTO functions(k, v) VALUES ('GET:/x', '{"runtime":"ruby","code":"x"}')`);
    expect(badRuntime.status).not.toBe(0);
    expect(badRuntime.stderr).toMatch(/runtime/);
    const badTimeout = sqlite3(`UPDATE functions SET v = json_set(v, '$.timeout_ms', '5s') WHERE k = 'GET:/hello'`);
    expect(badTimeout.status).not.toBe(0);
    expect(badTimeout.stderr).toMatch(/timeout_ms/);
  });
});
