// The sandbox's promises on whichever kind of host this runs: the hybrid (cgroup v1) machines,
// and a pure cgroup v2 guest under systemd-like delegation (npm test runs this file there too:
// scripts/cgroup2-vm). One gateway, so it stays within a few minutes under QEMU's emulation:
// memory bombs (node, python, a zygote fork, a container) are killed at memory_mb with a 502
// naming it; a fork bomb is held at the pids limit and a killed instance leaves no process; a
// `cpu` quota holds a busy function to its share, measured from the worker's own cgroup; the
// zygote and container mode start and serve; a SIGKILLed gateway leaves no process and no cgroup
// folder. On v2 the gateway's cgroup is delegated the v2 way (its processes in a `supervisor`
// leaf, the controllers on for the rest) and nothing above it is written.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRunsc } from '../../src/host/container-engine.js';
import { CGROUP_MOUNT, detectHostLimits, SUPERVISOR_LEAF } from '../../src/host/host-limits.js';
import { cgroupFolders, deploy, eventually, expectNoResidue, hostResidue, sandboxProcesses, SLOW, startGateway, type Gateway } from './harness.js';

// A process and its descendants, as the scripts read them from /proc. A path in a variable: tsc
// does not type the plain-JS module (policies.test.ts does the same).
const processesPath = new URL('../../scripts/lib/processes.mjs', import.meta.url).href;
const { processTree } = (await import(processesPath)) as { processTree: (root: number) => Array<{ pid: number }> };

const host = detectHostLimits();
const limits = host.missing.memory === undefined && host.missing.pids === undefined;
const cpuQuotas = limits && host.missing.cpu === undefined;
/** subtree_control of every cgroup above the one the gateway starts in, before it starts. */
const ancestorsBefore = host.kind === 'v2' ? ancestorControls(host.base!) : [];

let gw: Gateway;
let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  fs.mkdirSync(path.join(gw.dir, 'fn'), { mode: 0o755 });
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore);
});

/** A node function that spins for `ms` of wall-clock time and says how many turns it made. */
const SPIN = 'export default { fetch(r) { const ms = Number(new URL(r.url).searchParams.get("ms")); const end = Date.now() + ms; let n = 0; while (Date.now() < end) n++; return new Response(String(n)) } }';

/** CPU µs used so far by every sandbox of the gateway's worker (its folder holds them all). */
function workerCpuUsec(): number {
  const folder = cgroupFolders().find((dir) => host.kind === 'v2' || dir.includes('cpuacct'));
  if (!folder) throw new Error(`no worker cgroup folder found (${cgroupFolders().join(', ')})`);
  const text = fs.readFileSync(path.join(folder, host.kind === 'v2' ? 'cpu.stat' : 'cpuacct.usage'), 'utf8');
  return host.kind === 'v2' ? Number(/^usage_usec (\d+)$/m.exec(text)![1]) : Number(text) / 1000;
}

/**
 * What a call of `wallMs` of busy loop used: `share` of a core from the worker's whole folder
 * (its instances and the spares it may be refilling meanwhile), `instanceShare` from the
 * instance's own cgroup (server-timing's cpu), both over the call's measured wall time.
 */
async function cpuShareOfCall(url: string, wallMs: number): Promise<{ share: number; instanceShare: number | undefined; serverCpuMs: number | undefined }> {
  await fetch(`${url}?ms=50`); // started and warm: the measured call is the function alone
  const before = workerCpuUsec();
  const t0 = performance.now();
  const res = await fetch(`${url}?ms=${wallMs}`);
  const elapsed = performance.now() - t0;
  expect(res.status).toBe(200);
  const used = workerCpuUsec() - before;
  const cpu = /cpu;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '')?.[1];
  const serverCpuMs = cpu === undefined ? undefined : Number(cpu);
  return { share: used / 1000 / elapsed, instanceShare: serverCpuMs === undefined ? undefined : serverCpuMs / elapsed, serverCpuMs };
}

describe.skipIf(host.kind !== 'v2' || host.missing.memory !== undefined)('cgroup v2 delegation', () => {
  it('the gateway and its workers live in the supervisor leaf; instances in the worker folder, with the controllers on', async () => {
    await deploy(gw, 'GET:/v2/hello', { runtime: 'node', code: 'export default { fetch: () => new Response("hi") }' });
    const base = detectHostLimits().base!;
    const leaf = path.join(base, SUPERVISOR_LEAF);
    const inLeaf = fs.readFileSync(path.join(leaf, 'cgroup.procs'), 'utf8').split('\n').map(Number);
    expect(inLeaf).toContain(gw.proc.pid);
    expect(fs.readFileSync(path.join(base, 'cgroup.procs'), 'utf8').trim()).toBe(''); // the no-internal-process rule
    expect(fs.readFileSync(path.join(base, 'cgroup.subtree_control'), 'utf8')).toMatch(/memory/);
    const [worker] = cgroupFolders();
    expect(fs.readFileSync(path.join(worker!, 'cgroup.subtree_control'), 'utf8').split(/\s+/)).toEqual(expect.arrayContaining(['memory', 'pids']));
    const instances = fs.readdirSync(worker!).filter((n) => /^i\d+$/.test(n));
    expect(instances.length).toBeGreaterThan(0);
    expect(fs.readFileSync(path.join(worker!, instances[0]!, 'memory.max'), 'utf8').trim()).toBe(String(128 * 1024 * 1024));
    expect(fs.readFileSync(path.join(worker!, instances[0]!, 'pids.max'), 'utf8').trim()).toBe('64');
  });

  it('writes nothing above the cgroup it was started in', () => {
    expect(ancestorControls(host.base!)).toEqual(ancestorsBefore);
  });
});

/** Python and node functions that allocate 512 MiB when asked (node outside the V8 heap). */
const PY_BOMB = 'def handle(r):\n    if r.query.get("go"):\n        x = b"x" * (512 * 1024 * 1024)\n    return "alive"\n';
const NODE_BOMB = 'export default { fetch(r) { if (new URL(r.url).searchParams.get("go")) globalThis.keep = Buffer.alloc(512 * 1024 * 1024, 1); return new Response("alive") } }';

async function expectMemoryKill(route: string, memoryMb: number): Promise<void> {
  const bomb = await fetch(`${gw.http}${route}?go=1`);
  expect(bomb.status).toBe(502);
  const body = await bomb.json();
  expect(body.code).toBe('FUNCTION_CRASHED');
  expect(body.message).toContain(`memory limit of ${memoryMb} MiB (memory_mb) exceeded`);
  expect(await (await fetch(`${gw.http}${route}`)).text()).toBe('alive'); // a new instance serves
}

describe.skipIf(!limits)(`memory_mb and the process limit (${host.kind})`, () => {
  it('a python memory bomb in a fork of the zygote is killed at memory_mb: 502 naming the limit', async () => {
    const file = path.join(gw.dir, 'fn', 'bomb.py');
    fs.writeFileSync(file, PY_BOMB, { mode: 0o644 });
    expect((await deploy(gw, 'GET:/py/bomb', { runtime: 'python', memory_mb: 64, path: file })).status).toBe(200);
    expect(gw.instanceLog('GET:/py/bomb').find((l) => l.msg === 'instance started')?.via).toBe(process.getuid?.() === 0 ? 'python zygote' : 'bwrap');
    await expectMemoryKill('/py/bomb', 64);
  });

  it('a node memory bomb outside the V8 heap, in a bwrap sandbox, is killed the same way', async () => {
    await deploy(gw, 'GET:/node/bomb', { runtime: 'node', memory_mb: 96, code: NODE_BOMB });
    await expectMemoryKill('/node/bomb', 96);
  });

  it('container mode starts and serves, and its memory bomb is killed the same way', async () => {
    expect((await deploy(gw, 'GET:/container/bomb', { runtime: 'node', mode: 'container', memory_mb: 96, code: NODE_BOMB })).status).toBe(200);
    expect(gw.instanceLog('GET:/container/bomb').find((l) => l.msg === 'instance started')?.via).toBe('runc');
    await expectMemoryKill('/container/bomb', 96);
  });

  it('a fork bomb is held at the pids limit; the instance killed at its timeout leaves no process', async () => {
    const before = sandboxProcesses();
    const res = await deploy(gw, 'GET:/forkbomb', { runtime: 'python', timeout_ms: 3000 * SLOW, code: [
      'import os, time',
      'def handle(r):',
      '    n = 0',
      '    while True:',
      '        try:',
      '            if os.fork() == 0:',
      '                time.sleep(600)',
      '                os._exit(0)',
      '            n += 1',
      '        except OSError as e:',
      '            if r.query.get("hang"):',
      '                time.sleep(600)',
      '            return {"forked": n, "errno": e.errno}',
    ].join('\n') });
    const first = await res.json();
    expect(first).toMatchObject({ errno: 11 }); // EAGAIN: pids.max
    expect(first.forked).toBeGreaterThan(10);
    expect(first.forked).toBeLessThan(64); // PIDS_MAX, bwrap and the host included
    expect(sandboxProcesses() - before).toBeGreaterThan(10); // …and they are still there
    const hung = await fetch(`${gw.http}/forkbomb?hang=1`);
    expect(`${hung.status} ${await hung.text()}`).toMatch(/^504 /);
    // Killed whole (cgroup.kill on v2, every pid of the cgroup on v1): nothing of it is left.
    await eventually(async () => sandboxProcesses() <= before + 6, 5000); // the spares refilled meanwhile: ≤ 2 of ≤ 3 processes
  });
});

describe.skipIf(!cpuQuotas)(`cpu quotas (${host.kind})`, () => {
  it('a busy function with cpu: 0.25 uses at most 30 % of a core over 3 s, measured from the cgroup', async () => {
    await deploy(gw, 'GET:/spin/quarter', { runtime: 'node', cpu: 0.25, code: SPIN });
    const { share, instanceShare, serverCpuMs } = await cpuShareOfCall(`${gw.http}/spin/quarter`, 3000);
    // The instance's own cgroup: the worker's folder also holds the spares it refills meanwhile,
    // which in the emulated guest cost seconds of CPU and put its figure over the quota.
    expect(serverCpuMs).toBeDefined();
    expect(instanceShare!).toBeLessThanOrEqual(0.3);
    expect(instanceShare!).toBeGreaterThan(0.1); // it did run
    expect(share).toBeGreaterThanOrEqual(instanceShare! * 0.95); // the folder holds the instance
  }, 20_000 * SLOW);

  it('the same function without cpu is not held to it', async () => {
    await deploy(gw, 'GET:/spin/free', { runtime: 'node', code: SPIN });
    const { share } = await cpuShareOfCall(`${gw.http}/spin/free`, 1500);
    expect(share).toBeGreaterThan(0.4); // two cores shared with the test runner and the gateway: well over the quota
  }, 20_000 * SLOW);

  it('a cpu out of range is refused by the schema, naming the field and the rule', () => {
    expect(() => gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run('GET:/spin/bad', JSON.stringify({ runtime: 'node', cpu: 32, code: SPIN })))
      .toThrow('v.cpu must be a number of cores between 0.1 and 16');
  });
});

describe.skipIf(!limits)('a worker killed with SIGKILL', () => {
  it('is replaced, and the new worker kills what the old one left in its cgroups and removes them', async () => {
    await deploy(gw, 'GET:/reaped', { runtime: 'python', code: 'def handle(r):\n    return "r"\n' });
    const workers = async () => (await (await fetch(`${gw.admin}/workers`)).json()) as Array<{ id: string; pid: number; available: boolean }>;
    const victim = (await workers())[0]!;
    const folder = (): string | undefined => cgroupFolders().find((f) => path.basename(f) === `faas-${victim.id}-${victim.pid}`);
    expect(folder()).toBeDefined();
    const before = sandboxProcesses();
    expect(before).toBeGreaterThan(0);
    process.kill(victim.pid, 'SIGKILL');
    await eventually(async () => (await workers()).some((w) => w.pid !== victim.pid && w.pid > 0 && w.available), 15_000);
    await eventually(async () => folder() === undefined, 5000);
    expect(await (await fetch(`${gw.http}/reaped`)).text()).toBe('r'); // and the new worker serves
  });
});

describe('a gateway killed with SIGKILL', () => {
  it('leaves no process and no cgroup folder behind', async () => {
    // Its own processes and folders, by descent: the suite's gateway keeps running beside it.
    const other = await startGateway([], { workers: 1 });
    try {
      await deploy(other, 'GET:/killed', { runtime: 'python', code: 'def handle(r):\n    return "k"\n' });
      const workers = (await (await fetch(`${other.admin}/workers`)).json()) as Array<{ id: string; pid: number }>;
      const processes = processTree(other.proc.pid!).slice(1).map((p) => p.pid); // below the gateway
      expect(processes.length).toBeGreaterThan(workers.length + 1); // workers, sandboxes, the zygote…
      const folders = (): string[] => cgroupFolders().filter((f) => workers.some((w) => path.basename(f) === `faas-${w.id}-${w.pid}`));
      expect(folders().length).toBeGreaterThan(0);
      other.proc.kill('SIGKILL');
      await eventually(async () => processes.every((pid) => !fs.existsSync(`/proc/${pid}`)), 10_000);
      await eventually(async () => folders().length === 0, 5000);
    } finally {
      await other.stop();
    }
  });
});

describe.skipIf(!limits || findRunsc() === undefined)(`gVisor (${host.kind})`, () => {
  it('gVisor starts and serves, and its memory bomb is killed the same way', async () => {
    // gVisor's ptrace platform under QEMU's emulation takes about a minute to a first answer, and
    // the gVisor sandbox its worker pre-starts afterwards as long again: this suite comes last.
    const res = await deploy(gw, 'GET:/gvisor/bomb', { runtime: 'python', mode: 'container', isolation: 'gvisor', memory_mb: 96, timeout_ms: 30_000 * SLOW, code: PY_BOMB });
    expect(res.status).toBe(200);
    expect(gw.instanceLog('GET:/gvisor/bomb').find((l) => l.msg === 'instance started')?.via).toBe('runsc');
    await expectMemoryKill('/gvisor/bomb', 96);
  }, 60_000 * SLOW);
});

describe.skipIf(host.kind !== 'v2' || host.missing.memory !== undefined)('cgroup v2, at the end', () => {
  it('nothing above the gateway\'s cgroup was written, containers and gVisor included', () => {
    // runc and runsc enable controllers along the path from the root themselves; with them all on
    // already (systemd with Delegate=yes, and this guest) those writes change nothing.
    expect(ancestorControls(detectHostLimits().base!)).toEqual(ancestorsBefore);
  });
});

/** [folder, its subtree_control] for every cgroup strictly above `dir`, up to the root. */
function ancestorControls(dir: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let d = path.dirname(dir); d.startsWith(CGROUP_MOUNT); d = path.dirname(d)) {
    out.push([d, fs.readFileSync(path.join(d, 'cgroup.subtree_control'), 'utf8')]);
    if (d === CGROUP_MOUNT) break;
  }
  return out;
}
