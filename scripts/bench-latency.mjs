#!/usr/bin/env node
// End-to-end latency and throughput of the whole path (HTTP → gateway → worker → warm
// sandboxed node function → back) beside bare uWebSockets.js serving the same bytes, measured
// in the same run, alternating, medians over rounds (PERF.md's method).
//
//   npm run build && node scripts/bench-latency.mjs [--rounds 5] [--duration 5] [--connections 1,16,64] [--workers 1] [--no-pin]
//
// With pinning (the default on a machine with 2+ cores) wrk runs on core 0 and every server
// process (bare uWS, the gateway, its workers and their sandboxes) on core 1.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = parseArgs(process.argv.slice(2));
const children = new Set();

function parseArgs(argv) {
  const o = { rounds: 5, duration: 5, connections: [1, 16, 64], workers: 1, pin: os.availableParallelism() >= 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = positive(a, next());
    else if (a === '--duration') o.duration = positive(a, next());
    else if (a === '--workers') o.workers = positive(a, next());
    else if (a === '--connections') o.connections = next().split(',').map((c) => positive(a, c));
    else if (a === '--no-pin') o.pin = false;
    else throw new Error(`unknown option ${a} (known: --rounds N --duration S --connections 1,16,64 --workers N --no-pin)`);
  }
  return o;
}

function positive(flag, raw) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer (got ${JSON.stringify(raw)})`);
  return n;
}

const pinned = (core, cmd, args) => (opts.pin ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]);

function start(name, cmd, args) {
  const [file, argv] = pinned(1, cmd, args);
  const child = spawn(file, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let err = '';
  child.stderr.on('data', (c) => { err = (err + c).slice(-4000); });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s:\n${err}`)), 30_000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening http=(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: `http://127.0.0.1:${m[1]}/hello` });
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening:\n${err}`)));
  });
}

function stopAll() {
  for (const c of children) c.kill('SIGTERM');
}
process.on('SIGINT', () => { stopAll(); process.exit(130); });

/** wrk's Requests/sec and its latency distribution's 50% and 99% lines, in µs. */
function wrk(url, connections) {
  const [file, argv] = opts.pin ? ['taskset', ['-c', '0', 'wrk']] : ['wrk', []];
  const r = spawnSync(file, [...argv, '-t1', `-c${connections}`, `-d${opts.duration}s`, '--latency', url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr || r.error}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  const us = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(r.stdout);
    if (!m) throw new Error(`no ${p}% line in wrk output:\n${r.stdout}`);
    return Number(m[1]) * { us: 1, ms: 1000, s: 1e6 }[m[2]];
  };
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1];
  if (errors) throw new Error(`${url} answered ${errors} non-2xx responses under load`);
  return { rps, p50: us(50), p99: us(99) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  if (!fs.existsSync(path.join(root, 'dist/src/cli.js'))) throw new Error('dist/ is missing: run npm run build first');
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is missing: apt-get install -y wrk');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-bench-'));
  fs.chmodSync(dir, 0o755);
  try {
    const bare = await start('bare uWS', process.execPath, ['scripts/bare-uws.mjs']);
    const gateway = await start('gateway', process.execPath, ['bin/faas.js', 'gateway', '--port', '0', '--admin-port', '0',
      '--host', '127.0.0.1', '--db', path.join(dir, 'faas.db'), '--run-dir', path.join(dir, 'run'), '--workers', String(opts.workers)]);
    for (let i = 0; i < 200; i++) {
      const res = await fetch(gateway.url);
      if (res.status !== 200) throw new Error(`gateway warm-up: GET /hello answered ${res.status}`);
      await res.arrayBuffer();
    }
    const samples = new Map(); // `${target}/${c}` -> [{rps,p50,p99}]
    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? [['bare', bare], ['gateway', gateway]] : [['gateway', gateway], ['bare', bare]];
      for (const c of opts.connections) {
        for (const [name, target] of order) {
          const key = `${name}/${c}`;
          if (!samples.has(key)) samples.set(key, []);
          samples.get(key).push(wrk(target.url, c));
        }
      }
      process.stderr.write(`round ${round + 1}/${opts.rounds} done\n`);
    }
    report(samples);
  } finally {
    stopAll();
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function report(samples) {
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const m = (key, field) => median(samples.get(key).map((s) => s[field]));
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${os.availableParallelism()} cores (${cpu}), Node ${process.version}, ` +
    `${opts.workers} worker(s); ${opts.pin ? 'wrk on core 0, every server process on core 1' : 'not pinned'}; ` +
    `medians of ${opts.rounds} alternating rounds of ${opts.duration} s`);
  console.log(`command: node scripts/bench-latency.mjs ${process.argv.slice(2).join(' ')}\n`);
  console.log('| connections | bare uWS rps | gateway rps | ratio | bare p50 µs | gateway p50 µs | added p50 µs | bare p99 µs | gateway p99 µs |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const c of opts.connections) {
    const [b, g] = [`bare/${c}`, `gateway/${c}`];
    console.log(`| ${c} | ${m(b, 'rps').toFixed(0)} | ${m(g, 'rps').toFixed(0)} | ${(m(g, 'rps') / m(b, 'rps')).toFixed(2)}× | ` +
      `${m(b, 'p50').toFixed(0)} | ${m(g, 'p50').toFixed(0)} | ${(m(g, 'p50') - m(b, 'p50')).toFixed(0)} | ${m(b, 'p99').toFixed(0)} | ${m(g, 'p99').toFixed(0)} |`);
  }
}

main().catch((err) => {
  stopAll();
  process.stderr.write(`bench-latency: ${err.message}\n`);
  process.exit(1);
});
