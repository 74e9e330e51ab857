#!/usr/bin/env node
// Start of one process sandbox per runner, from spawn to the runtime host's `ready` frame
// (the sandbox is built, the runtime has started and loaded a one-line function), beside a
// plain spawn of the same interpreter measured in the same run. Runs are interleaved, so a
// busy moment on the machine costs every row alike: compare rows, not absolutes. With the
// worker's cgroups (memory + pids per instance) where the host has them, as a worker would.
// Root only (the unshare runner needs it; bwrap is then spawned as uid 65534, as in a worker).
//
//   npm run build && node scripts/bench-sandbox-start.mjs [--runs 20]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 20;
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs must be an integer >= 5 (got ${process.argv[runsFlag + 1]})`);
if (process.getuid() !== 0) throw new Error('bench-sandbox-start: run it as root (the unshare runner needs root)');
if (!fs.existsSync(path.join(root, 'dist/workers/runners/unshare-runner.js'))) throw new Error('dist/ is missing: run npm run build first');

const { ProcessRunner } = await import(path.join(root, 'dist/workers/runners/process-runner.js'));
const { UnshareRunner } = await import(path.join(root, 'dist/workers/runners/unshare-runner.js'));
const { openCgroups } = await import(path.join(root, 'dist/workers/open-cgroups.js'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-bench-sandbox-'));
fs.chmodSync(dir, 0o755);
const runtimeDir = path.join(dir, 'runtime');
fs.mkdirSync(runtimeDir, { mode: 0o755 });
// Every runtime host file, as the worker installs them (a host imports its siblings).
for (const f of fs.readdirSync(path.join(root, 'workers/runtime')).filter((n) => /\.(py|mjs)$/.test(n))) {
  fs.copyFileSync(path.join(root, 'workers/runtime', f), path.join(runtimeDir, f));
  fs.chmodSync(path.join(runtimeDir, f), 0o644);
}
const CODE = {
  node: { file: 'index.mjs', text: "export default { fetch: () => new Response('ok') }\n" },
  python: { file: 'main.py', text: "def handle(request):\n    return 'ok'\n" },
};
for (const rt of Object.keys(CODE)) {
  fs.mkdirSync(path.join(dir, rt), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, rt, CODE[rt].file), CODE[rt].text, { mode: 0o644 });
}

const cgroups = openCgroups(`bench${process.pid}`);
if (typeof cgroups === 'string') console.log(`(${cgroups})`);
const limits = typeof cgroups === 'string' ? undefined : cgroups;
const runners = { unshare: new UnshareRunner({ runtimeDir, cgroups: limits }) };
if (fs.existsSync('/usr/bin/bwrap')) runners.bwrap = new ProcessRunner({ runtimeDir, cgroups: limits });
else console.log('(no /usr/bin/bwrap: no bwrap row)');

/** Milliseconds from start() to the host's `ready` frame; the sandbox is killed after. */
async function sandboxStart(runner, runtime) {
  const spec = { key: `GET:/bench-${runtime}`, config: { runtime, env: {}, memoryMb: 128, handler: '' } };
  const code = { hostPath: path.join(dir, runtime), mountPath: '/fn', entry: `/fn/${CODE[runtime].file}` };
  const t = performance.now();
  const sandbox = runner.start(spec, code);
  let output = '';
  for (const s of sandbox.output) s.on('data', (c) => (output += c));
  const ready = await new Promise((resolve) => {
    sandbox.channel.on('data', (c) => resolve(c.includes('"ready"') ? performance.now() - t : undefined));
    void sandbox.exited.then(() => resolve(undefined));
  });
  sandbox.kill();
  await sandbox.exited;
  if (ready === undefined) throw new Error(`${runner.name} ${runtime}: no ready frame: ${output}`);
  return ready;
}

function plainSpawn(runtime) {
  const [cmd, args] = runtime === 'node' ? [process.execPath, ['-e', '']] : ['/usr/bin/python3', ['-c', '']];
  const t = performance.now();
  spawnSync(cmd, args, { env: {} });
  return performance.now() - t;
}

const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const samples = {};
const add = (row, ms) => (samples[row] ??= []).push(ms);
try {
  for (let i = 0; i < RUNS; i++) {
    for (const runtime of ['python', 'node']) {
      add(`plain spawn, ${runtime}`, plainSpawn(runtime));
      for (const [name, runner] of Object.entries(runners)) add(`${name}, ${runtime}`, await sandboxStart(runner, runtime));
    }
  }
} finally {
  // Instance cgroups are removed in the background once their last process is gone (the kernel
  // may say EBUSY for a moment): give that time, or close() cannot remove the worker folder.
  await new Promise((r) => setTimeout(r, 1500));
  limits?.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`spawn → ready, ms (median / p90 of ${RUNS}, interleaved; ${os.cpus().length} cores)`);
for (const [row, xs] of Object.entries(samples)) console.log(`${row.padEnd(20)} ${quantile(xs, 0.5).toFixed(1).padStart(6)} / ${quantile(xs, 0.9).toFixed(1)}`);
