// Asynchronous invocations after their 202 (README "Async invocations"): a queue per route in
// memory (src/async/invocation-queue.ts), mirroring the `invocations` table
// (src/routes/invocation-store.ts), from which at most `async.concurrency` of a route run at
// once, through the same fleet.invoke (and so the same scheduler) as synchronous calls.
//
// Every write goes through one batch per event-loop turn: accepted calls, attempts started,
// attempts finished, callbacks delivered are one transaction, one fsync (the store's header
// says why FULL). A call's 202 is sent once its insert has committed; an attempt is sent to a
// worker once its start (attempts + 1) has committed. So a gateway killed at any point loses no
// accepted call, and runs none twice under the same attempt number: at start, attempts that
// were running are put back in the queue (their attempt counted) or, past `retries`,
// dead-lettered. A function sees the attempt as `x-faas-attempt` (1, 2, …) and the invocation's
// id as `x-faas-invocation-id`: at-least-once, made visible.
//
// Order: oldest first per route, but a retry waits out its backoff while later calls run, so
// there is no order across retries. Retried: a 5xx answer and every gateway error (timeout,
// crash, worker died, …), with backoff_ms × 2^(n-1) before retry n; after `retries` the
// invocation is failed, a dead letter kept (with its last error) until an operator retries it
// (POST /api/v1/invocations/ID/retry) or its ttl_s passes. A call no worker could take
// (NO_WORKER_AVAILABLE, FUNCTION_AT_CAPACITY) never reached a function: it waits and is tried
// again without counting.
import type { Invocation, InvocationResult } from '../calls.js';
import type { AsyncConfig } from '../protocol/messages.js';
import type { Log } from '../protocol/log.js';
import type { Change, InvocationStore, NewInvocation, QueuedRef, Started, StoredResult } from '../routes/invocation-store.js';
import type { Route, RouteTable } from '../routes/route-table.js';
import { ASYNC_DEFAULTS } from '../routes/function-config.js';
import { collect, failed, type Failure, type Outcome } from './answer.js';
import { InvocationQueue } from './invocation-queue.js';
import type { ReadyQueue } from './ready-queue.js';

/** Invocations one route may have waiting; past it, 503 QUEUE_FULL. */
export const MAX_QUEUED_PER_ROUTE = 100_000;
/** The longest wait between two attempts, whatever backoff_ms and the attempt number say. */
const MAX_BACKOFF_MS = 15 * 60_000;
/** The least wait before trying again a call no worker could take (so that no worker is no busy loop). */
const NOT_RUN_WAIT_MS = 250;
/** After a write that failed (disk full, database locked), the next try. */
const WRITE_RETRY_MS = 1000;
const SWEEP_EVERY_MS = 60_000;

export interface DispatcherDeps {
  readonly store: InvocationStore;
  readonly routes: () => RouteTable;
  /** fleet.invoke: rejects with GatewayError. */
  readonly invoke: (inv: Invocation) => Promise<InvocationResult>;
  readonly log: Log;
  /** A finished invocation with a callback URL, once its finish is on disk (callbacks.ts). */
  readonly onFinished?: (id: string) => void;
  readonly now?: () => number;
}

/** One write waiting for the next commit, and what to do once it is committed (or, for an insert, refused). */
interface Pending {
  readonly change: Change;
  readonly done?: () => void;
  readonly refused?: (err: Error) => void;
}

/** Counters for /metrics, by route. */
export interface RouteCounters {
  accepted: number;
  succeeded: number;
  retries: number;
  deadLetters: number;
}

export class Dispatcher {
  /** Ready to start, and waiting out a backoff. */
  private readonly queue = new InvocationQueue();
  private readonly running = new Map<string, number>();
  private pending: Pending[] = [];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private sweeper: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private closed = false;
  readonly counters = new Map<string, RouteCounters>();
  private readonly now: () => number;

  constructor(private readonly deps: DispatcherDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Recovers what a gateway that stopped left (attempts running then: back in the queue, or
   * dead-lettered past their retries), loads the queue, and starts running it.
   */
  start(): void {
    const { store } = this.deps;
    const now = this.now();
    const changes: Change[] = [];
    for (const r of store.interrupted()) {
      const settings = this.settings(this.deps.routes().get(r.route));
      const failure = { code: 'GATEWAY_RESTARTED', message: `attempt ${r.attempts} was cut short: the gateway stopped while it ran` };
      if (r.attempts - r.retryFrom <= settings.retries) {
        changes.push({ kind: 'requeue', id: r.id, nextAt: now, uncount: false, errorCode: failure.code, error: failure.message });
        this.count(r.route).retries++;
      } else {
        changes.push(this.finish(r.id, 'failed', now, settings, undefined, failure, true));
        this.count(r.route).deadLetters++;
      }
    }
    if (changes.length > 0) {
      store.commit(changes, [], now);
      this.deps.log({ level: 'warn', msg: 'async invocations interrupted by a restart', requeued: changes.filter((c) => c.kind === 'requeue').length,
        deadLettered: changes.filter((c) => c.kind === 'finish').length });
    }
    const queued = store.queued();
    // Calls accepted between the port opening and now are in memory already.
    const known = new Set<string>();
    this.queue.eachReady((ref) => known.add(ref.id));
    for (const ref of queued) if (!known.has(ref.id)) this.queue.add(ref, this.now());
    for (const id of store.pendingCallbacks()) this.deps.onFinished?.(id);
    this.started = true;
    this.sweep();
    this.sweeper = setInterval(() => this.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
    if (queued.length > 0) this.deps.log({ msg: 'async invocations queued', count: queued.length });
    this.schedule();
  }

  /** Stops starting attempts (shutdown); those running finish and are written. */
  stop(): void {
    this.stopped = true;
  }

  /** Writes what is left and closes the store. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    try {
      this.pump();
    } finally {
      this.closed = true;
      this.deps.store.close();
    }
  }

  /** Invocations of `route` waiting (ready or in backoff): more are refused past MAX_QUEUED_PER_ROUTE. */
  waiting(route: string): number {
    return this.queue.waiting(route);
  }

  /** Per route: waiting, running, and the age in ms of the oldest waiting. */
  queues(): Map<string, { waiting: number; running: number; oldestMs: number }> {
    const out = new Map<string, { waiting: number; running: number; oldestMs: number }>();
    const running = (route: string): number => this.running.get(route) ?? 0;
    for (const [route, q] of this.queue.byRoute(this.now())) out.set(route, { waiting: q.waiting, running: running(route), oldestMs: q.oldestMs });
    for (const route of [...this.running.keys(), ...this.counters.keys()]) {
      if (!out.has(route)) out.set(route, { waiting: 0, running: running(route), oldestMs: 0 });
    }
    return out;
  }

  /** Forgets the counters of routes that are gone and have nothing waiting or running. */
  forgetRoutes(live: (key: string) => boolean): void {
    for (const route of this.counters.keys()) {
      if (!live(route) && !this.queue.holds(route) && !this.running.has(route)) this.counters.delete(route);
    }
  }

  /**
   * Stores an accepted call; resolves once it is on disk (then the 202 may go), rejects when it
   * could not be written (the caller answers 503).
   */
  accept(row: NewInvocation): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the async invocations database is closed'));
    return new Promise((resolve, reject) => {
      // Its seq is known only once inserted; in memory it sorts after every stored one (it is the
      // newest), and calls accepted in this run keep their arrival order among themselves.
      const ref: QueuedRef = { seq: Number.MAX_SAFE_INTEGER, id: row.id, route: row.route, queuedAt: row.created, nextAt: row.created };
      this.write({ kind: 'insert', row }, () => {
        this.count(row.route).accepted++;
        resolve();
      }, reject);
      // In memory at once, so that the same commit can start it; taken out again if the commit fails.
      this.queue.addReady(ref);
    });
  }

  /** A dead letter back to the queue (the admin API); its retries count afresh. */
  retry(id: string): 'queued' | 'not-found' | { readonly state: string } {
    this.pump(); // its failure may still be waiting to be written
    const r = this.deps.store.retry(id, this.now());
    if (r === undefined) return 'not-found';
    if (!r.ok) return { state: r.state };
    this.queue.add(r.ref, this.now());
    this.schedule();
    return 'queued';
  }

  /** A write for the next commit (this turn's). */
  write(change: Change, done?: () => void, refused?: (err: Error) => void): void {
    if (this.closed) return; // an attempt that outlived the shutdown's grace: it runs again after the restart
    this.pending.push({ change, ...(done && { done }), ...(refused && { refused }) });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /**
   * One commit: this turn's writes, then the start of every invocation that may start now. Then
   * the started ones are sent, and the timer set for the next backoff to end.
   */
  private pump(): void {
    const now = this.now();
    this.queue.release(now);
    const changes = this.pending;
    this.pending = [];
    const picks = this.started && !this.stopped ? this.pick(now, changes) : [];
    if (changes.length === 0 && picks.length === 0) {
      this.armTimer(); // a backoff that ends later still needs its wake-up
      return;
    }
    let started: Started[];
    try {
      started = this.deps.store.commit(changes.map((p) => p.change), picks.map((p) => p.ref.id), now);
    } catch (err) {
      this.failedCommit(changes, err as Error);
      return;
    }
    for (const p of changes) p.done?.();
    for (const { queue } of picks) queue.take(1);
    const byId = new Map(picks.map((p) => [p.ref.id, p.route]));
    for (const s of started) this.run(s, byId.get(s.id)!);
    this.armTimer();
    // Calls accepted in this commit may start in the next, if their route had free slots.
    if (changes.some((p) => p.change.kind === 'insert' || p.change.kind === 'requeue') && !this.stopped) this.schedule();
  }

  /** Which ready invocations start now: per route, oldest first, up to its free slots. Expired or routeless ones are failed instead. */
  private pick(now: number, changes: Pending[]): Array<{ ref: QueuedRef; route: Route; queue: ReadyQueue }> {
    const picks: Array<{ ref: QueuedRef; route: Route; queue: ReadyQueue }> = [];
    const table = this.deps.routes();
    for (const [key, queue] of this.queue.readyQueues()) {
      if (queue.length === 0) continue;
      const route = table.get(key);
      const settings = this.settings(route);
      let free = settings.concurrency - (this.running.get(key) ?? 0);
      for (let i = queue.head; i < queue.items.length && free > 0; i++) {
        const ref = queue.items[i]!;
        if (!route || now - ref.queuedAt > settings.ttlS * 1000) {
          // Finished without an attempt: out of the queue now; written with this commit.
          const failure = !route
            ? { code: 'ROUTE_NOT_FOUND', message: `no function is mapped to ${key} now` }
            : { code: 'EXPIRED', message: `it waited longer than its ttl_s (${settings.ttlS} s) without finishing` };
          queue.items.splice(i--, 1);
          changes.push({ change: this.finish(ref.id, 'failed', now, settings, undefined, failure, true), done: () => this.deadLettered(key, ref.id) });
          this.count(key).deadLetters++;
          continue;
        }
        picks.push({ ref, route, queue });
        free--;
      }
    }
    // queue.take(1) per pick removes from the head: picks of a route are its first ones, in order,
    // once the failed ones above have been spliced out.
    return picks;
  }

  private deadLettered(route: string, id: string): void {
    this.deps.log({ level: 'warn', msg: 'async invocation failed', route, invocation: id });
    this.deps.onFinished?.(id);
  }

  /** Sends one attempt and settles it. */
  private run(s: Started, route: Route): void {
    this.running.set(route.key, (this.running.get(route.key) ?? 0) + 1);
    const t0 = this.now();
    const headers = [...s.headers, 'x-faas-attempt', String(s.attempts), 'x-faas-invocation-id', s.id];
    this.deps.invoke({ route, requestId: s.requestId, method: s.method, path: s.path, query: s.query, headers, body: s.body, clientIp: s.clientIp })
      .then(collect, failed)
      .then((outcome) => this.settle(s, route, outcome, t0), (err: unknown) => this.settle(s, route,
        { failure: { code: 'WORKER_PROTOCOL_ERROR', message: `internal error: ${String(err)}` } }, t0));
  }

  private settle(s: Started, route: Route, outcome: Outcome, t0: number): void {
    const left = (this.running.get(route.key) ?? 1) - 1;
    if (left > 0) this.running.set(route.key, left);
    else this.running.delete(route.key);
    const now = this.now();
    // The route's settings now: an operator who raised retries meanwhile is obeyed.
    const settings = this.settings(this.deps.routes().get(route.key) ?? route);
    const status = outcome.result?.status;
    const failure = outcome.failure ?? (status !== undefined && status >= 500 ? { code: 'FUNCTION_STATUS', message: `the function answered ${status}` } : undefined);
    const fields = { route: route.key, invocation: s.id, attempt: s.attempts, ms: now - t0, status: outcome.result?.status ?? null };
    if (!failure) {
      this.write(this.finish(s.id, 'succeeded', now, settings, outcome.result, undefined, s.callbackUrl !== undefined),
        s.callbackUrl !== undefined ? () => this.deps.onFinished?.(s.id) : undefined);
      this.count(route.key).succeeded++;
      this.deps.log({ msg: 'async attempt', outcome: 'succeeded', ...fields });
      return;
    }
    if (outcome.result === undefined && outcome.notRun) {
      // No worker took it: the function never saw this attempt, so it does not count.
      this.requeue(s, now + Math.max(settings.backoffMs, NOT_RUN_WAIT_MS), true, failure);
      this.deps.log({ level: 'warn', msg: 'async attempt', outcome: 'not run', code: failure.code, error: failure.message, ...fields });
      return;
    }
    const counted = s.attempts - s.retryFrom;
    if (counted <= settings.retries) {
      this.requeue(s, now + backoffMs(settings.backoffMs, counted), false, failure);
      this.count(route.key).retries++;
      this.deps.log({ level: 'warn', msg: 'async attempt', outcome: 'retry', code: failure.code, error: failure.message, ...fields });
      return;
    }
    this.write(this.finish(s.id, 'failed', now, settings, outcome.result, failure, true), () => this.deadLettered(route.key, s.id));
    this.count(route.key).deadLetters++;
    this.deps.log({ level: 'warn', msg: 'async attempt', outcome: 'dead letter', code: failure.code, error: failure.message, ...fields });
  }

  private requeue(s: Started, nextAt: number, uncount: boolean, failure: Failure): void {
    this.write({ kind: 'requeue', id: s.id, nextAt, uncount, errorCode: failure.code, error: failure.message });
    this.queue.add({ seq: s.seq, id: s.id, route: s.route, queuedAt: s.queuedAt, nextAt }, this.now());
  }

  private finish(id: string, state: 'succeeded' | 'failed', now: number, settings: AsyncConfig, result: StoredResult | undefined,
    failure: Failure | undefined, callback: boolean): Change {
    return { kind: 'finish', id, state, finished: now, expires: now + settings.ttlS * 1000, result, errorCode: failure?.code,
      error: failure?.message, callback };
  }

  private armTimer(): void {
    const next = this.queue.nextAt;
    if (next === this.timerAt || this.stopped) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = setTimeout(() => {
      this.timerAt = Infinity;
      this.schedule();
    }, Math.max(0, next - this.now()));
    this.timer.unref();
  }

  /** A commit that threw: inserts are refused (their callers answer 503), every other write is tried again. */
  private failedCommit(changes: Pending[], err: Error): void {
    this.deps.log({ level: 'error', msg: 'async invocations could not be written', error: err.message, writes: changes.length });
    for (const p of changes) {
      if (p.change.kind === 'insert') {
        this.queue.remove(p.change.row.route, p.change.row.id);
        p.refused?.(err);
      } else {
        this.pending.push(p);
      }
    }
    clearTimeout(this.timer);
    this.timerAt = Infinity;
    this.timer = setTimeout(() => this.schedule(), WRITE_RETRY_MS);
    this.timer.unref();
  }

  private sweep(): void {
    try {
      const now = this.now();
      let deleted = 0;
      for (let n = this.deps.store.sweep(now); n > 0; n = this.deps.store.sweep(now)) deleted += n;
      if (deleted > 0) this.deps.log({ level: 'debug', msg: 'async invocations past their ttl deleted', count: deleted });
    } catch (err) {
      this.deps.log({ level: 'warn', msg: 'async invocations could not be swept', error: (err as Error).message });
    }
  }

  private settings(route: Route | undefined): AsyncConfig {
    return route?.config.async ?? ASYNC_DEFAULTS;
  }

  private count(route: string): RouteCounters {
    let c = this.counters.get(route);
    if (!c) this.counters.set(route, (c = { accepted: 0, succeeded: 0, retries: 0, deadLetters: 0 }));
    return c;
  }
}

/** backoff_ms before retry 1, twice that before retry 2, …, at most MAX_BACKOFF_MS. */
export function backoffMs(baseMs: number, retry: number): number {
  return Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.max(0, retry - 1));
}
