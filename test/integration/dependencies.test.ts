// Dependencies (README "Dependencies"): a node folder with a package-lock.json gets its packages
// from the npm registry with npm ci, a python folder with a requirements.txt gets them from a
// local wheel folder (built here, offline, from a tiny package) with pip install --target; both
// are deployed with plain SQL and with `faas deploy`, answer in process and container mode, and
// a restarted gateway finds them in its cache instead of installing again. A broken lock file and
// a missing package are row errors, the previous version still served.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, MODES, sleep, startGateway, type Gateway } from './harness.js';

const CLI = path.resolve('dist/src/cli/main.js');
let gw: Gateway;
let work: string;
let wheels: string;

/** A folder the sandbox user (and the builder, uid 65534) can read. */
function folder(name: string, files: Record<string, string>): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

function nodeFolder(name: string, version: string): string {
  const dir = folder(name, {
    'package.json': JSON.stringify({ name, version: '1.0.0', private: true, dependencies: { ms: version } }),
    'index.mjs': "import ms from 'ms';\nexport default { fetch() { return new Response(`2 days is ${ms('2 days')} ms`); } };\n",
  });
  // The lock is npm's own, resolved against the registry as an author's `npm install` would.
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'ignore' });
  return dir;
}

async function routeState(key: string): Promise<Record<string, any>> {
  const routes = (await (await fetch(`${gw.admin}/routes`)).json()).routes as Array<Record<string, any>>;
  return routes.find((r) => r.key === key) ?? {};
}

async function served(key: string): Promise<Record<string, any>> {
  return eventually(async () => {
    const r = await routeState(key);
    return r.state === 'ok' ? r : undefined;
  }, 120_000, 200);
}

function sqlUpsert(key: string, v: Record<string, unknown>): void {
  gw.sql().prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(key, JSON.stringify(v));
}

function faas(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--db', gw.dbPath, '--admin', gw.admin], { encoding: 'utf8', timeout: 120_000 }, (err, out, errText) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out, err: errText });
    });
  });
}

const get = async (p: string): Promise<{ status: number; text: string }> => {
  const r = await fetch(`${gw.http}${p}`);
  return { status: r.status, text: await r.text() };
};

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-deps-'));
  fs.chmodSync(work, 0o755);
  // A tiny package, built into a wheel here: no Python index is reachable from this machine.
  const pkg = folder('tinyfmt', {
    'pyproject.toml': '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "tinyfmt"\nversion = "1.0.0"\n',
  });
  fs.mkdirSync(path.join(pkg, 'tinyfmt'));
  fs.writeFileSync(path.join(pkg, 'tinyfmt', '__init__.py'), 'def shout(s):\n    return s.upper() + "!"\n');
  wheels = path.join(work, 'wheels');
  execFileSync('/usr/bin/python3', ['-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '--quiet', '-w', wheels, pkg], { stdio: 'ignore' });
  execFileSync('chmod', ['-R', 'o+rX', work]);
  gw = await startGateway(['--pip-find-links', wheels], { workers: 1 });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('node dependencies from the registry (npm ci)', () => {
  let dir: string;
  beforeAll(() => {
    dir = nodeFolder('msfn', '2.1.3');
    execFileSync('chmod', ['-R', 'o+rX', work]);
  });

  it.each(MODES)('%s: a row written with plain SQL is built once, then served', async (mode) => {
    const key = `GET:/ms-${mode}`;
    sqlUpsert(key, { runtime: 'node', mode, path: dir });
    const route = await served(key);
    expect(route.build).toMatchObject({ kind: 'npm', what: 'npm ci (package-lock.json)' });
    expect(route.build.summary).toContain('ms@2.1.3');
    expect(await get(`/ms-${mode}`)).toEqual({ status: 200, text: '2 days is 172800000 ms' });
  });

  it('one lock file is installed once, whichever routes use it', () => {
    const started = gw.logs().split('\n').filter((l) => l.includes('"msg":"build started"') && l.includes('"kind":"npm"'));
    expect(started).toHaveLength(1);
  });

  it('a broken lock file is a row error naming the file; the previous version is still served', async () => {
    const broken = folder('msfn-broken', { 'package.json': fs.readFileSync(path.join(dir, 'package.json'), 'utf8'), 'package-lock.json': '{ "lockfileVersion": 3,', 'index.mjs': 'export default {}' });
    execFileSync('chmod', ['-R', 'o+rX', broken]);
    sqlUpsert('GET:/ms-process', { runtime: 'node', mode: 'process', path: broken });
    const route = await eventually(async () => {
      const r = await routeState('GET:/ms-process');
      return r.state === 'stale' ? r : undefined;
    }, 10_000);
    expect(route.error).toContain(path.join(broken, 'package-lock.json'));
    expect(route.error).toContain('not valid JSON');
    expect(await get('/ms-process')).toEqual({ status: 200, text: '2 days is 172800000 ms' });
  });

  it('a package missing from the registry is a row error with npm\'s message; the previous version is still served', async () => {
    const name = 'faas-test-no-such-package-e7c1';
    const missing = folder('msfn-missing', {
      'package.json': JSON.stringify({ name: 'missing', version: '1.0.0', dependencies: { [name]: '1.0.0' } }),
      'package-lock.json': JSON.stringify({
        name: 'missing', version: '1.0.0', lockfileVersion: 3, requires: true,
        packages: { '': { name: 'missing', version: '1.0.0', dependencies: { [name]: '1.0.0' } }, [`node_modules/${name}`]: { version: '1.0.0' } },
      }),
      'index.mjs': 'export default {}',
    });
    execFileSync('chmod', ['-R', 'o+rX', missing]);
    sqlUpsert('GET:/ms-process', { runtime: 'node', mode: 'process', path: missing });
    const route = await eventually(async () => {
      const r = await routeState('GET:/ms-process');
      return r.state === 'stale' && r.error.includes('npm ci') ? r : undefined;
    }, 120_000, 200);
    expect(route.error).toMatch(/npm ci in .*msfn-missing failed \(exit \d+\)/);
    expect(route.error).toContain(name);
    expect(route.version).toBeGreaterThan(0);
    expect(await get('/ms-process')).toEqual({ status: 200, text: '2 days is 172800000 ms' });
  });

  it('faas deploy DIR says what it installs and what was installed', async () => {
    const other = nodeFolder('msfn-cli', '2.1.2');
    execFileSync('chmod', ['-R', 'o+rX', work]);
    const run = await faas('deploy', 'GET:/ms-cli', other, '--runtime', 'node');
    expect(run.code, run.err + run.out).toBe(0);
    expect(run.err).toContain('the gateway installs its dependencies with npm ci (package-lock.json)');
    expect(run.out).toContain('building: npm ci (package-lock.json)');
    expect(run.out).toMatch(/built: installed 1 package \(ms@2\.1\.2\) with npm ci in \d+\.\d s/);
    expect(await get('/ms-cli')).toEqual({ status: 200, text: '2 days is 172800000 ms' });
  });
});

describe('python dependencies from a local wheel folder (pip install --target)', () => {
  let dir: string;
  beforeAll(() => {
    dir = folder('tinyfn', {
      'requirements.txt': '# pinned, as the gateway requires\ntinyfmt==1.0.0\n',
      'main.py': 'import tinyfmt\n\ndef handle(request):\n    return tinyfmt.shout("hello from a wheel")\n',
    });
    execFileSync('chmod', ['-R', 'o+rX', work]);
  });

  it.each(MODES)('%s: a row written with plain SQL is installed once, then served', async (mode) => {
    const key = `GET:/tiny-${mode}`;
    sqlUpsert(key, { runtime: 'python', mode, path: dir });
    const route = await served(key);
    expect(route.build).toMatchObject({ kind: 'pip', summary: 'installed tinyfmt-1.0.0 with pip' });
    expect(await get(`/tiny-${mode}`)).toEqual({ status: 200, text: 'HELLO FROM A WHEEL!' });
  });

  it('faas deploy DIR says it installs requirements.txt, and what pip installed (a cache hit: nothing ran)', async () => {
    const run = await faas('deploy', 'GET:/tiny-cli', dir, '--runtime', 'python');
    expect(run.code, run.err + run.out).toBe(0);
    expect(run.err).toContain('the gateway installs its requirements.txt with pip before serving it');
    expect(run.out).toMatch(/built: installed tinyfmt-1\.0\.0 with pip \(the gateway's cache had it from \S+: nothing ran\)/);
    expect(await get('/tiny-cli')).toEqual({ status: 200, text: 'HELLO FROM A WHEEL!' });
  });

  it('a requirement the wheel folder lacks is a row error with pip\'s message; the previous version is still served', async () => {
    const missing = folder('tinyfn-missing', { 'requirements.txt': 'tinyfmt==1.0.0\nnot-in-the-folder==2.0\n', 'main.py': 'def handle(r):\n    return "x"\n' });
    execFileSync('chmod', ['-R', 'o+rX', missing]);
    sqlUpsert('GET:/tiny-process', { runtime: 'python', mode: 'process', path: missing });
    const route = await eventually(async () => {
      const r = await routeState('GET:/tiny-process');
      return r.state === 'stale' && r.error.includes('pip install') ? r : undefined;
    }, 120_000, 200);
    expect(route.error).toContain('not-in-the-folder');
    expect(await get('/tiny-process')).toEqual({ status: 200, text: 'HELLO FROM A WHEEL!' });
  });

  it('an unpinned requirement is refused by faas deploy before anything is written, naming the line', async () => {
    const loose = folder('tinyfn-loose', { 'requirements.txt': 'tinyfmt>=1.0\n', 'main.py': 'def handle(r):\n    return "x"\n' });
    execFileSync('chmod', ['-R', 'o+rX', loose]);
    const run = await faas('deploy', 'GET:/loose', loose, '--runtime', 'python');
    expect(run.code).toBe(1);
    expect(run.err).toContain(`${path.join(loose, 'requirements.txt')} line 1: "tinyfmt>=1.0" is not pinned`);
    expect(gw.sql().prepare('SELECT count(*) AS n FROM functions WHERE k = ?').get('GET:/loose')).toEqual({ n: 0 });
  });
});

describe('/metrics', () => {
  it('counts builds by outcome, and the cache\'s bytes', async () => {
    const text = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(Number(/^faas_builds_total\{outcome="ready"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(3); // npm twice, pip once
    expect(Number(/^faas_builds_total\{outcome="failed"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^faas_build_cache_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(40_000);
    expect(text).toMatch(/^faas_builds_pending 0$/m);
  });
});

describe('a restarted gateway', () => {
  it('finds what it built in its cache: nothing installed again (build cache hit in the log)', async () => {
    const dir = gw.dir;
    const exited = new Promise((r) => gw.proc.once('exit', r));
    gw.proc.kill('SIGTERM');
    await exited;
    gw = await startGateway(['--pip-find-links', wheels], { workers: 1, dir });
    await sleep(500);
    for (const key of ['GET:/ms-container', 'GET:/tiny-container', 'GET:/ms-cli']) await served(key);
    expect(await get('/ms-container')).toEqual({ status: 200, text: '2 days is 172800000 ms' });
    expect(await get('/tiny-container')).toEqual({ status: 200, text: 'HELLO FROM A WHEEL!' });
    const lines = gw.logs().split('\n');
    expect(lines.filter((l) => l.includes('"msg":"build cache hit"')).length).toBeGreaterThanOrEqual(3);
    // The failed rows' builds are tried once more (a failure is not cached across restarts); nothing that was built is.
    expect(lines.filter((l) => l.includes('"msg":"build ready"'))).toEqual([]);
  });
});
