// The gateway's builds: dependencies installed and Go programs compiled for the routes that need
// them (plan.ts decides which), in a content-addressed cache under --deps-dir (RUN_DIR/deps by
// default), one build at a time in the background.
//
//   - The route store asks prepare() for each new or changed row. A plan whose entry is in the
//     cache is ready at once (a restart finds it again: "build cache hit" in the log); otherwise
//     it is queued, the row is 'building', and the store keeps serving the route's previous
//     version. When the build ends, onSettled() has the store look again.
//   - A build writes into RUN_DIR/deps/.tmp/…, and only a complete one is renamed into place, so
//     a crash or a failure never leaves a half-installed entry. A failure is remembered for its
//     inputs and is the row's error until the row is written again (a new deploy retries).
//   - The cache is bounded (--deps-max-mb): past it, entries no route uses are removed, least
//     recently used first, then the tools' own download caches.
import fs from 'node:fs';
import path from 'node:path';
import type { Scraped } from '../observe/metrics.js';
import type { Log } from '../protocol/log.js';
import type { BuiltArtifact, FunctionConfig } from '../protocol/messages.js';
import { findGo } from './go.js';
import { planBuild, type BuildSettings, type Plan, type Planned } from './plan.js';
import { builderDir, builderUser } from './tool.js';

export type Prepared = { readonly config: FunctionConfig } | { readonly building: string } | { readonly error: string };

/** What GET /routes shows of a served route's build. */
export interface BuildReport {
  readonly kind: BuiltArtifact['kind'];
  readonly what: string;
  readonly summary: string;
  /** How long the build took, ms. */
  readonly ms: number;
  /** Unix ms when it finished. */
  readonly builtAt: number;
  readonly bytes: number;
}

/** What the route store needs of the builds. */
export interface BuildStep {
  /** The config to serve (with `built` set), or that it is building, or why it cannot be built. `fresh`: the row was just written. */
  prepare(key: string, config: FunctionConfig, fresh: boolean): Prepared;
  report(built: BuiltArtifact): BuildReport | undefined;
}

export interface BuildsOptions {
  /** The cache root (--deps-dir). */
  readonly dir: string;
  /** Past this many bytes, unused entries are evicted (--deps-max-mb). */
  readonly maxBytes: number;
  readonly settings: BuildSettings;
  readonly log: Log;
  /** A build ended, ready or failed: the route store looks at its waiting rows again. */
  readonly onSettled: () => void;
}

/** The record a finished entry holds beside its artifact. */
const RECORD = 'built.json';
const TMP = '.tmp';
const TOOL_CACHES = '.cache';

interface Job {
  readonly plan: Plan;
  readonly key: string;
  readonly queuedAt: number;
  startedAt?: number;
}

export class Builds implements BuildStep {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: string[] = [];
  private readonly failed = new Map<string, string>();
  private readonly reports = new Map<string, BuildReport>();
  /** Plans by config object: a row waiting in the store is planned (its files read and hashed) once. */
  private readonly plans = new WeakMap<FunctionConfig, Planned>();
  private running = false;
  private seq = 0;
  /** Bytes of the tools' caches: they change only while a build runs, so they are measured after each. */
  private cacheBytes: number;
  private readonly outcomes = { ready: 0, failed: 0 };

  constructor(private readonly opts: BuildsOptions) {
    builderDir(path.join(opts.dir, TOOL_CACHES));
    // Whatever a killed gateway left half-built.
    fs.rmSync(path.join(opts.dir, TMP), { recursive: true, force: true });
    builderDir(path.join(opts.dir, TMP));
    this.cacheBytes = sizeOf(path.join(opts.dir, TOOL_CACHES));
    const go = findGo();
    opts.log({ msg: 'builds', dir: opts.dir, maxMb: Math.round(opts.maxBytes / 1048576), runAs: builderUser(), go: go ?? null });
    if (!go) opts.log({ level: 'warn', msg: 'no Go on this host: go functions get a row error until it is installed (Debian: apt-get install golang-go), unless deployed compiled' });
  }

  prepare(key: string, config: FunctionConfig, fresh: boolean): Prepared {
    let planned = this.plans.get(config);
    if (planned === undefined && !this.plans.has(config)) {
      planned = planBuild(config, this.opts.settings);
      this.plans.set(config, planned);
    }
    if (planned === undefined) return { config };
    if ('problem' in planned) return { error: planned.problem };
    const name = `${planned.kind}-${planned.hash}`;
    const dir = path.join(this.opts.dir, name);
    const report = this.readReport(name);
    if (report) {
      touch(path.join(dir, RECORD));
      if (!this.reports.has(name)) {
        this.reports.set(name, report);
        this.opts.log({ msg: 'build cache hit', key, kind: planned.kind, dir, builtAt: new Date(report.builtAt).toISOString(), summary: report.summary });
      }
      return { config: Object.freeze({ ...config, built: Object.freeze({ kind: planned.kind, dir }) }) };
    }
    if (fresh) this.failed.delete(name);
    const failure = this.failed.get(name);
    if (failure !== undefined) return { error: failure };
    const job = this.jobs.get(name);
    if (job) return { building: `${job.plan.what}: ${job.startedAt ? `running for ${seconds(job.startedAt)}` : `queued ${seconds(job.queuedAt)} ago`}` };
    this.jobs.set(name, { plan: planned, key, queuedAt: Date.now() });
    this.queue.push(name);
    void this.next();
    return { building: `${planned.what}: queued` };
  }

  report(built: BuiltArtifact): BuildReport | undefined {
    return this.reports.get(path.basename(built.dir));
  }

  /** Entries, their bytes and builds waiting, for /metrics. */
  stats(): { entries: number; bytes: number; building: number } {
    const names = this.entryNames();
    return { entries: names.length, bytes: names.reduce((sum, n) => sum + (this.readReport(n)?.bytes ?? 0), 0), building: this.jobs.size };
  }

  metrics(): Scraped[] {
    const gauge = (name: string, help: string, value: () => number): Scraped => ({ name, help, type: 'gauge', read: () => [[{}, value()]] });
    return [
      gauge('faas_builds_pending', 'Builds (npm ci, pip install, go build) queued or running.', () => this.jobs.size),
      gauge('faas_build_cache_bytes', 'Bytes in the build cache (--deps-dir): finished entries and the tools\' own caches.', () => this.stats().bytes + this.cacheBytes),
      { name: 'faas_builds_total', help: 'Builds finished since start, by outcome.', type: 'counter', labels: ['outcome'],
        read: () => [[{ outcome: 'ready' }, this.outcomes.ready], [{ outcome: 'failed' }, this.outcomes.failed]] },
    ];
  }

  /**
   * Keeps the cache under its bound: removes entries that no served or waiting route uses
   * (`inUse`: their dirs), least recently used first, then the tools' download caches.
   */
  evict(inUse: ReadonlySet<string>): void {
    const entries = this.entryNames().map((name) => ({
      name, dir: path.join(this.opts.dir, name), bytes: this.readReport(name)?.bytes ?? 0, used: mtimeOf(path.join(this.opts.dir, name, RECORD)),
    }));
    const caches = path.join(this.opts.dir, TOOL_CACHES);
    let total = entries.reduce((sum, e) => sum + e.bytes, 0) + this.cacheBytes;
    if (total <= this.opts.maxBytes) return;
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.opts.maxBytes) return;
      if (inUse.has(e.dir) || this.jobs.has(e.name)) continue;
      fs.rmSync(e.dir, { recursive: true, force: true });
      this.reports.delete(e.name);
      total -= e.bytes;
      this.opts.log({ msg: 'build evicted', dir: e.dir, bytes: e.bytes, why: `the cache is over --deps-max-mb ${Math.round(this.opts.maxBytes / 1048576)}` });
    }
    if (total > this.opts.maxBytes && this.jobs.size === 0) {
      fs.rmSync(caches, { recursive: true, force: true });
      builderDir(caches);
      this.opts.log({ level: 'warn', msg: 'build caches cleared', bytes: this.cacheBytes, why: 'the entries routes use fill --deps-max-mb' });
      this.cacheBytes = 0;
    }
  }

  private async next(): Promise<void> {
    if (this.running) return;
    const name = this.queue.shift();
    if (name === undefined) return;
    const job = this.jobs.get(name)!;
    this.running = true;
    job.startedAt = Date.now();
    const tmp = path.join(this.opts.dir, TMP, `${name}.${process.pid}.${++this.seq}`);
    this.opts.log({ msg: 'build started', key: job.key, kind: job.plan.kind, what: job.plan.what });
    try {
      builderDir(tmp);
      const summary = await job.plan.build(tmp, path.join(this.opts.dir, TOOL_CACHES));
      const report: BuildReport = {
        kind: job.plan.kind, what: job.plan.what, summary, ms: Date.now() - job.startedAt, builtAt: Date.now(), bytes: sizeOf(tmp),
      };
      fs.writeFileSync(path.join(tmp, RECORD), `${JSON.stringify(report)}\n`);
      const dir = path.join(this.opts.dir, name);
      if (fs.existsSync(path.join(dir, RECORD))) fs.rmSync(tmp, { recursive: true, force: true }); // another gateway on this folder finished first
      else {
        fs.rmSync(dir, { recursive: true, force: true }); // not an entry: no record (left by hand)
        fs.renameSync(tmp, dir);
      }
      fs.chmodSync(dir, 0o755);
      this.reports.set(name, report);
      this.outcomes.ready++;
      this.opts.log({ msg: 'build ready', key: job.key, kind: job.plan.kind, summary, ms: report.ms, bytes: report.bytes, dir });
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const message = (err as Error).message;
      this.failed.set(name, message);
      this.outcomes.failed++;
      this.opts.log({ level: 'error', msg: 'build failed', key: job.key, kind: job.plan.kind, error: message });
    } finally {
      this.jobs.delete(name);
      this.running = false;
      this.cacheBytes = sizeOf(path.join(this.opts.dir, TOOL_CACHES));
    }
    this.opts.onSettled();
    void this.next();
  }

  private entryNames(): string[] {
    try {
      return fs.readdirSync(this.opts.dir).filter((n) => !n.startsWith('.') && fs.existsSync(path.join(this.opts.dir, n, RECORD)));
    } catch {
      return [];
    }
  }

  private readReport(name: string): BuildReport | undefined {
    const known = this.reports.get(name);
    if (known) return fs.existsSync(path.join(this.opts.dir, name, RECORD)) ? known : undefined;
    try {
      return JSON.parse(fs.readFileSync(path.join(this.opts.dir, name, RECORD), 'utf8')) as BuildReport;
    } catch {
      return undefined;
    }
  }
}

const seconds = (since: number): string => `${Math.round((Date.now() - since) / 1000)} s`;

function touch(file: string): void {
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
  } catch {
    // evicted meanwhile: the next prepare builds it again
  }
}

function mtimeOf(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** Bytes of a tree (what `du -b` says, without following links). */
export function sizeOf(root: string): number {
  let total = 0;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    total += st.size;
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) walk(path.join(p, name));
  };
  walk(root);
  return total;
}
