// The processes the scripts start: what they read from /proc about them (one process's stat
// line, whether it is still the same live process, a whole tree: a gateway, its workers, their
// sandboxes), and ChildGroup, which tracks them and stops every one of them however the script ends.
import fs from 'node:fs';
import { parseFlagsOrExit } from './bench-helpers.mjs';

/** /proc/PID/stat, the fields the scripts use; undefined once the process is gone. */
export function procStat(pid) {
  let s;
  try { s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const f = s.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return { pid, comm, state: f[0], ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), startTime: Number(f[19]), cpu: Number(f[36]) };
}

/** Still running, and (with startTime) still the process first seen under that pid. */
export function alive(pid, startTime) {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && (startTime === undefined || st.startTime === startTime);
}

export function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch { return ''; }
}

/** The process and all its descendants, breadth first, as procStat gives them. */
export function processTree(rootPid, max = 100_000) {
  const kids = new Map();
  let first;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (!st) continue;
    if (st.pid === rootPid) first = st;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(st);
  }
  const out = [];
  if (!first) return out;
  const queue = [first];
  while (queue.length && out.length < max) {
    const p = queue.shift();
    out.push(p);
    queue.push(...(kids.get(p.pid) ?? []));
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The processes a script starts, and its way out. On errors, on SIGINT/SIGTERM/SIGHUP (a second
 * signal stops waiting) and at the end, every tracked process gets SIGTERM (wrk: SIGKILL), then
 * SIGKILL after `graceMs`, then any descendant that outlived them (a gateway's workers and
 * sandboxes) is killed by pid; `cleanup` runs last (temp dirs). If the event loop is gone
 * (process.exit from anywhere), the exit hook still SIGKILLs what is tracked.
 */
export class ChildGroup {
  /** pid → { name, child, exited, startTime } of the processes still running. */
  children = new Map();
  /** The exit code of the signal being handled, once one came. */
  signalled;
  #stopping;

  /**
   * @param script  the name messages start with
   * @param opts.graceMs  how long SIGTERM has before SIGKILL
   * @param opts.cleanup  run after everything is stopped, and from the exit hook
   * @param opts.seen     more processes to treat as descendants (seen at earlier snapshots)
   */
  constructor(script, { graceMs, cleanup = () => {}, seen = () => [] }) {
    this.script = script;
    this.graceMs = graceMs;
    this.cleanup = cleanup;
    this.seen = seen;
    process.on('exit', () => {
      for (const [pid] of this.children) try { process.kill(pid, 'SIGKILL'); } catch {}
      this.cleanup();
    });
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
      process.on(sig, () => {
        if (this.signalled) process.exit(code); // a second signal: stop waiting (the exit hook SIGKILLs)
        this.signalled = code;
        process.stderr.write(`\n${script}: ${sig}, stopping every process it started\n`);
        this.stopAll().finally(() => process.exit(code));
      });
    }
  }

  /** Tracks a spawned child until it exits; returns a promise of how it ended ({ code, signal } or { error }). */
  track(name, child) {
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => { if (child.pid === undefined) resolve({ code: null, signal: null, error }); });
    });
    if (child.pid !== undefined) {
      this.children.set(child.pid, { name, child, exited, startTime: procStat(child.pid)?.startTime });
      exited.then(() => this.children.delete(child.pid));
    }
    return exited;
  }

  /** Stops everything (once; later calls get the same promise), then runs cleanup. */
  stopAll() {
    this.#stopping ??= (async () => {
      await this.#stop([...this.children.entries()], this.seen());
      this.cleanup();
    })();
    return this.#stopping;
  }

  /**
   * Stops the tracked processes with these pids and their descendants (and any of `seen` that
   * are still alive), as stopAll does, but leaves the rest running and the group usable.
   */
  async stop(pids, seen = []) {
    await this.#stop([...this.children.entries()].filter(([pid]) => pids.includes(pid)), seen);
  }

  async #stop(entries, seen) {
    // Every descendant seen now or earlier (a worker whose gateway died is no longer in its tree).
    const descendants = entries.flatMap(([pid]) => processTree(pid).filter((p) => p.pid !== pid));
    for (const p of seen) {
      if (!this.children.has(p.pid) && !descendants.some((d) => d.pid === p.pid)) descendants.push(p);
    }
    for (const [, e] of entries) try { e.child.kill(e.name === 'wrk' ? 'SIGKILL' : 'SIGTERM'); } catch {}
    await Promise.race([Promise.all(entries.map(([, e]) => e.exited)), sleep(this.graceMs)]);
    for (const [pid, e] of entries) {
      if (!this.children.has(pid)) continue;
      process.stderr.write(`${this.script}: ${e.name} (pid ${pid}) ignored SIGTERM for ${this.graceMs / 1000} s; SIGKILL\n`);
      try { e.child.kill('SIGKILL'); } catch {}
    }
    await Promise.race([Promise.all(entries.map(([, e]) => e.exited)), sleep(2000)]);
    // A gateway stops its workers itself; give them a moment, then kill stragglers by pid.
    for (let i = 0; i < 20 && descendants.some((d) => alive(d.pid, d.startTime)); i++) await sleep(100);
    for (const d of descendants) {
      if (!alive(d.pid, d.startTime)) continue;
      process.stderr.write(`${this.script}: ${d.comm} (pid ${d.pid}) outlived its parent; SIGKILL\n`);
      try { process.kill(d.pid, 'SIGKILL'); } catch {}
    }
  }

  /**
   * Runs a script: `parse` reads its flags (through parseFlagsOrExit: a UsageError prints the
   * message and `usage()`, exit 64), then `main` returns its exit code; everything is stopped
   * before exiting with it (or with the signal's code).
   */
  async run(parse, usage, main) {
    parseFlagsOrExit(this.script, parse, usage);
    let exitCode = 1;
    try {
      exitCode = await main();
    } catch (err) {
      // After a signal, what it started dies under it: that is not worth a message.
      if (this.signalled === undefined) process.stderr.write(`${this.script}: ${err?.message ?? err}\n`);
      exitCode = 1;
    } finally {
      await this.stopAll();
    }
    process.exit(this.signalled ?? exitCode);
  }
}
