// The process sandbox's fallback where bwrap is absent (workers/unshare-runner.ts), forced
// with FAAS_SANDBOX=unshare in the workers' environment: the same isolation as bubblewrap's
// (sandbox.test.ts's probes, and a few more), timeouts and crashes handled the same way, code
// deployed by path mounted read-only, and nothing of the sandbox user left after the gateway
// stops. unshare and setpriv can only build it as root: the suite is skipped otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, expectNoResidue, fn, hostResidue, sandboxProcesses, startGateway, type Gateway } from './harness.js';

const asRoot = process.getuid?.() === 0;

let gw: Gateway;
let port: string;
let fixtures: string;
let residueBefore: ReturnType<typeof hostResidue>;

const nodeProbe = `
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
const status = (name) => new RegExp('^' + name + ':\\\\s*(\\\\S+)', 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
export default {
  async fetch(request, env) {
    const port = new URL(request.url).searchParams.get('port');
    const connect = await new Promise((resolve) => {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve('connected'); });
      s.on('error', (e) => resolve(e.code));
    });
    return Response.json({
      uid: process.getuid(),
      gid: process.getgid(),
      groups: process.getgroups(),
      caps: ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'].map(status),
      noNewPrivs: status('NoNewPrivs'),
      seccomp: status('Seccomp'),
      env: process.env,
      bindings: env,
      writeEtc: attempt(() => fs.writeFileSync('/etc/x', '1')),
      writeUsr: attempt(() => fs.writeFileSync('/usr/x', '1')),
      writeRoot: attempt(() => fs.writeFileSync('/x', '1')),
      writeDev: attempt(() => fs.writeFileSync('/dev/x', '1')),
      writeNull: attempt(() => fs.writeFileSync('/dev/null', '1')),
      writeTmp: attempt(() => fs.writeFileSync('/tmp/x', 'ok')),
      tmpMode: (fs.statSync('/tmp').mode & 0o7777).toString(8),
      readShadow: attempt(() => fs.readFileSync('/etc/shadow')),
      interfaces: attempt(() => os.networkInterfaces()),
      connectGateway: connect,
      pids: fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)),
      unshare: spawnSync('/usr/bin/unshare', ['--user', 'true'], { encoding: 'utf8' }).stderr.trim(),
      child: spawnSync('/bin/sh', ['-c', 'echo ok'], { encoding: 'utf8' }).stdout.trim(),
      limits: spawnSync('/bin/sh', ['-c', 'ulimit -n; ulimit -f'], { encoding: 'utf8' }).stdout.trim().split('\\n'),
    });
  },
};
`;

const pythonProbe = `
import multiprocessing, os, socket

def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return e.__class__.__name__ + ":" + str(e.errno)

def write(path):
    with open(path, "w") as f:
        f.write("1")

def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", int(port)))

def status(name):
    return [l.split()[1] for l in open("/proc/self/status") if l.startswith(name + ":")][0]

def handle(request):
    return {
        "uid": os.getuid(),
        "caps": [status(c) for c in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
        "seccomp": status("Seccomp"),
        "env": dict(os.environ),
        "writeEtc": attempt(lambda: write("/etc/x")),
        "writeUsr": attempt(lambda: write("/usr/x")),
        "writeRoot": attempt(lambda: write("/x")),
        "writeTmp": attempt(lambda: write("/tmp/x")),
        "semaphore": attempt(lambda: multiprocessing.Lock()),
        "writeCode": attempt(lambda: write(__file__)),
        "readShadow": attempt(lambda: open("/etc/shadow")),
        "inet": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "connectGateway": attempt(lambda: connect(request.query["port"])),
        "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
    }
`;

/** Starts a grandchild in its own session (it outlives its parent), then sleeps past timeout_ms. */
const orphanMaker = `
import subprocess, time

def handle(request):
    subprocess.Popen(["/bin/sleep", "313"], start_new_session=True)
    time.sleep(30)
`;

const NO_CAPS = Array(5).fill('0000000000000000');
const SANDBOX_ENV = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi' };

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

  it.each(['inline', 'path'])('node (%s): uid 65534, no capabilities, seccomp, read-only system, private /tmp, no network', async (how) => {
    const res = await fetch(`${gw.http}/${how}/node?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.gid).toBe(65534);
    expect(p.groups).toEqual([65534]);
    expect(p.caps).toEqual(NO_CAPS);
    expect(p.noNewPrivs).toBe('1');
    expect(p.seccomp).toBe('2');
    expect(p.env).toEqual(SANDBOX_ENV);
    expect(p.bindings).toEqual({ GREETING: 'hi' });
    expect(p.writeEtc).toMatch(/EROFS|EACCES/);
    expect(p.writeUsr).toMatch(/EROFS|EACCES/);
    expect(p.writeRoot).toMatch(/EROFS|EACCES/);
    expect(p.writeDev).toMatch(/EROFS|EACCES/);
    expect(p.writeNull).toBe('ok');
    expect(p.writeTmp).toBe('ok');
    expect(p.tmpMode).toBe('1777');
    expect(p.readShadow).toBe('ENOENT');
    expect(p.interfaces).toBe('ERR_SYSTEM_ERROR'); // a netlink socket: refused by the filter
    expect(p.connectGateway).toBe('EACCES'); // AF_INET: refused by the filter
    expect(p.pids.length).toBeLessThanOrEqual(3); // its own PID namespace: the host, and what it runs now
    expect(p.pids).toContain('1');
    expect(p.unshare).toMatch(/Operation not permitted/);
    expect(p.child).toBe('ok');
    expect(p.limits).toEqual(['1024', String((32 * 1024 * 1024) / 512)]);
  });

  it.each(['inline', 'path'])('python (%s): the same', async (how) => {
    const res = await fetch(`${gw.http}/${how}/python?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.caps).toEqual(NO_CAPS);
    expect(p.seccomp).toBe('2');
    expect(p.env).toEqual(SANDBOX_ENV);
    expect(p.writeEtc).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeUsr).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeRoot).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeTmp).toBe('ok');
    expect(p.semaphore).toBe('ok'); // POSIX semaphores need a writable /dev/shm
    // by path: the mounted file is read-only; inline: read-only too, or a spare's own copy in its /tmp
    if (how === 'path') expect(p.writeCode).toBe('OSError:30');
    else expect(p.writeCode).toMatch(/^(OSError:30|ok)$/);
    expect(p.readShadow).toBe('FileNotFoundError:2');
    expect(p.inet).toBe('PermissionError:13');
    expect(p.connectGateway).toBe('PermissionError:13');
    expect(p.pids).toBeLessThanOrEqual(3);
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
