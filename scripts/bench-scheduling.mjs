#!/usr/bin/env node
// The scheduler on the real gateway: light and CPU-heavy calls arriving at random (open loop,
// the same seeded arrivals for every policy), one worker slowed from outside by a CPU hog pinned
// to its core, and the latency of the light calls per policy, measured from when each call was
// due (so a stall counts against the policy, not the client). Every policy runs in every round,
// in a rotated order; the table holds medians over rounds, and the p99 of the light calls of all
// rounds together (a per-round p99 rests on a few dozen calls; pooled, on a few hundred).
//
//   npm run build && node scripts/bench-scheduling.mjs [options]
//
//   --rounds N          rounds (3)
//   --duration S        seconds of measured load per policy and round (15)
//   --policies LIST     comma-separated policies (all of them)
//   --pin on|off        the gateway's --pin (on): workers on a core each, the hog on the last one's
//   --workers N         workers (2)
//   --light-rps R       light calls per second (200)
//   --light-ms MS       CPU each light call burns (1; 0: it answers at once)
//   --heavy-rps R       heavy calls per second (3)
//   --heavy-ms MS       CPU each heavy call burns (100)
//   --no-hog            no hog (the same load, every worker equal)
//   --json FILE         also write every round's figures as JSON
//
// Progress goes to stderr, the Markdown table to stdout. Processes it starts are stopped on
// exit and on SIGINT/SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { seeded } from './lib/bench-helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { POLICY_NAMES } = await import(path.join(root, 'dist/src/scheduler/policies.js'));

function parseArgs(argv) {
  const o = { rounds: 3, duration: 15, policies: [...POLICY_NAMES], pin: 'on', workers: 2, lightRps: 200, lightMs: 1, heavyRps: 3, heavyMs: 100, hog: true, json: undefined };
  const num = (flag, raw, min, max) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${flag} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--rounds': o.rounds = Math.floor(num(a, value(), 1, 100)); break;
      case '--duration': o.duration = num(a, value(), 1, 3600); break;
      case '--workers': o.workers = Math.floor(num(a, value(), 2, 64)); break;
      case '--light-rps': o.lightRps = num(a, value(), 1, 10_000); break;
      case '--light-ms': o.lightMs = num(a, value(), 0, 1000); break;
      case '--heavy-rps': o.heavyRps = num(a, value(), 0, 1000); break;
      case '--heavy-ms': o.heavyMs = Math.floor(num(a, value(), 1, 10_000)); break;
      case '--no-hog': o.hog = false; break;
      case '--json': o.json = path.resolve(value()); break;
      case '--pin': {
        o.pin = value();
        if (o.pin !== 'on' && o.pin !== 'off') throw new Error(`--pin must be on or off (got ${JSON.stringify(o.pin)})`);
        break;
      }
      case '--policies': {
        o.policies = value().split(',').map((s) => s.trim()).filter(Boolean);
        const unknown = o.policies.filter((p) => !POLICY_NAMES.includes(p));
        if (unknown.length || o.policies.length === 0) throw new Error(`--policies: unknown ${unknown.join(', ') || '(none given)'}; known: ${POLICY_NAMES.join(', ')}`);
        break;
      }
      default: throw new Error(`unknown option ${a} (see the header of scripts/bench-scheduling.mjs)`);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpusOf = (pid) => /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))[1];

// ---------------------------------------------------------------------------------------------
// Processes

const live = new Set();
function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}
async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await Promise.race([exited, sleep(8000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', () => { for (const c of live) try { c.kill('SIGKILL'); } catch {} });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

async function startGateway(dir, policy) {
  const args = ['bin/faas.js', 'gateway', '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--db', path.join(dir, 'faas.db'),
    '--run-dir', path.join(dir, 'run'), '--workers', String(opts.workers), '--sync-ms', '100', '--policy', policy, '--pin', opts.pin];
  const gw = track(spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  gw.stderr.on('data', (c) => { err = (err + c).slice(-8000); });
  const ports = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 30 s:\n${err}`)), 30_000);
    gw.stdout.on('data', (c) => {
      out += c;
      const m = /listening http=(\d+) admin=(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ http: Number(m[1]), admin: Number(m[2]) }); }
    });
    gw.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gateway exited (${code}):\n${err}`)); });
  });
  return { proc: gw, ...ports, stderrTail: () => err };
}

// ---------------------------------------------------------------------------------------------
// Load

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function call(port, pathname) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, worker: res.headers['x-faas-worker'] }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.code ?? e.message }));
  });
}

/** Seeded arrivals (Poisson per class), the same for every policy: [{ at ms, heavy }]. */
function arrivals(seed, seconds) {
  const random = seeded(seed);
  const out = [];
  for (const [rps, heavy] of [[opts.lightRps, false], [opts.heavyRps, true]]) {
    if (rps <= 0) continue;
    for (let t = -Math.log(1 - random()) * 1000 / rps; t < seconds * 1000; t += -Math.log(1 - random()) * 1000 / rps) out.push({ at: t, heavy });
  }
  return out.sort((x, y) => x.at - y.at);
}

/** Sends every arrival when it is due; resolves with each call's latency from its due time. */
async function drive(port, schedule) {
  const start = performance.now();
  const pending = [];
  for (const a of schedule) {
    const wait = start + a.at - performance.now();
    if (wait > 1) await sleep(wait);
    const due = start + a.at;
    pending.push(call(port, a.heavy ? `/heavy?ms=${opts.heavyMs}` : `/light?ms=${opts.lightMs}`).then((r) => ({ ...r, heavy: a.heavy, ms: performance.now() - due })));
  }
  return Promise.all(pending);
}

const q = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const median = (xs) => q(xs, 0.5);

// ---------------------------------------------------------------------------------------------

async function measure(policy, round) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-sched-'));
  fs.chmodSync(dir, 0o755);
  let gw;
  let hog;
  try {
    gw = await startGateway(dir, policy);
    const db = new Database(path.join(dir, 'faas.db'));
    const insert = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
    const spin = 'export default { fetch(r) { const end = performance.now() + Number(new URL(r.url).searchParams.get("ms")); while (performance.now() < end); return new Response("done") } }';
    insert.run('GET:/light', JSON.stringify({ runtime: 'node', code: spin }));
    insert.run('GET:/heavy', JSON.stringify({ runtime: 'node', code: spin }));
    db.close();
    // Warm both functions on every worker: bursts until each worker has answered each.
    for (const p of ['/light?ms=0', '/heavy?ms=1']) {
      const seen = new Set();
      for (let i = 0; i < 100 && seen.size < opts.workers; i++) {
        const rs = await Promise.all(Array.from({ length: opts.workers * 4 }, () => call(gw.http, p)));
        for (const r of rs) if (r.status === 200) seen.add(r.worker);
        if (seen.size < opts.workers) await sleep(50);
      }
      if (seen.size < opts.workers) throw new Error(`${policy}: only ${[...seen].join(', ')} answered ${p} during warm-up:\n${gw.stderrTail()}`);
    }
    const workers = await (await fetch(`http://127.0.0.1:${gw.admin}/workers`)).json();
    const slowed = workers.find((w) => w.id === `w${opts.workers}`);
    if (opts.hog) {
      // The last worker's core under pinning; CPU 1 otherwise (where it may or may not run).
      const cpu = opts.pin === 'on' ? cpusOf(slowed.pid) : '1';
      hog = track(spawn('taskset', ['--cpu-list', cpu, 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' }));
      await sleep(3000); // reports see it (α = 0.3 per 500 ms)
    }
    const results = await drive(gw.http, arrivals(1000 + round, opts.duration));
    const light = results.filter((r) => !r.heavy);
    const heavy = results.filter((r) => r.heavy);
    const ok = (rs) => rs.filter((r) => r.status === 200);
    const errors = results.length - ok(results).length;
    const row = {
      policy, round, lightMs: ok(light).map((r) => +r.ms.toFixed(3)),
      lightP50: q(ok(light).map((r) => r.ms), 0.5), lightP99: q(ok(light).map((r) => r.ms), 0.99),
      heavyP50: q(ok(heavy).map((r) => r.ms), 0.5), heavyP99: q(ok(heavy).map((r) => r.ms), 0.99),
      lightOnSlowed: ok(light).filter((r) => r.worker === slowed.id).length / Math.max(1, ok(light).length),
      calls: results.length, errors,
      errorKinds: results.filter((r) => r.status !== 200).reduce((kinds, r) => {
        const kind = String(r.status || r.error);
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        return kinds;
      }, {}),
    };
    process.stderr.write(`round ${round} ${policy.padEnd(16)} light p50 ${row.lightP50.toFixed(2)} p99 ${row.lightP99.toFixed(2)} ms, ` +
      `heavy p50 ${row.heavyP50.toFixed(1)} ms, light on the slowed worker ${(row.lightOnSlowed * 100).toFixed(0)} %, ${row.calls} calls` +
      `${errors ? `, ERRORS ${JSON.stringify(row.errorKinds)}` : ''}\n`);
    return row;
  } finally {
    if (hog) await stop(hog, 'SIGKILL');
    if (gw) await stop(gw.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) throw new Error('dist/ is missing: run npm run build first');
  if (spawnSync('taskset', ['--version']).error) throw new Error('taskset (util-linux) is needed');
  const cores = os.availableParallelism();
  if (cores < 2) throw new Error(`this benchmark pins a hog to one core and needs two at least (this process may use ${cores})`);
  const command = ['node', 'scripts/bench-scheduling.mjs', ...process.argv.slice(2)].join(' ');
  const rows = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const k = (round - 1) % opts.policies.length;
    for (const policy of [...opts.policies.slice(k), ...opts.policies.slice(0, k)]) rows.push(await measure(policy, round));
  }
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  console.log(`\n${new Date().toISOString().slice(0, 10)}, ${cores} cores (${cpu}), Node ${process.version}; ${opts.workers} workers, --pin ${opts.pin}, ` +
    `${opts.hog ? `a CPU hog on ${opts.pin === 'on' ? `w${opts.workers}'s core` : 'CPU 1'}` : 'no hog'}; ${opts.lightRps} light (${opts.lightMs} ms CPU) + ${opts.heavyRps} heavy (${opts.heavyMs} ms CPU) calls/s, ` +
    `${opts.duration} s per policy and round, medians over ${opts.rounds} rounds; ms from when each call was due`);
  console.log(`command: ${command}\n`);
  console.log(`| policy | light p50 | light p99 | light p99, all rounds pooled | heavy p50 | heavy p99 | light calls on w${opts.workers} | errors |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const policy of opts.policies) {
    const mine = rows.filter((r) => r.policy === policy);
    const m = (key) => median(mine.map((r) => r[key]));
    console.log(`| ${policy} | ${m('lightP50').toFixed(2)} | ${m('lightP99').toFixed(2)} | ${q(mine.flatMap((r) => r.lightMs), 0.99).toFixed(2)} | ${m('heavyP50').toFixed(1)} | ${m('heavyP99').toFixed(1)} | ${(m('lightOnSlowed') * 100).toFixed(0)} % | ${mine.reduce((n, r) => n + r.errors, 0)} |`);
  }
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ command, opts, rows }, null, 2) + '\n');
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`bench-scheduling: ${err.stack ?? err}\n`);
  process.exit(1);
});
