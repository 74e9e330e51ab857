#!/usr/bin/env node
// A deterministic simulation of the gateway's pick (src/scheduler/policies.ts, the compiled
// policies themselves): the same seeded arrivals replayed through every policy, per scenario.
//
// Model: each worker is one core shared by the calls it runs (processor sharing), at a speed
// (1 = a free core; a worker slowed from outside has less). Calls are light (1 ms of CPU),
// heavy (200 ms of CPU) or waiting (100 ms of wall time on I/O, no CPU), arriving as a Poisson
// stream. The gateway knows each worker's calls in flight
// at once; it learns its load only from a report every 500 ms (score = 0.5 · EMA of CPU use,
// α = 0.3, as the workers compute it) and stops picking a worker whose report is older than
// 1.1 s. A worker that crashes closes its connection: the gateway fails its calls in flight at
// once and picks it no more. A worker that hangs keeps its connection open but answers and
// reports nothing: the calls sent to it fail at their timeout, and it is picked until its
// report is stale (1.1 s) unless its growing count of calls in flight keeps the policy off it.
//
//   npm run build && node scripts/simulate-scheduling.mjs [--calls 40000] [--seeds 5]
// Each scenario runs once per seed (1..seeds); the table shows medians over the seeds.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { seeded } from './lib/bench-helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { createPolicy, POLICY_NAMES } = await import(path.join(root, 'dist/src/scheduler/policies.js'));

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer (got ${process.argv[at + 1]})`);
  return value;
};
const CALLS = arg('--calls', 40_000);
const SEEDS = arg('--seeds', 5);
const REPORT_MS = 500;
const STALE_AFTER_MS = 2 * REPORT_MS + 100;
const ALPHA = 0.3;
const LIGHT_MS = 1;
const HEAVY_MS = 200;
const WAIT_MS = 100;

const SCENARIOS = [
  { name: 'light only, 4 workers, 70% load', workers: 4, heavyShare: 0, load: 0.7 },
  { name: 'service-time skew: 2% heavy (200 ms), 4 workers, 70% load', workers: 4, heavyShare: 0.02, load: 0.7 },
  { name: 'skew + one worker slowed to 30% from outside', workers: 4, heavyShare: 0.02, load: 0.6, speeds: [0.3, 1, 1, 1] },
  { name: 'skew + one worker crashes at 5 s', workers: 4, heavyShare: 0.02, load: 0.6, diesAtMs: { 1: 5000 }, crash: true },
  { name: 'skew + one worker hangs at 5 s', workers: 4, heavyShare: 0.02, load: 0.6, diesAtMs: { 1: 5000 } },
  { name: 'light only, 2 workers, 30% load (small score gaps)', workers: 2, heavyShare: 0, load: 0.3 },
  { name: 'skew + 40% of calls waiting 100 ms on I/O (in flight, no CPU)', workers: 4, heavyShare: 0.02, waitShare: 0.4, load: 0.6 },
  { name: 'skew, 100 workers, 70% load', workers: 100, heavyShare: 0.02, load: 0.7 },
];

/** The arrivals of a scenario: the same for every policy. */
function arrivals(scenario, seed) {
  const random = seeded(seed);
  const waitShare = scenario.waitShare ?? 0;
  // CPU per call on average (waiting calls use none): arrivals are paced to this share of the cores.
  const meanServiceMs = (1 - scenario.heavyShare - waitShare) * LIGHT_MS + scenario.heavyShare * HEAVY_MS;
  const capacity = (scenario.speeds ?? Array(scenario.workers).fill(1)).reduce((a, b) => a + b, 0);
  const gapMs = meanServiceMs / (scenario.load * capacity);
  const out = [];
  let t = 0;
  for (let i = 0; i < CALLS; i++) {
    t += -Math.log(1 - random()) * gapMs;
    const r = random();
    out.push(r < scenario.heavyShare ? { at: t, workMs: HEAVY_MS } : r < scenario.heavyShare + waitShare ? { at: t, workMs: 0, waitMs: WAIT_MS } : { at: t, workMs: LIGHT_MS });
  }
  return out;
}

function simulate(scenario, policyName, calls, seed) {
  const policy = createPolicy(policyName, STALE_AFTER_MS);
  const random = seeded(seed + 1000);
  const workers = Array.from({ length: scenario.workers }, (_, i) => ({
    id: `w${i}`, speed: scenario.speeds?.[i] ?? 1, diesAtMs: scenario.diesAtMs?.[i] ?? Infinity,
    running: [], busyMs: 0, cpuEma: undefined,
    // what the gateway sees:
    score: 0, inFlight: 0, lastReportMs: 0, connected: true,
  }));
  const light = [];
  let failed = 0;
  let now = 0;
  let nextReport = REPORT_MS;

  /** Runs every worker's calls forward to `until`, completing those that finish. */
  const advance = (until) => {
    while (now < until) {
      // The next completion under processor sharing, if before `until`.
      let step = until - now;
      for (const w of workers) {
        if (w.running.length === 0 || now >= w.diesAtMs) continue;
        const cpu = w.running.filter((c) => !c.waitMs);
        const share = w.speed / cpu.length;
        for (const c of w.running) step = Math.min(step, c.waitMs ? c.doneAt - now : c.left / share);
        step = Math.min(step, Math.max(0, w.diesAtMs - now));
      }
      step = Math.max(step, 1e-9);
      for (const w of workers) {
        if (now >= w.diesAtMs) continue;
        const cpu = w.running.filter((c) => !c.waitMs);
        if (cpu.length > 0) {
          w.busyMs += step;
          const share = w.speed / cpu.length;
          for (const c of cpu) c.left -= share * step;
        }
      }
      now += step;
      for (const w of workers) for (const c of w.running) if (c.waitMs && c.doneAt - now <= 1e-9) c.left = 0;
      for (const w of workers) {
        if (now >= w.diesAtMs) {
          failed += w.running.length; // its calls are lost: 502 on a crash, 504 on a hang
          if (scenario.crash) {
            w.inFlight -= w.running.length; // the connection closed: known at once
            w.connected = false;
          }
          w.running = [];
          continue;
        }
        const done = w.running.filter((c) => c.left <= 1e-9);
        if (done.length === 0) continue;
        w.running = w.running.filter((c) => c.left > 1e-9);
        w.inFlight -= done.length;
        for (const c of done) if (c.workMs === LIGHT_MS) light.push(now - c.at);
      }
    }
  };

  const report = () => {
    for (const w of workers) {
      if (now >= w.diesAtMs) continue; // a dead worker reports nothing
      const cpu = Math.min(100, (w.busyMs / REPORT_MS) * 100);
      w.busyMs = 0;
      w.cpuEma = w.cpuEma === undefined ? cpu : ALPHA * cpu + (1 - ALPHA) * w.cpuEma;
      w.score = 0.5 * w.cpuEma;
      w.lastReportMs = now;
    }
  };

  for (const call of calls) {
    while (nextReport <= call.at) {
      advance(nextReport);
      report();
      nextReport += REPORT_MS;
    }
    advance(call.at);
    const w = policy.pick(workers, now, random);
    if (!w) {
      failed++;
      continue;
    }
    w.inFlight++;
    if (now >= w.diesAtMs) {
      failed++; // sent to a hung worker: it stays in flight until its timeout (longer than this run)
      continue;
    }
    w.running.push({ at: call.at, left: call.workMs, workMs: call.workMs, waitMs: call.waitMs, doneAt: call.waitMs ? now + call.waitMs : undefined });
  }
  advance(now + 60_000);
  light.sort((a, b) => a - b);
  const q = (p) => light[Math.min(light.length - 1, Math.floor(p * light.length))] ?? NaN;
  return { p50: q(0.5), p99: q(0.99), failed };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`scheduling simulation: ${CALLS} calls per scenario and seed, ${SEEDS} seeds, medians; light-call latency in ms (1 ms of CPU)`);
console.log(`command: node scripts/simulate-scheduling.mjs --calls ${CALLS} --seeds ${SEEDS}\n`);
for (const scenario of SCENARIOS) {
  const runs = Array.from({ length: SEEDS }, (_, i) => ({ seed: i + 1, calls: arrivals(scenario, i + 1) }));
  console.log(`### ${scenario.name}\n`);
  console.log('| policy | light p50 | light p99 | failed calls |');
  console.log('|---|---|---|---|');
  for (const name of POLICY_NAMES) {
    const results = runs.map(({ seed, calls }) => simulate(scenario, name, calls, seed));
    const m = (key) => median(results.map((r) => r[key]));
    console.log(`| ${name} | ${m('p50').toFixed(2)} | ${m('p99').toFixed(2)} | ${m('failed')} |`);
  }
  console.log('');
}
