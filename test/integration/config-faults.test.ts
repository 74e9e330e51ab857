// The routes database failing under a running gateway: its table renamed away for several sync
// periods (a lock cannot do it: in WAL mode no writer holds readers out). The gateway keeps
// serving its last good routes, says what is wrong on /readyz and /metrics, retries every
// period, and picks up the next good commit.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, fn, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

async function configState(g: Gateway): Promise<{ ready: Record<string, unknown>; failing: number }> {
  const ready = await (await fetch(`${g.admin}/readyz`)).json();
  const metrics = await (await fetch(`${g.admin}/metrics`)).text();
  return { ready, failing: Number(/^faas_config_sync_failing (\d)$/m.exec(metrics)?.[1]) };
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
      return s.failing === 1 && s;
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
});
