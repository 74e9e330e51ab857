// Composition root of the gateway: read config, build every module, wire them, own signals
// and shutdown. Nothing imports this file but the CLI.
import fs from 'node:fs';
import path from 'node:path';
import { readTokenFile, TokenCheck } from './admin-token.js';
import { AsyncInvocations } from './async/async-invocations.js';
import { ConfigError, loadGatewayConfig, type GatewayConfig } from './config.js';
import { Fleet } from './fleet/fleet.js';
import { createAdminServer } from './http/admin.js';
import { startAgentCheck } from './http/agent-check.js';
import { DASHBOARD_HTML } from './http/dashboard.js';
import { RateLimiter } from './http/rate-limit.js';
import type { ClusterRateLimiter } from './http/rate-limit-redis.js';
import { accessLine, roundMs } from './observe/access-log.js';
import { ConnectionCount } from './http/connections.js';
import { createServer } from './http/server.js';
import type { Answered } from './calls.js';
import { listen, uws } from './http/uws.js';
import type { FunctionOutput } from './fleet/worker-connection.js';
import { LiveStats } from './observe/live-stats.js';
import { scraped, statsView, workersView } from './observe/fleet-views.js';
import { LogBook, type NewLogEntry } from './observe/log-book.js';
import { GatewayMetrics } from './observe/metrics.js';
import { detectHostLimits, LIMITS, limitWarnings, unenforcedLimit, type HostLimits } from './host/host-limits.js';
import { createLog, type Log } from './protocol/log.js';
import { checkUsable } from './routes/function-config.js';
import { ClusterSync, clusterMetrics, clusterWarnings, releaseCopy, type ClusterState } from './cluster/cluster-sync.js';
import { PgFunctionStore } from './cluster/pg-function-store.js';
import { readPasswordFile } from './cluster/pg-url.js';
import type { FunctionConfig } from './protocol/messages.js';
import { FunctionStore } from './routes/function-store.js';
import { RouteStore, type SyncOutcome } from './routes/route-store.js';
import { Builds } from './build/builds.js';

const WORKERS_UP_TIMEOUT_MS = 20_000;
const DRAIN_GRACE_MS = 10_000;
const SANDBOX_UID = 65534;
/** How long the start waits for the cluster Redis's first answer (it serves at its share without it). */
const CLUSTER_REDIS_WAIT_MS = 2000;

export async function runGateway(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadGatewayConfig(argv, env);
  const adminToken = config.adminTokenFile === undefined ? undefined : readTokenFile(config.adminTokenFile);
  if (adminToken && 'error' in adminToken) throw new ConfigError([`--admin-token-file: ${adminToken.error}`]);
  const log = createLog('gateway', {}, { buffered: true });
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
  // What the sandboxes' cgroups can hold them to here: said now, on /readyz and in /metrics, and a
  // row asking for what cannot be enforced is refused unless the operator allows it.
  const host = detectHostLimits();
  const limitNotes = limitWarnings(host);
  log({ msg: 'sandbox limits', host: host.kind, cgroup: host.base ?? null, enforced: LIMITS.filter((l) => host.missing[l] === undefined) });
  for (const note of limitNotes) {
    log({ level: 'warn', msg: note, rows: config.allowUnenforcedLimits ? 'served anyway (--allow-unenforced-limits)' : 'refused with a row error (see --allow-unenforced-limits)' });
  }
  // Dependencies and Go programs, built in the background; a finished build is served at once.
  // The builder and the sandboxes (uid 65534) must reach the cache, as they reach the run dir.
  if (config.depsDir !== undefined) {
    fs.mkdirSync(config.depsDir, { recursive: true, mode: 0o755 });
    assertReachableBySandbox(path.join(config.depsDir, 'x'), '--deps-dir');
  }
  let afterBuild = (): void => {};
  const builds = new Builds({
    dir: config.depsDir ?? path.join(config.runDir, 'deps'), maxBytes: config.depsMaxMb * 1024 * 1024, log, onSettled: () => afterBuild(),
    settings: { pipIndexUrl: config.pipIndexUrl, pipFindLinks: config.pipFindLinks, goProxy: config.goProxy },
  });
  const store = RouteStore.open(path.resolve(config.db), {
    ...(!config.allowUnenforcedLimits && { hostCheck: (fn) => unenforcedLimit(fn, host) }),
    builds,
  });
  const evictBuilds = (): void => builds.evict(new Set([...store.snapshot.routes.values()].flatMap((r) => (r.config.built ? [r.config.built.dir] : []))));
  const clusterDb = config.clusterDb === undefined ? undefined : openClusterCopy(config, log);
  // Without --cluster-db a file that was a cluster copy is its own source again: now, or at a later sync if it is locked now.
  let copyReleased = clusterDb !== undefined;
  let releaseFailed = false;
  const releaseLocalCopy = (): void => {
    if (copyReleased) return;
    try {
      const was = releaseCopy(path.resolve(config.db));
      copyReleased = true;
      if (was !== undefined) log({ level: 'warn', msg: 'this database was a copy of a cluster database; without --cluster-db it is its own source again', was });
    } catch (err) {
      if (!releaseFailed) log({ level: 'warn', msg: 'this database may be a cluster copy, still read-only: it could not be released now; retrying every sync', error: (err as Error).message });
      releaseFailed = true;
    }
  };
  releaseLocalCopy();
  const first = store.sync();
  log({ msg: 'routes loaded', db: path.resolve(config.db), routes: store.snapshot.size, errors: first.errors, ...(first.error ? { error: first.error } : {}) });

  const logs = new LogBook();
  const onOutput = (o: FunctionOutput): void => {
    log({ msg: 'function output', route: o.key, requestId: o.requestId, worker: o.workerId, stream: o.stream, text: o.text });
    logs.add({ level: o.stream === 'stderr' ? 'warn' : 'info', kind: 'output', route: o.key, requestId: o.requestId, worker: o.workerId,
      stream: o.stream, text: o.text, msg: 'function output' });
  };
  const fleet = new Fleet({ runDir: config.runDir, workers: config.workers, reportMs: config.reportMs, policy: config.policy,
    pin: config.pin === 'on', log, onOutput, direct: config.dataPath === 'direct' });
  fleet.start();
  const invocations = AsyncInvocations.open({ routesDb: path.resolve(config.db), routes: () => store.snapshot, invoke: (inv) => fleet.invoke(inv), log });
  let stopping = false;
  const limiter = new RateLimiter();
  const clusterLimiter = config.clusterRedis === undefined ? undefined : await startClusterLimiter(config.clusterRedis, limiter, log);
  const started = Date.now();
  const metrics = new GatewayMetrics([...scraped(store, fleet, limiter, started, host), ...invocations.metrics(), ...builds.metrics(), ...(clusterLimiter?.metrics() ?? []),
    ...(clusterDb ? clusterMetrics(clusterDb, started) : [])]);
  const live = new LiveStats();
  const accessLog = config.accessLog === 'on' && log.enabled('info');
  let connections: ConnectionCount | undefined; // once the port is known
  const answered = (a: Answered): void => {
    metrics.observe(a);
    live.record(a);
    if (accessLog) log.write(accessLine(a));
    if (a.route === undefined) return; // the recent log is about functions; a 404 is in the access log
    const failed = a.code !== undefined;
    if (!failed && !logs.followed) return;
    const entry: NewLogEntry = { level: a.status >= 500 ? 'error' : 'info', kind: failed ? 'error' : 'access', route: a.route, requestId: a.requestId,
      traceId: a.traceId, status: a.status, ms: roundMs(a.ms), cold: a.cold, msg: a.message ?? `${a.method} ${a.path} ${a.status}`,
      ...(a.worker !== undefined && { worker: a.worker }), ...(failed && { code: a.code }) };
    if (failed) logs.add(entry);
    else logs.publish(entry);
  };

  const app = createServer({
    routes: () => store.snapshot,
    building: (key) => store.statusOf(key)?.building,
    invoke: (inv) => fleet.invoke(inv),
    maxBodyBytes: config.maxBodyBytes,
    maxHeaderBytes: config.maxHeaderBytes,
    maxInFlight: config.maxInFlight,
    bodyTimeoutMs: config.bodyTimeoutMs,
    excessConnections: () => connections?.excess ?? 0,
    draining: () => stopping,
    limiter,
    clusterLimiter,
    trustedProxies: config.trustedProxies,
    serverHeader: config.serverHeader,
    log,
    asyncCalls: invocations.calls,
    observe: answered,
  });
  const usable = (fn: FunctionConfig): string | undefined => checkUsable(fn) ?? (config.allowUnenforcedLimits ? undefined : unenforcedLimit(fn, host));
  const admin = createAdminServer({
    readiness: () => readiness(store, fleet, host, [...limitNotes, ...(clusterLimiter?.warnings() ?? []),
      ...(clusterDb ? clusterWarnings(clusterDb.state(), config.syncMs) : [])], clusterDb?.state()),
    metrics: () => metrics.render(),
    metricsContentType: metrics.contentType,
    workers: () => workersView(fleet),
    routes: () => {
      const status = store.status();
      return clusterDb ? { ...status, routes: clusterDb.inClusterVersions(status.routes) } : status;
    },
    stats: () => statsView(store, fleet, live, clusterDb?.state()),
    history: () => ({ workers: live.workerHistory() }),
    logs,
    dashboard: DASHBOARD_HTML,
    invocations: invocations.api,
    access: adminToken ? { token: new TokenCheck(adminToken.token) } : {},
    api: {
      // The management API checks a row as the sync will: its rules, and what this host can enforce.
      // With --cluster-db it writes to PostgreSQL, reads it back into the copy, then answers (src/cluster/).
      store: clusterDb ? new PgFunctionStore(config.clusterDb!, clusterDb.password, usable) : new FunctionStore(path.resolve(config.db), usable),
      syncNow: async () => {
        const read = await clusterDb?.readNow();
        const synced = syncRoutes();
        return read === undefined || read.ok ? synced : read;
      },
      routeStatus: (key) => (clusterDb ? clusterDb.inClusterVersions([store.statusOf(key)])[0] : store.statusOf(key)),
      syncMs: config.syncMs,
      // POST /api/v1/functions/{key}/invoke: the public port's call path, counted as its calls are.
      invoke: { table: () => store.snapshot, call: (inv) => fleet.invoke(inv), logs, maxBodyBytes: config.maxBodyBytes, observe: answered },
    },
  });
  const sampler = setInterval(() => {
    live.sampleWorkers(new Map([...fleet.workers.values()].map((w) => [w.id,
      { score: w.report?.score ?? null, cpu: w.report?.cpu ?? null, mem: w.report?.mem ?? null, io: w.report?.io ?? null, inFlight: w.inFlight }])));
    const table = store.snapshot;
    live.prune((key) => table.get(key) !== undefined, (id) => fleet.workers.has(id));
    metrics.forgetRoutes((key) => table.get(key) !== undefined);
    invocations.forgetRoutes((key) => table.get(key) !== undefined);
  }, 1000);
  sampler.unref();

  const keepWarm = (): void => fleet.keepWarm([...store.snapshot.routes.values()].filter((r) => r.config.minWarm > 0));
  keepWarm();
  // Every sync period, and at once after a write through the management API (which answers when it is served).
  const syncRoutes = (): SyncOutcome => {
    releaseLocalCopy();
    const outcome = store.sync();
    if (outcome.changed > 0 || !outcome.ok) log({ level: outcome.ok ? 'info' : 'warn', msg: 'routes synced', ...outcome });
    if (outcome.changed > 0) {
      keepWarm();
      evictBuilds();
    }
    return outcome;
  };
  afterBuild = () => void syncRoutes();
  evictBuilds();
  const syncTimer = setInterval(syncRoutes, config.syncMs);
  clusterDb?.start(() => syncRoutes()); // each copy that changed something is served at once

  await waitForWorkers(fleet, config, log);
  await clusterLimiter?.ready(CLUSTER_REDIS_WAIT_MS);
  const http = await listen(app, config.host, config.port);
  if (config.maxConnections > 0) {
    const counted = new ConnectionCount(http.port, config.maxConnections);
    connections = counted;
    setInterval(() => counted.refresh(), 1000).unref();
  }
  const adminListen = await listen(admin.app, config.adminHost, config.adminPort);
  const agent = config.agentPort === undefined ? undefined : await startAgentCheck({ host: config.agentHost, port: config.agentPort, log,
    state: () => ({ stopping, available: fleet.available(), known: fleet.workers.size }) }); // HAProxy's: drain while stopping
  invocations.start([http.port, adminListen.port]); // recovers what a stopped gateway left, then runs the queue
  process.stdout.write(`listening http=${http.port} admin=${adminListen.port}\n`);
  log({ msg: 'gateway ready', http: http.port, admin: adminListen.port, adminHost: config.adminHost, adminToken: adminToken !== undefined, workers: config.workers, policy: config.policy, pin: config.pin, dataPath: config.dataPath });

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    invocations.stop(); // no new async attempts; those running finish within the grace below
    log({ msg: 'shutting down', signal });
    uws().us_listen_socket_close(http.socket);
    clearInterval(syncTimer);
    const deadline = Date.now() + DRAIN_GRACE_MS;
    while (inFlight(fleet) > 0 && Date.now() < deadline) await sleep(20);
    uws().us_listen_socket_close(adminListen.socket);
    admin.close();
    agent?.close();
    clearInterval(sampler);
    await fleet.stop();
    await clusterLimiter?.close();
    await clusterDb?.close();
    invocations.close();
    store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** --cluster-redis: rate limits kept in Redis, across gateways (ioredis is loaded only then). */
async function startClusterLimiter(url: string, local: RateLimiter, log: Log): Promise<ClusterRateLimiter> {
  const { ClusterRateLimiter, NODES_BEFORE_FIRST_COUNT } = await import('./http/rate-limit-redis.js');
  const cluster = new ClusterRateLimiter({ url, log, local }); // its fallback's buckets are counted as the local limiter's
  log({ msg: 'cluster rate limits on: token buckets in Redis, shared by every gateway using it', redis: cluster.address, node: cluster.nodeId,
    fallback: `per node, at 1/n of each limit, n the gateways last counted live (${NODES_BEFORE_FIRST_COUNT} before a count)` });
  return cluster;
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

function readiness(store: RouteStore, fleet: Fleet, host: HostLimits, warnings: readonly string[], cluster?: ClusterState): { ready: boolean } & Record<string, unknown> {
  const status = store.health();
  const up = fleet.available().length;
  const reasons: string[] = [];
  if (up === 0) reasons.push('no worker is connected and reporting');
  if (status.lastSuccessAt === undefined) reasons.push(`routes have never loaded: ${status.lastError ?? 'no sync yet'}`);
  // A cluster node serves the cluster's config or nothing: a file never copied holds no such thing.
  if (cluster && cluster.copiedAt === undefined) reasons.push(`no copy of the cluster database yet: ${cluster.lastError ?? 'connecting'}`);
  return {
    ready: reasons.length === 0,
    reasons,
    // Ready still: a guarantee the host cannot give is said, not a reason to stop serving.
    warnings,
    limits: { host: host.kind, cgroup: host.base ?? null, enforced: LIMITS.filter((l) => host.missing[l] === undefined) },
    workers: { up, known: fleet.workers.size },
    config: { lastSyncAt: status.lastSyncAt, lastSuccessAt: status.lastSuccessAt, ...(status.lastError ? { lastError: status.lastError, servingFromMemory: true } : {}) },
    ...(cluster && { cluster }),
  };
}

/** --cluster-db: this node's database becomes a read-only copy of the cluster's PostgreSQL (src/cluster/cluster-sync.ts). */
function openClusterCopy(config: GatewayConfig, log: Log): ClusterSync {
  let password: string | undefined;
  if (config.clusterDbPasswordFile !== undefined) {
    const read = readPasswordFile(config.clusterDbPasswordFile);
    if ('error' in read) throw new ConfigError([`--cluster-db-password-file: ${read.error}`]);
    password = read.value;
  }
  const sync = new ClusterSync({ url: config.clusterDb!, ...(password !== undefined && { password }), dbPath: path.resolve(config.db),
    syncMs: config.syncMs, log });
  log({ msg: 'cluster config: this database is a read-only copy of PostgreSQL, kept by LISTEN/NOTIFY and a read every sync period',
    source: config.clusterDb, password: password !== undefined ? '--cluster-db-password-file' : process.env.PGPASSFILE !== undefined ? 'PGPASSFILE' : 'none (or ~/.pgpass)' });
  return sync;
}

/**
 * bubblewrap runs as uid 65534 and must reach RUN_DIR/code and RUN_DIR/runtime to mount them:
 * every folder above the run dir must let others through (o+x). Say so now, not at the first call.
 */
function assertReachableBySandbox(runDir: string, flag = '--run-dir'): void {
  for (let dir = path.dirname(runDir); ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    if ((st.mode & 0o001) === 0 && st.uid !== SANDBOX_UID) {
      throw new Error(`${flag} ${flag === '--run-dir' ? runDir : path.dirname(runDir)}: the sandbox user (uid ${SANDBOX_UID}) cannot reach it because ${dir} is mode ` +
        `${(st.mode & 0o777).toString(8)} (needs o+x); choose a folder under /tmp or run chmod o+x ${dir}`);
    }
    if (dir === path.dirname(dir)) return;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
