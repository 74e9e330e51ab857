// Limits a hostile function runs into (process mode with cgroups v1): memory_mb ends a memory
// bomb with a clear 502, pids.max stops a fork bomb, and nothing the function started
// outlives its instance.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

const cgroupsV1 = fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/pids') && process.getuid?.() === 0;
let gw: Gateway;

/** Processes on the host owned by the sandbox user (uid 65534). */
function sandboxProcesses(): number {
  let n = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (/^Uid:\s+65534\b/m.test(fs.readFileSync(`/proc/${name}/status`, 'utf8'))) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

describe.skipIf(!cgroupsV1)('cgroup limits', () => {
  it('a python memory bomb past memory_mb is killed: 502 naming the limit; the next call works', async () => {
    const res = await deploy(gw, 'GET:/bomb/py', { runtime: 'python', memory_mb: 64, code:
      'def handle(r):\n    if r.query.get("go"):\n        x = b"x" * (512 * 1024 * 1024)\n    return "alive"\n' });
    expect(res.status).toBe(200);
    const bomb = await fetch(`${gw.http}/bomb/py?go=1`);
    expect(bomb.status).toBe(502);
    const body = await bomb.json();
    expect(body.code).toBe('FUNCTION_CRASHED');
    expect(body.message).toContain('memory limit of 64 MiB (memory_mb) exceeded');
    expect(await (await fetch(`${gw.http}/bomb/py`)).text()).toBe('alive');
  });

  it('a node memory bomb outside the V8 heap is killed the same way', async () => {
    await deploy(gw, 'GET:/bomb/node', { runtime: 'node', memory_mb: 96, code:
      'export default { fetch(r) { if (new URL(r.url).searchParams.get("go")) globalThis.keep = Buffer.alloc(512 * 1024 * 1024, 1); return new Response("alive") } }' });
    const bomb = await fetch(`${gw.http}/bomb/node?go=1`);
    expect(bomb.status).toBe(502);
    expect((await bomb.json()).message).toContain('memory limit of 96 MiB (memory_mb) exceeded');
  });

  it('a fork bomb is held at the pids limit, times out, and leaves no process behind', async () => {
    const before = sandboxProcesses();
    const call = deploy(gw, 'GET:/forkbomb', { runtime: 'python', timeout_ms: 2000, code:
      'import os, time\ndef handle(r):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            time.sleep(0.01)\n' });
    await new Promise((r) => setTimeout(r, 1000));
    const during = sandboxProcesses();
    const res = await call;
    expect(res.status).toBe(504);
    expect(during - before).toBeGreaterThan(10); // it did fork…
    expect(during - before).toBeLessThanOrEqual(64); // …up to pids.max (PIDS_MAX), bwrap included
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    await eventually(async () => sandboxProcesses() <= before, 5000);
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
  });
});
