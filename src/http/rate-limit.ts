// Token buckets for routes with `rate_limit: {rps, burst}`: one bucket per route and client (the
// API key's name on a route with "auth": "api-key", else the client's IP address). A bucket
// holds up to `burst` tokens, refills at `rps` a second, and a call takes one.
//
// Memory is bounded whatever the number of clients: a bucket that has refilled to full is
// the same as no bucket, so buckets are dropped once full (swept every SWEEP_MS), and past
// maxBuckets the oldest bucket is dropped to make room: that client starts again from a full
// burst, which errs on the side of serving, never of refusing a client that did nothing.
//
// Headers follow the IETF httpapi draft (RateLimit-Policy and RateLimit fields): the policy is
// `burst` calls per window, the window being the time a bucket takes to refill from empty.

export interface Limit {
  readonly rps: number;
  readonly burst: number;
}

export interface Verdict {
  readonly allowed: boolean;
  /** Header pairs for the response: RateLimit-Policy, RateLimit, and Retry-After when refused. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

interface Bucket {
  tokens: number;
  /** ms (monotonic) of the last refill. */
  at: number;
  /** The route's limit when last used: the sweep needs it, and an operator may change it. */
  limit: Limit;
}

const SWEEP_MS = 10_000;
export const DEFAULT_MAX_BUCKETS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep: number;
  /** Buckets dropped to stay under maxBuckets (a metric: non-zero means more clients than room). */
  evicted = 0;

  constructor(
    private readonly maxBuckets = DEFAULT_MAX_BUCKETS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastSweep = this.now();
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `client` on `route` if there is one. */
  take(route: string, client: string, limit: Limit): Verdict {
    const now = this.now();
    if (now - this.lastSweep >= SWEEP_MS) this.sweep(now);
    const id = `${route}\n${client}`;
    let bucket = this.buckets.get(id);
    if (bucket) {
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.rps);
      bucket.at = now;
      bucket.limit = limit;
    } else {
      if (this.buckets.size >= this.maxBuckets) this.makeRoom(now);
      bucket = { tokens: limit.burst, at: now, limit };
      this.buckets.set(id, bucket);
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return verdictOf(bucket.tokens, limit, allowed);
  }

  /** Drops buckets that have refilled to full: they are the same as none. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [id, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.limit.rps >= b.limit.burst) this.buckets.delete(id);
    }
  }

  /** At most one sweep a second here: a flood of new clients must not sweep the whole map per request. */
  private makeRoom(now: number): void {
    if (now - this.lastSweep >= 1000) this.sweep(now);
    if (this.buckets.size < this.maxBuckets) return;
    // Map order is insertion order: the first is the bucket made longest ago.
    const oldest = this.buckets.keys().next().value;
    if (oldest !== undefined) {
      this.buckets.delete(oldest);
      this.evicted++;
    }
  }
}

/**
 * A bucket's verdict, with its headers, from the tokens left after the take: shared by this
 * limiter and the cluster's (rate-limit-redis.ts), so both answer alike.
 */
export function verdictOf(tokens: number, limit: Limit, allowed: boolean): Verdict {
  return { allowed, headers: headersFor(tokens, limit, allowed) };
}

function headersFor(tokens: number, limit: Limit, allowed: boolean): Array<[string, string]> {
  const window = Math.max(1, Math.ceil(limit.burst / limit.rps));
  const remaining = Math.floor(tokens);
  const untilFull = Math.ceil((limit.burst - tokens) / limit.rps);
  const headers: Array<[string, string]> = [
    ['ratelimit-policy', `"burst";q=${limit.burst};w=${window}`],
    ['ratelimit', `"burst";r=${remaining};t=${untilFull}`],
  ];
  if (!allowed) headers.push(['retry-after', String(Math.max(1, Math.ceil((1 - tokens) / limit.rps)))]);
  return headers;
}
