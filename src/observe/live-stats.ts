// What is happening now, for people watching: calls per second, p50/p99 and errors per route and
// per worker over the last WINDOW_S seconds, the latest errors, and each worker's load over the
// last minutes. The dashboard (GET / and /events on the admin port) and `faas top` read it;
// Prometheus histograms (metrics.ts) are the long-term record.
//
// A window is WINDOW_S one-second slots, each a call count, an error count and a latency
// histogram with log-spaced buckets (×1.2: a quantile is off by at most 20 %). Recording is a
// log, a few adds and no allocation; a summary merges at most WINDOW_S histograms. A route's
// window also keeps its calls' CPU ms and peak memory (MiB) from their instance's cgroup, where
// workers report them, in histograms of the same buckets: mean and p99 of each.

export const WINDOW_S = 10;
/** Worker samples kept for the dashboard's charts: one a second. */
export const HISTORY_SAMPLES = 300;
const RECENT_ERRORS = 50;

const LOWEST_MS = 0.05;
const GROWTH = 1.2;
const BUCKETS = 80; // 0.05 ms × 1.2^79 ≈ 91 s; slower calls share the last bucket (as MiB: 0.05 MiB to 89 GiB)
const LOG_GROWTH = Math.log(GROWTH);

function bucketOf(ms: number): number {
  if (!(ms > LOWEST_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / LOWEST_MS) / LOG_GROWTH));
}

/** The upper bound of a bucket, in ms: what a quantile falling in it is reported as. */
function boundOf(bucket: number): number {
  return LOWEST_MS * GROWTH ** bucket;
}

interface Slot {
  second: number;
  calls: number;
  errors: number;
  readonly hist: Uint32Array;
  /** A route's window only: its calls' CPU ms and peak MiB. */
  readonly cpu: Figure | undefined;
  readonly mem: Figure | undefined;
}

/** Values of one figure in one second: how many, their sum (for the mean) and a histogram (for p99). */
interface Figure {
  n: number;
  sum: number;
  readonly hist: Uint32Array;
}

function figure(): Figure {
  return { n: 0, sum: 0, hist: new Uint32Array(BUCKETS) };
}

function addTo(f: Figure, value: number): void {
  f.n++;
  f.sum += value;
  f.hist[bucketOf(value)]!++;
}

function clear(f: Figure | undefined): void {
  if (!f || f.n === 0) return;
  f.n = 0;
  f.sum = 0;
  f.hist.fill(0);
}

export interface WindowSummary {
  /** Calls answered in the window. */
  readonly calls: number;
  readonly rps: number;
  /** null when the window holds no call. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Answers with status 5xx, or a gateway error code, in the window. */
  readonly errors: number;
}

/** A route's window: besides the calls, what its instances used during them. */
export interface RouteSummary extends WindowSummary {
  /** CPU ms of the instance during a call (the instance's: a node instance runs many calls at once), mean and p99; null when no call in the window reported it. */
  readonly cpuMeanMs: number | null;
  readonly cpuP99Ms: number | null;
  /** Peak memory of the instance during a call, MiB, mean and p99; null when no call in the window reported it. */
  readonly memPeakMeanMb: number | null;
  readonly memPeakP99Mb: number | null;
}

/** Calls over the last WINDOW_S seconds. */
export class CallWindow {
  private readonly slots: Slot[];
  /** The last second a call was recorded in. */
  lastSecond = -1;

  /** `usage`: also keep the calls' CPU and peak memory (a route's window). */
  constructor(usage = false) {
    this.slots = Array.from({ length: WINDOW_S }, () => ({ second: -1, calls: 0, errors: 0, hist: new Uint32Array(BUCKETS),
      cpu: usage ? figure() : undefined, mem: usage ? figure() : undefined }));
  }

  /** `cpuMs` and `memMb` are kept only by a window made with `usage`, and only when defined. */
  record(second: number, ms: number, error: boolean, cpuMs?: number, memMb?: number): void {
    const slot = this.slots[second % WINDOW_S]!;
    if (slot.second !== second) {
      slot.second = second;
      slot.calls = 0;
      slot.errors = 0;
      slot.hist.fill(0);
      clear(slot.cpu);
      clear(slot.mem);
    }
    slot.calls++;
    if (error) slot.errors++;
    slot.hist[bucketOf(ms)]!++;
    if (cpuMs !== undefined && slot.cpu) addTo(slot.cpu, cpuMs);
    if (memMb !== undefined && slot.mem) addTo(slot.mem, memMb);
    this.lastSecond = second;
  }

  /** summary() with the CPU and memory figures (null for a window made without `usage`). */
  routeSummary(second: number): RouteSummary {
    const cpu = this.merge(second, (s) => s.cpu);
    const mem = this.merge(second, (s) => s.mem);
    return { ...this.summary(second),
      cpuMeanMs: mean(cpu), cpuP99Ms: quantile(cpu.hist, cpu.n, 0.99),
      memPeakMeanMb: mean(mem, 10), memPeakP99Mb: quantile(mem.hist, mem.n, 0.99) };
  }

  private merge(second: number, pick: (slot: Slot) => Figure | undefined): Figure {
    const merged = figure();
    for (const slot of this.slots) {
      const f = pick(slot);
      if (!f || f.n === 0 || slot.second <= second - WINDOW_S || slot.second > second) continue;
      merged.n += f.n;
      merged.sum += f.sum;
      for (let i = 0; i < BUCKETS; i++) merged.hist[i]! += f.hist[i]!;
    }
    return merged;
  }

  /** The window that ends with `second` (which is counted, though it has not ended). */
  summary(second: number): WindowSummary {
    let calls = 0;
    let errors = 0;
    const merged = new Uint32Array(BUCKETS);
    for (const slot of this.slots) {
      if (slot.second <= second - WINDOW_S || slot.second > second) continue;
      calls += slot.calls;
      errors += slot.errors;
      for (let i = 0; i < BUCKETS; i++) merged[i]! += slot.hist[i]!;
    }
    return { calls, rps: calls / WINDOW_S, p50Ms: quantile(merged, calls, 0.5), p99Ms: quantile(merged, calls, 0.99), errors };
  }
}

/** The mean, rounded to 1/`per` (µs for ms, a thousandth; a tenth of a MiB for MiB); null for none. */
function mean(f: Figure, per = 1000): number | null {
  return f.n === 0 ? null : Math.round((f.sum / f.n) * per) / per;
}

function quantile(hist: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += hist[i]!;
    if (seen >= rank) return Math.round(boundOf(i) * 1000) / 1000;
  }
  return boundOf(BUCKETS - 1);
}

export interface RecentError {
  readonly time: number;
  readonly route: string;
  readonly status: number;
  readonly code: string;
  readonly requestId: string;
  readonly worker?: string;
  readonly message: string;
}

export interface WorkerSample {
  readonly t: number;
  readonly score: number | null;
  readonly cpu: number | null;
  readonly mem: number | null;
  readonly io: number | null;
  readonly inFlight: number;
}

/** One answered call, as the server sees it. */
export interface CallRecord {
  /** The route's key; undefined for a request that matched no route. */
  readonly route: string | undefined;
  readonly status: number;
  readonly ms: number;
  readonly worker: string | undefined;
  readonly code: string | undefined;
  readonly message: string | undefined;
  readonly requestId: string;
  /** The instance's CPU µs and peak memory bytes during the call, where its worker reported them. */
  readonly cpuUs?: number | undefined;
  readonly memPeak?: number | undefined;
}

export class LiveStats {
  private readonly routes = new Map<string, CallWindow>();
  private readonly workers = new Map<string, CallWindow>();
  private readonly errors: RecentError[] = [];
  private readonly history = new Map<string, WorkerSample[]>();

  constructor(private readonly now: () => number = Date.now) {}

  record(call: CallRecord): void {
    const now = this.now();
    const second = Math.floor(now / 1000);
    // 4xx is the client's doing (a missing route, a bad key); errors here are the service's.
    const error = call.status >= 500;
    if (call.route !== undefined) {
      window(this.routes, call.route, true).record(second, call.ms, error,
        call.cpuUs === undefined ? undefined : call.cpuUs / 1000, call.memPeak === undefined ? undefined : call.memPeak / 1048576);
    }
    if (call.worker !== undefined) window(this.workers, call.worker).record(second, call.ms, error);
    if (error || (call.code !== undefined && call.route !== undefined)) {
      this.errors.unshift({
        time: now, route: call.route ?? '', status: call.status, code: call.code ?? `HTTP_${call.status}`, requestId: call.requestId,
        ...(call.worker !== undefined && { worker: call.worker }), message: call.message ?? '',
      });
      if (this.errors.length > RECENT_ERRORS) this.errors.pop();
    }
  }

  route(key: string): RouteSummary {
    return (this.routes.get(key) ?? EMPTY).routeSummary(Math.floor(this.now() / 1000));
  }

  worker(id: string): WindowSummary {
    return (this.workers.get(id) ?? EMPTY).summary(Math.floor(this.now() / 1000));
  }

  /** Newest first. */
  recentErrors(): readonly RecentError[] {
    return this.errors;
  }

  /** Adds a sample per worker; workers no longer in `samples` lose their history. */
  sampleWorkers(samples: ReadonlyMap<string, Omit<WorkerSample, 't'>>): void {
    const t = this.now();
    for (const id of this.history.keys()) if (!samples.has(id)) this.history.delete(id);
    for (const [id, sample] of samples) {
      let list = this.history.get(id);
      if (!list) this.history.set(id, (list = []));
      list.push({ t, ...sample });
      if (list.length > HISTORY_SAMPLES) list.shift();
    }
  }

  workerHistory(): Record<string, readonly WorkerSample[]> {
    return Object.fromEntries(this.history);
  }

  /** Drops the windows of routes and workers that have had no call for a whole window and are gone. */
  prune(liveRoutes: (key: string) => boolean, liveWorkers: (id: string) => boolean): void {
    const stale = Math.floor(this.now() / 1000) - WINDOW_S;
    for (const [key, w] of this.routes) if (w.lastSecond < stale && !liveRoutes(key)) this.routes.delete(key);
    for (const [id, w] of this.workers) if (w.lastSecond < stale && !liveWorkers(id)) this.workers.delete(id);
  }
}

const EMPTY = new CallWindow();

function window(map: Map<string, CallWindow>, key: string, usage = false): CallWindow {
  let w = map.get(key);
  if (!w) map.set(key, (w = new CallWindow(usage)));
  return w;
}
