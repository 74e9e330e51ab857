#!/usr/bin/env node
// Node beside its physical floor. For each stage, a small C program (native-bench/*.c, built
// here by native-bench/build.sh with plain cc) measures the least the operation can cost on this
// machine, and the Node equivalent does the same work the way the gateway and its workers do
// it; both run in the same run, alternating which goes first, for several rounds. Prints a
// Markdown table of the medians over the rounds and each stage's ratio to its floor.
//
//   node scripts/bench-native.mjs [--rounds N] [--duration S] [--only STAGE[,STAGE]] [--json FILE]
//
//   --rounds N     rounds; each runs every chosen stage's C floor and Node equivalent once (3)
//   --duration S   seconds per wrk run in the http stage (5)
//   --only LIST    comma-separated stages to run, of: unix-stream, dgram, proc, spawn, http (all)
//   --json FILE    also write every run's figures and output lines, and the medians, as JSON
//
// Stages (C floor | Node equivalent, in native-bench/node-equivalents.mjs unless said):
//   unix-stream  100-byte ping-pong between two processes over a Unix stream socket, the
//                gateway -> worker hop: unix-rtt.c | node:net
//   dgram        200-byte ping-pong over AF_UNIX SOCK_DGRAM sockets bound to paths, a worker's
//                load report; and sendto() alone: dgram-rtt.c | node-unix-socket's DgramSocket
//   proc         open+read+close of /proc/self/{stat,status,io}, a worker's 500 ms sample:
//                proc-read.c | fs.readFileSync(file, 'latin1')
//   spawn        start /bin/true and wait for it: fork-exec.c | child_process.spawnSync
//   http         wrk -t1 -c1 and -c64 on GET /hello: http-responder.c (epoll, no parser beyond
//                the end of headers) | bare uWebSockets.js (scripts/bare-uws.mjs); rps, p50, and
//                the server's CPU time per request (utime+stime from /proc/PID/stat around each
//                wrk run): with one wrk thread, rps can be wrk's limit, not the server's
//
// Placement: with CPUs 0 and 1 both usable, everything is pinned with taskset: wrk and this
// script on CPU 0; the HTTP servers, and both ends of every other stage, on CPU 1. The socket
// stages thus measure two processes on one core, where a wake-up is cheapest and steadiest (on
// two cores of a VM they measure the hypervisor's cross-CPU wake-ups: see unix-rtt.c). With
// fewer CPUs nothing is pinned. C and Node always get the same placement.
//
// Results go to stdout, progress to stderr. Every process this script starts is stopped on
// exit, on SIGINT/SIGTERM/SIGHUP and on errors (SIGTERM, then SIGKILL after a grace period);
// socket files live in a temporary directory ($TMPDIR for the children) removed at exit.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eachFlag, intFlag as int, median as medianOf, parseWrk, shellQuote, UsageError } from './lib/bench-helpers.mjs';
import { ChildGroup } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'native-bench/bin');
const NODE_SIDE = path.join(root, 'native-bench/node-equivalents.mjs');
const BODY = 'hello from faas\n';
const HOST = '127.0.0.1';
const WRK_CPU = '0';
const WORK_CPU = '1';
const HTTP_CONNECTIONS = [1, 64];
const HTTP_WARMUP_S = 1;
const RUN_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------------------------------------
// Stages: what runs on each side, and the figures read from what it prints. The C program and
// its Node equivalent print lines of the same shape, so one pattern reads both.

const figure = (re) => (text) => Number(re.exec(text)?.[1]);
const procFile = (file) => figure(new RegExp(`${file.replace(/\//g, '\\/')}, .*: median (\\d+) ns`));

const STAGES = {
  'unix-stream': {
    c: ['unix-rtt', '20000'],
    node: ['unix-stream', '20000'],
    metrics: [{ key: 'rtt', label: 'Unix stream round trip, 100 B (node:net)', unit: 'µs', read: figure(/stream round trip.*: median ([\d.]+) us/) }],
  },
  dgram: {
    c: ['dgram-rtt', '20000'],
    node: ['dgram', '20000'],
    metrics: [
      { key: 'rtt', label: 'Unix datagram round trip, 200 B (node-unix-socket)', unit: 'µs', read: figure(/datagram round trip.*: median ([\d.]+) us/) },
      { key: 'sendto', label: 'datagram sendto alone, 200 B, no receiver woken', unit: 'ns', read: figure(/sendto alone.*: median (\d+) ns/) },
    ],
  },
  proc: {
    c: ['proc-read', '20000'],
    node: ['proc', '20000'],
    metrics: [
      ...['stat', 'status', 'io'].map((f) => ({ key: f, label: `read /proc/self/${f} (readFileSync latin1)`, unit: 'ns', read: procFile(`/proc/self/${f}`) })),
      { key: 'all', label: 'read all three /proc files', unit: 'ns', read: figure(/all three files.*: median (\d+) ns/) },
    ],
  },
  spawn: {
    c: ['fork-exec', '500'],
    node: ['spawn', '500'],
    metrics: [{ key: 'spawn', label: 'start /bin/true and wait (spawnSync)', unit: 'µs', read: figure(/\/bin\/true.*: median ([\d.]+) us/) }],
  },
  http: {
    metrics: HTTP_CONNECTIONS.flatMap((c) => [
      { key: `c${c}-rps`, label: `HTTP keep-alive, wrk -c${c}: requests/s (Node = bare uWS; higher is better)`, unit: 'rps', wrk: (r) => r.rps, connections: c },
      { key: `c${c}-p50`, label: `HTTP keep-alive, wrk -c${c}: p50 latency (Node = bare uWS)`, unit: 'µs', wrk: (r) => r.p50, connections: c },
      { key: `c${c}-cpu`, label: `HTTP keep-alive, wrk -c${c}: server CPU per request (Node = bare uWS)`, unit: 'µs', wrk: (r) => r.serverCpuUs, connections: c },
    ]),
  },
};

// ---------------------------------------------------------------------------------------------
// Options

function usage() {
  return `usage: node scripts/bench-native.mjs [--rounds N] [--duration S] [--only STAGE[,STAGE]] [--json FILE]\n  stages: ${Object.keys(STAGES).join(', ')}`;
}

function parseArgs(argv) {
  const o = { rounds: 3, duration: 5, only: Object.keys(STAGES), json: undefined };
  eachFlag(argv, (a, value) => {
    switch (a) {
      case '--rounds': o.rounds = int(a, value(), 1, 1000); break;
      case '--duration': o.duration = int(a, value(), 1, 3600); break;
      case '--only': {
        const raw = value();
        const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
        const unknown = list.filter((s) => !(s in STAGES));
        if (list.length === 0 || unknown.length > 0) {
          throw new UsageError(`--only must be a comma-separated list of ${Object.keys(STAGES).join(', ')} (got ${JSON.stringify(raw)}${unknown.length ? `: unknown ${unknown.map((u) => JSON.stringify(u)).join(', ')}` : ''})`);
        }
        o.only = Object.keys(STAGES).filter((s) => list.includes(s)); // run in the table's order
        break;
      }
      case '--json': {
        o.json = path.resolve(value());
        const dir = path.dirname(o.json);
        if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`--json: the directory ${dir} does not exist`);
        break;
      }
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  });
  return o;
}

// ---------------------------------------------------------------------------------------------
// Processes: start, track, stop

let pin = false;
let tmpDir;

/** [file, args] for `file args` on `cpu`, through taskset when pinning. */
function placed(cpu, file, args) {
  return pin ? ['taskset', ['-c', cpu, file, ...args]] : [file, args];
}

/** Starts `file args` on `cpu` with both output pipes drained; `exited` resolves with how it ended. */
function start(name, cpu, file, args) {
  if (group.signalled !== undefined) throw new Error('stopping: no new process'); // stopAll may have passed already
  const [f, a] = placed(cpu, file, args);
  const child = spawn(f, a, { cwd: root, env: { ...process.env, TMPDIR: tmpDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const io = { out: '', err: '', command: [f, ...a].join(' ') };
  child.stdout.on('data', (c) => { io.out += c; });
  child.stderr.on('data', (c) => { io.err = (io.err + c).slice(-8000); });
  return { child, exited: group.track(name, child), io };
}

/** Runs a program to completion on the work CPU and returns its stdout; throws with its stderr if it fails. */
async function runProgram(name, file, args) {
  const { child, exited, io } = start(name, WORK_CPU, file, args);
  const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch {} }, RUN_TIMEOUT_MS);
  const { code, signal, error } = await exited;
  clearTimeout(timer);
  if (error) throw new Error(`${name}: could not run ${io.command}: ${error.message}`);
  if (code !== 0) throw new Error(`${name} failed (${signal ?? `exit ${code}`}): ${io.command}\n${io.err}${io.out}`);
  return io.out;
}

/** Starts an HTTP server on the work CPU; resolves once it prints `listening http=PORT`. */
function startServer(name, file, args) {
  const server = start(name, WORK_CPU, file, args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print "listening http=PORT" within 20 s: ${server.io.command}\n${server.io.err}`)), 20_000);
    const onData = () => {
      const m = /listening http=(\d+)/.exec(server.io.out);
      if (!m) return;
      clearTimeout(timer);
      server.child.stdout.off('data', onData);
      resolve({ name, ...server, url: `http://${HOST}:${m[1]}/hello` });
    };
    server.child.stdout.on('data', onData);
    server.exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      reject(new Error(`${name} ${error ? `could not start: ${error.message}` : `exited (${signal ?? `code ${code}`})`}: ${server.io.command}\n${server.io.err}`));
    });
  });
}

function removeTmpDir() {
  if (tmpDir) try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch {}
  tmpDir = undefined;
}

// Every process this script starts, stopped however it ends.
const group = new ChildGroup('bench-native', { graceMs: 3000, cleanup: removeTmpDir });

// ---------------------------------------------------------------------------------------------
// wrk (the parser of scripts/bench-latency.mjs, cut to the figures used here)

const clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU time (utime + stime, all threads) a process has used so far, in clock ticks. */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return Number(f[11]) + Number(f[12]);
}

async function runWrk(url, connections, seconds) {
  const { child, exited, io } = start('wrk', WRK_CPU, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url]);
  const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch {} }, (seconds + 30) * 1000);
  const { code, signal, error } = await exited;
  clearTimeout(timer);
  if (error) throw new Error(`could not run ${io.command}: ${error.message} (apt-get install -y wrk)`);
  if (code !== 0) throw new Error(`${io.command} failed (${signal ?? `code ${code}`}):\n${io.out}${io.err}`);
  const wrk = parseWrk(io.out);
  return { ...wrk, socketErrors: Object.values(wrk.socketErrors).reduce((a, b) => a + b, 0) }; // one count here
}

// ---------------------------------------------------------------------------------------------
// The run

function machine() {
  let model = 'unknown CPU';
  try { model = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model; } catch {}
  const cc = spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'unknown';
  return { model, cores: os.availableParallelism(), node: process.version, kernel: os.release(), cc, loadavg: os.loadavg().map((l) => +l.toFixed(2)) };
}

function fmt(value, unit) {
  if (!Number.isFinite(value)) return '–';
  if (unit === 'ns' || unit === 'rps') return `${Math.round(value)} ${unit}`;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${unit}`;
}

/** One GET /hello must answer 200 and the demo body: the servers are compared on the same bytes. */
async function checkServer(server) {
  const res = await fetch(server.url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200 || text !== BODY) throw new Error(`${server.name}: GET ${server.url} answered ${res.status} ${JSON.stringify(text.slice(0, 80))}, not 200 ${JSON.stringify(BODY)}`);
}

async function main() {
  const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  const allowedSet = new Set(allowed.split(',').flatMap((part) => {
    const [a, b = a] = part.split('-').map(Number);
    return Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
  }));
  pin = os.availableParallelism() >= 2 && allowedSet.has(Number(WRK_CPU)) && allowedSet.has(Number(WORK_CPU));
  if (!pin) process.stderr.write(`note: not pinning (this process may run on CPUs ${allowed}; pinning needs CPUs ${WRK_CPU} and ${WORK_CPU})\n`);
  if (pin && spawnSync('taskset', ['-V']).error) throw new Error('taskset is not installed (util-linux: apt-get install -y util-linux)');
  if (opts.only.includes('http') && spawnSync('wrk', ['-v']).error) throw new Error('wrk is not installed: apt-get install -y wrk');

  process.stderr.write('building the C floors: sh native-bench/build.sh\n');
  const build = spawnSync('sh', [path.join(root, 'native-bench/build.sh')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (build.error) throw new Error(`could not run native-bench/build.sh: ${build.error.message}`);
  if (build.status !== 0) throw new Error(`native-bench/build.sh failed (${build.signal ?? `exit ${build.status}`}); the compiler's message is above`);

  const info = machine();
  if (pin) {
    // This script only waits and drains pipes; keep it off the measured core.
    const r = spawnSync('taskset', ['-a', '-p', '-c', WRK_CPU, String(process.pid)], { encoding: 'utf8' });
    if (r.status !== 0) process.stderr.write(`warning: could not pin this script to CPU ${WRK_CPU}: ${r.stderr}\n`);
  }
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-native-'));
  const started = new Date();
  const command = ['node', 'scripts/bench-native.mjs', ...process.argv.slice(2)].map(shellQuote).join(' ');
  process.stderr.write(`${info.model}, ${info.cores} cores, Node ${info.node}, load ${info.loadavg.join(' ')}\n`);

  // runs[stage] = [{ round, side: 'c'|'node', values: { key: number }, output }]
  const runs = Object.fromEntries(opts.only.map((s) => [s, []]));
  const servers = {};
  if (opts.only.includes('http')) {
    servers.c = await startServer('C http-responder', path.join(BIN, 'http-responder'), ['0']);
    servers.node = await startServer('bare uWS', process.execPath, [path.join(root, 'scripts/bare-uws.mjs')]);
    for (const side of ['c', 'node']) {
      await checkServer(servers[side]);
      process.stderr.write(`${servers[side].name}: pid ${servers[side].child.pid}, ${servers[side].url}; ${HTTP_WARMUP_S} s of wrk -c${Math.max(...HTTP_CONNECTIONS)} warm-up (discarded)\n`);
      await runWrk(servers[side].url, Math.max(...HTTP_CONNECTIONS), HTTP_WARMUP_S);
    }
  }

  const total = opts.rounds * opts.only.reduce((n, s) => n + (s === 'http' ? 2 * HTTP_CONNECTIONS.length : 2), 0);
  let done = 0;
  const progress = (round, stage, side, text) => {
    done++;
    process.stderr.write(`[${done}/${total}] round ${round} ${stage} ${side === 'c' ? 'C' : 'Node'}:\n${text.trimEnd().replace(/^/gm, '    ')}\n`);
  };
  for (let round = 1; round <= opts.rounds; round++) {
    const order = round % 2 === 1 ? ['c', 'node'] : ['node', 'c'];
    for (const stage of opts.only) {
      const spec = STAGES[stage];
      if (stage === 'http') {
        for (const connections of HTTP_CONNECTIONS) {
          for (const side of order) {
            const before = cpuTicks(servers[side].child.pid);
            const r = await runWrk(servers[side].url, connections, opts.duration);
            r.serverCpuUs = ((cpuTicks(servers[side].child.pid) - before) * 1e6) / clkTck / r.requests;
            for (const s of ['c', 'node']) {
              if (!group.children.has(servers[s].child.pid)) throw new Error(`${servers[s].name} died during the run:\n${servers[s].io.err}`);
            }
            const metrics = spec.metrics.filter((m) => m.connections === connections);
            runs.http.push({ round, side, connections, wrk: r, values: Object.fromEntries(metrics.map((m) => [m.key, m.wrk(r)])) });
            progress(round, `http c=${connections}`, side, `${servers[side].name}: ${r.rps.toFixed(0)} rps, p50 ${fmt(r.p50, 'µs')}, p99 ${fmt(r.p99, 'µs')}, server CPU ${fmt(r.serverCpuUs, 'µs')}/request` +
              `${r.non2xx + r.socketErrors ? `, ERRORS: ${r.non2xx} non-2xx, ${r.socketErrors} socket` : ''}`);
          }
        }
        continue;
      }
      for (const side of order) {
        const [name, ...args] = side === 'c' ? spec.c : spec.node;
        const output = side === 'c'
          ? await runProgram(`native-bench/bin/${name}`, path.join(BIN, name), args)
          : await runProgram(`node-equivalents ${name}`, process.execPath, [NODE_SIDE, name, ...args]);
        const values = Object.fromEntries(spec.metrics.map((m) => [m.key, m.read(output)]));
        const missing = spec.metrics.filter((m) => !Number.isFinite(values[m.key]));
        if (missing.length) throw new Error(`${stage} (${side === 'c' ? 'C' : 'Node'}): no figure for ${missing.map((m) => m.label).join('; ')} in its output:\n${output}`);
        runs[stage].push({ round, side, values, output: output.trimEnd().split('\n') });
        progress(round, stage, side, output);
      }
    }
  }

  const finished = new Date();
  const rows = opts.only.flatMap((stage) => STAGES[stage].metrics.map((m) => {
    const of = (side) => medianOf(runs[stage].filter((r) => r.side === side && m.key in r.values).map((r) => r.values[m.key]));
    const [node, c] = [of('node'), of('c')];
    return { stage, key: m.key, label: m.label, unit: m.unit, node, c, ratio: node / c };
  }));

  const L = [''];
  L.push(`${started.toISOString().replace(/\.\d+Z$/, 'Z')}: ${info.model}, ${info.cores} cores, Node ${info.node}, Linux ${info.kernel}; command: \`${command}\``);
  L.push(`C floors: native-bench/*.c built with \`cc -O2\` (${info.cc}); medians of ${opts.rounds} round(s), C and Node alternating which goes first; ` +
    (pin ? `pinned: wrk and this script on CPU ${WRK_CPU}, every other process (both ends of each socket stage, the HTTP servers) on CPU ${WORK_CPU}` : 'nothing pinned') +
    (opts.only.includes('http') ? `; HTTP: wrk -t1 --latency, ${opts.duration} s per run after ${HTTP_WARMUP_S} s of discarded warm-up per server` : '') +
    `; load average at start ${info.loadavg.join(' ')}`);
  L.push('');
  L.push('| stage | Node median | C floor median | ratio (Node/C) |');
  L.push('|---|---|---|---|');
  for (const r of rows) L.push(`| ${r.label} | ${fmt(r.node, r.unit)} | ${fmt(r.c, r.unit)} | ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '–'} |`);
  const errors = (runs.http ?? []).filter((r) => r.wrk.non2xx + r.wrk.socketErrors > 0);
  for (const r of errors) {
    L.push(`- WARNING: ${servers[r.side].name}, wrk -c${r.connections}, round ${r.round}: ${r.wrk.non2xx} non-2xx/3xx responses, ${r.wrk.socketErrors} socket errors`);
  }
  L.push('');
  process.stdout.write(L.join('\n'));

  if (opts.json) {
    const json = {
      started: started.toISOString(), finished: finished.toISOString(), command, machine: info,
      options: { rounds: opts.rounds, duration: opts.duration, only: opts.only },
      placement: pin ? { wrkAndScript: WRK_CPU, everythingElse: WORK_CPU } : null,
      rows, runs,
    };
    fs.writeFileSync(opts.json, JSON.stringify(json, null, 2) + '\n');
    process.stderr.write(`wrote ${opts.json}\n`);
  }
  return errors.length ? 2 : 0;
}

let opts;
await group.run(() => { opts = parseArgs(process.argv.slice(2)); }, usage, main);
