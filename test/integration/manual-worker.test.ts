// A worker started by hand (`faas worker`) joins the gateway that shares its run dir with its
// first report, takes calls, and drops out when it stops.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, sleep, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

interface WorkerRow { id: string; available: boolean; supervised: boolean }

it('a worker started by hand joins, serves and leaves', async () => {
  const extra = spawn(process.execPath, [path.resolve('dist/src/cli/main.js'), 'worker', '--id', 'extra', '--run-dir', gw.runDir], { stdio: 'ignore' });
  try {
    const joined = await eventually(async () => {
      const ws: WorkerRow[] = await (await fetch(`${gw.admin}/workers`)).json();
      return ws.find((w) => w.id === 'extra' && w.available);
    }, 10_000);
    expect(joined.supervised).toBe(false);
    // Bursts, so the gateway's in-flight charge spreads them whatever the two scores are.
    const served = await eventually(async () => {
      const replies = await Promise.all(Array.from({ length: 4 }, () => fetch(`${gw.http}/hello`)));
      for (const r of replies) expect(r.status).toBe(200);
      return replies.some((r) => r.headers.get('x-faas-worker') === 'extra');
    }, 10_000, 10);
    expect(served).toBe(true);
  } finally {
    extra.kill('SIGTERM');
  }
  await eventually(async () => {
    const ws: WorkerRow[] = await (await fetch(`${gw.admin}/workers`)).json();
    return !ws.some((w) => w.id === 'extra' && w.available);
  }, 5000);
  await sleep(100);
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${gw.http}/hello`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-faas-worker')).toBe('w1');
  }
});
