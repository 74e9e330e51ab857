// Composition root of the gateway: read config, build every module, wire them, own signals
// and shutdown. Nothing imports this file but the CLI.
import fs from 'node:fs';
import path from 'node:path';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { Fleet } from './fleet/fleet.js';
import { createAdminServer } from './http/admin.js';
import { RateLimiter } from './http/rate-limit.js';
import { createServer } from './http/server.js';
import { listen, uws } from './http/uws.js';
import { GatewayMetrics, type Sample } from './metrics.js';
import { createLog, type Log } from './protocol/log.js';
import { RouteStore } from './routes/route-store.js';

const WORKERS_UP_TIMEOUT_MS = 20_000;
const DRAIN_GRACE_MS = 10_000;
const SANDBOX_UID = 65534;

export async function runGateway(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadGatewayConfig(argv, env);
  const log = createLog('gateway');
  uws(); // fail now, loudly, if the native binary does not load

  fs.mkdirSync(config.runDir, { recursive: true });
  const runDirStat = fs.lstatSync(config.runDir);
  if (!runDirStat.isDirectory() || runDirStat.uid !== process.getuid?.()) {
    // /tmp/faas is in a shared folder: never use one that someone else created or a symlink.
    throw new Error(`--run-dir ${config.runDir} must be a folder owned by this user (uid ${process.getuid?.()}); it is ` +
      `${runDirStat.isSymbolicLink() ? 'a symlink' : runDirStat.isDirectory() ? `owned by uid ${runDirStat.uid}` : 'not a folder'}`);
  }
  fs.chmodSync(config.runDir, 0o755); // sandboxes (uid 65534) mount code from under it
  assertReachableBySandbox(config.runDir);
  const store = RouteStore.open(path.resolve(config.db));
  const first = store.sync();
  log({ msg: 'routes loaded', db: path.resolve(config.db), routes: store.snapshot.size, errors: first.errors, ...(first.error ? { error: first.error } : {}) });

  const fleet = new Fleet({ runDir: config.runDir, workers: config.workers, reportMs: config.reportMs, policy: config.policy,
    pin: config.pin === 'on', log });
  fleet.start();
  const metrics = new GatewayMetrics();
  let stopping = false;
  const limiter = new RateLimiter();
  const started = Date.now();

  const app = createServer({
    routes: () => store.snapshot,
    invoke: (inv) => fleet.invoke(inv),
    maxBodyBytes: config.maxBodyBytes,
    maxHeaderBytes: config.maxHeaderBytes,
    maxInFlight: config.maxInFlight,
    draining: () => stopping,
    limiter,
    log,
    observe: (route, status, ms, cold, code) => metrics.observe(route, status, ms, cold, code),
  });
  const admin = createAdminServer({
    readiness: () => readiness(store, fleet),
    metrics: () => metrics.render(gauges(store, fleet, limiter, started)),
    workers: () => workersView(fleet),
    routes: () => store.status(),
  });

  const keepWarm = (): void => fleet.keepWarm([...store.snapshot.routes.values()].filter((r) => r.config.minWarm > 0));
  keepWarm();
  const syncTimer = setInterval(() => {
    const outcome = store.sync();
    if (outcome.changed > 0 || !outcome.ok) log({ level: outcome.ok ? 'info' : 'warn', msg: 'routes synced', ...outcome });
    if (outcome.changed > 0) keepWarm();
  }, config.syncMs);

  await waitForWorkers(fleet, config, log);
  const http = await listen(app, config.host, config.port);
  const adminListen = await listen(admin, '127.0.0.1', config.adminPort);
  process.stdout.write(`listening http=${http.port} admin=${adminListen.port}\n`);
  log({ msg: 'gateway ready', http: http.port, admin: adminListen.port, workers: config.workers, policy: config.policy, pin: config.pin });

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log({ msg: 'shutting down', signal });
    uws().us_listen_socket_close(http.socket);
    clearInterval(syncTimer);
    const deadline = Date.now() + DRAIN_GRACE_MS;
    while (inFlight(fleet) > 0 && Date.now() < deadline) await sleep(20);
    uws().us_listen_socket_close(adminListen.socket);
    await fleet.stop();
    store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** "Ready to serve" means workers up: wait until each spawned worker has reported and connected. */
async function waitForWorkers(fleet: Fleet, config: GatewayConfig, log: Log): Promise<void> {
  const deadline = Date.now() + WORKERS_UP_TIMEOUT_MS;
  while (fleet.available().length < config.workers) {
    if (Date.now() > deadline) {
      log({ level: 'warn', msg: 'not every worker is up; serving with those that are', up: fleet.available().length, wanted: config.workers });
      return;
    }
    await sleep(25);
  }
}

function inFlight(fleet: Fleet): number {
  let n = 0;
  for (const w of fleet.workers.values()) n += w.inFlight;
  return n;
}

function readiness(store: RouteStore, fleet: Fleet): { ready: boolean } & Record<string, unknown> {
  const status = store.status();
  const up = fleet.available().length;
  const reasons: string[] = [];
  if (up === 0) reasons.push('no worker is connected and reporting');
  if (status.lastSuccessAt === undefined) reasons.push(`routes have never loaded: ${status.lastError ?? 'no sync yet'}`);
  return {
    ready: reasons.length === 0,
    reasons,
    workers: { up, known: fleet.workers.size },
    config: { lastSyncAt: status.lastSyncAt, lastSuccessAt: status.lastSuccessAt, ...(status.lastError ? { lastError: status.lastError, servingFromMemory: true } : {}) },
  };
}

function workersView(fleet: Fleet): unknown {
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
      available: w.connected && now - w.lastReportMs <= fleet.staleAfterMs,
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
    };
  });
}

function gauges(store: RouteStore, fleet: Fleet, limiter: RateLimiter, startedMs: number): Sample[] {
  const now = Date.now();
  const ws = [...fleet.workers.values()];
  const per = (name: string, help: string, value: (w: (typeof ws)[number]) => number): Sample =>
    ({ name, help, type: 'gauge', values: ws.map((w) => [{ worker: w.id }, value(w)] as const) });
  const status = store.status();
  const dg = fleet.datagramCounters();
  return [
    per('faas_worker_score', 'Smoothed load score reported by the worker, 0-100.', (w) => w.report?.score ?? NaN),
    per('faas_worker_cpu', 'Smoothed CPU part of the score, 0-100.', (w) => w.report?.cpu ?? NaN),
    per('faas_worker_mem', 'Smoothed memory part of the score, 0-100.', (w) => w.report?.mem ?? NaN),
    per('faas_worker_io', 'Smoothed IO part of the score, 0-100.', (w) => w.report?.io ?? NaN),
    per('faas_worker_in_flight', 'Calls the gateway has in flight on the worker.', (w) => w.inFlight),
    per('faas_worker_report_age_seconds', 'Seconds since the worker last reported.', (w) => (now - w.lastReportMs) / 1000),
    per('faas_worker_restarts', 'Times the supervisor restarted the worker.', (w) => fleet.supervisedInfo(w.id)?.restarts ?? 0),
    { name: 'faas_datagrams_received_total', help: 'Load-report datagrams received.', type: 'counter', values: [[{}, dg.received]] },
    { name: 'faas_datagrams_missed_total', help: 'Load reports workers numbered that never arrived (gaps in seq).', type: 'counter',
      values: [[{}, ws.reduce((n, w) => n + w.missedReports, 0)]] },
    { name: 'faas_datagrams_dropped_total', help: 'Load-report datagrams dropped, by reason.', type: 'counter',
      values: Object.entries(dg.dropped).map(([reason, n]) => [{ reason }, n] as const) },
    { name: 'faas_routes', help: 'Routes being served.', type: 'gauge', values: [[{}, store.snapshot.size]] },
    { name: 'faas_config_sync_age_seconds', help: 'Seconds since routes were last synced successfully.', type: 'gauge',
      values: [[{}, status.lastSuccessAt === undefined ? NaN : (now - status.lastSuccessAt) / 1000]] },
    { name: 'faas_config_errors', help: 'Rows the gateway cannot use (serving the last good config or nothing).', type: 'gauge',
      values: [[{}, status.routes.filter((r) => r.state !== 'ok').length]] },
    { name: 'faas_config_sync_failing', help: '1 while the database cannot be read and routes are served from memory.', type: 'gauge',
      values: [[{}, status.lastError ? 1 : 0]] },
    { name: 'faas_api_keys', help: 'API keys the gateway accepts (api_keys rows).', type: 'gauge', values: [[{}, store.snapshot.keys.size]] },
    { name: 'faas_rate_limit_buckets', help: 'Token buckets held for rate-limited routes (one per route and client not at full burst).', type: 'gauge',
      values: [[{}, limiter.size]] },
    { name: 'faas_rate_limit_evicted_total', help: 'Buckets dropped to stay under the cap while not full (more clients than room).', type: 'counter',
      values: [[{}, limiter.evicted]] },
    ...processMemory(),
    { name: 'faas_uptime_seconds', help: 'Seconds since the gateway started.', type: 'gauge', values: [[{}, (now - startedMs) / 1000]] },
  ];
}

/** The gateway process's own memory, under the names prom-client's default metrics use. */
function processMemory(): Sample[] {
  const m = process.memoryUsage();
  const gauge = (name: string, help: string, value: number): Sample => ({ name, help, type: 'gauge', values: [[{}, value]] });
  return [
    gauge('process_resident_memory_bytes', 'Resident memory of the gateway process.', m.rss),
    gauge('nodejs_heap_size_used_bytes', 'V8 heap in use in the gateway (what a leak would grow).', m.heapUsed),
    gauge('nodejs_heap_size_total_bytes', 'V8 heap reserved by the gateway.', m.heapTotal),
    gauge('nodejs_external_memory_bytes', 'Memory held outside the V8 heap by the gateway (Buffers).', m.external),
  ];
}

/**
 * bubblewrap runs as uid 65534 and must reach RUN_DIR/code and RUN_DIR/runtime to mount them:
 * every folder above the run dir must let others through (o+x). Say so now, not at the first call.
 */
function assertReachableBySandbox(runDir: string): void {
  for (let dir = path.dirname(runDir); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    if ((st.mode & 0o001) === 0 && st.uid !== SANDBOX_UID) {
      throw new Error(`--run-dir ${runDir}: the sandbox user (uid ${SANDBOX_UID}) cannot reach it because ${dir} is mode ` +
        `${(st.mode & 0o777).toString(8)} (needs o+x); choose a run dir under /tmp or run chmod o+x ${dir}`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
