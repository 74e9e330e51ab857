#!/usr/bin/env node
// End-to-end latency and throughput of the whole path (HTTP → gateway → worker → warm
// sandboxed function → back) beside bare uWebSockets.js answering the same bytes, measured
// in the same run, alternating, medians over rounds (the method of PERF.md). One function per
// run (--function): the demo routes a fresh database starts with.
//
//   npm run build && node scripts/bench-latency.mjs [options]
//
//   --rounds N           rounds; each round runs every connection count against both servers (5)
//   --duration S         seconds per wrk run (10)
//   --connections LIST   comma-separated wrk connection counts ("1,16,64")
//   --workers N          the gateway's --workers (1)
//   --pin / --no-pin     pin with taskset: wrk (and this script) on --wrk-cpus, every server process
//                        (bare uWS, gateway, workers, sandboxes) on --server-cpus (on with 2+ cores)
//   --wrk-cpus LIST      taskset CPU list for wrk (0)
//   --server-cpus LIST   taskset CPU list for the servers (1)
//   --warmup S           seconds of discarded wrk load on each server before round 1 (2)
//   --only bare|gateway  measure one side only (e.g. to test the bare half without a build)
//   --json FILE          also write every sample, the medians and the placement as JSON
//   --function NAME      what is called (hello): hello (GET /hello, node, Workers style, a no-op),
//                        echo-1k / echo-64k (POST /echo with that body, node, Lambda style, echoed),
//                        python (GET /py/hello, a python function answering a small JSON object)
//   --self-test          check the wrk output parser on canned outputs and exit
//
// Results (a Markdown table, ready for README.md) go to stdout, progress to stderr. Every
// process this script starts is stopped on exit, on SIGINT/SIGTERM/SIGHUP and on errors
// (SIGTERM, then SIGKILL after a grace period; the gateway stops its own workers, and any
// descendant still alive after that is killed by pid). Only 127.0.0.1 is ever targeted.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachFlag, parseWrk, shellQuote, UsageError } from './lib/bench-helpers.mjs';
import {
  checkBuild, clkTck, decidePinning, fmtUs, LOAD_DEFAULTS, machineInfo, machineLine, pinProcess, Placement, procDetails, request, ROLE_ORDER,
  runRounds, runWrk as runWrkOnce, startServer as startServerIn, summarize, takeLoadFlag, warmByHand as warmUntilOk, wrkWatch,
} from './lib/load-bench.mjs';
import { ChildGroup } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** What each --function calls, and the bytes both servers answer (bare-uws.mjs serves the same). */
const FUNCTIONS = {
  hello: { method: 'GET', path: '/hello', expect: 'hello from faas\n' },
  'echo-1k': { method: 'POST', path: '/echo', bodyBytes: 1024 },
  'echo-64k': { method: 'POST', path: '/echo', bodyBytes: 64 * 1024 },
  python: { method: 'GET', path: '/py/hello', expect: '{"hello": "from python", "path": "/py/hello"}' },
};
const HOST = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Options

function usage() {
  return 'usage: node scripts/bench-latency.mjs [--rounds N] [--duration S] [--connections 1,16,64] [--workers N]\n' +
    '         [--pin|--no-pin] [--wrk-cpus LIST] [--server-cpus LIST] [--warmup S] [--only bare|gateway] [--function NAME] [--json FILE] [--self-test]';
}

function parseArgs(argv) {
  const o = { ...LOAD_DEFAULTS, pin: undefined, only: undefined, json: undefined, selfTest: false, fn: 'hello' };
  eachFlag(argv, (a, value) => {
    if (takeLoadFlag(o, a, value)) return;
    switch (a) {
      case '--pin': o.pin = true; break;
      case '--no-pin': o.pin = false; break;
      case '--only': {
        const v = value();
        if (v !== 'bare' && v !== 'gateway') throw new UsageError(`--only must be bare or gateway (got ${JSON.stringify(v)})`);
        o.only = v;
        break;
      }
      case '--json': o.json = path.resolve(value()); break;
      case '--function': {
        const v = value();
        if (!(v in FUNCTIONS)) throw new UsageError(`--function must be one of ${Object.keys(FUNCTIONS).join(', ')} (got ${JSON.stringify(v)})`);
        o.fn = v;
        break;
      }
      case '--self-test': o.selfTest = true; break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  });
  return o;
}

// ---------------------------------------------------------------------------------------------
// wrk: run it and parse what it prints

function selfTest() {
  const sample = (l50, l99, extra = '') => `Running 3s test @ http://127.0.0.1:41234/hello
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   107.47us   61.33us   4.53ms   98.07%
    Req/Sec   123.73k     2.81k  128.43k    76.67%
  Latency Distribution
     50%  ${l50}
     75%  104.00us
     90%  114.00us
     99%  ${l99}
  369412 requests in 3.00s, 33.47MB read
${extra}Requests/sec: 123131.26
Transfer/sec:     11.16MB
`;
  const eq = (a, b, what) => {
    if (Math.abs(a - b) > 1e-6 * Math.max(1, Math.abs(b))) throw new Error(`self-test: ${what}: got ${a}, want ${b}`);
  };
  let r = parseWrk(sample('98.00us', '207.00us'));
  eq(r.rps, 123131.26, 'rps'); eq(r.requests, 369412, 'requests'); eq(r.p50, 98, 'p50 us'); eq(r.p99, 207, 'p99 us');
  eq(r.non2xx, 0, 'non2xx'); eq(r.socketErrors.timeout, 0, 'timeouts');
  r = parseWrk(sample('1.10ms', '13.04ms'));
  eq(r.p50, 1100, 'p50 ms'); eq(r.p99, 13040, 'p99 ms');
  r = parseWrk(sample('334.00us', '2.00s', '  Socket errors: connect 0, read 3, write 0, timeout 7\n  Non-2xx or 3xx responses: 12\n'));
  eq(r.p50, 334, 'p50'); eq(r.p99, 2e6, 'p99 s'); eq(r.non2xx, 12, 'non2xx'); eq(r.socketErrors.read, 3, 'read errors'); eq(r.socketErrors.timeout, 7, 'timeouts');
  r = parseWrk(sample('1.50m', '0.00us'));
  eq(r.p50, 90e6, 'p50 minutes'); eq(r.p99, 0, 'p99 zero');
  let threw = false;
  try { parseWrk('Running 3s test\nRequests/sec: 1.00\n'); } catch { threw = true; }
  if (!threw) throw new Error('self-test: output without a latency distribution was accepted');
  process.stdout.write('wrk parser self-test: ok\n');
}

// ---------------------------------------------------------------------------------------------
// Processes: start, track, stop

/** Starts a server (pinned to the server CPUs when pinning); resolves once it prints `listening http=PORT`. */
function startServer(name, args, { timeoutMs = 60_000, logFile } = {}) {
  return startServerIn(group, { name, args, cwd: root, cpus: opts.pin ? opts.serverCpus : undefined, logFile, urlPath: FUNCTIONS[opts.fn].path, host: HOST, timeoutMs });
}

let tmpDir;
function cleanupDir() {
  if (tmpDir) try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch {}
  tmpDir = undefined;
}

// Every process this script starts; on the way out, also whatever the placement snapshots saw.
const group = new ChildGroup('bench-latency', { graceMs: 5000, cleanup: cleanupDir, seen: () => [...placement.values()] });
/** Where each process ran, and CPU per request by role. */
const placement = new Placement();

let luaDir;
/** wrk's `-s FILE` for a function called with a body (a Lua script setting method, body, type). */
function wrkScript() {
  const body = requestBody();
  if (body === undefined) return [];
  if (!luaDir) {
    luaDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-wrk-'));
    process.on('exit', () => fs.rmSync(luaDir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(luaDir, 'post.lua'), `wrk.method = "POST"\nwrk.body = string.rep("x", ${body.length})\n` +
      'wrk.headers["Content-Type"] = "application/octet-stream"\n');
  }
  return ['-s', path.join(luaDir, 'post.lua')];
}

/** Runs wrk once (pinned to the wrk CPUs when pinning) and parses it; `observe` is called mid-run with wrk's pid. */
function runWrk(url, connections, seconds, observe) {
  return runWrkOnce(group, { url, connections, seconds, cpus: opts.pin ? opts.wrkCpus : undefined, extraArgs: wrkScript(), observe });
}

// ---------------------------------------------------------------------------------------------
// /proc: process trees, where they ran, CPU time

const observeTree = (rootPid, rootRole) => placement.observe(rootPid, rootRole);
const cpuPerRequest = (...a) => placement.cpuPerRequest(...a);

// ---------------------------------------------------------------------------------------------
// The run

/** The request body of --function (undefined for a GET), the same bytes wrk sends. */
function requestBody() {
  const { bodyBytes } = FUNCTIONS[opts.fn];
  return bodyBytes === undefined ? undefined : 'x'.repeat(bodyBytes);
}

/** The function's request, as wrk sends it; resolves with the answer. */
function get(url, timeoutMs) {
  return request(url, { method: FUNCTIONS[opts.fn].method, body: requestBody(), timeoutMs });
}

/** Calls the function until `want` answers in a row are 200 with the expected body (bounded). */
function warmByHand(target, want = 20, maxTries = 200) {
  const fn = FUNCTIONS[opts.fn];
  return warmUntilOk(target, { call: () => get(target.url, 30_000), expect: fn.expect ?? requestBody(), want, maxTries, what: fn.method });
}

/**
 * With several workers, each one's instance of the function must be warm before measuring: send
 * bursts of concurrent requests until every worker has answered (x-faas-worker), bounded.
 */
async function warmEveryWorker(target) {
  if (opts.workers < 2) return;
  const seen = new Set();
  const burst = Math.min(opts.workers * 8, 256);
  for (let i = 0; i < 30 && seen.size < opts.workers; i++) {
    const rs = await Promise.allSettled(Array.from({ length: burst }, () => get(target.url, 30_000)));
    for (const r of rs) {
      const w = r.status === 'fulfilled' && r.value.status === 200 ? r.value.headers.get('x-faas-worker') : null;
      if (w) seen.add(w);
    }
  }
  process.stderr.write(`warm: workers that answered GET /hello: ${[...seen].sort().join(', ') || 'none named (no x-faas-worker header)'}\n`);
  if (seen.size > 0 && seen.size < opts.workers) {
    process.stderr.write(`warning: only ${seen.size} of ${opts.workers} workers answered the warm-up bursts; the others may start an instance during the measurement (the wrk warm-up, --warmup, helps)\n`);
  }
}

async function main() {
  if (opts.selfTest) return selfTest();

  // Pre-flight: tools, cores, build.
  opts.pin = decidePinning(opts);
  const sides = opts.only ? [opts.only] : ['bare', 'gateway'];
  if (sides.includes('gateway')) {
    checkBuild(root, ' (or measure the baseline alone with --only bare)');
  }
  const info = machineInfo(); // before this script pins itself: nproc counts the CPUs it may use
  if (opts.pin) {
    // This script only waits on wrk and drains pipes; keep it off the servers' cores too.
    pinProcess(process.pid, opts.wrkCpus);
  }

  const started = new Date();
  const command = ['node', 'scripts/bench-latency.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ');
  process.stderr.write(`nproc ${info.nproc} (${info.model}), Node ${info.node}, wrk ${info.wrk}, load ${info.loadavg.join(' ')}\n`);

  const targets = {};
  if (sides.includes('bare')) {
    targets.bare = await startServer('bare uWS', [path.join(root, 'scripts/bare-uws.mjs')], { timeoutMs: 20_000 });
    process.stderr.write(`bare uWS: pid ${targets.bare.pid}, ${targets.bare.url}\n`);
    await warmByHand(targets.bare, 5, 50);
  }
  if (sides.includes('gateway')) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-bench-'));
    fs.chmodSync(tmpDir, 0o755);
    targets.gateway = await startServer('gateway', ['bin/faas.js', 'gateway', '--host', HOST, '--port', '0', '--admin-port', '0',
      '--db', path.join(tmpDir, 'faas.db'), '--run-dir', path.join(tmpDir, 'run'), '--workers', String(opts.workers)],
      { logFile: path.join(tmpDir, 'gateway.log') }); // its log to a file: a pipe read here would compete for the cores measured
    process.stderr.write(`gateway: pid ${targets.gateway.pid}, ${targets.gateway.url}; warming the function instance\n`);
    await warmByHand(targets.gateway, 20, 200);
    await warmEveryWorker(targets.gateway);
  }
  const roleName = { bare: 'bare uWS', gateway: 'gateway' };
  const snapshot = (side) => observeTree(targets[side].pid, roleName[side]);
  for (const side of sides) snapshot(side);

  const { seen: wrkSeen, observe: observeWrk } = wrkWatch(snapshot);

  if (opts.warmup > 0) {
    const c = Math.max(...opts.connections);
    for (const side of sides) {
      process.stderr.write(`warm-up: ${opts.warmup} s of wrk -c${c} on ${roleName[side]} (discarded)\n`);
      await runWrk(targets[side].url, c, opts.warmup, observeWrk(side));
    }
  }

  const samples = await runRounds({
    sides, connections: opts.connections, rounds: opts.rounds, label: (side) => roleName[side],
    measure: async (side, c) => {
      const before = snapshot(side);
      const r = await runWrk(targets[side].url, c, opts.duration, observeWrk(side));
      const after = snapshot(side);
      for (const s of sides) {
        if (!group.children.has(targets[s].pid)) throw new Error(`${roleName[s]} (pid ${targets[s].pid}) died during the run:\n${targets[s].stderrTail()}`);
      }
      r.cpuUsPerRequest = cpuPerRequest(before, after, r.requests, targets[side].pid, roleName[side]);
      return r;
    },
  });
  const finished = new Date();
  const report = buildReport({ info, started, finished, command, sides, samples, wrkSeen });
  process.stdout.write(report.markdown);
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(report.json, null, 2) + '\n');
    process.stderr.write(`wrote ${opts.json}\n`);
  }
  return report.errors ? 2 : 0;
}

function buildReport({ info, started, finished, command, sides, samples, wrkSeen }) {
  const medians = {};
  for (const side of sides) medians[side] = Object.fromEntries(opts.connections.map((c) => [c, summarize(samples[side][c])]));
  const L = [];
  const where = opts.pin ? `wrk (and this script) pinned to CPU ${opts.wrkCpus}, every server process to CPU ${opts.serverCpus} (taskset -c)` : 'nothing pinned';
  L.push('');
  L.push(machineLine(info, started));
  const fn = FUNCTIONS[opts.fn];
  L.push(`function ${opts.fn}: ${fn.method} ${fn.path}${fn.bodyBytes ? ` with a ${fn.bodyBytes}-byte body, echoed` : ''}; ` +
    `${sides.includes('gateway') ? `gateway with ${opts.workers} worker(s), access log ${process.env.FAAS_ACCESS_LOG ?? 'on'} (FAAS_ACCESS_LOG); ` : ''}${where}; wrk -t1 --latency, ` +
    `medians of ${opts.rounds} alternating round(s) of ${opts.duration} s per connection count${opts.warmup ? ` after ${opts.warmup} s of discarded warm-up each` : ''}`);
  L.push(`command: \`${command}\``);
  L.push('');
  const head = ['connections'];
  if (sides.includes('bare')) head.push('bare uWS rps', 'bare p50 µs', 'bare p99 µs');
  if (sides.includes('gateway')) head.push('gateway rps', 'gateway p50 µs', 'gateway p99 µs');
  if (sides.length === 2) head.push('rps ratio gateway/bare', 'added p50 µs');
  L.push(`| ${head.join(' | ')} |`);
  L.push(`|${head.map(() => '---').join('|')}|`);
  for (const c of opts.connections) {
    const row = [String(c)];
    for (const side of sides) {
      const m = medians[side][c];
      row.push(m.rps.toFixed(0), fmtUs(m.p50), fmtUs(m.p99));
    }
    if (sides.length === 2) {
      const [b, g] = [medians.bare[c], medians.gateway[c]];
      row.push(`${(g.rps / b.rps).toFixed(2)}×`, fmtUs(g.p50 - b.p50));
    }
    L.push(`| ${row.join(' | ')} |`);
  }

  // CPU per request, by process role (from /proc/PID/stat over each wrk run; 1/CLK_TCK resolution).
  const roleCols = [];
  for (const side of sides) {
    const rs = new Set(opts.connections.flatMap((c) => Object.keys(medians[side][c].cpuUsPerRequest)));
    for (const r of ROLE_ORDER) if (rs.has(r)) roleCols.push([side, r]);
  }
  if (roleCols.length) {
    L.push('');
    L.push(`CPU µs per request by process (medians; from /proc/PID/stat utime+stime over each wrk run, ${(1e6 / clkTck / 1000).toFixed(0)} ms ticks):`);
    L.push('');
    const h = ['connections', ...roleCols.map(([side, r]) => (side === 'gateway' && r !== 'gateway' ? `gateway: ${r}` : r))];
    if (sides.includes('gateway')) h.push('gateway path total');
    L.push(`| ${h.join(' | ')} |`);
    L.push(`|${h.map(() => '---').join('|')}|`);
    for (const c of opts.connections) {
      const row = [String(c), ...roleCols.map(([side, r]) => fmtUs(medians[side][c].cpuUsPerRequest[r] ?? 0))];
      if (sides.includes('gateway')) row.push(fmtUs(Object.values(medians.gateway[c].cpuUsPerRequest).reduce((a, b) => a + b, 0)));
      L.push(`| ${row.join(' | ')} |`);
    }
  }

  // Where each process ran.
  L.push('');
  L.push('Where each process ran (affinity from /proc/PID/status Cpus_allowed_list; "seen on" = CPUs it was last scheduled on at the snapshots):');
  L.push('');
  const cpus = (set) => [...set].sort((a, b) => a - b).join(',') || '?';
  L.push(`- wrk: \`${opts.pin ? `taskset -c ${opts.wrkCpus} ` : ''}wrk\`, affinity ${[...wrkSeen.affinity].join(' / ') || '?'}, seen on ${cpus(wrkSeen.ranOn)}`);
  const self = procDetails(process.pid).affinity;
  L.push(`- this script (pid ${process.pid}): affinity ${self}`);
  L.push(...placement.lines());

  // Errors under load make a row meaningless: say so next to the table.
  let errors = 0;
  const notes = [];
  for (const side of sides) {
    for (const c of opts.connections) {
      const non2xx = samples[side][c].reduce((a, s) => a + s.non2xx, 0);
      const sock = samples[side][c].reduce((a, s) => a + Object.values(s.socketErrors).reduce((x, y) => x + y, 0), 0);
      if (non2xx || sock) {
        errors += non2xx + sock;
        notes.push(`- WARNING: ${roleName(side)} at ${c} connection(s): ${non2xx} non-2xx/3xx responses, ${sock} socket errors over ${opts.rounds} round(s)`);
      }
    }
  }
  if (notes.length) { L.push(''); L.push(...notes); }
  L.push('');
  L.push(`finished ${finished.toISOString().replace(/\.\d+Z$/, 'Z')} (${((finished - started) / 1000).toFixed(0)} s)`);
  L.push('');

  const json = {
    started: started.toISOString(), finished: finished.toISOString(), command, machine: info,
    options: { ...opts, json: undefined, selfTest: undefined },
    placement: {
      wrk: { cpus: opts.pin ? opts.wrkCpus : null, affinity: [...wrkSeen.affinity], seenOn: [...wrkSeen.ranOn] },
      script: { pid: process.pid, affinity: self },
      servers: [...placement.values()].map((p) => ({ ...p, ranOn: [...p.ranOn] })),
    },
    medians, samples, errors,
  };
  return { markdown: L.join('\n'), json, errors };
}

function roleName(side) {
  return side === 'bare' ? 'bare uWS' : 'gateway';
}

// ---------------------------------------------------------------------------------------------

let opts;
await group.run(() => { opts = parseArgs(process.argv.slice(2)); }, usage, main);
