// What the admin API and /metrics show of the fleet and the routes: GET /workers, GET /stats
// (and the dashboard), and the gauges and counters read at each scrape. Views only: they read
// the fleet, the route store and the limiter, and change nothing.
import type { Fleet, WorkerState } from '../fleet/fleet.js';
import { LIMITS, type HostLimits } from '../host/host-limits.js';
import type { RateLimiter } from '../http/rate-limit.js';
import type { RouteStore } from '../routes/route-store.js';
import type { ClusterState } from '../cluster/cluster-sync.js';
import { WINDOW_S, type LiveStats } from './live-stats.js';
import type { Scraped } from './metrics.js';

export function workersView(fleet: Fleet): unknown {
  const now = Date.now();
  return [...fleet.workers.values()].map((w) => {
    const r = w.report;
    const sup = fleet.supervisedInfo(w.id);
    return {
      id: w.id,
      pid: r?.pid ?? sup?.pid ?? null,
      socket: r?.socket ?? null,
      supervised: w.supervised,
      connected: w.connected,
      available: fleet.isAvailable(w, now),
      score: r?.score ?? null,
      cpu: r?.cpu ?? null,
      mem: r?.mem ?? null,
      io: r?.io ?? null,
      inFlight: w.inFlight,
      served: w.served,
      missedReports: w.missedReports,
      msSinceReport: Number.isFinite(w.lastReportMs) ? now - w.lastReportMs : null,
      restarts: sup?.restarts ?? 0,
      warm: r?.warm ?? [],
      // The instances it lent the gateway (the direct data path): calls on them go there without the worker.
      lent: [...w.leases.values()].map((d) => ({ instance: d.name, key: d.key, version: d.version, slots: d.slots, busy: d.busy, open: d.open })),
    };
  });
}

/** What GET /stats and the dashboard show: now, and over the last WINDOW_S seconds. */
export function statsView(store: RouteStore, fleet: Fleet, live: LiveStats, cluster?: ClusterState): unknown {
  const status = store.status();
  const now = Date.now();
  return {
    time: now,
    windowS: WINDOW_S,
    workers: [...fleet.workers.values()].map((w) => {
      const r = w.report;
      return {
        id: w.id, pid: r?.pid ?? fleet.supervisedInfo(w.id)?.pid ?? null,
        available: fleet.isAvailable(w, now),
        score: r?.score ?? null, cpu: r?.cpu ?? null, mem: r?.mem ?? null, io: r?.io ?? null,
        inFlight: w.inFlight, restarts: fleet.supervisedInfo(w.id)?.restarts ?? 0,
        ...live.worker(w.id),
      };
    }),
    routes: status.routes.map((r) => ({ key: r.key, state: r.state, runtime: r.runtime ?? null, ...live.route(r.key) })),
    sync: {
      lastSyncAt: status.lastSyncAt ?? null, lastSuccessAt: status.lastSuccessAt ?? null,
      ...(status.lastError !== undefined && { lastError: status.lastError }),
      routes: store.snapshot.size, configErrors: store.problemCount, ...(cluster && { cluster }),
    },
    recentErrors: live.recentErrors(),
  };
}

/** Fleet, route and limiter state for /metrics, read at each scrape. */
export function scraped(store: RouteStore, fleet: Fleet, limiter: RateLimiter, startedMs: number, host: HostLimits): Scraped[] {
  const ws = (): WorkerState[] => [...fleet.workers.values()];
  const per = (name: string, help: string, value: (w: WorkerState) => number | undefined, type: 'gauge' | 'counter' = 'gauge'): Scraped =>
    ({ name, help, type, labels: ['worker'], read: () => ws().flatMap((w) => { const v = value(w); return v === undefined ? [] : [[{ worker: w.id }, v] as const]; }) });
  const one = (name: string, help: string, type: 'gauge' | 'counter', value: () => number): Scraped =>
    ({ name, help, type, read: () => [[{}, value()]] });
  return [
    per('faas_worker_score', 'Smoothed load score reported by the worker, 0-100.', (w) => w.report?.score),
    per('faas_worker_cpu', 'Smoothed CPU part of the score, 0-100.', (w) => w.report?.cpu),
    per('faas_worker_mem', 'Smoothed memory part of the score, 0-100.', (w) => w.report?.mem),
    per('faas_worker_io', 'Smoothed IO part of the score, 0-100.', (w) => w.report?.io),
    per('faas_worker_in_flight', 'Calls the gateway has in flight on the worker.', (w) => w.inFlight),
    per('faas_worker_up', '1 while the worker is connected and reporting (it can be picked), else 0.',
      (w) => (fleet.isAvailable(w) ? 1 : 0)),
    per('faas_worker_report_age_seconds', 'Seconds since the worker last reported.', (w) => (Number.isFinite(w.lastReportMs) ? (Date.now() - w.lastReportMs) / 1000 : undefined)),
    per('faas_worker_restarts_total', 'Times the supervisor restarted the worker.', (w) => fleet.supervisedInfo(w.id)?.restarts ?? 0, 'counter'),
    per('faas_worker_calls_total', 'Calls the worker answered.', (w) => w.served, 'counter'),
    per('faas_worker_lent_instances', 'Instances the worker lent the gateway for the direct data path.', (w) => w.leases.size),
    one('faas_datagrams_received_total', 'Load-report datagrams received.', 'counter', () => fleet.datagramCounters().received),
    one('faas_datagrams_missed_total', 'Load reports workers numbered that never arrived (gaps in seq).', 'counter',
      () => ws().reduce((n, w) => n + w.missedReports, 0)),
    { name: 'faas_datagrams_dropped_total', help: 'Load-report datagrams dropped, by reason.', type: 'counter', labels: ['reason'],
      read: () => Object.entries(fleet.datagramCounters().dropped).map(([reason, n]) => [{ reason }, n] as const) },
    one('faas_routes', 'Routes being served.', 'gauge', () => store.snapshot.size),
    one('faas_config_sync_age_seconds', 'Seconds since routes were last synced successfully.', 'gauge', () => {
      const at = store.health().lastSuccessAt;
      return at === undefined ? NaN : (Date.now() - at) / 1000;
    }),
    one('faas_config_errors', 'Rows the gateway cannot use (serving the last good config or nothing).', 'gauge',
      () => store.problemCount),
    one('faas_config_sync_failing', '1 while the database cannot be read and routes are served from memory.', 'gauge', () => (store.health().lastError ? 1 : 0)),
    one('faas_api_keys', 'API keys the gateway accepts (api_keys rows).', 'gauge', () => store.snapshot.keys.size),
    one('faas_rate_limit_buckets', 'Token buckets held for rate-limited routes (one per route and client not at full burst).', 'gauge', () => limiter.size),
    one('faas_rate_limit_evicted_total', 'Buckets dropped to stay under the cap while not full (more clients than room).', 'counter', () => limiter.evicted),
    { name: 'faas_sandbox_limit_enforced', help: '1 where the host\'s cgroups let workers enforce the limit on each sandbox (memory, pids, cpu), else 0.',
      type: 'gauge', labels: ['limit'], read: () => LIMITS.map((limit) => [{ limit }, host.missing[limit] === undefined ? 1 : 0] as const) },
    one('faas_uptime_seconds', 'Seconds since the gateway started.', 'gauge', () => (Date.now() - startedMs) / 1000),
  ];
}
