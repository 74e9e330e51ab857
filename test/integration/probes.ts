// The isolation probes every kind of sandbox must pass (bwrap, a fork of the python zygote,
// runc, unshare + setpriv): deployed inline and by path, they report what a function can see and
// do, and expectNodeIsolated / expectPythonIsolated say what it must see. sandbox.test.ts runs
// them in every mode, unshare.test.ts in the fallback.
import { expect } from 'vitest';

export const nodeProbe = `
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

export const pythonProbe = `
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

export const NO_CAPS = Array(5).fill('0000000000000000');
export const SANDBOX_ENV = { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi' };

/** Deploy a probe with this env: the function's own variables, and nothing of the host's. */
export const PROBE_ENV = { GREETING: 'hi' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function expectNodeIsolated(p: any): void {
  expect(p.uid).toBe(65534);
  expect(p.gid).toBe(65534);
  expect(p.groups.every((g: number) => g === 65534)).toBe(true);
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
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function expectPythonIsolated(p: any, how: 'inline' | 'path'): void {
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
  if (how === 'path') expect(p.writeCode).toMatch(/^(OSError:30|PermissionError:13)$/);
  else expect(p.writeCode).toMatch(/^(OSError:30|PermissionError:13|ok)$/);
  expect(p.readShadow).toBe('FileNotFoundError:2');
  expect(p.inet).toBe('PermissionError:13');
  expect(p.connectGateway).toBe('PermissionError:13');
  expect(p.pids).toBeLessThanOrEqual(3);
}
