// Gateway metrics for Prometheus (GET /metrics on the admin port), with prom-client. Request
// counters and latency histograms are updated as calls are answered; fleet, route and limiter
// state is read at scrape time (`scraped`). Node's default process metrics come along
// (event-loop lag, heap, resident memory, GC). Label cardinality is bounded: routes are the
// configured ones (unmatched requests share route=""), statuses and codes are few.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Answered } from './http/server.js';

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Labels = Record<string, string>;

/** A metric whose values are read when Prometheus scrapes: [labels, value] pairs. */
export interface Scraped {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labels?: readonly string[];
  readonly read: () => ReadonlyArray<readonly [Labels, number]>;
}

interface Child {
  readonly count: { inc(): void };
  readonly duration: { observe(seconds: number): void };
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly duration: Histogram<'route' | 'status'>;
  private readonly coldStarts: Counter<'route'>;
  private readonly errors: Counter<'route' | 'code'>;
  /** Per route, then status: prom-client hashes labels on every call, a child does not. */
  private readonly children = new Map<string, Map<number, Child>>();
  /** Error codes seen per route, so that a removed route's series can be removed. */
  private readonly codes = new Map<string, Set<string>>();

  constructor(scraped: readonly Scraped[]) {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'faas_requests_total', help: 'HTTP requests answered, by route and status.', labelNames: ['route', 'status'], registers });
    this.duration = new Histogram({ name: 'faas_request_duration_seconds', help: 'Time from request to response in the gateway, by route and status.',
      labelNames: ['route', 'status'], buckets: BUCKETS_S, registers });
    this.coldStarts = new Counter({ name: 'faas_cold_starts_total', help: 'Calls that waited for a new function instance, by route.', labelNames: ['route'], registers });
    this.errors = new Counter({ name: 'faas_errors_total', help: 'Error answers, by route and error code (README, Errors).', labelNames: ['route', 'code'], registers });
    for (const s of scraped) register(this.registry, s);
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters, which Prometheus' linter (promtool) refuses.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }

  observe(a: Answered): void {
    const route = a.route ?? '';
    let byStatus = this.children.get(route);
    if (!byStatus) this.children.set(route, (byStatus = new Map()));
    let child = byStatus.get(a.status);
    if (!child) {
      const labels = { route, status: String(a.status) };
      child = { count: this.requests.labels(labels), duration: this.duration.labels(labels) };
      byStatus.set(a.status, child);
    }
    child.count.inc();
    child.duration.observe(a.ms / 1000);
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
    for (const [route, byStatus] of this.children) {
      if (route === '' || live(route)) continue;
      for (const status of byStatus.keys()) {
        this.requests.remove({ route, status: String(status) });
        this.duration.remove({ route, status: String(status) });
      }
      this.coldStarts.remove({ route });
      for (const code of this.codes.get(route) ?? []) this.errors.remove({ route, code });
      this.children.delete(route);
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
