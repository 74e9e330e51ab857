// What the wrk-driven benchmarks (bench-latency.mjs, bench-peers.mjs) share: CPU lists and
// pinning with taskset, the machine line their tables start with, starting a server that prints
// `listening http=PORT` (its log to a file, so that no reader on the measured cores slows it),
// running wrk once, warming a server by hand, and what /proc says about the processes measured:
// where they ran and how much CPU each role took per request.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { intFlag, median, parseWrk, UsageError } from './bench-helpers.mjs';
import { procStat, processTree } from './processes.mjs';

/** Clock ticks per second, the unit of utime/stime in /proc/PID/stat. */
export const clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A taskset CPU list flag's value, checked; otherwise a UsageError naming the flag. */
export function cpuList(flag, raw) {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(raw)) throw new UsageError(`${flag} must be a taskset CPU list such as 1 or 2-3 (got ${JSON.stringify(raw)})`);
  return raw;
}

/** The flags every wrk-driven benchmark takes, with their defaults. */
export const LOAD_DEFAULTS = { rounds: 5, duration: 10, connections: [1, 16, 64], warmup: 2, workers: 1, wrkCpus: '0', serverCpus: '1' };

/**
 * Reads one of the shared flags (--rounds, --duration, --warmup, --workers, --connections,
 * --wrk-cpus, --server-cpus) into `o`, for eachFlag's callback; false when `flag` is not one.
 */
export function takeLoadFlag(o, flag, value) {
  switch (flag) {
    case '--rounds': o.rounds = intFlag(flag, value(), 1, 1000); return true;
    case '--duration': o.duration = intFlag(flag, value(), 1, 3600); return true;
    case '--warmup': o.warmup = intFlag(flag, value(), 0, 600); return true;
    case '--workers': o.workers = intFlag(flag, value(), 1, 256); return true;
    case '--connections': {
      const list = value().split(',').map((s) => s.trim()).filter(Boolean);
      if (list.length === 0) throw new UsageError('--connections needs at least one count');
      o.connections = [...new Set(list.map((c) => intFlag(flag, c, 1, 100_000)))];
      return true;
    }
    case '--wrk-cpus': o.wrkCpus = cpuList(flag, value()); return true;
    case '--server-cpus': o.serverCpus = cpuList(flag, value()); return true;
    default: return false;
  }
}

/** The CPUs of a taskset CPU list ("0,2-3" → {0, 2, 3}). */
export function expandCpuList(list) {
  const out = new Set();
  for (const part of list.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    for (let c = a; c <= b && c - a < 4096; c++) out.add(c);
  }
  return out;
}

/** The CPUs this process may run on (its Cpus_allowed_list). */
export function allowedCpus(pid = 'self') {
  return expandCpuList(/Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0');
}

/**
 * Whether to pin, and the checks that go with it: `pin` undefined means "pin where the CPUs are
 * there" (a note on stderr when not); true with CPUs this process may not use throws. Also
 * checks that wrk (and, pinning, taskset) are installed.
 */
export function decidePinning({ pin, wrkCpus, serverCpus }) {
  const allowed = allowedCpus();
  const canPin = [...expandCpuList(wrkCpus), ...expandCpuList(serverCpus)].every((c) => allowed.has(c));
  if (pin === undefined) {
    pin = canPin && os.availableParallelism() >= 2;
    if (!pin) process.stderr.write(`note: not pinning (this process may run on CPUs ${[...allowed].join(',')}; need ${wrkCpus} for wrk and ${serverCpus} for the servers)\n`);
  } else if (pin && !canPin) {
    throw new Error(`--pin: CPUs ${wrkCpus} (wrk) and ${serverCpus} (servers) are not all available here (allowed: ${[...allowed].join(',')}); use --no-pin or other --wrk-cpus/--server-cpus`);
  }
  if (spawnSync('wrk', ['-v']).error) throw new Error('wrk is not installed: apt-get install -y wrk');
  if (pin && spawnSync('taskset', ['-V']).error) throw new Error('taskset is not installed (util-linux); install it or use --no-pin');
  return pin;
}

/** Sets the affinity of every thread of a process (taskset -a -p); a warning on failure. */
export function pinProcess(pid, cpus) {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`warning: could not pin pid ${pid} to CPUs ${cpus}: ${r.stderr ?? r.error?.message}\n`);
  return r.status === 0;
}

/** [file, args] run under `taskset -c cpus` when cpus is given, as they are otherwise. */
export function taskset(cpus, file, args) {
  return cpus === undefined ? [file, args] : ['taskset', ['-c', cpus, file, ...args]];
}

/** The machine a table was measured on (read before the script pins itself: nproc counts the CPUs it may use). */
export function machineInfo() {
  let cpu = 'unknown CPU';
  try { cpu = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu; } catch {}
  const nproc = Number(spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim()) || os.availableParallelism();
  const nprocAll = Number(spawnSync('nproc', ['--all'], { encoding: 'utf8' }).stdout?.trim()) || os.cpus().length;
  const wrkV = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  const wrkVersion = /wrk (\S+)/.exec(`${wrkV.stdout ?? ''}${wrkV.stderr ?? ''}`)?.[1] ?? 'unknown';
  return { nproc, nprocAll, model: cpu, node: process.version, kernel: os.release(), wrk: wrkVersion, loadavg: os.loadavg().map((l) => +l.toFixed(2)) };
}

/** The first line of a table: when, and on what. */
export function machineLine(info, started) {
  return `${started.toISOString().replace(/\.\d+Z$/, 'Z')}: nproc ${info.nproc}${info.nprocAll !== info.nproc ? ` (of ${info.nprocAll})` : ''} (${info.model}), ` +
    `Node ${info.node}, Linux ${info.kernel}, wrk ${info.wrk}, load average at start ${info.loadavg.join(' ')}`;
}

/** The last `bytes` of a file ('' when it cannot be read). */
export function fileTail(file, bytes = 8000) {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(bytes, size));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf.toString('utf8');
    } finally { fs.closeSync(fd); }
  } catch { return ''; }
}

/**
 * Starts a server (tracked by `group`) that prints `listening http=PORT` on stdout; resolves with
 * { name, pid, child, port, url, stderrTail } once it has. `cpus`: run it under taskset. With
 * `logFile`, its stderr (a gateway's log) goes straight to that file: no pipe, no reader in this
 * process; otherwise stderr is drained through a pipe (keep that for servers that log nothing).
 */
export function startServer(group, { name, file = process.execPath, args, cwd, cpus, logFile, urlPath = '/', host = '127.0.0.1', env, timeoutMs = 60_000 }) {
  const [bin, argv] = taskset(cpus, file, args);
  const logFd = logFile === undefined ? undefined : fs.openSync(logFile, 'a');
  let child;
  try {
    child = spawn(bin, argv, { cwd, env, stdio: ['ignore', 'pipe', logFd ?? 'pipe'] });
  } finally {
    if (logFd !== undefined) fs.closeSync(logFd); // the child has its own copy
  }
  let stderr = '';
  let stdout = '';
  // Keep draining the pipes for the whole run: a full pipe would stall the server.
  child.stderr?.on('data', (c) => { stderr = (stderr + c).slice(-8000); });
  child.stdout.on('data', (c) => { stdout = (stdout + c).slice(-8000); });
  child.once('error', () => {});
  const stderrTail = () => (logFile === undefined ? stderr : `(${logFile}, last 8000 bytes)\n${fileTail(logFile)}`);
  const exited = group.track(name, child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print "listening http=PORT" within ${timeoutMs / 1000} s\nstdout:\n${stdout}\nstderr:\n${stderrTail()}`)), timeoutMs);
    const onData = () => {
      const m = /listening http=(\d+)/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve({ name, pid: child.pid, child, port: Number(m[1]), url: `http://${host}:${m[1]}${urlPath}`, stderrTail });
    };
    child.stdout.on('data', onData);
    child.once('error', (err) => { clearTimeout(timer); reject(new Error(`${name}: could not start ${bin}: ${err.message}`)); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${signal ?? `code ${code}`}) before it was listening\nstdout:\n${stdout}\nstderr:\n${stderrTail()}`));
    });
  });
}

/**
 * Runs wrk once (-t1 --latency; under taskset when `cpus` is given, tracked by `group`) and
 * parses it; `observe` is called mid-run with wrk's pid; `extraArgs` go before the URL (-s FILE).
 */
export function runWrk(group, { url, connections, seconds, cpus, extraArgs = [], observe }) {
  const [file, argv] = taskset(cpus, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...extraArgs, url]);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { err += c; });
  child.once('error', () => {});
  const exited = group.track('wrk', child);
  const mid = setTimeout(() => { try { observe?.(child.pid); } catch {} }, Math.min(seconds * 500, 2000));
  const kill = setTimeout(() => { try { child.kill('SIGKILL'); } catch {} }, (seconds + 30) * 1000);
  return new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`could not run ${file}: ${e.message}${file === 'wrk' ? ' (apt-get install wrk)' : ''}`)));
    exited.then(({ code, signal }) => {
      clearTimeout(mid);
      clearTimeout(kill);
      if (code !== 0) return reject(new Error(`${file} ${argv.join(' ')} failed (${signal ?? `code ${code}`}):\n${out}${err}`));
      try { resolve(parseWrk(out)); } catch (e) { reject(e); }
    });
  });
}

/** One request: resolves with { status, text, headers }. */
export async function request(url, { method = 'GET', body, timeoutMs = 30_000 } = {}) {
  const res = await fetch(url, { method, body, headers: body ? { 'content-type': 'application/octet-stream' } : {}, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

/**
 * Calls `call()` until `want` answers in a row are 200 (bounded by maxTries); warns when a 200
 * is not `expect`. Throws naming the target and its log's tail when it never gets there.
 */
export async function warmByHand(target, { call, expect, want = 20, maxTries = 200, what = 'GET' }) {
  let ok = 0;
  let last = '';
  let warned = false;
  for (let i = 0; i < maxTries && ok < want; i++) {
    try {
      const r = await call();
      if (r.status === 200) ok++;
      else { ok = 0; last = `${r.status} ${r.text.slice(0, 200)}`; await sleep(100); }
      if (r.status === 200 && expect !== undefined && r.text !== expect && !warned) {
        warned = true;
        process.stderr.write(`warning: ${target.name} ${target.url} answered ${JSON.stringify(r.text.slice(0, 80))}, not ${JSON.stringify(expect.slice(0, 80))}\n`);
      }
    } catch (e) {
      ok = 0;
      last = e.message;
      await sleep(200);
    }
  }
  if (ok < want) throw new Error(`${target.name}: ${what} ${target.url} did not answer 200 ${want} times in a row in ${maxTries} tries (last: ${last})\n${target.stderrTail?.() ?? ''}`);
}

/** A process's command line and its affinity (Cpus_allowed_list). */
/**
 * Where wrk ran: `seen` collects its affinity and the CPUs it was seen on; `observe(side)` is
 * the callback a wrk run calls with wrk's pid, which also takes `snapshot(side)` of the servers.
 */
export function wrkWatch(snapshot) {
  const seen = { affinity: new Set(), ranOn: new Set() };
  const observe = (side) => (wrkPid) => {
    const st = procStat(wrkPid);
    if (st) { seen.ranOn.add(st.cpu); seen.affinity.add(procDetails(wrkPid).affinity); }
    snapshot(side);
  };
  return { seen, observe };
}

export function procDetails(pid) {
  let cmdline = '';
  let affinity = '?';
  try { cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch {}
  try { affinity = /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'; } catch {}
  return { cmdline, affinity };
}

/** What a process in a gateway's tree is: the root's role, a worker, a sandbox (bwrap), a function under one, a python zygote, or other. */
export function roleOf(p, byPid, rootPid, rootRole) {
  if (p.pid === rootPid) return rootRole;
  const { cmdline } = procDetails(p.pid);
  if (/(^|\/)bwrap( |$)/.test(cmdline.split(' ')[0]) || p.comm === 'bwrap') return 'sandbox (bwrap)';
  if (/\b(cli\.js|cli\/main\.js|faas(\.js)?) worker\b/.test(cmdline)) return 'worker';
  if (/python-zygote\.py\b/.test(cmdline)) return 'zygote (python)';
  for (let q = byPid.get(p.ppid); q; q = byPid.get(q.ppid)) {
    if (q.comm === 'bwrap') return 'function';
  }
  return 'other';
}

/** The order roles are listed in. */
export const ROLE_ORDER = ['bare uWS', 'workerd', 'gateway', 'worker', 'sandbox (bwrap)', 'function', 'zygote (python)', 'other'];

/**
 * Every process seen in the trees measured, keyed by pid/starttime: its role, command line,
 * affinity and the CPUs it was seen on; and CPU per request by role between two snapshots.
 */
export class Placement {
  /** pid/starttime → { pid, startTime, role, comm, cmdline, affinity, ranOn: Set, side } */
  seen = new Map();

  /** Snapshots a tree (processTree), recording each process; returns the snapshot. `side` labels the entries. */
  observe(rootPid, rootRole, side = rootRole) {
    const tree = processTree(rootPid);
    const byPid = new Map(tree.map((p) => [p.pid, p]));
    for (const p of tree) {
      const key = `${p.pid}/${p.startTime}`;
      let e = this.seen.get(key);
      if (!e) {
        const d = procDetails(p.pid);
        e = { pid: p.pid, startTime: p.startTime, role: roleOf(p, byPid, rootPid, rootRole), comm: p.comm, cmdline: d.cmdline, affinity: d.affinity, ranOn: new Set(), side };
        this.seen.set(key, e);
      }
      e.ranOn.add(p.cpu);
    }
    return tree;
  }

  /** CPU µs per request by role between two snapshots of a tree (1/CLK_TCK resolution). */
  cpuPerRequest(before, after, requests, rootPid, rootRole) {
    const was = new Map(before.map((p) => [`${p.pid}/${p.startTime}`, p.ticks]));
    const byPid = new Map(after.map((p) => [p.pid, p]));
    const roles = {};
    for (const p of after) {
      const role = this.seen.get(`${p.pid}/${p.startTime}`)?.role ?? roleOf(p, byPid, rootPid, rootRole);
      const dt = p.ticks - (was.get(`${p.pid}/${p.startTime}`) ?? 0);
      roles[role] = (roles[role] ?? 0) + (dt * 1e6) / clkTck / Math.max(1, requests);
    }
    return roles;
  }

  values() { return this.seen.values(); }

  /** Markdown bullets: each role (per side) with its pids, affinity, the CPUs it was seen on and a command line. */
  lines(label = (e) => e.role) {
    const cpus = (set) => [...set].sort((a, b) => a - b).join(',') || '?';
    const groups = new Map();
    for (const p of this.seen.values()) {
      const k = `${label(p)}|${p.affinity}`;
      if (!groups.has(k)) groups.set(k, { label: label(p), role: p.role, affinity: p.affinity, pids: [], ranOn: new Set(), sample: p.cmdline });
      const e = groups.get(k);
      e.pids.push(p.pid);
      for (const c of p.ranOn) e.ranOn.add(c);
    }
    return [...groups.values()].sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role)).map((e) => {
      const cmd = e.sample.length > 110 ? `${e.sample.slice(0, 110)}…` : e.sample;
      return `- ${e.label} (${e.pids.length > 1 ? `${e.pids.length} processes, pids ${e.pids.slice(0, 8).join(',')}${e.pids.length > 8 ? ',…' : ''}` : `pid ${e.pids[0]}`}): ` +
        `affinity ${e.affinity}, seen on ${cpus(e.ranOn)} — \`${cmd}\``;
    });
  }
}

/** The newest modification time of the files under dir ending in ext (ms; 0 when none). */
export function newestMtime(dir, ext, depth = 0) {
  let newest = 0;
  if (depth > 8) return newest;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext, depth + 1));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Throws when the build is missing, warns when src/ is newer than it. */
export function checkBuild(root, hint = '') {
  const cli = path.join(root, 'dist/src/cli/main.js');
  if (!fs.existsSync(cli)) throw new Error(`${path.relative(root, cli)} is missing: run npm run build first${hint}`);
  if (newestMtime(path.join(root, 'src'), '.ts') > fs.statSync(cli).mtimeMs + 1000) {
    process.stderr.write('warning: src/ has changes newer than dist/src/cli/main.js; dist/ may be stale (npm run build)\n');
  }
}

/** The medians of one server's wrk samples at one connection count (rps, p50, p99, CPU µs per request by role) and the rps range. */
export function summarize(samples) {
  const roles = [...new Set(samples.flatMap((s) => Object.keys(s.cpuUsPerRequest ?? {})))];
  return {
    rps: median(samples.map((s) => s.rps)), p50: median(samples.map((s) => s.p50)), p99: median(samples.map((s) => s.p99)),
    rpsMin: Math.min(...samples.map((s) => s.rps)), rpsMax: Math.max(...samples.map((s) => s.rps)),
    cpuUsPerRequest: Object.fromEntries(roles.map((r) => [r, median(samples.map((s) => s.cpuUsPerRequest[r] ?? 0))])),
  };
}

/**
 * The measuring loop: `rounds` rounds, each running every connection count against every side,
 * the sides' order reversed every other round (so that no side always follows the same one).
 * `measure(side, c)` returns one wrk sample; each gets its round and is reported on stderr.
 * Returns samples[key(side)][c] = [sample, …].
 */
export async function runRounds({ sides, connections, rounds, key = (s) => s, label = key, prefix = '', measure }) {
  const samples = Object.fromEntries(sides.map((s) => [key(s), Object.fromEntries(connections.map((c) => [c, []]))]));
  const total = rounds * connections.length * sides.length;
  const width = Math.max(8, ...sides.map((s) => label(s).length));
  let done = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const c of connections) {
      for (const side of order) {
        const r = await measure(side, c);
        r.round = round + 1;
        samples[key(side)][c].push(r);
        done++;
        const errs = r.non2xx + Object.values(r.socketErrors).reduce((a, b) => a + b, 0);
        process.stderr.write(`[${prefix}${done}/${total}] round ${round + 1} ${label(side).padEnd(width)} c=${String(c).padEnd(4)} ` +
          `${r.rps.toFixed(0).padStart(7)} rps  p50 ${fmtUs(r.p50).padStart(6)} µs  p99 ${fmtUs(r.p99).padStart(6)} µs${errs ? `  ERRORS ${errs}` : ''}\n`);
      }
    }
  }
  return samples;
}

/** µs as the tables print them. */
export function fmtUs(us) {
  if (!Number.isFinite(us)) return '–';
  return us >= 100 ? us.toFixed(0) : us.toFixed(1);
}
