// The dispatcher's queue in memory (src/async/dispatcher.ts), mirroring the queued rows of the
// `invocations` table: per route, a ReadyQueue of those that may start now, oldest first; across
// routes, those waiting out a backoff, soonest nextAt first, moved to their route's ReadyQueue
// once it has passed. Which of them start, and when, is the dispatcher's; this holds them. No
// timers and no clock: `now` is passed in.
import type { QueuedRef } from '../routes/invocation-store.js';
import { ReadyQueue } from './ready-queue.js';

export class InvocationQueue {
  private readonly ready = new Map<string, ReadyQueue>();
  /** Waiting out a backoff, soonest first. */
  private delayed: QueuedRef[] = [];

  /** Into the ready queue of its route, or, when its backoff has not ended by `now`, the delayed list (sorted by nextAt). */
  add(ref: QueuedRef, now: number): void {
    if (ref.nextAt <= now) {
      this.readyOf(ref.route).add(ref);
      return;
    }
    let lo = 0;
    let hi = this.delayed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.delayed[mid]!.nextAt <= ref.nextAt) lo = mid + 1;
      else hi = mid;
    }
    this.delayed.splice(lo, 0, ref);
  }

  /** Into the ready queue of its route, whatever its nextAt (a call just accepted). */
  addReady(ref: QueuedRef): void {
    this.readyOf(ref.route).add(ref);
  }

  /** Out of its route's ready queue (an accepted call whose insert failed). */
  remove(route: string, id: string): void {
    this.readyOf(route).remove(id);
  }

  /** Moves invocations whose backoff has ended by `now` to their ready queues. */
  release(now: number): void {
    let n = 0;
    while (n < this.delayed.length && this.delayed[n]!.nextAt <= now) n++;
    if (n === 0) return;
    for (const ref of this.delayed.splice(0, n)) this.readyOf(ref.route).add(ref);
  }

  /** When the soonest backoff ends; Infinity when none waits. */
  get nextAt(): number {
    return this.delayed[0]?.nextAt ?? Infinity;
  }

  /** The ready queue of each route that has had one, by route key. */
  readyQueues(): IterableIterator<[string, ReadyQueue]> {
    return this.ready.entries();
  }

  /** Invocations of `route` waiting, ready or in backoff. */
  waiting(route: string): number {
    let n = this.ready.get(route)?.length ?? 0;
    for (const d of this.delayed) if (d.route === route) n++;
    return n;
  }

  /** Whether anything of `route` waits, ready or in backoff. */
  holds(route: string): boolean {
    return (this.ready.get(route)?.length ?? 0) > 0 || this.delayed.some((d) => d.route === route);
  }

  /** Each invocation ready to start, route by route, oldest first. */
  eachReady(see: (ref: QueuedRef) => void): void {
    for (const queue of this.ready.values()) for (let i = queue.head; i < queue.items.length; i++) see(queue.items[i]!);
  }

  /** Per route with something waiting (ready or in backoff): how many, and the age by `now` of the oldest, in ms. */
  byRoute(now: number): Map<string, { waiting: number; oldestMs: number }> {
    const out = new Map<string, { waiting: number; oldestMs: number }>();
    const see = (ref: QueuedRef): void => {
      let q = out.get(ref.route);
      if (!q) out.set(ref.route, (q = { waiting: 0, oldestMs: 0 }));
      q.waiting++;
      q.oldestMs = Math.max(q.oldestMs, now - ref.queuedAt);
    };
    this.eachReady(see);
    for (const ref of this.delayed) see(ref);
    return out;
  }

  private readyOf(route: string): ReadyQueue {
    let q = this.ready.get(route);
    if (!q) this.ready.set(route, (q = new ReadyQueue()));
    return q;
  }
}
