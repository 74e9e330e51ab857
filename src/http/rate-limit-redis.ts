// Cluster-wide rate limits (--cluster-redis): the token buckets of rate-limit.ts kept in Redis, so
// that a route's `rate_limit` holds across every gateway sharing that Redis, not per node.
//
// One Lua script per take, atomic in Redis (TAKE_SCRIPT): the same bucket as rate-limit.ts — up
// to `burst` tokens, refilled at `rps` a second, one taken per call — in a hash per route and
// client, timed by Redis's own clock (TIME), so nodes whose clocks disagree still agree on every
// bucket. A bucket's key expires when it would have refilled to full: a full bucket is the same
// as none, so Redis holds a key per client that was limited recently, never more.
//
// Redis away: a take that errs or does not answer within TAKE_TIMEOUT_MS is served by a local
// bucket (rate-limit.ts) at this node's share of the limit, and so are the takes after it until
// the next heartbeat reaches Redis again (at most HEARTBEAT_MS: a hung Redis must not add
// TAKE_TIMEOUT_MS to every call). The share is the limit divided by the nodes last counted live:
// each node heartbeats into a sorted set (node id → Redis time) every HEARTBEAT_MS and counts
// the members seen within NODE_TTL_MS. With every node at 1/n of rps and of burst, the cluster's
// total stays within the limit while Redis is away (a burst share is at least one call, or a
// node could never serve). Before the first count, a node assumes NODES_BEFORE_FIRST_COUNT.
//
// The headers are rate-limit.ts's (verdictOf): from Redis, the route's policy; from the local
// bucket, the share's, which is the policy in force meanwhile.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type { Scraped } from '../observe/metrics.js';
import type { Log } from '../protocol/log.js';
import { RateLimiter, verdictOf, type Limit, type Verdict } from './rate-limit.js';
import { redactRedisUrl } from './redis-url.js';

/**
 * How long a take waits for Redis before the local bucket answers. A take on a healthy Redis
 * nearby is well under a millisecond; 50 ms is long past that and still short beside a call.
 */
export const TAKE_TIMEOUT_MS = 50;
/** How often a node says it is alive, counts the live nodes, and tries Redis again when it was away. */
export const HEARTBEAT_MS = 1000;
/** A node not heard from for this long is no longer counted (five heartbeats missed). */
export const NODE_TTL_MS = 5 * HEARTBEAT_MS;
/**
 * Before a node has counted (it started while Redis was away): configured for a cluster, it is
 * one of at least two. Assuming itself alone would let each of n such nodes serve the whole limit;
 * two is exact for a pair and halves the overshoot of larger clusters.
 */
export const NODES_BEFORE_FIRST_COUNT = 2;
/** Why Redis is away before it ever answered. */
const CONNECTING = 'not connected yet';
/** Time between attempts to reconnect to Redis. */
const RECONNECT_MS = 500;
const KEY_PREFIX = 'faas:rl:';
const NODES_KEY = 'faas:nodes';

// KEYS[1]: the bucket; ARGV: rps, burst. Returns {1 allowed | 0 refused, tokens left as a string}
// (Lua numbers reach the client as integers: the fraction would be lost).
const TAKE_SCRIPT = `
local rps = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tokens = burst
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if held[1] then
  tokens = math.min(burst, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) * rps / 1000)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.3f', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * 1000 / rps)))
return { allowed, string.format('%.6f', tokens) }
`;

// KEYS[1]: the live nodes; ARGV: this node's id, NODE_TTL_MS. Returns the live nodes, this one included.
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
`;

interface Scripted {
  faasTake(key: string, rps: number, burst: number): Promise<[number, string]>;
  faasHeartbeat(key: string, node: string, ttlMs: number): Promise<number>;
}

export interface ClusterLimiterOptions {
  /** A URL --cluster-redis accepts (config.ts): redis://, rediss:// or unix:///path. */
  readonly url: string;
  readonly log: Log;
  /** Unique in the cluster; by default host name, pid and a random part. */
  readonly nodeId?: string;
  /** The fallback's buckets (tests inject one with a clock). */
  readonly local?: RateLimiter;
}

export class ClusterRateLimiter {
  readonly nodeId: string;
  /** The URL without its password, for logs and /readyz. */
  readonly address: string;
  /** Takes Redis answered. */
  redisTakes = 0;
  /** Takes the local bucket answered, Redis being away. */
  fallbackTakes = 0;
  /** Takes that failed or timed out, and heartbeats or the connection lost while Redis answered. */
  redisErrors = 0;
  private readonly redis: Redis & Scripted;
  private readonly local: RateLimiter;
  private readonly log: Log;
  private readonly timer: NodeJS.Timeout;
  /** Whether takes go to Redis: set by a heartbeat that got through, cleared by any failure. */
  private up = false;
  /** Live nodes at the last heartbeat that got through; undefined before one. */
  private counted: number | undefined;
  /** Since when Redis is away, and why; undefined while it answers. */
  private away: { since: number; error: string } | undefined = { since: Date.now(), error: CONNECTING };
  private closing = false;
  private readonly firstHeartbeat: Promise<void>;
  private heartbeatDone: () => void = () => {};

  constructor(opts: ClusterLimiterOptions) {
    this.nodeId = opts.nodeId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.address = redactRedisUrl(opts.url);
    this.log = opts.log;
    this.local = opts.local ?? new RateLimiter();
    this.firstHeartbeat = new Promise((resolve) => (this.heartbeatDone = resolve));
    this.redis = new Redis({ ...redisTarget(opts.url), ...CLIENT_OPTIONS }) as Redis & Scripted;
    this.redis.defineCommand('faasTake', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    this.redis.defineCommand('faasHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT_SCRIPT });
    // ioredis reconnects by itself; without a listener it would print every error to the console.
    this.redis.on('error', (err: Error) => this.markAway(err));
    this.redis.on('close', () => {
      if (this.up && !this.closing) this.redisErrors++;
      this.markAway(new Error('connection closed'));
    });
    this.redis.on('ready', () => void this.heartbeat());
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Resolves once the first heartbeat got an answer, or after `ms`, whichever is first. */
  async ready(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.firstHeartbeat, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Takes a token for `client` on `route`; never rejects (Redis away: the local bucket answers). */
  async take(route: string, client: string, limit: Limit): Promise<Verdict> {
    if (!this.up) return this.fallback(route, client, limit);
    try {
      const [allowed, tokens] = await this.redis.faasTake(`${KEY_PREFIX}${route}\n${client}`, limit.rps, limit.burst);
      this.redisTakes++;
      return verdictOf(Number(tokens), limit, allowed === 1);
    } catch (err) {
      this.redisErrors++;
      this.markAway(err);
      return this.fallback(route, client, limit);
    }
  }

  /** Whether takes go to Redis now. */
  get reachable(): boolean {
    return this.up;
  }

  /** The live nodes the fallback divides the limit by: the last count, or NODES_BEFORE_FIRST_COUNT before one. */
  get nodes(): number {
    return this.counted ?? NODES_BEFORE_FIRST_COUNT;
  }

  /** For /readyz: what is wrong while Redis is away (the gateway is still ready: it serves at its share). */
  warnings(): string[] {
    if (!this.away) return [];
    return [`cluster Redis ${this.address} unreachable since ${new Date(this.away.since).toISOString()} (${this.away.error}): ` +
      `rate limits are kept per node meanwhile, each at 1/${this.nodes} of the route's limit`];
  }

  /** /metrics while --cluster-redis is on, read at each scrape. */
  metrics(): Scraped[] {
    const one = (name: string, help: string, type: 'gauge' | 'counter', value: () => number): Scraped =>
      ({ name, help, type, read: () => [[{}, value()]] });
    return [
      one('faas_rate_limit_redis_takes_total', 'Rate-limit takes answered by the cluster Redis.', 'counter', () => this.redisTakes),
      one('faas_rate_limit_fallback_takes_total', 'Rate-limit takes answered by the local bucket at this node\'s share, Redis being away.',
        'counter', () => this.fallbackTakes),
      one('faas_rate_limit_redis_errors_total', `Rate-limit takes and heartbeats that failed or took over ${TAKE_TIMEOUT_MS} ms.`, 'counter',
        () => this.redisErrors),
      one('faas_cluster_redis_up', '1 while rate-limit takes go to the cluster Redis, else 0.', 'gauge', () => (this.up ? 1 : 0)),
      one('faas_cluster_nodes', `Gateways counted live in the cluster Redis (the fallback divides each limit by it; ${NODES_BEFORE_FIRST_COUNT} before a first count).`, 'gauge', () => this.nodes),
    ];
  }

  /** Leaves the live nodes (the others count one fewer at their next heartbeat) and disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    if (this.up) await this.redis.zrem(NODES_KEY, this.nodeId).catch(() => {});
    this.redis.disconnect();
  }

  private fallback(route: string, client: string, limit: Limit): Verdict {
    this.fallbackTakes++;
    const n = this.nodes;
    return this.local.take(route, client, n === 1 ? limit : { rps: limit.rps / n, burst: Math.max(1, limit.burst / n) });
  }

  private async heartbeat(): Promise<void> {
    try {
      const live = await this.redis.faasHeartbeat(NODES_KEY, this.nodeId, NODE_TTL_MS);
      this.counted = Math.max(1, live);
      if (!this.up) {
        this.up = true;
        if (this.away && this.away.error !== CONNECTING) {
          this.log({ msg: 'cluster Redis reachable: rate limits are cluster-wide again', redis: this.address, nodes: this.counted,
            awayMs: Date.now() - this.away.since });
        }
        this.away = undefined;
      }
    } catch (err) {
      if (this.up) this.redisErrors++; // while away, a failed try is not news
      this.markAway(err);
    } finally {
      this.heartbeatDone();
    }
  }

  private markAway(err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    this.up = false;
    if (this.closing || (this.away && this.away.error !== CONNECTING)) return; // said already
    this.away = { since: Date.now(), error };
    this.log({ level: 'warn', msg: 'cluster Redis unreachable: rate limits are per node, at their share, until it is back',
      redis: this.address, error, share: `1/${this.nodes}` });
  }
}

const CLIENT_OPTIONS: RedisOptions = {
  // A command while disconnected fails at once instead of waiting in a queue: the fallback answers.
  enableOfflineQueue: false,
  commandTimeout: TAKE_TIMEOUT_MS,
  // Takes in flight when the connection dropped are not sent again: they were answered locally.
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  connectTimeout: 1000,
  retryStrategy: () => RECONNECT_MS,
};

/** ioredis's target for a URL config.ts accepted. */
function redisTarget(url: string): RedisOptions {
  const u = new URL(url);
  if (u.protocol === 'unix:') return { path: decodeURIComponent(u.pathname) };
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port: u.port === '' ? 6379 : Number(u.port),
    db,
    ...(u.username !== '' && { username: decodeURIComponent(u.username) }),
    ...(u.password !== '' && { password: decodeURIComponent(u.password) }),
    ...(u.protocol === 'rediss:' && { tls: net.isIP(host) ? {} : { servername: host } }), // SNI takes names, not addresses
  };
}
