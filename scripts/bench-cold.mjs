#!/usr/bin/env node
// Cold and warm start of a function per runtime and mode, beside a plain spawn of the same
// interpreter measured in the same run. Cold samples are 300 ms apart, so a cold start finds
// the worker's pre-started sandbox of its mode ready, as a first call usually does; the "own
// sandbox" rows deploy the code by `path` (python: a file, which the python zygote starts in
// process mode; node: a folder with a 5 MiB asset, more than a pre-started sandbox takes), so
// each cold start starts a sandbox, a zygote fork or a container of its own. A cold sample is the first call after the route's
// code changed (a new version gets a new instance); its cost is the worker's own time for the
// call (server-timing `function;dur`: instance start + the call) and the client's round trip.
// The gVisor rows run the same containers with "isolation": "gvisor" (runsc), beside runc's.
//
// Functions the gateway builds first (src/build/): a Go function (compiled), a node folder with
// a package-lock.json (npm ci, ms@2.1.3 from the registry) and a python folder with a
// requirements.txt (pip install from a wheel built here, offline, served with --pip-find-links).
// Their cold rows change only the row's env (NONCE), which is not part of the build's hash, so
// a new version finds its build in the cache and the sample is the instance's start alone, as
// for the others; a built function never adopts a pre-started sandbox, so compare them with the
// "own sandbox" rows. The second table times a build: from the INSERT of a new row (a fresh key,
// and a fresh source each round: a constant in the Go code, a field of package.json, a comment
// in requirements.txt, so the build's hash differs) to the first 200 from it, polled every 10 ms,
// beside the gateway's own `build.ms` (GET /routes) and the same tool run by hand in this run.
// The first build of each kind runs on an empty cache (this run's fresh --deps-dir: Go compiles
// its standard library, npm downloads from the registry) and is its own one-sample row; the
// rounds after it find the tools' caches warm.
//
//   npm run build && node scripts/bench-cold.mjs [--runs 50] [--build-runs 10] [--only SUBSTRING …]
//   (e.g. --only container; --only may be given more than once: a row is kept if its label has any)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { median, shellQuote } from './lib/bench-helpers.mjs';
import { fileTail } from './lib/load-bench.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 50;
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs must be an integer >= 5 (got ${process.argv[runsFlag + 1]})`);
const buildRunsFlag = process.argv.indexOf('--build-runs');
const BUILD_RUNS = buildRunsFlag > 0 ? Number(process.argv[buildRunsFlag + 1]) : 10;
if (!Number.isInteger(BUILD_RUNS) || BUILD_RUNS < 1) throw new Error(`--build-runs must be an integer >= 1 (got ${process.argv[buildRunsFlag + 1]})`);
const ONLY = process.argv.flatMap((a, i) => (a === '--only' ? [process.argv[i + 1] ?? ''] : []));
const wanted = (label) => ONLY.length === 0 || ONLY.some((o) => label.includes(o));
/** How often a build row is polled for its first 200. */
const POLL_MS = 10;
/** A build (or a first answer) that takes longer than this fails the run. */
const BUILD_DEADLINE_MS = 300_000;

const wabt = await (await import('wabt')).default();

/** A WASI module answering `nonce` CGI style (WAT assembled with wabt, a dev dependency). */
function wasmModule(nonce) {
  const out = `Content-Type: text/plain\n\n${nonce}`;
  const wat = `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 64) "${out.replace(/\n/g, '\\n')}")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const ${Buffer.byteLength(out)}))
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`;
  return Buffer.from(wabt.parseWat('nonce.wat', wat).toBinary({}).buffer).toString('base64');
}

const RUNTIMES = {
  node: {
    interpreter: [process.execPath, ['-e', 'process.stdout.write("ok")']],
    code: (nonce) => `export default { fetch: () => new Response('${nonce}') }`,
  },
  python: {
    interpreter: ['/usr/bin/python3', ['-c', 'print("ok")']],
    code: (nonce) => `def handle(request):\n    return '${nonce}'\n`,
  },
  wasm: {
    interpreter: undefined, // no interpreter to spawn: the module runs in a worker thread
    code: wasmModule,
  },
  go: {
    interpreter: undefined, // set in main(): a static Go program built here that prints "ok"
    code: undefined,
  },
};

/**
 * The Go function (inline code; the gateway compiles it): answers its env's NONCE (the cold
 * rows, one compile for all their versions), else `round` (the build rows: a fresh source each).
 */
const goCode = (round) => `package function

import (
\t"net/http"
\t"os"
)

const round = ${JSON.stringify(round)}

func Handle(w http.ResponseWriter, r *http.Request) {
\tif nonce := os.Getenv("NONCE"); nonce != "" {
\t\tw.Write([]byte(nonce))
\t\treturn
\t}
\tw.Write([]byte(round))
}
`;

/** The node function with a dependency: ms is imported and used before the first call. */
const nodeDepCode = (round) => `import ms from 'ms';
const twoDays = ms('2 days');
if (twoDays !== 172800000) throw new Error('ms does not work: ' + twoDays);
export default { fetch: (request, env) => new Response(env.NONCE ?? ${JSON.stringify(round)}) };
`;

/** The python function with a dependency (tinyfmt, from the wheel built here). */
const pythonDepCode = (round) => `import os
import tinyfmt

LOUD = tinyfmt.shout("ok")
assert LOUD == "OK!", LOUD

def handle(request):
    return os.environ.get("NONCE", ${JSON.stringify(round)})
`;

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (xs) => `${quantile(xs, 0.5).toFixed(2)} / ${quantile(xs, 0.99).toFixed(2)}`;
/** Build rows (few samples, seconds long): median / max, whole ms; one sample is shown alone. */
const fmtBuild = (xs, digits = 0) => (xs.length === 0 ? '—' : xs.length === 1 ? xs[0].toFixed(digits) : `${median(xs).toFixed(digits)} / ${Math.max(...xs).toFixed(digits)}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command to the end; throws with its output when it fails. */
function mustRun(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r.stdout;
}

/** Times one run of a tool by hand (the build rows' baseline), ms. */
function timedRun(cmd, args, opts) {
  const t = performance.now();
  mustRun(cmd, args, opts);
  return performance.now() - t;
}

/** Writes files into a new folder that the sandbox user and the builder (uid 65534) can read. */
function writeFolder(dir, files) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, { mode: 0o644 });
  mustRun('chmod', ['-R', 'o+rX', dir]);
  return dir;
}

/** npm's own CLI beside this node, as the gateway runs it (src/build/npm.ts), else npm on PATH. */
function npmCommand() {
  const cli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  return fs.existsSync(cli) ? [process.execPath, [cli]] : ['npm', []];
}

const versionOf = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim().split('\n')[0] : 'absent';
};

function plainSpawn([cmd, args]) {
  const t = performance.now();
  const r = spawnSync(cmd, args, { env: {}, encoding: 'utf8' });
  if (r.stdout.trim() !== 'ok') throw new Error(`${cmd} did not run: ${r.stderr}`);
  return performance.now() - t;
}

function functionMs(res) {
  const m = /function;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
  if (!m) throw new Error(`no server-timing on ${res.url}: ${res.status}`);
  return Number(m[1]);
}

async function main() {
  if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-cold-'));
  fs.chmodSync(dir, 0o755);
  const dbPath = path.join(dir, 'faas.db');
  // The gateway's log goes straight to a file (no pipe read here, competing for the cores
  // measured); it is kept after the run, outside the folder that is removed.
  const logPath = path.join(os.tmpdir(), `faas-cold-gateway-${process.pid}.log`);
  const gvisor = ['/usr/bin/runsc', '/usr/sbin/runsc', '/usr/local/bin/runsc'].some((p) => fs.existsSync(p));
  const cases = [
    ...['process', 'container', ...(gvisor ? ['container, gvisor'] : [])].flatMap((kind) => ['node', 'python'].flatMap((runtime) => {
      const [mode, isolation] = kind.split(', ');
      return [
        { runtime, mode, isolation, label: `${runtime}, ${kind}` },
        { runtime, mode, isolation, label: `${runtime}, ${kind}, own sandbox`, byPath: true },
      ];
    })),
    { runtime: 'wasm', mode: 'thread', label: 'wasm, thread' },
    { runtime: 'wasm', mode: 'process', label: 'wasm, process' },
    // Built functions: the build is in the cache before the first sample (compile/install excluded).
    { runtime: 'go', mode: 'process', label: 'go, process (compiled; compile excluded)', built: 'go' },
    { runtime: 'node', mode: 'process', label: 'node, process, with a dependency (ms@2.1.3; install excluded)', built: 'npm' },
    { runtime: 'python', mode: 'process', label: 'python, process, with a dependency (tinyfmt wheel; install excluded)', built: 'pip' },
  ].filter((c) => wanted(c.label));
  // Row written → first 200 of a fresh source: the first on this run's empty cache, then warm rounds.
  const buildCases = [
    { kind: 'go', label: 'go, process: compile included, first on an empty Go build cache (cold toolchain)', first: true },
    { kind: 'go', label: 'go, process: compile included, fresh source, warm Go build cache' },
    { kind: 'npm', label: 'node, process: npm ci of ms@2.1.3 included, first on an empty npm cache (registry download)', first: true },
    { kind: 'npm', label: 'node, process: npm ci of ms@2.1.3 included, fresh package.json, warm npm cache' },
    { kind: 'pip', label: 'python, process: pip install of a local wheel included, first on an empty pip cache', first: true },
    { kind: 'pip', label: 'python, process: pip install of a local wheel included, fresh requirements.txt, warm pip cache' },
  ].filter((c) => wanted(c.label));
  if (!gvisor) process.stderr.write('bench-cold: no runsc on this host (Debian package runsc): no gVisor rows\n');
  const needs = (kind) => cases.some((c) => c.built === kind) || buildCases.some((c) => c.kind === kind);

  // Fixtures, before the gateway starts: a Go program for the plain-spawn column, the lock file
  // (npm's own, resolved against the registry as an author's npm install would), the wheel.
  const fixtures = {};
  let wheels;
  try {
    if (needs('go')) {
      const src = writeFolder(path.join(dir, 'plain-go-ok'), { 'go.mod': 'module ok\n\ngo 1.19\n', 'main.go': 'package main\n\nimport "os"\n\nfunc main() { os.Stdout.WriteString("ok") }\n' });
      const bin = path.join(dir, 'plain-go-ok', 'ok');
      mustRun('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', bin, '.'], { cwd: src, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOPROXY: 'off' } });
      RUNTIMES.go.interpreter = [bin, []];
    }
    if (needs('npm')) {
      const manifest = { name: 'cold-ms', version: '1.0.0', private: true, dependencies: { ms: '2.1.3' } };
      const lockDir = writeFolder(path.join(dir, 'npm-lock'), { 'package.json': JSON.stringify(manifest, null, 2) });
      mustRun('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: lockDir });
      fixtures.npm = { manifest, lock: fs.readFileSync(path.join(lockDir, 'package-lock.json'), 'utf8') };
    }
    if (needs('pip')) {
      const pkg = writeFolder(path.join(dir, 'tinyfmt'), {
        'pyproject.toml': '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "tinyfmt"\nversion = "1.0.0"\n',
      });
      writeFolder(path.join(pkg, 'tinyfmt'), { '__init__.py': 'def shout(s):\n    return s.upper() + "!"\n' });
      wheels = path.join(dir, 'wheels');
      mustRun('/usr/bin/python3', ['-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '--quiet', '-w', wheels, pkg]);
    }
    mustRun('chmod', ['-R', 'o+rX', dir]);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  /** A function folder per kind; `round` makes its build's inputs (and its answer) fresh. */
  const folderOf = {
    npm: (name, round) => writeFolder(path.join(dir, name), {
      'package.json': JSON.stringify({ ...fixtures.npm.manifest, description: `round ${round}` }, null, 2),
      'package-lock.json': fixtures.npm.lock,
      'index.mjs': nodeDepCode(round),
    }),
    pip: (name, round) => writeFolder(path.join(dir, name), {
      'requirements.txt': `# round ${round}\ntinyfmt==1.0.0\n`,
      'main.py': pythonDepCode(round),
    }),
  };
  /** The row's value for a built function: the same build for every `env`. */
  const builtRow = (kind, mode, source, env) => (kind === 'go'
    ? { runtime: 'go', mode, code: source, ...(env && { env }) }
    : { runtime: kind === 'npm' ? 'node' : 'python', mode, path: source, ...(env && { env }) });

  const logFd = fs.openSync(logPath, 'w');
  const gw = spawn(process.execPath, ['bin/faas.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0',
    '--db', dbPath, '--run-dir', path.join(dir, 'run'), '--workers', '1', '--sync-ms', '50',
    ...(wheels ? ['--pip-find-links', wheels] : [])], { cwd: root, stdio: ['ignore', 'pipe', logFd] });
  fs.closeSync(logFd);
  process.stderr.write(`bench-cold: the gateway's log is ${logPath}\n`);
  try {
    const [port, adminPort] = await new Promise((resolve, reject) => {
      let out = '';
      gw.stdout.on('data', (c) => {
        out = (out + c).slice(-4000);
        const m = /listening http=(\d+) admin=(\d+)/.exec(out);
        if (m) resolve([m[1], m[2]]);
      });
      gw.once('exit', (code) => reject(new Error(`the gateway exited (${code}) before listening; its log:\n${fileTail(logPath)}`)));
    });
    const routeRow = async (key) => ((await (await fetch(`http://127.0.0.1:${adminPort}/routes`)).json()).routes ?? []).find((r) => r.key === key);
    /**
     * Polls `url` until it answers 200 `expected`; other statuses (404, 503 while the route has no
     * served version) are "not yet". Throws on a build failure (the row's error) or past the deadline.
     */
    const firstOk = async (url, key, expected, since) => {
      for (let polls = 1; ; polls++) {
        const t = performance.now();
        const res = await fetch(url);
        const text = await res.text();
        if (res.status === 200 && text === expected) return { res, at: performance.now(), rtt: performance.now() - t };
        if (res.status === 200 && key.includes('/build/')) throw new Error(`${url}: 200 ${JSON.stringify(text)}, not ${JSON.stringify(expected)}`);
        if (res.status >= 500 && res.status !== 503) throw new Error(`${url}: ${res.status} ${text}`);
        if (polls % 100 === 0) {
          const row = await routeRow(key);
          if (row && (row.state === 'error' || row.state === 'stale')) throw new Error(`${key}: ${row.state}: ${row.error}`);
          if (performance.now() - since > BUILD_DEADLINE_MS) throw new Error(`${key}: no 200 ${JSON.stringify(expected)} in ${BUILD_DEADLINE_MS / 1000} s (row: ${JSON.stringify(row)})`);
        }
        await sleep(POLL_MS);
      }
    };
    const db = new Database(dbPath);
    const rows = [];
    const buildRows = [];
    const builtNotes = new Map();

    // Build rows: the first build of each kind is the one on this run's empty cache.
    const buildSection = async () => { for (const kind of ['go', 'npm', 'pip']) {
      const mine = buildCases.filter((c) => c.kind === kind);
      if (mine.length === 0) continue;
      const baseline = { label: '', plain: [] };
      let plainRun;
      if (kind === 'go') {
        // By hand: go build of a net/http program of the same shape (fresh constant each round), this user's warm GOCACHE.
        const src = writeFolder(path.join(dir, 'plain-go-http'), { 'go.mod': 'module plain\n\ngo 1.19\n' });
        const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GOPROXY: 'off' };
        plainRun = (round) => {
          fs.writeFileSync(path.join(src, 'main.go'), `package main\n\nimport "net/http"\n\nconst round = ${JSON.stringify(round)}\n\nfunc main() {\n\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(round)) })\n\thttp.ListenAndServe("127.0.0.1:0", nil)\n}\n`);
          return timedRun('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', path.join(src, 'prog'), '.'], { cwd: src, env });
        };
        baseline.label = 'go build by hand (a net/http program, fresh constant, warm GOCACHE)';
      } else if (kind === 'npm') {
        const [npm, npmArgs] = npmCommand();
        const cache = path.join(dir, 'plain-npm-cache');
        plainRun = (round) => {
          const d = folderOf.npm(`plain-npm-${round}`, round);
          return timedRun(npm, [...npmArgs, 'ci', '--omit=dev', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=warn', '--ignore-scripts', '--cache', cache], { cwd: d });
        };
        baseline.label = 'npm ci by hand (same folder, warm npm cache)';
      } else {
        const cache = path.join(dir, 'plain-pip-cache');
        plainRun = (round) => {
          const d = folderOf.pip(`plain-pip-${round}`, round);
          return timedRun('/usr/bin/python3', ['-m', 'pip', 'install', '--target', path.join(d, 'site'), '--requirement', 'requirements.txt',
            '--no-input', '--disable-pip-version-check', '--no-warn-script-location', '--cache-dir', cache, '--only-binary=:all:',
            '--find-links', wheels, '--no-index'], { cwd: d });
        };
        baseline.label = 'pip install --target by hand (same requirements, same wheel folder)';
      }
      plainRun(`${kind}-warmup`); // warms this tool's own cache for the by-hand runs; not counted
      let round = 0;
      for (const c of mine) {
        const sample = { label: c.label, total: [], buildMs: [], rest: [], firstFn: [], plain: [], what: '', summary: '' };
        const n = c.first ? 1 : BUILD_RUNS;
        for (let i = 1; i <= n; i++) {
          round++;
          if (!c.first) sample.plain.push(plainRun(`${kind}-${round}`));
          await sleep(300);
          const name = `${kind}-b${round}`;
          const key = `GET:/build/${name}`;
          const url = `http://127.0.0.1:${port}/build/${name}`;
          const source = kind === 'go' ? goCode(name) : folderOf[kind](name, name);
          const value = JSON.stringify(builtRow(kind, 'process', source));
          const since = performance.now();
          db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(key, value);
          const { res, at } = await firstOk(url, key, name, since); // each kind's code answers its round's name
          const row = await routeRow(key);
          if (!row?.build) throw new Error(`${key}: GET /routes shows no build: ${JSON.stringify(row)}`);
          sample.total.push(at - since);
          sample.buildMs.push(row.build.ms);
          sample.rest.push(at - since - row.build.ms);
          sample.firstFn.push(functionMs(res));
          sample.what = row.build.what;
          sample.summary = row.build.summary;
          db.prepare('DELETE FROM functions WHERE k = ?').run(key);
        }
        buildRows.push(sample);
        process.stderr.write(`${c.label}: ${n} run${n === 1 ? '' : 's'} done (${sample.summary})\n`);
      }
      baseline.plain = buildRows.filter((r) => mine.some((c) => c.label === r.label)).flatMap((r) => r.plain);
      buildRows.push({ label: baseline.label, baselineOnly: true, plain: baseline.plain });
    } };

    const coldRow = async ({ runtime, mode, isolation, label, byPath, built }) => {
      const spec = RUNTIMES[runtime];
      const slug = label.replace(/[^a-z]+/g, '-');
      const key = `GET:/cold/${slug}`;
      const url = `http://127.0.0.1:${port}/cold/${slug}`;
      // A built function's versions differ in env only: one build (in the cache after n0) for all.
      const builtSource = built && (built === 'go' ? goCode('cold') : folderOf[built](`cold-${built}`, 'cold'));
      const config = (nonce) => JSON.stringify(built ? builtRow(built, mode, builtSource, { NONCE: nonce }) : { ...source(nonce), ...(isolation && { isolation }) });
      const source = (nonce) => {
        if (!byPath) return { runtime, mode, code: spec.code(nonce) };
        if (runtime === 'python') {
          const file = path.join(dir, `${slug}${nonce}.py`);
          fs.writeFileSync(file, spec.code(nonce), { mode: 0o644 });
          return { runtime, mode, path: file };
        }
        const folder = path.join(dir, `${slug}${nonce}`);
        fs.mkdirSync(folder, { mode: 0o755 });
        fs.writeFileSync(path.join(folder, 'index.mjs'), spec.code(nonce), { mode: 0o644 });
        fs.writeFileSync(path.join(folder, 'asset.bin'), Buffer.alloc(5 * 1024 * 1024), { mode: 0o644 });
        return { runtime, mode, path: folder };
      };
      db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)').run(key, config('n0'));
      if (built) { // built (or found in the cache) and served before the first sample
        await firstOk(url, key, 'n0', performance.now());
        const row = await routeRow(key);
        builtNotes.set(label, `${row?.build?.what}: ${row?.build?.summary}`);
      }
      const cold = { fn: [], total: [] };
      const warm = { fn: [], total: [] };
      const spawnMs = [];
      for (let i = 1; i <= RUNS; i++) {
        if (spec.interpreter) spawnMs.push(plainSpawn(spec.interpreter));
        // A pause, as between real first calls: the worker's spare node sandbox is ready again.
        await sleep(300);
        const nonce = `n${i}`;
        db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(config(nonce), key);
        for (;;) { // the first answer from the new version is its cold start
          const t = performance.now();
          const res = await fetch(url);
          const text = await res.text();
          if (res.status !== 200 && res.status !== 404) throw new Error(`${url}: ${res.status} ${text}`);
          if (text !== nonce) {
            await sleep(5);
            continue;
          }
          if (!/start;desc=cold/.test(res.headers.get('server-timing'))) throw new Error(`first call of ${nonce} was not cold`);
          cold.total.push(performance.now() - t);
          cold.fn.push(functionMs(res));
          break;
        }
        const t = performance.now();
        const res = await fetch(url);
        await res.text();
        warm.total.push(performance.now() - t);
        warm.fn.push(functionMs(res));
      }
      rows.push({ label, spawnMs, cold, warm });
      process.stderr.write(`${label}: ${RUNS} runs done\n`);
    };
    // The rows of functions with nothing to build first, as the gateway starts (as before builds
    // existed), then the build rows (whose first build of each kind finds the caches empty), then
    // the built functions' cold rows.
    for (const c of cases.filter((x) => !x.built)) await coldRow(c);
    await buildSection();
    for (const c of cases.filter((x) => x.built)) await coldRow(c);
    db.close();
    const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    const tools = [
      ...(needs('go') ? [versionOf('go', ['version']).replace(/^go version /, '')] : []),
      ...(needs('npm') ? [`npm ${versionOf('npm', ['--version'])}`] : []),
      ...(needs('pip') || cases.some((c) => c.runtime === 'python') ? [versionOf('/usr/bin/python3', ['--version'])] : []),
    ];
    console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.availableParallelism()} cores (${cpu}), Node ${process.version}` +
      `${tools.length ? `, ${tools.join(', ')}` : ''}; ${RUNS} runs per cold row, ${BUILD_RUNS} per warm-cache build row, not pinned; ms, median / p99`);
    console.log(`command: node scripts/bench-cold.mjs${process.argv.slice(2).map((a) => ` ${shellQuote(a)}`).join('')}\n`);
    if (rows.length) {
      console.log('| runtime, mode | plain spawn of the interpreter | cold: worker time | cold: round trip | warm: worker time | warm: round trip |');
      console.log('|---|---|---|---|---|---|');
      for (const r of rows) {
        console.log(`| ${r.label} | ${r.spawnMs.length ? fmt(r.spawnMs) : '—'} | ${fmt(r.cold.fn)} | ${fmt(r.cold.total)} | ${fmt(r.warm.fn)} | ${fmt(r.warm.total)} |`);
      }
      for (const [label, note] of builtNotes) console.log(`\n${label}: ${note}`);
      if (cases.some((c) => c.built === 'go')) console.log('(go\'s plain spawn: a static Go program, CGO_ENABLED=0, that prints "ok")');
    }
    if (buildRows.length) {
      console.log('\nBuild included: a new row (fresh key) written with plain SQL → its first 200, polled every ' +
        `${POLL_MS} ms; "build" is the gateway's own build.ms (GET /routes); "rest" is the difference (sync, queue, sandbox start, call); ` +
        'the by-hand rows run the same tool in this run, between the samples; ms, median / max:\n');
      console.log('| build | runs | row written → first 200 | build (build.ms) | rest | first call: worker time |');
      console.log('|---|---|---|---|---|---|');
      for (const r of buildRows) {
        if (r.baselineOnly) console.log(`| ${r.label} | ${r.plain.length} | — | ${fmtBuild(r.plain)} | — | — |`);
        else console.log(`| ${r.label} | ${r.total.length} | ${fmtBuild(r.total)} | ${fmtBuild(r.buildMs)} | ${fmtBuild(r.rest)} | ${fmtBuild(r.firstFn, 2)} |`);
      }
      for (const r of buildRows.filter((b) => !b.baselineOnly && !b.label.includes('first on'))) console.log(`\n${r.label}: ${r.what}: ${r.summary} (last round)`);
    }
  } catch (err) {
    process.stderr.write(`bench-cold: the gateway's log, last 4000 bytes (${logPath}):\n${fileTail(logPath, 4000)}\n`);
    throw err;
  } finally {
    gw.kill('SIGTERM');
    await sleep(1500);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench-cold: ${err.stack ?? err}\n`);
  process.exit(1);
});
