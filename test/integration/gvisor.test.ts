// Container mode under gVisor ("isolation": "gvisor"): the bundle runc gets, run by runsc, so the
// function talks to gVisor's kernel instead of the host's. It starts and serves, stays warm, has
// pre-started sandboxes of its own (never runc's), passes the isolation probes that runc passes
// (probes.ts) with the differences gVisor shows, is killed past memory_mb, and leaves nothing
// behind. Skipped where runsc (Debian package runsc) is not installed.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, fn, hostResidue, startGateway, type Gateway } from './harness.js';
import { expectNodeIsolated, expectPythonIsolated, NO_CAPS, nodeProbe, PROBE_ENV, pythonProbe } from './probes.js';

const RUNSC = ['/usr/bin/runsc', '/usr/sbin/runsc', '/usr/local/bin/runsc', '/usr/local/sbin/runsc'].find((p) => fs.existsSync(p));
const GVISOR = { mode: 'container', isolation: 'gvisor' } as const;

// gVisor's /proc/self/status has no NoNewPrivs and no CapAmb line: the probes read a missing line
// as missing instead of failing (no_new_privs is checked with prctl below).
const gvisorNodeProbe = nodeProbe.replace("'utf8'))[1];", "'utf8'))?.[1];");
const gvisorPythonProbe = pythonProbe.replace(
  'return [l.split()[1] for l in open("/proc/self/status") if l.startswith(name + ":")][0]',
  'return next((l.split()[1] for l in open("/proc/self/status") if l.startswith(name + ":")), None)');

/** runsc sandboxes (gVisor's kernels) on the host whose command line names `what` (a run dir, a container id prefix). */
function sandboxesOf(what: string): number {
  let n = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmdline.startsWith('runsc-sandbox\0') && cmdline.includes(what)) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

describe.skipIf(!RUNSC)(RUNSC ? 'container mode under gVisor' : 'container mode under gVisor (skipped: runsc is not installed; apt-get install runsc)', () => {
  let gw: Gateway;
  let port: string;
  let residueBefore: ReturnType<typeof hostResidue>;

  beforeAll(async () => {
    expect(gvisorNodeProbe).not.toBe(nodeProbe);
    expect(gvisorPythonProbe).not.toBe(pythonProbe);
    residueBefore = hostResidue();
    gw = await startGateway([], { workers: 1 });
    port = new URL(gw.http).port;
    const probes = path.join(gw.dir, 'probes');
    fs.mkdirSync(path.join(probes, 'node'), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(probes, 'node', 'index.mjs'), gvisorNodeProbe, { mode: 0o644 });
    fs.writeFileSync(path.join(probes, 'probe.py'), gvisorPythonProbe, { mode: 0o644 });
    fs.chmodSync(probes, 0o755);
    const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    insert.run('GET:/gvisor/inline/node', fn({ runtime: 'node', ...GVISOR, env: PROBE_ENV, code: gvisorNodeProbe }));
    insert.run('GET:/gvisor/inline/python', fn({ runtime: 'python', ...GVISOR, env: PROBE_ENV, code: gvisorPythonProbe }));
    insert.run('GET:/gvisor/path/node', fn({ runtime: 'node', ...GVISOR, env: PROBE_ENV, path: path.join(probes, 'node') }));
    insert.run('GET:/gvisor/path/python', fn({ runtime: 'python', ...GVISOR, env: PROBE_ENV, path: path.join(probes, 'probe.py') }));
    await eventually(async () => (await fetch(`${gw.http}/gvisor/path/python`)).status !== 404);
  });
  afterAll(async () => {
    const runDir = gw?.runDir;
    await gw?.stop();
    if (runDir) await eventually(async () => sandboxesOf(runDir) === 0, 5000).catch(() => {});
    if (runDir) expect(sandboxesOf(runDir)).toBe(0);
    await expectNoResidue(residueBefore); // no process, cgroup or container left behind
  });

  it.each([
    ['node', 'export default { fetch() { return new Response("hi from node"); } };', 'hi from node'],
    ['python', 'def handle(request):\n    return "hi from python"\n', 'hi from python'],
  ] as const)('%s: starts under runsc and serves; the second call is warm', async (runtime, code, body) => {
    const key = `GET:/gvisor/hello/${runtime}`;
    const first = await deploy(gw, key, { runtime, ...GVISOR, code });
    if (first.status !== 200) throw new Error(await first.text());
    expect(await first.text()).toBe(body);
    const second = await fetch(`${gw.http}/gvisor/hello/${runtime}`);
    expect(await second.text()).toBe(body);
    expect(second.headers.get('server-timing')).toContain('start;desc=warm');
    const started = gw.instanceLog(key).filter((l) => l.msg === 'instance started');
    expect(started).toHaveLength(1);
    expect(started[0]!.via).toBe('runsc');
  });

  it('pre-starts gVisor sandboxes apart from runc ones: a cold gVisor start adopts one, a runc start never does', async () => {
    // The starts above asked for gVisor spares (node and python, 128 MiB): they start 250 ms later.
    await eventually(async () => sandboxesOf(gw.runDir) >= 4, 15_000, 100); // two warm instances, two spares
    const res = await deploy(gw, 'GET:/gvisor/adopter', { runtime: 'node', ...GVISOR, code: 'export default { fetch() { return new Response("adopted"); } };' });
    expect(await res.text()).toBe('adopted');
    expect(gw.instanceLog('GET:/gvisor/adopter').find((l) => l.msg === 'instance started')).toMatchObject({ via: 'runsc', prestarted: true });
    const runc = await deploy(gw, 'GET:/runc/node', { runtime: 'node', mode: 'container', code: 'export default { fetch() { return new Response("runc"); } };' });
    expect(await runc.text()).toBe('runc');
    expect(gw.instanceLog('GET:/runc/node').find((l) => l.msg === 'instance started')?.via).toBe('runc');
  });

  it.each(['inline', 'path'] as const)('node (%s): the isolation probes pass as under runc', async (how) => {
    const res = await fetch(`${gw.http}/gvisor/${how}/node?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    // What gVisor shows differently: no CapAmb and no NoNewPrivs line in /proc/self/status, and
    // EPERM for every call the seccomp filter refuses (runsc ignores errnoRet; runc: EACCES).
    expect(p.caps).toEqual([...NO_CAPS.slice(0, 4), null]);
    expect(p.noNewPrivs).toBeUndefined();
    expect(p.connectGateway).toBe('EPERM');
    expectNodeIsolated({ ...p, caps: NO_CAPS, noNewPrivs: '1', connectGateway: 'EACCES' });
    expect(gw.instanceLog(`GET:/gvisor/${how}/node`).find((l) => l.msg === 'instance started')?.via).toBe('runsc');
  });

  it.each(['inline', 'path'] as const)('python (%s): the same', async (how) => {
    const res = await fetch(`${gw.http}/gvisor/${how}/python?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.caps).toEqual([...NO_CAPS.slice(0, 4), null]);
    expect(p.inet).toBe('PermissionError:1');
    expect(p.connectGateway).toBe('PermissionError:1');
    expectPythonIsolated({ ...p, caps: NO_CAPS, inet: 'PermissionError:13', connectGateway: 'PermissionError:13' }, how);
    expect(gw.instanceLog(`GET:/gvisor/${how}/python`).find((l) => l.msg === 'instance started')?.via).toBe('runsc');
  });

  it('runs with no_new_privs (prctl), in a kernel that is not the host\'s', async () => {
    const res = await deploy(gw, 'GET:/gvisor/kernel', { runtime: 'python', ...GVISOR, code: [
      'import ctypes, os',
      'def handle(request):',
      '    libc = ctypes.CDLL(None, use_errno=True)',
      '    return {"noNewPrivs": libc.prctl(39, 0, 0, 0, 0), "dmesg": open("/proc/version").read()}', // PR_GET_NO_NEW_PRIVS
      '',
    ].join('\n') });
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.noNewPrivs).toBe(1);
    expect(p.dmesg).not.toBe(fs.readFileSync('/proc/version', 'utf8')); // gVisor's own kernel version string
  });

  it('a memory bomb past memory_mb is killed: 502 naming the limit', async () => {
    const res = await deploy(gw, 'GET:/gvisor/bomb', { runtime: 'python', ...GVISOR, memory_mb: 64,
      code: 'def handle(request):\n    x = b"x" * (512 * 1024 * 1024)\n    return "alive"\n' });
    expect(res.status).toBe(502);
    expect((await res.json()).message).toMatch(/memory limit of 64 MiB \(memory_mb\) exceeded/);
  });

  it('a worker killed abruptly leaves no sandbox: its gVisor instances end, the next worker removes their state', async () => {
    const [worker] = await (await fetch(`${gw.admin}/workers`)).json() as Array<{ id: string; pid: number }>;
    const prefix = `faas-${worker!.id}-${worker!.pid}-`;
    const stateRoot = path.join(gw.runDir, 'containers', 'runsc');
    const theirs = (): number => sandboxesOf(prefix);
    expect(theirs()).toBeGreaterThan(0);
    process.kill(worker!.pid, 'SIGKILL');
    await eventually(async () => theirs() === 0, 10_000, 100); // each runtime host saw its channel close
    await eventually(async () => (await (await fetch(`${gw.admin}/workers`)).json()).every((w: { available: boolean }) => w.available), 10_000);
    const res = await fetch(`${gw.http}/gvisor/hello/python`);
    expect(await res.text()).toBe('hi from python');
    expect(fs.readdirSync(stateRoot).filter((id) => id.startsWith(prefix))).toEqual([]);
  });
});
