#!/usr/bin/env node
// Every benchmark, or some by name: `npm run bench` runs them all in turn, `npm run bench -- NAME
// [NAME …]` those named, `npm run bench -- NAME --flag …` one with its own flags. Each is a script of its own that
// prints a Markdown table with the date, the machine and its exact command; this only runs
// them, one after another (never two at once: they would measure each other).
//
//   npm run build && npm run bench [-- NAME … | -- NAME --flag value …]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Name → [script, what it measures]; in the order `npm run bench` runs them. */
const BENCHMARKS = {
  'route-lookup': ['scripts/micro/route-lookup.mjs', 'route lookup at 1 / 10k / 100k routes'],
  'route-sync': ['scripts/micro/route-sync.mjs', 'a SQLite resync of 100k rows: no change, 1 % changed'],
  pick: ['scripts/bench-pick.mjs', 'a scheduler pick at 2 / 16 / 100 workers, every policy'],
  frames: ['scripts/micro/frames.mjs', 'frame encode + decode, msgpackr vs JSON, small and 64 KiB bodies'],
  datagram: ['scripts/micro/datagram.mjs', 'a load-report datagram: validate + apply'],
  'proc-sample': ['scripts/micro/proc-sample.mjs', "a worker's /proc sample + EMA"],
  'request-path': ['scripts/micro/request-path.mjs', 'the whole request path in one process, minus sockets, uWS and process hops'],
  'stream-hop': ['scripts/micro/stream-hop.mjs', 'gateway ⇄ worker round trip over a Unix stream socket, project codec'],
  'node-host': ['scripts/micro/node-host.mjs', 'the node runtime host alone on its direct channel: calls/s and CPU per call, 1 or 64 in flight'],
  'wake-cost': ['scripts/micro/wake-cost.mjs', 'waking a Node process per message: same-core ping-pong vs an idle core'],
  native: ['scripts/bench-native.mjs', 'Node beside the C floors (native-bench/): sockets, /proc, spawn, HTTP'],
  load: ['scripts/bench-latency.mjs', 'the whole path under wrk beside bare uWS, 1 / 16 / 64 connections'],
  cold: ['scripts/bench-cold.mjs', 'cold and warm starts per runtime and mode (go, and node and python with dependencies, too), and builds from row to first answer'],
  peers: ['scripts/bench-peers.mjs', 'ours beside bare uWS and workerd (fetched with npm pack), same no-op fetch, unpinned and pinned'],
};

const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('-'));
const names = firstFlag < 0 ? args : args.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const unknown = names.filter((n) => BENCHMARKS[n] === undefined);
const usage = () => 'usage: npm run bench [-- NAME …]   or   npm run bench -- NAME --flag value …  (flags go to that one script)\n' +
  Object.entries(BENCHMARKS).map(([n, [, what]]) => `  ${n.padEnd(13)} ${what}`).join('\n') + '\n';
if (flags.includes('--help') || flags.includes('-h')) {
  process.stdout.write(usage());
  process.exit(0);
}
if (unknown.length > 0 || (flags.length > 0 && names.length !== 1)) {
  process.stderr.write(`${unknown.length ? `unknown benchmark ${unknown.map((u) => JSON.stringify(u)).join(', ')}` : 'flags need exactly one benchmark name before them'}\n${usage()}`);
  process.exit(2);
}
if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) {
  process.stderr.write('dist/ is missing: run npm run build first\n');
  process.exit(1);
}

let failed = 0;
for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
  const [script, what] = BENCHMARKS[name];
  process.stdout.write(`\n## ${name}: ${what}\n\n`);
  const r = spawnSync(process.execPath, [path.join(root, script), ...flags], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench: ${name} (${script}) failed: ${r.error?.message ?? `exit ${r.status ?? r.signal}`}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
