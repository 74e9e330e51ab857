// Gateway metrics for Prometheus (GET /metrics on the admin port), with prom-client. Request
// counters and latency histograms are updated as calls are answered; fleet, route and limiter
// state is read at scrape time (`scraped`). Functions' CPU time and peak memory per call (from
// their instance's cgroup, when the worker has one) are histograms by route. Node's default process metrics come along
// (event-loop lag, heap, resident memory, GC). Label cardinality is bounded: routes are the
// configured ones (unmatched requests share route=""), statuses and codes are few.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Answered } from '../calls.js';

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** CPU seconds of a function's instance during a call: a no-op is tens of µs, timeout_ms is at most 900 s. */
const CPU_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Peak bytes of an instance during a call, 4 MiB to 16 GiB by powers of two (memory_mb is 16–16384). */
const MEMORY_BUCKETS_BYTES = Array.from({ length: 13 }, (_, i) => 2 ** (22 + i));

type Labels = Record<string, string>;

/** A metric whose values are read when Prometheus scrapes: [labels, value] pairs. */
export interface Scraped {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labels?: readonly string[];
  readonly read: () => ReadonlyArray<readonly [Labels, number]>;
}

/** Calls answered with one status on one route: a count and a latency histogram. */
interface Series {
  count: number;
  sum: number;
  /** Per bucket of BUCKETS_S (not cumulative; summed at scrape). */
  readonly buckets: Uint32Array;
}

function newSeries(buckets: readonly number[]): Series {
  return { count: 0, sum: 0, buckets: new Uint32Array(buckets.length + 1) };
}

function add(s: Series, bounds: readonly number[], value: number): void {
  s.count++;
  s.sum += value;
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  s.buckets[i]!++;
}

/** A histogram series as prom-client's get() gives it: cumulative buckets, then sum and count. */
function histogramValues(name: string, bounds: readonly number[], labels: Labels, s: Series): Array<{ labels: Labels; value: number; metricName: string }> {
  let cumulative = 0;
  const buckets = [...bounds, '+Inf' as const].map((le, i) => {
    cumulative += s.buckets[i]!;
    return { labels: { le: String(le), ...labels }, value: cumulative, metricName: `${name}_bucket` };
  });
  return [...buckets, { labels, value: s.sum, metricName: `${name}_sum` }, { labels, value: s.count, metricName: `${name}_count` }];
}

/**
 * A histogram by route, counted by hand as RequestSeries is: one Map lookup and a few adds per
 * observation, read by prom-client at scrape time.
 */
class RouteHistogram {
  readonly byRoute = new Map<string, Series>();

  constructor(private readonly name: string, private readonly help: string, private readonly bounds: readonly number[]) {}

  observe(route: string, value: number): void {
    let s = this.byRoute.get(route);
    if (!s) this.byRoute.set(route, (s = newSeries(this.bounds)));
    add(s, this.bounds, value);
  }

  metric(): { name: string; help: string; type: string; aggregator: string; get: () => unknown } {
    const head = { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum' };
    return { ...head, get: () => ({ ...head,
      values: [...this.byRoute].flatMap(([route, s]) => histogramValues(this.name, this.bounds, { route }, s)) }) };
  }
}

/**
 * faas_requests_total and faas_request_duration_seconds, counted by hand: prom-client's own
 * Counter and Histogram validate and hash their labels on every call (≈ 0.9 µs a request, more
 * than the rest of the bookkeeping together); here a request is two Map lookups and three adds.
 * prom-client reads them at scrape time through its metric interface (name, help, type, get()).
 */
class RequestSeries {
  /** Route, then status. */
  readonly byRoute = new Map<string, Map<number, Series>>();

  observe(route: string, status: number, seconds: number): void {
    let byStatus = this.byRoute.get(route);
    if (!byStatus) this.byRoute.set(route, (byStatus = new Map()));
    let s = byStatus.get(status);
    if (!s) byStatus.set(status, (s = newSeries(BUCKETS_S)));
    add(s, BUCKETS_S, seconds);
  }

  metrics(): Array<{ name: string; help: string; type: string; aggregator: string; get: () => unknown }> {
    const each = function* (byRoute: RequestSeries['byRoute']): Generator<[Labels, Series]> {
      for (const [route, byStatus] of byRoute) for (const [status, s] of byStatus) yield [{ route, status: String(status) }, s];
    };
    const requests = { name: 'faas_requests_total', help: 'HTTP requests answered, by route and status.', type: 'counter', aggregator: 'sum' };
    const duration = { name: 'faas_request_duration_seconds', help: 'Time from request to response in the gateway, by route and status.',
      type: 'histogram', aggregator: 'sum' };
    return [
      {
        ...requests,
        get: () => ({ ...requests, values: [...each(this.byRoute)].map(([labels, s]) => ({ labels, value: s.count })) }),
      },
      {
        ...duration,
        get: () => ({ ...duration,
          values: [...each(this.byRoute)].flatMap(([labels, s]) => histogramValues(duration.name, BUCKETS_S, labels, s)) }),
      },
    ];
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests = new RequestSeries();
  private readonly cpu = new RouteHistogram('faas_function_cpu_seconds',
    'CPU time of the function\'s instance during a call, from its cgroup, by route (a node instance runs many calls at once: each is counted with the instance\'s CPU meanwhile).',
    CPU_BUCKETS_S);
  private readonly memory = new RouteHistogram('faas_function_memory_peak_bytes',
    'Most memory charged to the function\'s instance during a call, from its cgroup, by route.', MEMORY_BUCKETS_BYTES);
  private readonly coldStarts: Counter<'route'>;
  private readonly errors: Counter<'route' | 'code'>;
  /** Error codes seen per route, so that a removed route's series can be removed. */
  private readonly codes = new Map<string, Set<string>>();

  constructor(scraped: readonly Scraped[]) {
    const registers = [this.registry];
    for (const m of [...this.requests.metrics(), this.cpu.metric(), this.memory.metric()]) {
      this.registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    }
    this.coldStarts = new Counter({ name: 'faas_cold_starts_total', help: 'Calls that waited for a new function instance, by route.', labelNames: ['route'], registers });
    this.errors = new Counter({ name: 'faas_errors_total', help: 'Error answers, by route and error code (README, Errors).', labelNames: ['route', 'code'], registers });
    for (const s of scraped) register(this.registry, s);
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters, which Prometheus' linter (promtool) refuses.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }

  observe(a: Answered): void {
    const route = a.route ?? '';
    this.requests.observe(route, a.status, a.ms / 1000);
    if (a.cpuUs !== undefined) this.cpu.observe(route, a.cpuUs / 1e6);
    if (a.memPeak !== undefined) this.memory.observe(route, a.memPeak);
    if (a.cold) this.coldStarts.inc({ route });
    if (a.code) {
      this.errors.inc({ route, code: a.code });
      let seen = this.codes.get(route);
      if (!seen) this.codes.set(route, (seen = new Set()));
      seen.add(a.code);
    }
  }

  /** Forgets the series of routes that are no longer configured (their counters would otherwise stay forever). */
  forgetRoutes(live: (key: string) => boolean): void {
    for (const route of this.requests.byRoute.keys()) {
      if (route === '' || live(route)) continue;
      this.requests.byRoute.delete(route);
      this.cpu.byRoute.delete(route);
      this.memory.byRoute.delete(route);
      this.coldStarts.remove({ route });
      for (const code of this.codes.get(route) ?? []) this.errors.remove({ route, code });
      this.codes.delete(route);
    }
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function register(registry: Registry, s: Scraped): void {
  const labelNames = [...(s.labels ?? [])];
  if (s.type === 'gauge') {
    new Gauge({ name: s.name, help: s.help, labelNames, registers: [registry], collect() {
      this.reset();
      for (const [labels, v] of s.read()) if (Number.isFinite(v)) this.set(labels, v);
    } });
  } else {
    new Counter({ name: s.name, help: s.help, labelNames, registers: [registry], collect() {
      this.reset();
      for (const [labels, v] of s.read()) this.inc(labels, v);
    } });
  }
}

/** What /metrics reads of the async invocations (src/async/dispatcher.ts), at each scrape. */
export interface AsyncFigures {
  /** Per route: invocations waiting (ready or in backoff), running, and the age of the oldest waiting, ms. */
  queues(): ReadonlyMap<string, { readonly waiting: number; readonly running: number; readonly oldestMs: number }>;
  /** Per route, since the gateway started. */
  readonly counters: ReadonlyMap<string, { readonly accepted: number; readonly succeeded: number; readonly retries: number; readonly deadLetters: number }>;
  /** Failed invocations kept (the dead-letter list), all routes. */
  deadLetters(): number;
  readonly callbacks: { readonly delivered: number; readonly failed: number };
}

/** faas_async_*: queue depth and age, attempts retried, dead letters, callbacks. */
export function asyncMetrics(a: AsyncFigures): Scraped[] {
  const byRoute = (name: string, help: string, type: 'gauge' | 'counter', value: (q: { waiting: number; running: number; oldestMs: number }) => number): Scraped =>
    ({ name, help, type, labels: ['route'], read: () => [...a.queues()].map(([route, q]) => [{ route }, value(q)] as const) });
  const counted = (name: string, help: string, value: (c: { accepted: number; succeeded: number; retries: number; deadLetters: number }) => number): Scraped =>
    ({ name, help, type: 'counter', labels: ['route'], read: () => [...a.counters].map(([route, c]) => [{ route }, value(c)] as const) });
  return [
    byRoute('faas_async_queue_depth', 'Async invocations waiting to run (ready, or waiting out a retry\'s backoff), by route.', 'gauge', (q) => q.waiting),
    byRoute('faas_async_running', 'Async invocations running, by route.', 'gauge', (q) => q.running),
    byRoute('faas_async_oldest_age_seconds', 'Seconds the oldest waiting async invocation has waited since it was accepted (or retried by an operator), by route; 0 when none waits.',
      'gauge', (q) => q.oldestMs / 1000),
    counted('faas_async_accepted_total', 'Async invocations stored and answered 202, by route.', (c) => c.accepted),
    counted('faas_async_succeeded_total', 'Async invocations that finished with an answer below 500, by route.', (c) => c.succeeded),
    counted('faas_async_retries_total', 'Async attempts that failed and were queued again (5xx, timeout, crash, worker died, gateway restarted), by route.', (c) => c.retries),
    counted('faas_async_dead_letters_total', 'Async invocations that failed for good (retries spent, expired, route gone), by route.', (c) => c.deadLetters),
    { name: 'faas_async_dead_letters', help: 'Failed async invocations kept (the dead-letter list): GET /api/v1/invocations?state=failed.', type: 'gauge',
      read: () => [[{}, a.deadLetters()]] },
    { name: 'faas_async_callbacks_total', help: 'Async callbacks (X-Callback-Url) given up on or delivered, by result.', type: 'counter', labels: ['result'],
      read: () => [[{ result: 'delivered' }, a.callbacks.delivered], [{ result: 'failed' }, a.callbacks.failed]] },
  ];
}
