// What a worker costs the machine, read from /proc: CPU time, resident memory and disk IO of
// the worker process AND of every function process it runs (the bubblewrap sandboxes it spawned
// and all their descendants). The C original counted the worker alone, so a worker whose
// functions burnt four cores looked idle.
//
// The parsers are pure (text in, numbers out); the file reading is injected (`ProcFs`), so the
// tree walk is unit-tested on a fake /proc and the real one is a thin wrapper around
// readFileSync. Processes come and go between listing /proc and reading their files: a file that
// cannot be read (ENOENT, ESRCH, EACCES) means "not there", never an exception.
//
// Finding descendants: this host has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN is
// off), so one scan of /proc/[0-9]*/stat builds a ppid → children map. Reading every process's
// stat twice a second in every worker would cost N reads × workers × 2/s (PERF.md: ~13 µs a
// read; 1,000 processes × 16 workers ≈ 40 % of a core), so a scan re-reads only new pids and
// last scan's tree members (whose stat we need anyway) and keeps the ppid of everything else.
// That is exact because a ppid changes only by reparenting, which moves a process to one of its
// own ancestors: a process outside the tree never enters it. A full scan still runs when a root
// we have not walked before is asked for, and every FULL_SCAN_EVERY scans to bound the effect of
// pid reuse.
//
// CPU accounting (clock ticks): utime+stime+cutime+cstime of every process in the tree.
// cutime/cstime hold the time of children a process has reaped, so when a function process
// exits and its parent reaps it, its time moves from its own entry into its parent's and the
// total stays continuous (counting only utime+stime for descendants, as first specified, would
// lose a grandchild's whole CPU time the moment the sandbox's init reaps it). Disk IO
// (/proc/PID/io read_bytes + write_bytes) folds into the parent on reaping the same way.
// A process that leaves the tree without being reaped inside it makes the sum drop; LoadScore
// clamps such negative deltas to 0.
import { readFileSync, readdirSync } from 'node:fs';

/** The fields of /proc/PID/stat we use (proc(5); field numbers there are 1-based). */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  readonly utimeTicks: number;
  readonly stimeTicks: number;
  readonly cutimeTicks: number;
  readonly cstimeTicks: number;
  /** Resident set in pages (field 24); absent in truncated text. */
  readonly rssPages?: number;
}

export interface ProcIo {
  readonly readBytes: number;
  readonly writeBytes: number;
}

/**
 * Parses /proc/PID/stat. `comm` is in parentheses and may itself contain spaces, '(' and ')',
 * so the fields after it are found from the LAST ')'. Undefined for text that is not a stat line.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open));
  // After ')': field 3 (state) is rest[0], so field n is rest[n - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/);
  if (rest.length < 15 || !Number.isInteger(pid)) return undefined;
  const num = (field: number): number => Number(rest[field - 3]);
  const stat = {
    pid,
    comm: text.slice(open + 2, close),
    state: rest[0] ?? '',
    ppid: num(4),
    utimeTicks: num(14),
    stimeTicks: num(15),
    cutimeTicks: num(16),
    cstimeTicks: num(17),
  };
  const numbers = [stat.ppid, stat.utimeTicks, stat.stimeTicks, stat.cutimeTicks, stat.cstimeTicks];
  if (!numbers.every(Number.isFinite)) return undefined;
  const rssPages = num(24);
  return Number.isFinite(rssPages) ? { ...stat, rssPages } : stat;
}

/** VmRSS from /proc/PID/status, in kB; undefined when absent (kernel threads, zombies). */
export function parseStatusRssKb(text: string): number | undefined {
  const match = /^VmRSS:\s*(\d+)\s*kB/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** read_bytes and write_bytes (bytes that reached the storage layer) from /proc/PID/io. */
export function parseIo(text: string): ProcIo | undefined {
  const read = /^read_bytes:\s*(\d+)/m.exec(text);
  const write = /^write_bytes:\s*(\d+)/m.exec(text);
  if (!read || !write) return undefined;
  return { readBytes: Number(read[1]), writeBytes: Number(write[1]) };
}

/** Cumulative busy and total time of some CPUs (all processes on them), from /proc/stat. */
export interface CoreTimes {
  readonly busyTicks: number;
  readonly totalTicks: number;
}

/**
 * Sums the `cpuN` lines of /proc/stat for `cpus`: busy = user + nice + system + irq + softirq +
 * steal (guest time is already inside user), total = busy + idle + iowait. Undefined when a
 * CPU's line is missing or malformed.
 */
export function parseCoreTimes(text: string, cpus: readonly number[]): CoreTimes | undefined {
  const want = new Set(cpus);
  let busyTicks = 0;
  let totalTicks = 0;
  let found = 0;
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m || !want.has(Number(m[1]))) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 8 || f.slice(0, 8).some((x) => !Number.isFinite(x) || x < 0)) return undefined;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
    const busy = user + nice + system + irq + softirq + steal;
    busyTicks += busy;
    totalTicks += busy + idle + iowait;
    found++;
  }
  return found === want.size ? { busyTicks, totalTicks } : undefined;
}

/** The reads a ProcReader needs, injected so tests can fake a process tree. */
export interface ProcFs {
  /** The file's text, or undefined when it cannot be read (process gone, permission denied). */
  readFile(path: string): string | undefined;
  /** The pids listed in /proc now. */
  listPids(): number[];
}

const GONE = new Set(['ENOENT', 'ESRCH', 'EACCES', 'EPERM', 'ENOTDIR']);

/** The real /proc. Errors other than "process gone / not ours" still throw. */
export const nodeProcFs: ProcFs = {
  readFile(path) {
    try {
      return readFileSync(path, 'latin1');
    } catch (err) {
      if (GONE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw err;
    }
  },
  listPids() {
    const pids: number[] = [];
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (Number.isInteger(pid) && pid > 0) pids.push(pid);
    }
    return pids;
  },
};

/** What a process tree costs, as cumulative counters (rates come from two samples). */
export interface TreeSample {
  /** utime+stime+cutime+cstime summed over the tree, in clock ticks. */
  readonly cpuTicks: number;
  /** VmRSS summed over the tree. Shared pages count once per process, as in `ps`. */
  readonly rssBytes: number;
  /** read_bytes+write_bytes summed over the processes whose io we may read. */
  readonly ioBytes: number;
  /** How many live processes were counted. */
  readonly processes: number;
}

/** A full /proc scan every this many scans bounds the effect of pid reuse (10 s at 500 ms). */
export const FULL_SCAN_EVERY = 20;

export class ProcReader {
  /** USER_HZ: the unit of the tick fields in stat. 100 on every mainstream Linux. */
  readonly clockTicksPerSecond: number;
  private ppidOf = new Map<number, number>();
  private members = new Set<number>();
  private fresh = new Map<number, ProcStat>();
  private scans = 0;

  constructor(
    private readonly fs: ProcFs = nodeProcFs,
    options: { clockTicksPerSecond?: number } = {},
  ) {
    this.clockTicksPerSecond = options.clockTicksPerSecond ?? 100;
  }

  /** Sums the root, the extra roots and all their live descendants. Never throws for a vanished process. */
  sampleTree(rootPid: number, extraRootPids: readonly number[] = []): TreeSample {
    const roots = [rootPid, ...extraRootPids];
    const tree = new Set([...roots, ...this.descendants(roots)]);
    let cpuTicks = 0;
    let rssBytes = 0;
    let ioBytes = 0;
    let processes = 0;
    for (const pid of tree) {
      const stat = this.fresh.get(pid) ?? this.readStat(pid);
      if (!stat) continue;
      processes++;
      cpuTicks += stat.utimeTicks + stat.stimeTicks + stat.cutimeTicks + stat.cstimeTicks;
      rssBytes += (parseStatusRssKb(this.fs.readFile(`/proc/${pid}/status`) ?? '') ?? 0) * 1024;
      const io = parseIo(this.fs.readFile(`/proc/${pid}/io`) ?? '');
      if (io) ioBytes += io.readBytes + io.writeBytes;
    }
    return { cpuTicks, rssBytes, ioBytes, processes };
  }

  /** Busy and total time of `cpus` so far (everything that ran on them, not only this tree). */
  sampleCores(cpus: readonly number[]): CoreTimes | undefined {
    return parseCoreTimes(this.fs.readFile('/proc/stat') ?? '', cpus);
  }

  /** Every live descendant of `rootPids` (the roots themselves excluded), from one /proc scan. */
  descendants(rootPids: readonly number[]): number[] {
    const children = this.scan(rootPids);
    const found: number[] = [];
    const seen = new Set(rootPids);
    const queue = [...rootPids];
    for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
      for (const child of children.get(pid) ?? []) {
        if (seen.has(child)) continue;
        seen.add(child);
        found.push(child);
        queue.push(child);
      }
    }
    this.members = seen;
    return found;
  }

  /** Lists /proc and returns ppid → children, reading stat only where the cached ppid may be stale. */
  private scan(rootPids: readonly number[]): Map<number, number[]> {
    const full = this.scans++ % FULL_SCAN_EVERY === 0 || rootPids.some((pid) => !this.members.has(pid));
    const ppidOf = new Map<number, number>();
    const children = new Map<number, number[]>();
    this.fresh = new Map();
    for (const pid of this.fs.listPids()) {
      let ppid = full || this.members.has(pid) ? undefined : this.ppidOf.get(pid);
      if (ppid === undefined) {
        const stat = this.readStat(pid);
        if (!stat) continue; // vanished since the listing
        this.fresh.set(pid, stat);
        ppid = stat.ppid;
      }
      ppidOf.set(pid, ppid);
      const siblings = children.get(ppid);
      if (siblings) siblings.push(pid);
      else children.set(ppid, [pid]);
    }
    this.ppidOf = ppidOf;
    return children;
  }

  private readStat(pid: number): ProcStat | undefined {
    const text = this.fs.readFile(`/proc/${pid}/stat`);
    return text === undefined ? undefined : parseStat(text);
  }
}
