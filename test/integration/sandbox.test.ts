// The sandbox a function runs in, in each mode (a bubblewrap process, an OCI container):
// unprivileged, no network (no namespace to reach one, and no socket but AF_UNIX under
// seccomp), none of the host's environment, a read-only system, a private writable /tmp, no
// new namespaces. Nothing is left on the host afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fn, expectNoResidue, hostResidue, MODES, startGateway, type Gateway } from './harness.js';

let gw: Gateway;
let port: string;
let residueBefore: ReturnType<typeof hostResidue>;

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  port = new URL(gw.http).port;
  const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  const probeFile = path.join(gw.dir, 'probe.py');
  fs.writeFileSync(probeFile, pythonProbe, { mode: 0o644 });
  for (const mode of MODES) {
    insert.run(`GET:/${mode}/probe/python-path`, fn({ runtime: 'python', mode, env: { GREETING: 'hi' }, path: probeFile }));
    insert.run(`GET:/${mode}/probe/node`, fn({ runtime: 'node', mode, env: { GREETING: 'hi' }, code: nodeProbe }));
    insert.run(`GET:/${mode}/probe/python`, fn({ runtime: 'python', mode, env: { GREETING: 'hi' }, code: pythonProbe }));
  }
  await eventually(async () => (await fetch(`${gw.http}/container/probe/python`)).status !== 404);
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore); // no process, cgroup or container left behind
});

const nodeProbe = `
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
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
      env: process.env,
      bindings: env,
      writeEtc: attempt(() => fs.writeFileSync('/etc/x', '1')),
      writeUsr: attempt(() => fs.writeFileSync('/usr/x', '1')),
      writeRoot: attempt(() => fs.writeFileSync('/x', '1')),
      writeCode: attempt(() => fs.writeFileSync('/fn/x', '1')),
      writeTmp: attempt(() => fs.writeFileSync('/tmp/x', 'ok')),
      readShadow: attempt(() => fs.readFileSync('/etc/shadow')),
      interfaces: attempt(() => os.networkInterfaces()),
      connectGateway: connect,
      pids: fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).length,
      seccomp: /Seccomp:\\s*(\\d)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1],
      unshare: spawnSync('/usr/bin/unshare', ['--user', 'true'], { encoding: 'utf8' }).stderr.trim(),
      child: spawnSync('/bin/sh', ['-c', 'echo ok'], { encoding: 'utf8' }).stdout.trim(),
      limits: spawnSync('/bin/sh', ['-c', 'ulimit -n; ulimit -f'], { encoding: 'utf8' }).stdout.trim().split('\\n'),
    });
  },
};
`;

const pythonProbe = `
import os, socket

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

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split()[1]

def unshare():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return 0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno()  # CLONE_NEWUSER

def errno_of(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno

def handle(request):
    return {
        "uid": os.getuid(),
        "env": dict(os.environ),
        "writeEtc": attempt(lambda: write("/etc/x")),
        "writeTmp": attempt(lambda: write("/tmp/x")),
        "writeCode": attempt(lambda: write("/fn/x")),
        "connectGateway": attempt(lambda: connect(request.query["port"])),
        "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "seccomp": status("Seccomp"),
        "capabilities": status("CapEff"),
        "unshare": unshare(),
        "shadow": errno_of(lambda: open("/etc/shadow")),
    }
`;

describe.each(MODES)('%s sandbox', (mode) => {
  it('node: unprivileged, isolated, read-only system, private /tmp', async () => {
    const res = await fetch(`${gw.http}/${mode}/probe/node?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.env).toEqual({ PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi' });
    expect(p.bindings).toEqual({ GREETING: 'hi' });
    expect(p.writeEtc).toMatch(/EROFS|EACCES/);
    expect(p.writeUsr).toMatch(/EROFS|EACCES/);
    expect(p.writeRoot).toMatch(/EROFS|EACCES/);
    expect(p.writeCode).toMatch(/EROFS|EACCES|ENOENT/); // ENOENT: a pre-started sandbox loads inline code from its own /tmp
    expect(p.writeTmp).toBe('ok');
    expect(p.readShadow).toBe('ENOENT');
    expect(p.interfaces).toBe('ERR_SYSTEM_ERROR'); // listing interfaces needs a netlink socket: refused too
    expect(p.connectGateway).toBe('EACCES'); // the seccomp filter refuses AF_INET sockets
    expect(p.pids).toBeLessThanOrEqual(3);
    expect(p.seccomp).toBe('2');
    expect(p.unshare).toMatch(/Operation not permitted/);
    expect(p.child).toBe('ok'); // processes can still be started
    expect(p.limits).toEqual(['1024', String((32 * 1024 * 1024) / 512)]); // open files; file size in 512-byte blocks
  });

  it('python: the same', async () => {
    const res = await fetch(`${gw.http}/${mode}/probe/python?port=${port}`);
    expect(res.status).toBe(200);
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.env).toEqual({ PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi' });
    expect(p.writeEtc).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeTmp).toBe('ok');
    // read-only /fn, or none: a pre-started process sandbox loads inline code from its own /tmp
    expect(p.writeCode).toMatch(/^(OSError:30|PermissionError:13|FileNotFoundError:2)$/);
    expect(p.connectGateway).toBe('PermissionError:13');
    expect(p.pids).toBeLessThanOrEqual(3);
  });

  it('python by path (a sandbox of its own; in process mode a fork of the python zygote): the same', async () => {
    const res = await fetch(`${gw.http}/${mode}/probe/python-path?port=${port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.env).toEqual({ PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi' });
    expect(p.writeEtc).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeTmp).toBe('ok');
    expect(p.writeCode).toMatch(/^(OSError:30|PermissionError:13)$/); // code deployed by path is read-only
    expect(p.connectGateway).toBe('PermissionError:13');
    expect(p.pids).toBeLessThanOrEqual(3);
    expect(p.seccomp).toBe('2');
    expect(p.capabilities).toBe('0000000000000000');
    expect(p.unshare).toBe(1); // EPERM
    expect(p.shadow).toBe(2); // ENOENT: no host /etc
    const started = gw.logs().split('\n').filter((l) => l.includes('"msg":"instance started"') && l.includes(`GET:/${mode}/probe/python-path#`));
    expect(JSON.parse(started[0]!).via).toBe(mode === 'process' && process.getuid?.() === 0 ? 'python zygote' : mode === 'process' ? 'bwrap' : 'runc');
  });

  it('the host environment never reaches a function', async () => {
    const p = await (await fetch(`${gw.http}/${mode}/probe/node?port=${port}`)).json();
    expect(JSON.stringify(p.env)).not.toContain('must-not-leak');
  });
});
