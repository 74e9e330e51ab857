// Container mode with a user's root file system (`image`): the function runs on the image's own
// python, sees the image and not the host's /usr, and keeps every limit of container mode. The
// image is built here the way a distroless one is: an interpreter, the libraries it links, its
// standard library, and nothing else (hard links into the host's files, or copies).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findContainerEngine } from '../../src/host/container-engine.js';
import { deploy, expectNoResidue, hostResidue, startGateway, type Gateway } from './harness.js';
import { NO_CAPS, pythonProbe } from './probes.js';

let gw: Gateway;
let image: string;
let residueBefore: ReturnType<typeof hostResidue>;

/** Copies `file` into `root` at the same path, and the symlinks that lead to it (hard link where it can). */
function take(root: string, file: string): void {
  let at = file;
  for (let hops = 0; hops < 10; hops++) {
    const dest = path.join(root, at);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const stat = fs.lstatSync(at);
    if (fs.existsSync(dest) || (stat.isSymbolicLink() && fs.lstatSync(dest, { throwIfNoEntry: false }))) {
      if (!stat.isSymbolicLink()) return;
    } else if (stat.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(at), dest);
    } else {
      try {
        fs.linkSync(at, dest);
      } catch {
        fs.copyFileSync(at, dest);
      }
      return;
    }
    at = path.resolve(path.dirname(at), fs.readlinkSync(at));
  }
}

function buildPythonImage(root: string): void {
  for (const [link, target] of [['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['bin', 'usr/bin']] as const) {
    fs.mkdirSync(path.join(root, target), { recursive: true });
    fs.symlinkSync(target, path.join(root, link)); // merged /usr, as on Debian: /lib/x.so lands in usr/lib
  }
  const python = fs.realpathSync('/usr/bin/python3');
  take(root, '/usr/bin/python3');
  const ldd = execFileSync('ldd', [python], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(\/\S+) \(0x/g)) take(root, m[1]!);
  const stdlib = path.join('/usr/lib', path.basename(python)); // /usr/lib/python3.11
  try {
    execFileSync('cp', ['-al', stdlib, path.join(root, stdlib)], { stdio: 'pipe' });
  } catch {
    fs.rmSync(path.join(root, stdlib), { recursive: true, force: true });
    execFileSync('cp', ['-a', stdlib, path.join(root, stdlib)]); // another file system: copies
  }
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/image-release'), 'faas-test-image 1\n');
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777); // as in every image: the tmpfs over it takes its mode
}

beforeAll(async () => {
  residueBefore = hostResidue();
  gw = await startGateway([], { workers: 1 });
  image = path.join(gw.dir, 'image');
  buildPythonImage(image);
  fs.chmodSync(image, 0o755);
});
afterAll(async () => {
  await gw?.stop();
  await expectNoResidue(residueBefore);
});

const probe = `
import os, socket, sys
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return e.errno
def handle(request):
    return {
        "release": open("/etc/image-release").read().strip(),
        "python": sys.executable,
        "hostNode": os.path.exists("/usr/bin/node"),
        "uid": os.getuid(),
        "writeRoot": attempt(lambda: open("/x", "w")),
        "writeTmp": attempt(lambda: open("/tmp/x", "w").write("1")),
        "inet": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
    }
`;

describe('container mode with an image', () => {
  it("runs on the image's own python, sees the image and nothing of the host's /usr, with the same limits", async () => {
    const res = await deploy(gw, 'GET:/image/probe', { runtime: 'python', mode: 'container', image, code: probe });
    if (res.status !== 200) throw new Error(await res.text());
    expect(await res.json()).toEqual({
      release: 'faas-test-image 1', python: expect.stringMatching(/^\/usr\/(local\/)?bin\/python3/),
      hostNode: false, uid: 65534, writeRoot: 30, writeTmp: 'ok', inet: 13,
    });
  });

  it('refuses an image without the runtime, and image without container mode, saying which', async () => {
    const insert = gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    expect(() => insert.run('GET:/image/process', JSON.stringify({ runtime: 'python', image, code: 'x' })))
      .toThrow('v.image needs "mode": "container"');
    insert.run('GET:/image/node', JSON.stringify({ runtime: 'node', mode: 'container', image, code: 'x' }));
    const row = await (async () => {
      for (let i = 0; i < 50; i++) {
        const routes = await (await fetch(`${gw.admin}/routes`)).json();
        const r = routes.routes.find((x: { key: string }) => x.key === 'GET:/image/node');
        if (r) return r;
        await new Promise((s) => setTimeout(s, 100));
      }
      return undefined;
    })();
    expect(row).toMatchObject({ state: 'error', error: `v.image ${JSON.stringify(image)} has no node interpreter (looked for /usr/local/bin/node, /usr/bin/node)` });
  });
});

const engine = findContainerEngine();

describe.skipIf(!engine)('container mode with an image name, run by Docker or Podman', () => {
  const name = `localhost/faas-test-python:${process.pid}`;
  beforeAll(() => {
    // The same distroless-style image, imported into the engine (no registry needed).
    const tar = path.join(gw.dir, 'image.tar');
    execFileSync('tar', ['-C', image, '-cf', tar, '.']);
    execFileSync(engine!.path, ['import', tar, name], { stdio: 'pipe' });
  });
  afterAll(() => {
    execFileSync(engine!.path, ['rmi', '--force', name], { stdio: 'pipe' });
  });

  it('runs the function in the image, isolated and limited as a runc bundle is', async () => {
    await deploy(gw, 'GET:/engine/probe', { runtime: 'python', mode: 'container', image: name, env: { GREETING: 'hi' }, code: pythonProbe });
    const res = await fetch(`${gw.http}/engine/probe?port=${new URL(gw.http).port}`);
    if (res.status !== 200) throw new Error(await res.text());
    const p = await res.json();
    expect(p.uid).toBe(65534);
    expect(p.caps).toEqual(NO_CAPS);
    expect(p.seccomp).toBe('2');
    // Ours, and the HOSTNAME every engine sets; nothing of the host's.
    expect(p.env).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8', PWD: '/tmp', GREETING: 'hi', HOSTNAME: 'faas' });
    expect(p.writeEtc).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeRoot).toMatch(/^(OSError:30|PermissionError:13)$/);
    expect(p.writeTmp).toBe('ok');
    expect(p.inet).toBe('PermissionError:13');
    expect(p.readShadow).toBe('FileNotFoundError:2');
    expect(gw.instanceLog('GET:/engine/probe').find((l) => l.msg === 'instance started')?.via).toBe(engine!.name);
  });

  it('a memory bomb is killed (exit 137), and a missing image is a clear 503', async () => {
    const bomb = await deploy(gw, 'GET:/engine/bomb', { runtime: 'python', mode: 'container', image: name, memory_mb: 64,
      code: 'def handle(r):\n    x = b"x" * (512 * 1024 * 1024)\n    return "alive"\n' });
    expect(bomb.status).toBe(502);
    expect((await bomb.json()).message).toMatch(/code 137/);
    const missing = await deploy(gw, 'GET:/engine/missing', { runtime: 'python', mode: 'container', image: 'localhost/faas-no-such-image:1', code: 'x' });
    expect(missing.status).toBe(503);
    expect((await missing.json()).message).toMatch(/faas-no-such-image/);
  });

  it('leaves no container behind once the gateway stops', async () => {
    await gw.stop();
    const left = execFileSync(engine!.path, ['ps', '--all', '--format', '{{.Names}}', '--filter', 'name=faas-'], { encoding: 'utf8' });
    expect(left.trim()).toBe('');
  });
});
