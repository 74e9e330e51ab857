// Hosts on one machine: one network namespace per host, each joined to a bridge by a veth pair,
// the bridge holding the subnet's .1 so the process that built them (the test, the bench) reaches
// every host by its address. Used by test/integration/cluster.test.ts and scripts/cluster-bench.mjs.
//
// Processes run in a host through `nsenter --net` (see Hosts.argv for why not `ip netns exec`).
//
//   root ns: bridge fcbr<PID> 10.77.N.1/24
//      ├── veth fc<PID>v0 ── netns faasc<PID>-gw1: eth0 10.77.N.11/24, lo
//      ├── veth fc<PID>v1 ── netns faasc<PID>-gw2: eth0 10.77.N.12/24, lo
//      └── …
//
// Names carry the pid of the process that made them (interface names have 15 characters at most):
// a run that crashed leaves things whose pid is dead, and removeStale() deletes them (killing what
// still runs in its namespaces) before the next run builds its own. N is the first 10.77.N.0/24
// no interface of this machine has an address in.
//
// Bridged IPv4 goes through iptables' FORWARD chain when br_netfilter is loaded
// (/proc/sys/net/bridge/bridge-nf-call-iptables = 1); where that chain drops by default (Docker
// sets it so), an ACCEPT rule for the bridge is inserted for the run and deleted at teardown.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, processTree } from './processes.mjs';

const NETNS_PREFIX = 'faasc';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command to completion; throws with its stderr when it fails (unless `allowFail`). */
export function sh(cmd, args, { allowFail = false, input } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 30_000 });
  if (r.error && !allowFail) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The first program of `names` that is not on PATH (or at its absolute path), or undefined. */
export function missingProgram(names) {
  for (const name of names) {
    if (name.startsWith('/')) {
      if (!fs.existsSync(name)) return name;
    } else if (sh('sh', ['-c', `command -v ${name}`], { allowFail: true }).code !== 0) return name;
  }
  return undefined;
}

/**
 * Whether this process may build hosts here: undefined when it may, else the reason (not root,
 * a program missing, `ip netns add` refused — a container without CAP_SYS_ADMIN, say).
 */
export function netnsUnavailable() {
  if (process.getuid?.() !== 0) return `needs root to create network namespaces (uid ${process.getuid?.()})`;
  const missing = missingProgram(['ip', 'nsenter', 'setpriv']);
  if (missing) return `${missing} is not installed`;
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  const r = sh('ip', ['netns', 'add', probe], { allowFail: true });
  if (r.code !== 0) return `\`ip netns add\` is not allowed here: ${r.stderr.trim() || r.stdout.trim()}`;
  sh('ip', ['netns', 'del', probe], { allowFail: true });
  const veth = sh('ip', ['link', 'add', `fc${process.pid}p0`, 'type', 'veth', 'peer', 'name', `fc${process.pid}p1`], { allowFail: true });
  if (veth.code !== 0) return `veth pairs cannot be created here: ${veth.stderr.trim()}`;
  sh('ip', ['link', 'del', `fc${process.pid}p0`], { allowFail: true });
  return undefined;
}

const pidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

/** Namespaces, interfaces, firewall rules and temp dirs left by runs whose process is gone. */
export function removeStale() {
  const removed = [];
  for (const line of sh('ip', ['netns', 'list'], { allowFail: true }).stdout.split('\n')) {
    const name = line.split(' ')[0];
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(name ?? '');
    if (!m || pidAlive(Number(m[1]))) continue;
    killNamespace(name);
    sh('ip', ['netns', 'del', name], { allowFail: true });
    removed.push(`netns ${name}`);
  }
  for (const line of sh('ip', ['-o', 'link', 'show'], { allowFail: true }).stdout.split('\n')) {
    const m = /^\d+:\s+(fc(?:br)?(\d+)[^:@\s]*)/.exec(line);
    if (!m || pidAlive(Number(m[2]))) continue;
    sh('ip', ['link', 'del', m[1]], { allowFail: true });
    removed.push(`link ${m[1]}`);
  }
  for (const rule of sh('iptables', ['-S', 'FORWARD'], { allowFail: true }).stdout.split('\n')) {
    const m = /^-A (FORWARD .*--comment "?faasc(\d+)"?.*)$/.exec(rule);
    if (!m || pidAlive(Number(m[2]))) continue;
    sh('sh', ['-c', `iptables -D ${m[1]}`], { allowFail: true });
    removed.push('iptables rule');
  }
  for (const dir of fs.readdirSync(os.tmpdir())) {
    const m = /^faas-cluster-(\d+)-/.exec(dir);
    if (!m || pidAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(os.tmpdir(), dir), { recursive: true, force: true });
    removed.push(`dir ${dir}`);
  }
  return removed;
}

/** SIGKILLs every process in a namespace (and what they started, wherever it is). */
function killNamespace(netns) {
  const pids = sh('ip', ['netns', 'pids', netns], { allowFail: true }).stdout.split('\n').filter(Boolean).map(Number);
  const all = pids.flatMap((pid) => processTree(pid));
  for (const p of all) try { process.kill(p.pid, 'SIGKILL'); } catch {}
}

function freeSubnet() {
  const used = new Set();
  for (const m of sh('ip', ['-o', '-4', 'addr', 'show']).stdout.matchAll(/inet 10\.77\.(\d+)\./g)) used.add(Number(m[1]));
  for (let n = 0; n < 256; n++) if (!used.has(n)) return `10.77.${n}`;
  throw new Error('no free 10.77.N.0/24 subnet on this machine');
}

/**
 * The hosts of one run. `Hosts.create(['gw1', 'pg', …])` builds them; `teardown()` stops every
 * process started with `spawn` (and its descendants), deletes the namespaces, the bridge, the
 * firewall rule and the run's temp dir. Addresses are .11, .12, … in the order given.
 */
export class Hosts {
  /** name → { netns, veth, addr } */
  hosts = new Map();
  /** Processes started in the hosts: { name, host, child, exited, tree } */
  procs = [];
  #rule;
  #torn = false;

  constructor(bridge, subnet, dir) {
    this.bridge = bridge;
    this.subnet = subnet;
    /** The run's temp dir (mode 755: PostgreSQL's user and the sandboxes' must traverse it). */
    this.dir = dir;
    /** The address of the root side, where the test's own connections come from. */
    this.rootAddr = `${subnet}.1`;
  }

  static create(names) {
    const pid = process.pid;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `faas-cluster-${pid}-`));
    fs.chmodSync(dir, 0o755);
    const hosts = new Hosts(`fcbr${pid}`, freeSubnet(), dir);
    try {
      hosts.#build(names);
    } catch (err) {
      hosts.teardownSync();
      throw err;
    }
    return hosts;
  }

  #build(names) {
    const ip = (...args) => sh('ip', args);
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.rootAddr}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
    this.#allowBridgedTraffic();
    names.forEach((name, i) => {
      const netns = `${NETNS_PREFIX}${process.pid}-${name}`;
      const veth = `fc${process.pid}v${i}`;
      const addr = `${this.subnet}.${11 + i}`;
      ip('netns', 'add', netns);
      this.hosts.set(name, { netns, veth, addr });
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      ip('link', 'set', veth, 'master', this.bridge, 'up');
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      ip('-n', netns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
    });
  }

  /** With br_netfilter, bridged frames meet iptables FORWARD: make sure ours pass. */
  #allowBridgedTraffic() {
    let nf = '0';
    try { nf = fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim(); } catch { /* no br_netfilter */ }
    if (nf !== '1') return;
    const rules = sh('iptables', ['-S', 'FORWARD'], { allowFail: true });
    if (rules.code !== 0) return; // no iptables: nothing filters (nft-only hosts: see README)
    const lines = rules.stdout.trim().split('\n');
    if (lines.length === 1 && lines[0] === '-P FORWARD ACCEPT') return;
    this.#rule = ['FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', `faasc${process.pid}`];
    sh('iptables', ['-I', ...this.#rule]);
  }

  host(name) {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} (hosts: ${[...this.hosts.keys()].join(', ')})`);
    return h;
  }

  addr(name) {
    return this.host(name).addr;
  }

  /**
   * The argv that runs a command in a host, as `asUser` when given. nsenter, not `ip netns exec`:
   * that one also mounts a fresh /sys, which hides the cgroup hierarchies mounted under
   * /sys/fs/cgroup, and a gateway there could not enforce memory_mb or the process limit. setpriv,
   * not runuser: runuser stays the parent of the command, and a signal for it (PostgreSQL's fast
   * shutdown, SIGINT) would not reach the command; both nsenter and setpriv exec.
   */
  argv(name, cmd, args, asUser) {
    const inner = asUser ? ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--init-groups', '--', cmd, ...args] : [cmd, ...args];
    return ['nsenter', [`--net=/run/netns/${this.host(name).netns}`, ...inner]];
  }

  /** Runs a short command in a host to completion (sync). */
  exec(name, cmd, args, opts = {}) {
    const [ip, argv] = this.argv(name, cmd, args, opts.user);
    return sh(ip, argv, opts);
  }

  /**
   * Starts a long-running process in a host, its stdout and stderr appended to `log` (a file: a
   * pipe nobody reads fast enough would block it). nsenter execs the command, so the child's pid is
   * the command's. Returns { child, exited, log }.
   */
  spawn(name, cmd, args, { log, env, user, label = `${name}:${path.basename(cmd)}` } = {}) {
    const logPath = log ?? path.join(this.dir, `${label.replace(/[^\w.-]/g, '_')}.log`);
    const fd = fs.openSync(logPath, 'a');
    const [ip, argv] = this.argv(name, cmd, args, user);
    const child = spawn(ip, argv, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    fs.closeSync(fd);
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    const proc = { name: label, host: name, child, exited, log: logPath, tree: [] };
    this.procs.push(proc);
    return proc;
  }

  /** Remembers the descendants of every process (a killed gateway's workers are then still known). */
  snapshotTrees() {
    for (const p of this.procs) {
      if (p.child.pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) continue;
      for (const d of processTree(p.child.pid)) if (!p.tree.some((t) => t.pid === d.pid)) p.tree.push(d);
    }
  }

  /** The link goes down at the bridge end: the host keeps its address, and nothing gets in or out. */
  cutLink(name) {
    sh('ip', ['link', 'set', this.host(name).veth, 'down']);
  }

  restoreLink(name) {
    sh('ip', ['link', 'set', this.host(name).veth, 'up']);
  }

  /** Stops one process: `signal` first, SIGKILL after `graceMs`. */
  async stop(proc, { signal = 'SIGTERM', graceMs = 8000 } = {}) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited;
    this.snapshotTrees();
    try { proc.child.kill(signal); } catch {}
    const done = await Promise.race([proc.exited, sleep(graceMs).then(() => undefined)]);
    if (done) return done;
    try { proc.child.kill('SIGKILL'); } catch {}
    return proc.exited;
  }

  /** Everything down and gone; safe to call twice and after a failed create. */
  async teardown() {
    if (this.#torn) return;
    this.snapshotTrees();
    await Promise.all(this.procs.map((p) => this.stop(p, { graceMs: 5000 })));
    // Descendants that outlived their parents (workers of a SIGKILLed gateway, their sandboxes).
    for (let i = 0; i < 30 && this.#strays().length > 0; i++) await sleep(100);
    this.teardownSync();
  }

  #strays() {
    return this.procs.flatMap((p) => p.tree).filter((d) => alive(d.pid, d.startTime));
  }

  /** The synchronous part of teardown (also the process 'exit' hook's). */
  teardownSync() {
    if (this.#torn) return;
    this.#torn = true;
    for (const p of this.procs) try { p.child.kill('SIGKILL'); } catch {}
    for (const d of this.#strays()) try { process.kill(d.pid, 'SIGKILL'); } catch {}
    for (const { netns, veth } of this.hosts.values()) {
      killNamespace(netns);
      // The pair goes with its namespace only once nothing holds that (a socket in TIME_WAIT does).
      sh('ip', ['link', 'del', veth], { allowFail: true });
      sh('ip', ['netns', 'del', netns], { allowFail: true });
    }
    sh('ip', ['link', 'del', this.bridge], { allowFail: true });
    if (this.#rule) sh('iptables', ['-D', ...this.#rule], { allowFail: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
