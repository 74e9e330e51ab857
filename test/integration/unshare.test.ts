// The process sandbox's fallback where bwrap is absent (workers/unshare-runner.ts), forced
// with FAAS_SANDBOX=unshare in the workers' environment: the same isolation as bubblewrap's
// (sandbox.test.ts's probes, and a few more), timeouts and crashes handled the same way, code
// deployed by path mounted read-only, and nothing of the sandbox user left after the gateway
// stops. unshare and setpriv can only build it as root: the suite is skipped otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, fn, hostResidue, sandboxProcesses, startGateway, type Gateway } from './harness.js';
import { expectNodeIsolated, expectPythonIsolated, nodeProbe, pythonProbe } from './probes.js';

const asRoot = process.getuid?.() === 0;

let gw: Gateway;
let port: string;
let fixtures: string;
let residueBefore: ReturnType<typeof hostResidue>;


/** Starts a grandchild in its own session (it outlives its parent), then sleeps past timeout_ms. */
const orphanMaker = `
import subprocess, time

def handle(request):
    subprocess.Popen(["/bin/sleep", "313"], start_new_session=True)
    time.sleep(30)
`;


beforeAll(async () => {
  if (!asRoot) return;
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1, env: { FAAS_SANDBOX: 'unshare' } });
  port = new URL(gw.http).port;
  // Code deployed by path is mounted where it is: the checkout may not be readable by uid
  // 65534, the gateway's temp dir is.
  fixtures = path.join(gw.dir, 'fixtures');
  fs.mkdirSync(path.join(fixtures, 'node-probe'), { recursive: true, mode: 0o755 });
  fs.cpSync('test/fixtures/hostile', fixtures, { recursive: true });
  fs.writeFileSync(path.join(fixtures, 'node-probe', 'index.mjs'), nodeProbe, { mode: 0o644 });
  fs.writeFileSync(path.join(fixtures, 'probe.py'), pythonProbe, { mode: 0o644 });
  fs.chmodSync(fixtures, 0o755);
  const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  // Inline code at the default memory_mb runs in a pre-started sandbox (startGeneric); code
  // deployed by path in a sandbox started for it, with the code bind-mounted (a folder, a file).
  insert.run('GET:/inline/node', fn({ runtime: 'node', env: { GREETING: 'hi' }, code: nodeProbe }));
  insert.run('GET:/inline/python', fn({ runtime: 'python', env: { GREETING: 'hi' }, code: pythonProbe }));
  insert.run('GET:/path/node', fn({ runtime: 'node', env: { GREETING: 'hi' }, path: path.join(fixtures, 'node-probe') }));
  insert.run('GET:/path/python', fn({ runtime: 'python', env: { GREETING: 'hi' }, path: path.join(fixtures, 'probe.py') }));
  insert.run('GET:/crash', fn({ runtime: 'node', code: 'export default { fetch() { process.exit(3) } }' }));
  insert.run('GET:/loop', fn({ runtime: 'node', timeout_ms: 500, code: 'export default { fetch() { for (;;); } }' }));
  insert.run('GET:/orphan', fn({ runtime: 'python', timeout_ms: 1000, code: orphanMaker }));
  await eventually(async () => (await fetch(`${gw.http}/path/python?port=${port}`)).status !== 404, 10_000);
});
afterAll(async () => {
  if (!asRoot) return;
  await gw?.stop();
  await expectNoResidue(residueBefore); // no process of uid 65534, no cgroup folder left behind
});

describe.skipIf(!asRoot)('unshare + setpriv sandbox (FAAS_SANDBOX=unshare)', () => {
  it('is the one the worker chose, and the worker says so', async () => {
    await fetch(`${gw.http}/inline/python?port=${port}`);
    expect(gw.logs()).toMatch(/--sandbox unshare \(FAAS_SANDBOX\): process sandboxes use unshare \+ setpriv/);
    expect(gw.logs()).toMatch(/"via":"unshare"/);
    expect(gw.logs()).not.toMatch(/"via":"bwrap"/);
  });

  it.each(['inline', 'path'] as const)('node (%s): uid 65534, no capabilities, seccomp, read-only system, private /tmp, no network', async (how) => {
    const res = await fetch(`${gw.http}/${how}/node?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    expectNodeIsolated(await res.json());
  });

  it.each(['inline', 'path'] as const)('python (%s): the same', async (how) => {
    const res = await fetch(`${gw.http}/${how}/python?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    expectPythonIsolated(await res.json(), how);
  });

  it('the host environment never reaches a function', async () => {
    for (const how of ['inline', 'path']) {
      const p = await (await fetch(`${gw.http}/${how}/node?port=${port}`)).json();
      expect(JSON.stringify(p.env)).not.toContain('must-not-leak');
    }
  });

  it('escape attempts fail: symlinks out of /tmp, /proc/1, ptrace, its own code', async () => {
    const res = await deploy(gw, 'GET:/escape', { runtime: 'python', path: path.join(fixtures, 'escape.py') });
    expect(res.status).toBe(200);
    const r = await res.json();
    expect(r.shadowViaSymlink).toBe(2);
    expect(r.rootViaSymlink).toBe(2);
    expect([2, 13]).toContain(r.hostRootViaProc);
    expect(r.pid1Environ).not.toContain('must-not-leak');
    expect(r.ptrace).toEqual([-1, 1]);
    expect(r.mountinfoLines).toBeLessThan(20);
    expect([13, 30]).toContain(r.writeOwnCode);
  });

  it('a crash is 502 FUNCTION_CRASHED with the exit code, and the next call works', async () => {
    const res = await fetch(`${gw.http}/crash`);
    expect(res.status).toBe(502);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_CRASHED');
    expect(body.message).toMatch(/exited \(code 3\)/);
    expect((await fetch(`${gw.http}/inline/python?port=${port}`)).status).toBe(200);
  });

  it('an infinite loop ends at timeout_ms with 504', async () => {
    const res = await fetch(`${gw.http}/loop`);
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
  });

  it('a timed-out python call gets a fresh instance next time (by path)', async () => {
    const first = await deploy(gw, 'GET:/sleepy', { runtime: 'python', path: path.join(fixtures, 'sleep.py'), timeout_ms: 300 });
    expect(first.status).toBe(200);
    const instance = await first.text();
    const res = await fetch(`${gw.http}/sleepy?sleep=1`);
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    const next = await fetch(`${gw.http}/sleepy`);
    expect(next.status).toBe(200);
    expect(await next.text()).not.toBe(instance);
  });

  it('the kill reaches a grandchild in its own session', async () => {
    const res = await fetch(`${gw.http}/orphan`);
    expect(res.status).toBe(504);
    await eventually(async () => !sleeping313(), 5000);
  });

  it('no process of uid 65534 is left once the gateway stops', async () => {
    await gw.stop();
    await eventually(async () => sandboxProcesses() <= residueBefore.sandboxProcesses, 5000);
  });
});

/** Is the orphan maker's `sleep 313` still running anywhere on the host? */
function sleeping313(): boolean {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8') === '/bin/sleep\x00313\x00') return true;
    } catch {
      /* gone */
    }
  }
  return false;
}
