// The dispatcher's queue of one route's invocations ready to start (one per route in
// src/async/invocation-queue.ts; src/async/dispatcher.ts takes from them): ordered by seq, the
// oldest first; taken from the head, compacted now and then.
import type { QueuedRef } from '../routes/invocation-store.js';

/** Invocations of one route ready to start, oldest (lowest seq) first; `head` skips those taken. */
export class ReadyQueue {
  items: QueuedRef[] = [];
  head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** In seq order: appended when newest (accepted), placed when older (a retry). Equal seqs keep their arrival order. */
  add(ref: QueuedRef): void {
    const items = this.items;
    if (items.length === this.head || items[items.length - 1]!.seq <= ref.seq) {
      items.push(ref);
      return;
    }
    let lo = this.head;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (items[mid]!.seq < ref.seq) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, ref);
  }

  take(n: number): void {
    this.head += n;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  remove(id: string): void {
    const at = this.items.findIndex((r, i) => i >= this.head && r.id === id);
    if (at >= 0) this.items.splice(at, 1);
  }
}
