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
//   npm run build && node scripts/bench-cold.mjs [--runs 50] [--only SUBSTRING]   (e.g. --only container)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { listeningPort } from './lib/bench-helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 50;
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs must be an integer >= 5 (got ${process.argv[runsFlag + 1]})`);
const onlyFlag = process.argv.indexOf('--only');
const ONLY = onlyFlag > 0 ? process.argv[onlyFlag + 1] ?? '' : '';

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
};

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (xs) => `${quantile(xs, 0.5).toFixed(2)} / ${quantile(xs, 0.99).toFixed(2)}`;

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
  const gw = spawn(process.execPath, ['bin/faas.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0',
    '--db', dbPath, '--run-dir', path.join(dir, 'run'), '--workers', '1', '--sync-ms', '50'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const port = await listeningPort(gw);
    const db = new Database(dbPath);
    const rows = [];
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
    ].filter((c) => c.label.includes(ONLY));
    if (!gvisor) process.stderr.write('bench-cold: no runsc on this host (Debian package runsc): no gVisor rows\n');
    for (const { runtime, mode, isolation, label, byPath } of cases) {
      const spec = RUNTIMES[runtime];
      const slug = label.replace(/[^a-z]+/g, '-');
      const key = `GET:/cold/${slug}`;
      const url = `http://127.0.0.1:${port}/cold/${slug}`;
      const config = (nonce) => JSON.stringify({ ...source(nonce), ...(isolation && { isolation }) });
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
      const cold = { fn: [], total: [] };
      const warm = { fn: [], total: [] };
      const spawnMs = [];
      for (let i = 1; i <= RUNS; i++) {
        if (spec.interpreter) spawnMs.push(plainSpawn(spec.interpreter));
        // A pause, as between real first calls: the worker's spare node sandbox is ready again.
        await new Promise((r) => setTimeout(r, 300));
        const nonce = `n${i}`;
        db.prepare('UPDATE functions SET v = ? WHERE k = ?').run(config(nonce), key);
        for (;;) { // the first answer from the new version is its cold start
          const t = performance.now();
          const res = await fetch(url);
          const text = await res.text();
          if (res.status !== 200 && res.status !== 404) throw new Error(`${url}: ${res.status} ${text}`);
          if (text !== nonce) {
            await new Promise((r) => setTimeout(r, 5));
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
    }
    db.close();
    const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.availableParallelism()} cores (${cpu}), Node ${process.version}; ` +
      `${RUNS} runs per row, not pinned; ms, median / p99`);
    console.log(`command: node scripts/bench-cold.mjs --runs ${RUNS}${ONLY ? ` --only '${ONLY}'` : ''}\n`);
    console.log('| runtime, mode | plain spawn of the interpreter | cold: worker time | cold: round trip | warm: worker time | warm: round trip |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.label} | ${r.spawnMs.length ? fmt(r.spawnMs) : '—'} | ${fmt(r.cold.fn)} | ${fmt(r.cold.total)} | ${fmt(r.warm.fn)} | ${fmt(r.warm.total)} |`);
    }
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench-cold: ${err.stack ?? err}\n`);
  process.exit(1);
});
