#!/usr/bin/env node
// What a pick costs: every policy (src/scheduler/policies.ts, compiled) over 2, 16 and 100
// workers, with fresh reports and in-flight counts that change between picks, as they do in the
// gateway, for a call of a function that half of the workers have warm. tinybench, median ns per pick; absolute figures vary with the machine: compare rows.
//
//   npm run build && node scripts/bench-pick.mjs
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { createPolicy, POLICY_NAMES } = await import(path.join(root, 'dist/src/scheduler/policies.js'));

const NOW = 1_000_000;
const CALL = { key: 'GET:/f', maxConcurrency: 100 };
const bench = new Bench({ time: 300, warmupTime: 100 });
for (const n of [2, 16, 100]) {
  const workers = Array.from({ length: n }, (_, i) => ({
    id: `w${i}`, score: (i * 37) % 100, inFlight: i % 3, lastReportMs: NOW - 200, connected: true,
    calls: new Map([[CALL.key, i % 3]]), warm: new Set(i % 2 ? [CALL.key] : []),
    inFlightOf(key) { return this.calls.get(key) ?? 0; },
    isWarm(key) { return this.warm.has(key); },
  }));
  for (const name of POLICY_NAMES) {
    const policy = createPolicy(name, 1100);
    let turn = 0;
    bench.add(`${name}, ${n} workers`, () => {
      const w = policy.pick(workers, NOW, Math.random, CALL);
      w.inFlight = (w.inFlight + 1) % 4; // the picked worker gets the call; counts keep moving
      workers[turn++ % n].score = (turn * 13) % 100;
    });
  }
}
await bench.run();
console.log(`pick cost, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/bench-pick.mjs\n`);
console.log('| policy | 2 workers | 16 workers | 100 workers |');
console.log('|---|---|---|---|');
for (const name of POLICY_NAMES) {
  const cells = [2, 16, 100].map((n) => {
    const task = bench.tasks.find((t) => t.name === `${name}, ${n} workers`);
    const ns = (task.result.latency?.p50 ?? task.result.p50) * 1e6;
    return `${ns.toFixed(0)} ns`;
  });
  console.log(`| ${name} | ${cells.join(' | ')} |`);
}
