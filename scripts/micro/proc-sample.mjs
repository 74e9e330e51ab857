#!/usr/bin/env node
// What a worker's load sample costs it, twice a second: ProcReader.sampleTree
// (workers/proc-stats.ts, compiled) over this process and 3 `sleep` children standing in for
// function processes, passed as extra roots the way the Reporter passes its function pids, then
// LoadScore.update (workers/load-score.ts) with the result, as Reporter.sample does. Also timed
// apart: the scan's listing of /proc, each of the three files read per process (stat, status, io),
// LoadScore.update alone, and a sample by a fresh ProcReader, whose first scan reads every
// process's stat (a long-lived reader does that every FULL_SCAN_EVERY samples). tinybench, median
// per operation; absolute figures vary with the machine and with how many processes it runs:
// compare rows.
//
//   node scripts/micro/proc-sample.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!fs.existsSync(path.join(root, 'dist/workers/proc-stats.js'))) {
  console.error('dist/workers/proc-stats.js is missing: run npm run build first');
  process.exit(1);
}
const { ProcReader, nodeProcFs, FULL_SCAN_EVERY } = await import(path.join(root, 'dist/workers/proc-stats.js'));
const { LoadScore } = await import(path.join(root, 'dist/workers/load-score.js'));

/** LoadScore.update is tens of ns, under the timer's resolution: each timed call does this many. */
const REPEAT = 256;

const children = Array.from({ length: 3 }, () => spawn('sleep', ['30'], { stdio: 'ignore' }));
const killChildren = () => {
  for (const child of children) child.kill('SIGKILL');
};
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
await Promise.all(children.map((child) => new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject))));
const childPids = children.map((child) => child.pid);

const reader = new ProcReader();
const score = new LoadScore(reader.clockTicksPerSecond);
const first = reader.sampleTree(process.pid, childPids);
if (first.processes !== 1 + childPids.length) throw new Error(`sampled ${first.processes} processes, expected ${1 + childPids.length}`);

// update alone feeds its own LoadScore, with made-up counters 500 ms apart.
const alone = new LoadScore(reader.clockTicksPerSecond);
let timeMs = 0;
const bench = new Bench({ time: 500, warmupTime: 100, throws: true });
bench.add('sample', () => score.update({ timeMs: performance.now(), ...reader.sampleTree(process.pid, childPids), cores: undefined }));
bench.add('sampleTree', () => reader.sampleTree(process.pid, childPids));
bench.add('full', () => new ProcReader().sampleTree(process.pid, childPids));
bench.add('list', () => nodeProcFs.listPids());
const FILES = ['stat', 'status', 'io'];
for (const file of FILES) {
  bench.add(file, () => {
    if (nodeProcFs.readFile(`/proc/${process.pid}/${file}`) === undefined) throw new Error(`cannot read /proc/${process.pid}/${file}`);
  });
}
bench.add('update', () => {
  for (let i = 0; i < REPEAT; i++) {
    timeMs += 500;
    alone.update({ timeMs, cpuTicks: timeMs / 20, rssBytes: 80e6 + (i % 7) * 1e6, ioBytes: timeMs * 10, cores: undefined });
  }
});
await bench.run();
killChildren(); // they would keep the event loop alive until they exit

const processes = nodeProcFs.listPids().length;
const ROWS = [
  ['sample', `sampleTree(pid, 3 child pids) + LoadScore.update, as Reporter.sample (unpinned)`, 1],
  ['sampleTree', `sampleTree alone: list /proc, re-read stat of the tree's 4 processes, status + io of each`, 1],
  ['full', `sampleTree by a fresh ProcReader: full scan, stat of all ${processes} processes (1 sample in ${FULL_SCAN_EVERY})`, 1],
  ['list', `listPids alone: readdirSync('/proc') (${processes} processes)`, 1],
  ...FILES.map((file) => [file, `read /proc/PID/${file} alone (one process; sampleTree reads all three per process)`, 1]),
  ['update', 'LoadScore.update alone', REPEAT],
];
const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
console.log(`worker /proc sample, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/micro/proc-sample.mjs\n`);
console.log('| operation | median per op | ops/s |');
console.log('|---|---|---|');
for (const [name, label, perCall] of ROWS) {
  const { result } = bench.tasks.find((t) => t.name === name);
  const ns = ((result.latency?.p50 ?? result.p50) * 1e6) / perCall;
  console.log(`| ${label} | ${fmt(ns)} | ${Math.round(1e9 / ns).toLocaleString('en')} |`);
}
console.log(`\nMeasured: the real readers on this machine's /proc (readFileSync, latin1), on the main thread; a long-lived reader's median is its incremental scan, the full scan every ${FULL_SCAN_EVERY}th sample shows in its own row.`);
