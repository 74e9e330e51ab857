// The gateway's recent log, kept in memory for `faas logs` (GET /logs on the admin port): what
// functions printed and calls that failed, each tagged with the request id and the route. A
// ring of CAPACITY entries, so memory stays bounded whatever the traffic; the full record is the
// JSON log on stderr. Followers (GET /logs?follow=1) get each entry as it is added, and also an
// access entry per call, which is not kept: keeping one per call would hold every request's
// strings past the young generation (a major GC's work at 10k calls a second), and the access
// log on stderr has them all.

export const CAPACITY = 2000;

export interface LogEntry {
  readonly seq: number;
  readonly time: number;
  readonly level: 'info' | 'warn' | 'error';
  readonly kind: 'access' | 'output' | 'error';
  readonly route: string;
  readonly requestId: string;
  readonly msg: string;
  readonly traceId?: string;
  readonly status?: number;
  readonly worker?: string;
  readonly ms?: number;
  readonly cold?: boolean;
  readonly stream?: 'stdout' | 'stderr';
  readonly text?: string;
  readonly code?: string;
}

export type NewLogEntry = Omit<LogEntry, 'seq' | 'time'>;

export class LogBook {
  private readonly ring: Array<LogEntry | undefined> = new Array(CAPACITY);
  private next = 1;
  private readonly followers = new Set<(entry: LogEntry) => void>();

  add(fields: NewLogEntry): void {
    const entry: LogEntry = { seq: this.next, time: Date.now(), ...fields };
    this.ring[this.next % CAPACITY] = entry;
    this.next++;
    for (const follow of this.followers) follow(entry);
  }

  /** True while someone follows: access entries are worth building only then. */
  get followed(): boolean {
    return this.followers.size > 0;
  }

  /** Tells followers of an entry without keeping it; it carries the seq of the newest kept entry. */
  publish(fields: NewLogEntry): void {
    const entry: LogEntry = { seq: this.latest, time: Date.now(), ...fields };
    for (const follow of this.followers) follow(entry);
  }

  /** Entries with seq > after, oldest first, at most `limit`, only `route`'s when given. */
  read(after: number, limit: number, route?: string): { entries: LogEntry[]; next: number } {
    const entries: LogEntry[] = [];
    const first = Math.max(after + 1, this.next - CAPACITY);
    let last = after;
    for (let seq = first; seq < this.next; seq++) {
      const entry = this.ring[seq % CAPACITY]!;
      last = seq;
      if (route !== undefined && entry.route !== route) continue;
      entries.push(entry);
    }
    // The newest `limit` that match: a reader asking for 100 wants the last 100, not the oldest.
    return { entries: entries.slice(-limit), next: Math.max(last, after) };
  }

  /** Calls `fn` with each entry added from now on, until the returned function is called. */
  follow(fn: (entry: LogEntry) => void): () => void {
    this.followers.add(fn);
    return () => this.followers.delete(fn);
  }

  /** The seq of the newest entry (0 before any). */
  get latest(): number {
    return this.next - 1;
  }
}
