// The whole several-node setup in one call: hosts gw1..gw3, pg, redis and lb on a bridge
// (cluster-hosts.mjs), PostgreSQL, Redis, three gateways and HAProxy on them (cluster-services.mjs),
// the cluster flags passed only where the built gateway has them (clusterFeatures()).
//
// Routes: with --cluster-db an operator's SQL goes to PostgreSQL (`sql`); without it, the same
// row is written into each node's own SQLite, so the load-balancing checks still have routes.
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Hosts, removeStale } from './cluster-hosts.mjs';
import { clusterFeatures, startGateway, tail, startHaproxy, startPostgres, startRedis } from './cluster-services.mjs';

export const GATEWAYS = ['gw1', 'gw2', 'gw3'];
export const AGENT_PORT = 9300; // examples/haproxy.cfg's
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Builds and starts everything; on any failure what was started is torn down before the error is thrown. */
export async function startCluster({ syncMs = 4000, log = () => {} } = {}) {
  const features = clusterFeatures();
  const stale = removeStale();
  if (stale.length) log(`removed what an earlier run left: ${stale.join(', ')}`);
  const hosts = Hosts.create([...GATEWAYS, 'pg', 'redis', 'lb']);
  const onExit = () => hosts.teardownSync();
  process.once('exit', onExit);
  try {
    const [db, redis] = await Promise.all([startPostgres(hosts, 'pg'), startRedis(hosts, 'redis')]);
    log(`postgres on ${db.addr}:${db.port}, redis on ${redis.addr}:${redis.port}`);
    const cluster = {
      trustedProxies: hosts.addr('lb'),
      ...(features.clusterDb && { db }),
      ...(features.clusterRedis && { redis }),
      ...(features.agentPort && { agentPort: AGENT_PORT }),
    };
    // All at once, as a fleet starts: the first start creates PostgreSQL's tables under the others.
    const gateways = await Promise.all(GATEWAYS.map((h) => startGateway(hosts, h, { syncMs, cluster })));
    log(`gateways ${gateways.map((g) => `${g.name} ${g.url}`).join(', ')} (${gateways[0].args.slice(2).join(' ')})`);
    const lb = await startHaproxy(hosts, 'lb', { gateways, agentPort: cluster.agentPort });
    log(`haproxy on ${lb.url} (config made from examples/haproxy.cfg; inter ${lb.interMs} ms, fall ${lb.fall})`);
    let operator = features.clusterDb ? new pg.Client(db.client) : undefined;
    if (operator) {
      operator.on('error', () => {}); // PostgreSQL stopped under it: reconnect() makes a new one
      await operator.connect();
      await waitForTable(operator);
    }
    return {
      hosts, db, redis, lb, gateways, features, syncMs,
      /** An operator's SQL on PostgreSQL (cluster mode only). */
      sql: (text, params) => operator.query(text, params),
      /** A new operator connection (after PostgreSQL was stopped and started). */
      reconnect: async () => {
        await operator?.end().catch(() => {});
        operator = new pg.Client(db.client);
        operator.on('error', () => {});
        await operator.connect();
      },
      /** Puts a route on every node: PostgreSQL when the gateways read it, else each node's SQLite. */
      put: async (key, config) => {
        const v = JSON.stringify(config);
        if (operator) {
          await operator.query('INSERT INTO functions(k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v', [key, v]);
          return;
        }
        for (const g of gateways) {
          const sqlite = new Database(path.join(g.dir, 'faas.db'));
          sqlite.pragma('busy_timeout = 5000');
          sqlite.prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run(key, v);
          sqlite.close();
        }
      },
      teardown: async () => {
        process.removeListener('exit', onExit);
        await operator?.end().catch(() => {});
        await hosts.teardown();
      },
    };
  } catch (err) {
    process.removeListener('exit', onExit);
    // What each process said, before the run's dir (and its logs) is deleted.
    const logs = hosts.procs.map((p) => `--- ${p.name} (${p.log}):\n${tail(p.log, 15)}`).join('\n');
    await hosts.teardown();
    err.message += `\n${logs}`;
    throw err;
  }
}

/** The gateways create PostgreSQL's tables; an operator writes once `functions` is there. */
async function waitForTable(client, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await client.query("SELECT to_regclass('public.functions') AS t");
    if (rows[0].t !== null) return;
    await sleep(100);
  }
  throw new Error(`no functions table in PostgreSQL ${timeoutMs} ms after the gateways started (they create it)`);
}

/** Waits until `served` holds on every gateway for `routePath` (after a put). */
export async function servedEverywhere(gateways, routePath, served, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  const last = {};
  for (const g of gateways) {
    for (;;) {
      let ok = false;
      try {
        const res = await fetch(`${g.url}${routePath}`, { signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        last[g.name] = `${res.status} ${text.slice(0, 120)}`;
        ok = served({ status: res.status, text });
      } catch (err) {
        last[g.name] = String(err);
      }
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`${routePath} not served as expected on ${g.name} within ${timeoutMs} ms: ${last[g.name]}`);
      await sleep(50);
    }
  }
}
