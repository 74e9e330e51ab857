// Gateway metrics in the Prometheus text format (served at GET /metrics on the admin port).
// Request counters and latency histograms are kept here; fleet and route state are read at
// scrape time. Label cardinality is bounded: unmatched requests share route="".

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export interface Sample {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly values: ReadonlyArray<readonly [labels: Record<string, string>, value: number]>;
}

export class GatewayMetrics {
  /** Answered requests by route, then status: no key string to build per request. */
  private readonly requests = new Map<string, Map<number, number>>();
  private readonly latency = new Map<string, Histogram>();
  private readonly errors = new Map<string, number>();
  private coldStarts = 0;

  observe(routeKey: string | undefined, status: number, durationMs: number, cold: boolean, code?: string): void {
    const route = routeKey ?? '';
    let byStatus = this.requests.get(route);
    if (!byStatus) this.requests.set(route, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) {
      h = { counts: new Array<number>(BUCKETS_S.length).fill(0), sum: 0, count: 0 };
      this.latency.set(route, h);
    }
    const s = durationMs / 1000;
    for (let i = 0; i < BUCKETS_S.length; i++) if (s <= BUCKETS_S[i]!) h.counts[i]!++;
    h.sum += s;
    h.count++;
    if (cold) this.coldStarts++;
    if (code) this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  render(extra: readonly Sample[]): string {
    const out: string[] = [];
    out.push('# HELP faas_requests_total HTTP requests answered, by route and status.', '# TYPE faas_requests_total counter');
    for (const [route, byStatus] of this.requests) {
      for (const [status, n] of byStatus) out.push(`faas_requests_total{route=${q(route)},status="${status}"} ${n}`);
    }
    out.push('# HELP faas_request_duration_seconds Time from request to response in the gateway.', '# TYPE faas_request_duration_seconds histogram');
    for (const [route, h] of this.latency) {
      BUCKETS_S.forEach((le, i) => out.push(`faas_request_duration_seconds_bucket{route=${q(route)},le="${le}"} ${h.counts[i]}`));
      out.push(`faas_request_duration_seconds_bucket{route=${q(route)},le="+Inf"} ${h.count}`);
      out.push(`faas_request_duration_seconds_sum{route=${q(route)}} ${h.sum}`, `faas_request_duration_seconds_count{route=${q(route)}} ${h.count}`);
    }
    out.push('# HELP faas_cold_starts_total Calls that waited for a new function instance.', '# TYPE faas_cold_starts_total counter', `faas_cold_starts_total ${this.coldStarts}`);
    out.push('# HELP faas_errors_total Error responses, by error code.', '# TYPE faas_errors_total counter');
    for (const [code, n] of this.errors) out.push(`faas_errors_total{code=${q(code)}} ${n}`);
    for (const s of extra) {
      out.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      for (const [labels, v] of s.values) {
        const l = Object.entries(labels).map(([k, val]) => `${k}=${q(val)}`).join(',');
        out.push(`${s.name}${l ? `{${l}}` : ''} ${Number.isFinite(v) ? v : 'NaN'}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}

function q(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`;
}
