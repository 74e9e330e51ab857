// Limits a hostile function runs into, in each mode (with cgroups, v1 or v2): memory_mb ends a memory
// bomb with a clear 502, pids.max stops a fork bomb, and nothing the function started
// outlives its instance or the gateway.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { detectHostLimits } from '../../src/host/host-limits.js';
import { materialize } from '../../workers/function-code.js';
import { Instance } from '../../workers/instance.js';
import { ProcessRunner } from '../../workers/runners/process-runner.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, hostResidue, MODES, pidsOfUid, sandboxProcesses, startGateway, type Gateway } from './harness.js';

// v1, hybrid or pure v2 (npm test runs this file on a pure cgroup v2 guest too: scripts/cgroup2-vm).
const host = detectHostLimits();
const cgroups = host.missing.memory === undefined && host.missing.pids === undefined;
let gw: Gateway;

let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore); // no process, cgroup or container left behind
});

describe.skipIf(!cgroups).each(MODES)(`cgroup limits (${host.kind}), %s mode`, (mode) => {
  it('a python memory bomb past memory_mb is killed: 502 naming the limit; the next call works', async () => {
    const res = await deploy(gw, `GET:/${mode}/bomb/py`, { runtime: 'python', mode, memory_mb: 64, code:
      'def handle(r):\n    if r.query.get("go"):\n        x = b"x" * (512 * 1024 * 1024)\n    return "alive"\n' });
    expect(res.status).toBe(200);
    const bomb = await fetch(`${gw.http}/${mode}/bomb/py?go=1`);
    expect(bomb.status).toBe(502);
    const body = await bomb.json();
    expect(body.code).toBe('FUNCTION_CRASHED');
    expect(body.message).toContain('memory limit of 64 MiB (memory_mb) exceeded');
    expect(await (await fetch(`${gw.http}/${mode}/bomb/py`)).text()).toBe('alive');
  });

  it('a node memory bomb outside the V8 heap is killed the same way', async () => {
    await deploy(gw, `GET:/${mode}/bomb/node`, { runtime: 'node', mode, memory_mb: 96, code:
      'export default { fetch(r) { if (new URL(r.url).searchParams.get("go")) globalThis.keep = Buffer.alloc(512 * 1024 * 1024, 1); return new Response("alive") } }' });
    const bomb = await fetch(`${gw.http}/${mode}/bomb/node?go=1`);
    expect(bomb.status).toBe(502);
    expect((await bomb.json()).message).toContain('memory limit of 96 MiB (memory_mb) exceeded');
  });

  it('a fork bomb is held at the pids limit, times out, and leaves no process behind', async () => {
    const before = sandboxProcesses();
    const call = deploy(gw, `GET:/${mode}/forkbomb`, { runtime: 'python', mode, timeout_ms: 2000, code:
      'import os, time\ndef handle(r):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            time.sleep(0.01)\n' });
    await new Promise((r) => setTimeout(r, 1000));
    const during = sandboxProcesses();
    const res = await call;
    expect(res.status).toBe(504);
    expect(during - before).toBeGreaterThan(10); // it did fork…
    // …up to pids.max (PIDS_MAX, bwrap included), plus the spares refilled meanwhile (≤ 2 sandboxes of ≤ 3 processes)
    expect(during - before).toBeLessThanOrEqual(64 + 6);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    await eventually(async () => sandboxProcesses() <= before, 5000);
    expect((await fetch(`${gw.http}/hello`)).status).toBe(200);
  });
});

/** Processes on the host whose uid is one of the process runner's per-sandbox uids (≥ 1.9e9). */
const slotUidProcesses = (): number => pidsOfUid((uid) => uid >= 1_900_000_000).length;

describe.skipIf(process.getuid?.() !== 0)('without cgroups (a pure cgroup2 host): memory_mb by address space, pids by a uid of its own', () => {
  it('a python memory bomb gets MemoryError: 500, a fork bomb EAGAIN at the pids limit, and nothing is left', async () => {
    // The real process runner and instance, as a worker without cgroups builds them.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-nocg-'));
    fs.chmodSync(dir, 0o755);
    try {
      const runtimeDir = path.join(dir, 'runtime');
      fs.mkdirSync(runtimeDir, { mode: 0o755 });
      // Every runtime host file, as the worker installs them (a host imports its siblings).
      for (const name of fs.readdirSync('workers/runtime')) if (/\.(py|mjs)$/.test(name)) fs.copyFileSync(path.join('workers/runtime', name), path.join(runtimeDir, name));
      for (const name of fs.readdirSync(runtimeDir)) fs.chmodSync(path.join(runtimeDir, name), 0o644);
      const runner = new ProcessRunner({ runtimeDir, seccompFilter: path.resolve('dist/seccomp/filter.bpf') });
      const config = { runtime: 'python', mode: 'process', memoryMb: 64, timeoutMs: 10_000, maxConcurrency: 1, minWarm: 0, env: {}, auth: 'none',
        code: [
          'import os, time',
          'def handle(r):',
          '    if r.query.get("go"):',
          '        x = b"x" * (512 * 1024 * 1024)',
          '    if r.query.get("fork"):',
          '        for n in range(200):',
          '            try:',
          '                if os.fork() == 0:',
          '                    time.sleep(60)',
          '                    os._exit(0)',
          '            except OSError as e:',
          '                return {"uid": os.getuid(), "forked": n, "errno": e.errno}',
          '    return "alive"',
        ].join('\n') } as const;
      const spec = { key: 'GET:/nocg', version: 1, config };
      const instance = new Instance('GET:/nocg#1', runner.start(spec, materialize(config, path.join(dir, 'code'))), 1, 10_000, () => {});
      await instance.ready;
      const call = (query: string) => instance.invoke({ requestId: 'r', method: 'GET', path: '/nocg', query, headers: [] }, Buffer.alloc(0), 10_000);
      const bomb = await call('go=1');
      expect(bomb).toMatchObject({ ok: false, code: 'FUNCTION_ERROR', message: expect.stringMatching(/^MemoryError/) });
      expect(await call('')).toMatchObject({ ok: true, status: 200 });
      const fork = await call('fork=1');
      if (!fork.ok) throw new Error(fork.message);
      const forked = JSON.parse(fork.body.toString());
      expect(forked.uid).toBe(65534); // inside; outside, a uid of its own
      expect(forked.errno).toBe(11); // EAGAIN: RLIMIT_NPROC
      expect(forked.forked).toBeGreaterThan(10);
      expect(forked.forked).toBeLessThan(64); // PIDS_MAX, bwrap and the host included
      expect(slotUidProcesses()).toBeGreaterThan(10);
      instance.kill();
      await instance.gone;
      await eventually(async () => slotUidProcesses() === 0, 5000); // the PID namespace died with bwrap
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
