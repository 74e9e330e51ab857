#!/usr/bin/env node
// Our gateway beside its peers, in the same run, alternating: bare uWebSockets.js
// (scripts/bare-uws.mjs), Cloudflare's workerd (one ES-module worker, every request in a V8
// isolate of one process) and our gateway (gateway → worker → warm sandboxed function), all
// answering GET /hello with the same Workers-style no-op fetch function ('hello from faas\n').
// Ours is measured once per data path when the gateway has --data-path (direct, and worker: every
// call through the worker process), otherwise once. wrk -t1 at each connection count, medians of
// rounds, first with nothing pinned, then pinned (wrk and this script on --wrk-cpus, every server
// process on --server-cpus), with CPU per request of each process from /proc/PID/stat.
//
//   npm run build && npm run bench -- peers [options]      (or node scripts/bench-peers.mjs …)
//
//   --rounds N              rounds; each runs every connection count against every server (5)
//   --duration S            seconds per wrk run (10)
//   --connections LIST      comma-separated wrk connection counts (1,16,64)
//   --warmup S              seconds of discarded wrk load on each server before round 1 (2)
//   --placement P           both | unpinned | pinned (both; pinned is skipped, with a note, where
//                           the CPUs are not there); --pin means pinned, --no-pin unpinned
//   --wrk-cpus LIST         taskset CPU list for wrk and this script when pinned (0)
//   --server-cpus LIST      taskset CPU list for every server process when pinned (1)
//   --workers N             our gateway's --workers (1)
//   --servers LIST          which to measure, of bare,workerd,ours (all three)
//   --workerd-dir DIR       where workerd is cached (FAAS_BENCH_WORKERD_DIR, else ~/.cache/faas-bench/workerd);
//                           fetched there with `npm pack @cloudflare/workerd-linux-64@VERSION` when missing
//   --workerd-version V     the workerd npm version (pinned: 1.20261123.1)
//   --workerd-bin FILE      use this workerd binary instead (nothing is downloaded)
//   --allow-missing-workerd when workerd cannot be fetched or does not run, say so and measure the others
//   --json FILE             also write every sample, the medians and where each process ran
//
// Results (Markdown) go to stdout, progress to stderr. workerd is a peer to measure, never a
// dependency of the product. Every process this script starts is stopped on exit, on
// SIGINT/SIGTERM/SIGHUP and on errors (lib/processes.mjs ChildGroup). Only 127.0.0.1 is targeted.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { eachFlag, shellQuote, UsageError } from './lib/bench-helpers.mjs';
import {
  allowedCpus, checkBuild, clkTck, decidePinning, expandCpuList, fileTail, fmtUs, LOAD_DEFAULTS, machineInfo, machineLine, pinProcess,
  Placement, procDetails, request, ROLE_ORDER, runRounds, runWrk, sleep, startServer, summarize, takeLoadFlag, taskset, warmByHand, wrkWatch,
} from './lib/load-bench.mjs';
import { ChildGroup } from './lib/processes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = '127.0.0.1';
const PATH = '/hello';
const EXPECT = 'hello from faas\n';
/** The demo GET /hello of a fresh database (src/routes/schema.ts DEMO_ROUTES); read from dist/ when it is there. */
const HELLO_CODE = "export default { async fetch(request, env, ctx) { return new Response('hello from faas\\n') } }";
const WORKERD_VERSION = '1.20261123.1';
const WORKERD_PACKAGE = { x64: '@cloudflare/workerd-linux-64', arm64: '@cloudflare/workerd-linux-arm64' }[process.arch];
const SCRIPT = 'bench-peers';

// ---------------------------------------------------------------------------------------------
// Options

function usage() {
  return 'usage: node scripts/bench-peers.mjs [--rounds N] [--duration S] [--connections 1,16,64] [--warmup S]\n' +
    '         [--placement both|unpinned|pinned | --pin | --no-pin] [--wrk-cpus LIST] [--server-cpus LIST] [--workers N]\n' +
    '         [--servers bare,workerd,ours] [--workerd-dir DIR] [--workerd-version V] [--workerd-bin FILE] [--allow-missing-workerd] [--json FILE]';
}

function parseArgs(argv) {
  const o = {
    ...LOAD_DEFAULTS, placement: 'both',
    servers: ['bare', 'workerd', 'ours'], workerdDir: process.env.FAAS_BENCH_WORKERD_DIR || path.join(os.homedir(), '.cache/faas-bench/workerd'),
    workerdVersion: WORKERD_VERSION, workerdBin: undefined, allowMissingWorkerd: false, json: undefined,
  };
  eachFlag(argv, (a, value) => {
    if (takeLoadFlag(o, a, value)) return;
    switch (a) {
      case '--placement': {
        const v = value();
        if (!['both', 'unpinned', 'pinned'].includes(v)) throw new UsageError(`--placement must be both, unpinned or pinned (got ${JSON.stringify(v)})`);
        o.placement = v;
        break;
      }
      case '--pin': o.placement = 'pinned'; break;
      case '--no-pin': o.placement = 'unpinned'; break;
      case '--servers': {
        const list = [...new Set(value().split(',').map((s) => s.trim()).filter(Boolean))];
        const bad = list.filter((s) => !['bare', 'workerd', 'ours'].includes(s));
        if (list.length === 0 || bad.length) throw new UsageError(`--servers takes a list of bare, workerd, ours (got ${JSON.stringify(bad.join(',') || '')})`);
        o.servers = ['bare', 'workerd', 'ours'].filter((s) => list.includes(s));
        break;
      }
      case '--workerd-dir': o.workerdDir = path.resolve(value()); break;
      case '--workerd-version': {
        const v = value();
        if (!/^\d+\.\d+\.\d+$/.test(v)) throw new UsageError(`--workerd-version must be an npm version such as ${WORKERD_VERSION} (got ${JSON.stringify(v)})`);
        o.workerdVersion = v;
        break;
      }
      case '--workerd-bin': o.workerdBin = path.resolve(value()); break;
      case '--allow-missing-workerd': o.allowMissingWorkerd = true; break;
      case '--json': o.json = path.resolve(value()); break;
      case '-h': case '--help': process.stdout.write(usage() + '\n'); process.exit(0); break;
      default: throw new UsageError(`unknown option ${JSON.stringify(a)}`);
    }
  });
  return o;
}

// ---------------------------------------------------------------------------------------------
// workerd: fetched from npm into a cache folder, checked, configured

/** `workerd --version`'s answer, or undefined when the binary does not run. */
function workerdVersionOf(bin) {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim() : undefined;
}

/**
 * The workerd binary: --workerd-bin, or DIR/VERSION/bin/workerd, fetched there (npm pack, tar)
 * when missing. Returns { bin, version, fetched }; throws with what went wrong otherwise.
 */
function ensureWorkerd() {
  if (opts.workerdBin) {
    const version = workerdVersionOf(opts.workerdBin);
    if (!version) throw new Error(`${opts.workerdBin} --version did not run`);
    return { bin: opts.workerdBin, version, fetched: false };
  }
  if (process.platform !== 'linux' || !WORKERD_PACKAGE) throw new Error(`no workerd npm package for ${process.platform}/${process.arch} known to this script`);
  const spec = `${WORKERD_PACKAGE}@${opts.workerdVersion}`;
  const dir = path.join(opts.workerdDir, opts.workerdVersion);
  const bin = path.join(dir, 'bin/workerd');
  let version = fs.existsSync(bin) ? workerdVersionOf(bin) : undefined;
  if (version) return { bin, version, fetched: false };

  fs.mkdirSync(opts.workerdDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(opts.workerdDir, '.fetch-'));
  try {
    process.stderr.write(`workerd: fetching ${spec} with npm pack into ${opts.workerdDir} (about 50 MB to download, 150 MB unpacked)\n`);
    const pack = spawnSync('npm', ['pack', spec, '--pack-destination', tmp, '--json', '--silent'], { cwd: tmp, encoding: 'utf8', timeout: 600_000 });
    if (pack.error || pack.status !== 0) {
      let why = `${pack.stderr ?? ''}${pack.stdout ?? ''}`.trim();
      try { why = JSON.parse(pack.stdout).error?.summary ?? why; } catch {} // --json: { error: { code, summary, detail } }
      throw new Error(`npm pack ${spec} failed (${pack.error?.message ?? `exit ${pack.status}`}): ${why.replace(/\s+/g, ' ').slice(-600)}`);
    }
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${spec} left no .tgz in ${tmp}`);
    const tar = spawnSync('tar', ['-xzf', path.join(tmp, tgz), '-C', tmp], { encoding: 'utf8', timeout: 300_000 });
    if (tar.status !== 0) throw new Error(`tar -xzf ${tgz} failed: ${tar.stderr ?? tar.error?.message}`);
    const unpacked = path.join(tmp, 'package');
    version = workerdVersionOf(path.join(unpacked, 'bin/workerd'));
    if (!version) throw new Error(`the workerd binary from ${spec} does not run here (${path.join(unpacked, 'bin/workerd')} --version failed)`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(unpacked, dir);
    return { bin, version, fetched: true };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The code of the gateway's demo GET /hello, so that workerd runs exactly the function ours runs. */
async function helloCode() {
  try {
    const { DEMO_ROUTES } = await import(pathToFileURL(path.join(root, 'dist/src/routes/schema.js')).href);
    const code = DEMO_ROUTES.find(([key]) => key === `GET:${PATH}`)?.[1]?.code;
    if (typeof code === 'string') return code;
  } catch {}
  return HELLO_CODE;
}

/** A port on 127.0.0.1 that nothing listens on now (bound without SO_REUSEPORT, so a uWS listener there makes it fail). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The inodes of the TCP sockets listening on a port (uWS and others listen with SO_REUSEPORT: there may be several). */
function listeningInodes(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[1].endsWith(`:${hex}`) && cols[3] === '0A') out.push(cols[9]);
    }
  }
  return out;
}

function socketInodesOf(pid) {
  const out = new Set();
  let fds = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch {}
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {}
  }
  return out;
}

/** Starts workerd serving HELLO on a free port; resolves like startServer once it answers. */
async function startWorkerd(cpus, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'worker.mjs'), `${await helloCode()}\n`);
  fs.writeFileSync(path.join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "${HOST}:${port}", http = (), service = "main") ],
);

const hello :Workerd.Worker = (
  modules = [ (name = "worker.mjs", esModule = embed "worker.mjs") ],
  compatibilityDate = "2025-01-01",
);
`);
  const logFile = path.join(dir, 'workerd.log');
  const logFd = fs.openSync(logFile, 'a');
  const [file, argv] = taskset(cpus, workerd.bin, ['serve', path.join(dir, 'config.capnp')]);
  let child;
  try {
    child = spawn(file, argv, { cwd: dir, stdio: ['ignore', logFd, logFd] });
  } finally {
    fs.closeSync(logFd);
  }
  child.once('error', () => {});
  const exited = group.track('workerd', child);
  let gone;
  exited.then((e) => { gone = e; });
  const target = { name: 'workerd', pid: child.pid, child, port, url: `http://${HOST}:${port}${PATH}`, stderrTail: () => `(${logFile})\n${fileTail(logFile)}` };
  for (let i = 0; ; i++) {
    await sleep(100);
    if (gone) throw new Error(`workerd exited (${gone.signal ?? `code ${gone.code ?? gone.error?.message}`}) before it was listening\n${target.stderrTail()}`);
    const inodes = listeningInodes(port);
    if (inodes.length > 0) {
      const own = socketInodesOf(child.pid);
      if (inodes.length !== 1 || !own.has(inodes[0])) {
        throw new Error(`port ${port}: ${inodes.length} listening socket(s), ${inodes.filter((n) => own.has(n)).length} of them workerd's: another process shares the port`);
      }
      return target;
    }
    if (i > 300) throw new Error(`workerd did not listen on ${HOST}:${port} within 30 s\n${target.stderrTail()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Ours

/** Whether `faas gateway` knows --data-path (its --help, or the configuration error listing the options it knows). */
function gatewayHasDataPath() {
  const r = spawnSync(process.execPath, ['bin/faas.js', 'gateway', '--help'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return /--data-path\b/.test(`${r.stdout ?? ''}${r.stderr ?? ''}`);
}

function startGateway(name, dataPath, cpus, dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  return startServer(group, {
    name, cwd: root, cpus, urlPath: PATH, host: HOST, logFile: path.join(dir, 'gateway.log'), // a file, not a pipe read on the measured cores
    args: ['bin/faas.js', 'gateway', '--host', HOST, '--port', '0', '--admin-port', '0', '--db', path.join(dir, 'faas.db'),
      '--run-dir', path.join(dir, 'run'), '--workers', String(opts.workers), ...(dataPath ? ['--data-path', dataPath] : [])],
  });
}

// ---------------------------------------------------------------------------------------------
// The run

let tmpDir;
let opts;
let workerd;
/** Every process seen in any phase: stopped too on the way out. */
const everSeen = [];
const group = new ChildGroup(SCRIPT, {
  graceMs: 5000, seen: () => everSeen.flatMap((p) => [...p.values()]),
  cleanup: () => { if (tmpDir) try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch {} tmpDir = undefined; },
});

/** The servers measured: key, label, role of the root process, how to start. */
function sidesFor(dataPaths) {
  const sides = [];
  if (opts.servers.includes('bare')) sides.push({ key: 'bare', label: 'bare uWS', role: 'bare uWS' });
  if (opts.servers.includes('workerd') && workerd) sides.push({ key: 'workerd', label: 'workerd', role: 'workerd' });
  if (opts.servers.includes('ours')) {
    if (dataPaths) {
      sides.push({ key: 'ours-direct', label: 'ours (direct)', role: 'gateway', ours: true, dataPath: 'direct' });
      sides.push({ key: 'ours-worker', label: 'ours (worker hop)', role: 'gateway', ours: true, dataPath: 'worker' });
    } else {
      sides.push({ key: 'ours', label: 'ours', role: 'gateway', ours: true });
    }
  }
  return sides;
}

async function startSide(side, cpus, phase) {
  const dir = path.join(tmpDir, `${phase}-${side.key}`);
  let t;
  if (side.key === 'bare') {
    t = await startServer(group, { name: side.label, args: [path.join(root, 'scripts/bare-uws.mjs')], cwd: root, cpus, urlPath: PATH, host: HOST, timeoutMs: 20_000 });
  } else if (side.key === 'workerd') {
    t = await startWorkerd(cpus, dir);
  } else {
    t = await startGateway(side.label, side.dataPath, cpus, dir);
  }
  process.stderr.write(`${side.label}: pid ${t.pid}, ${t.url}${side.ours ? '; warming the function instance' : ''}\n`);
  await warmByHand(t, { call: () => request(t.url), expect: EXPECT, want: side.ours ? 20 : 5, maxTries: side.ours ? 200 : 100 });
  return t;
}

/** One placement: start every server, warm up, alternate rounds, stop them all. */
async function runPhase(phase, sides) {
  const pinned = phase === 'pinned';
  const serverCpus = pinned ? opts.serverCpus : undefined;
  const wrkCpus = pinned ? opts.wrkCpus : undefined;
  const selfAffinity = [...allowedCpus()].join(',');
  if (pinned) pinProcess(process.pid, opts.wrkCpus); // this script only waits on wrk: off the servers' cores too
  const placement = new Placement();
  everSeen.push(placement);
  const targets = {};
  try {
    process.stderr.write(`\n== ${phase}${pinned ? ` (wrk and this script on CPU ${opts.wrkCpus}, servers on CPU ${opts.serverCpus})` : ''} ==\n`);
    for (const side of sides) targets[side.key] = await startSide(side, serverCpus, phase);
    const snapshot = (side) => placement.observe(targets[side.key].pid, side.role, side.label);
    for (const side of sides) snapshot(side);
    const { seen: wrkSeen, observe: observeWrk } = wrkWatch(snapshot);
    const wrk = (side, connections, seconds) => runWrk(group, { url: targets[side.key].url, connections, seconds, cpus: wrkCpus, observe: observeWrk(side) });

    if (opts.warmup > 0) {
      const c = Math.max(...opts.connections);
      for (const side of sides) {
        process.stderr.write(`warm-up: ${opts.warmup} s of wrk -c${c} on ${side.label} (discarded)\n`);
        await wrk(side, c, opts.warmup);
      }
    }
    const samples = await runRounds({
      sides, connections: opts.connections, rounds: opts.rounds, key: (side) => side.key, label: (side) => side.label, prefix: `${phase} `,
      measure: async (side, c) => {
        const before = snapshot(side);
        const r = await wrk(side, c, opts.duration);
        const after = snapshot(side);
        for (const s of sides) {
          if (!group.children.has(targets[s.key].pid)) throw new Error(`${s.label} (pid ${targets[s.key].pid}) died during the run:\n${targets[s.key].stderrTail()}`);
        }
        r.cpuUsPerRequest = placement.cpuPerRequest(before, after, r.requests, targets[side.key].pid, side.role);
        return r;
      },
    });
    return { phase, pinned, samples, placement, wrkSeen, selfAffinity: procDetails(process.pid).affinity };
  } finally {
    await group.stop(Object.values(targets).map((t) => t.pid), [...placement.values()]);
    if (pinned) pinProcess(process.pid, selfAffinity);
  }
}

async function main() {
  // Pre-flight: tools, cores, build, workerd, our data paths.
  let phases = opts.placement === 'both' ? ['unpinned', 'pinned'] : [opts.placement];
  if (phases.includes('pinned')) {
    const canPin = [...expandCpuList(opts.wrkCpus), ...expandCpuList(opts.serverCpus)].every((c) => allowedCpus().has(c)) && os.availableParallelism() >= 2;
    if (!canPin && opts.placement === 'both') {
      process.stderr.write(`note: measuring unpinned only: CPUs ${opts.wrkCpus} (wrk) and ${opts.serverCpus} (servers) are not both available here\n`);
      phases = ['unpinned'];
    }
  }
  decidePinning({ pin: phases.includes('pinned'), wrkCpus: opts.wrkCpus, serverCpus: opts.serverCpus }); // throws for --pin without the CPUs; checks wrk, taskset
  if (opts.servers.includes('ours')) checkBuild(root, ' (or measure the peers alone with --servers bare,workerd)');
  const info = machineInfo();
  let workerdError;
  if (opts.servers.includes('workerd')) {
    try {
      workerd = ensureWorkerd();
      process.stderr.write(`workerd: ${workerd.bin} (${workerd.version}${workerd.fetched ? ', just fetched' : ', cached'})\n`);
    } catch (err) {
      workerdError = err.message;
      if (!opts.allowMissingWorkerd) throw new Error(`workerd is not available: ${err.message}\n  (--allow-missing-workerd measures the others without it; --workerd-bin FILE uses a binary you have)`);
      process.stderr.write(`WARNING: workerd is not available: ${err.message}\n  continuing without it (--allow-missing-workerd)\n`);
    }
  }
  const dataPaths = opts.servers.includes('ours') && gatewayHasDataPath();
  if (opts.servers.includes('ours')) process.stderr.write(`ours: ${dataPaths ? 'the gateway has --data-path: measuring direct and worker' : 'the gateway has no --data-path: one column'}\n`);
  const sides = sidesFor(dataPaths);
  if (sides.length === 0) throw new Error('nothing left to measure');

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-bench-peers-'));
  fs.chmodSync(tmpDir, 0o755);
  const started = new Date();
  const command = ['npm', 'run', 'bench', '--', 'peers', ...process.argv.slice(2)].map(shellQuote).join(' ');
  process.stderr.write(`nproc ${info.nproc} (${info.model}), Node ${info.node}, wrk ${info.wrk}, load ${info.loadavg.join(' ')}\n`);
  const results = [];
  for (const phase of phases) results.push(await runPhase(phase, sides));
  const finished = new Date();

  const report = buildReport({ info, started, finished, command, sides, results, workerdError, dataPaths });
  process.stdout.write(report.markdown);
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(report.json, null, 2) + '\n');
    process.stderr.write(`wrote ${opts.json}\n`);
  }
  return report.errors ? 2 : 0;
}

// ---------------------------------------------------------------------------------------------
// The report

function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–';
}

function buildReport({ info, started, finished, command, sides, results, workerdError, dataPaths }) {
  const L = [''];
  L.push(machineLine(info, started));
  const peers = sides.map((s) => s.label).join(', ');
  L.push(`GET ${PATH} answering ${JSON.stringify(EXPECT)} from the same Workers-style no-op fetch function (bare uWS: the same bytes from a uWS handler); ` +
    `servers: ${peers}; ` +
    (workerd ? `${workerd.version.startsWith('workerd') ? '' : 'workerd '}${workerd.version} (npm ${opts.workerdBin ? opts.workerdBin : `${WORKERD_PACKAGE}@${opts.workerdVersion}`}), one ES-module worker; ` : '') +
    (workerdError ? `workerd NOT measured (${workerdError.split('\n')[0]}); ` : '') +
    (opts.servers.includes('ours') ? `ours: gateway with ${opts.workers} worker(s), access log ${process.env.FAAS_ACCESS_LOG ?? 'on'} (FAAS_ACCESS_LOG)` +
      `${dataPaths ? ', once per --data-path (direct; worker: every call through the worker process)' : ' (no --data-path in this build)'}; ` : '') +
    `wrk -t1 --latency, medians of ${opts.rounds} alternating round(s) of ${opts.duration} s per connection count` +
    `${opts.warmup ? ` after ${opts.warmup} s of discarded warm-up on each` : ''}`);
  L.push(`command: \`${command}\``);
  const json = { started: started.toISOString(), finished: finished.toISOString(), command, machine: info, options: { ...opts, json: undefined },
    workerd: workerd ?? { error: workerdError ?? 'not asked for' }, sides: sides.map(({ key, label }) => ({ key, label })), phases: {} };
  let errors = 0;
  const ours = sides.filter((s) => s.ours);
  const hasWorkerd = sides.some((s) => s.key === 'workerd');
  const cFirst = opts.connections.includes(1) ? 1 : Math.min(...opts.connections);
  const cLast = opts.connections.includes(64) ? 64 : Math.max(...opts.connections);

  for (const res of results) {
    const { samples } = res;
    const medians = {};
    for (const side of sides) medians[side.key] = Object.fromEntries(opts.connections.map((c) => [c, summarize(samples[side.key][c])]));
    const wk = (c) => medians.workerd?.[c];
    L.push('');
    L.push(`### ${res.pinned ? `pinned: wrk (and this script) on CPU ${opts.wrkCpus}, every server process on CPU ${opts.serverCpus} (taskset -c)` : 'unpinned: nothing pinned'}`);
    L.push('');
    const head = ['connections', 'server', 'rps', 'p50 µs', 'p99 µs'];
    if (hasWorkerd && ours.length) head.push('rps ours/workerd', 'p50 ours/workerd');
    L.push(`| ${head.join(' | ')} |`);
    L.push(`|${head.map((h) => (h === 'server' ? '---' : '---:')).join('|')}|`);
    for (const c of opts.connections) {
      for (const side of sides) {
        const m = medians[side.key][c];
        const row = [String(c), side.label, m.rps.toFixed(0), fmtUs(m.p50), fmtUs(m.p99)];
        if (hasWorkerd && ours.length) row.push(side.ours ? ratio(m.rps, wk(c).rps) : '', side.ours ? ratio(m.p50, wk(c).p50) : '');
        L.push(`| ${row.join(' | ')} |`);
      }
    }
    if (hasWorkerd && ours.length) {
      L.push('');
      for (const side of ours) {
        const m = medians[side.key];
        L.push(`- **${side.label} vs workerd**: rps at ${cLast} connection(s) ${ratio(m[cLast].rps, wk(cLast).rps)} (${m[cLast].rps.toFixed(0)} vs ${wk(cLast).rps.toFixed(0)}; above 1 is better), ` +
          `p50 at ${cFirst} connection(s) ${ratio(m[cFirst].p50, wk(cFirst).p50)} (${fmtUs(m[cFirst].p50)} vs ${fmtUs(wk(cFirst).p50)} µs; below 1 is better)`);
      }
    }

    L.push('');
    L.push(`CPU µs per request by process (medians; /proc/PID/stat utime+stime over each wrk run, all threads, ${(1e6 / clkTck / 1000).toFixed(0)} ms ticks: short runs are coarse):`);
    L.push('');
    L.push('| connections | server | by process | total |');
    L.push('|---:|---|---|---:|');
    for (const c of opts.connections) {
      for (const side of sides) {
        const cpu = medians[side.key][c].cpuUsPerRequest;
        const parts = ROLE_ORDER.filter((r) => r in cpu).map((r) => `${r} ${fmtUs(cpu[r])}`);
        L.push(`| ${c} | ${side.label} | ${parts.join(' + ')} | ${fmtUs(Object.values(cpu).reduce((a, b) => a + b, 0))} |`);
      }
    }

    L.push('');
    L.push('Where each process ran (affinity from /proc/PID/status; "seen on" = CPUs it was last scheduled on at the snapshots):');
    L.push('');
    const cpus = (set) => [...set].sort((a, b) => a - b).join(',') || '?';
    L.push(`- wrk: \`${res.pinned ? `taskset -c ${opts.wrkCpus} ` : ''}wrk\`, affinity ${[...res.wrkSeen.affinity].join(' / ') || '?'}, seen on ${cpus(res.wrkSeen.ranOn)}`);
    L.push(`- this script (pid ${process.pid}): affinity ${res.selfAffinity}`);
    L.push(...res.placement.lines((e) => (e.side === e.role ? e.role : `${e.side}: ${e.role}`)));

    const notes = [];
    for (const side of sides) {
      for (const c of opts.connections) {
        const non2xx = samples[side.key][c].reduce((a, s) => a + s.non2xx, 0);
        const sock = samples[side.key][c].reduce((a, s) => a + Object.values(s.socketErrors).reduce((x, y) => x + y, 0), 0);
        if (non2xx || sock) {
          errors += non2xx + sock;
          notes.push(`- WARNING: ${side.label} at ${c} connection(s): ${non2xx} non-2xx/3xx responses, ${sock} socket errors over ${opts.rounds} round(s)`);
        }
      }
    }
    if (notes.length) { L.push(''); L.push(...notes); }
    json.phases[res.phase] = {
      placement: {
        wrk: { cpus: res.pinned ? opts.wrkCpus : null, affinity: [...res.wrkSeen.affinity], seenOn: [...res.wrkSeen.ranOn] },
        script: { pid: process.pid, affinity: res.selfAffinity },
        servers: [...res.placement.values()].map((p) => ({ ...p, ranOn: [...p.ranOn] })),
      },
      medians, samples,
    };
  }
  L.push('');
  L.push(`finished ${finished.toISOString().replace(/\.\d+Z$/, 'Z')} (${((finished - started) / 1000).toFixed(0)} s)`);
  L.push('');
  json.errors = errors;
  return { markdown: L.join('\n'), json, errors };
}

// ---------------------------------------------------------------------------------------------

await group.run(() => { opts = parseArgs(process.argv.slice(2)); }, usage, main);
