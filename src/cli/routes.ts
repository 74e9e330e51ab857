// `faas routes`: what the gateway serves now (GET /routes), or, when no gateway answers, the
// rows of the database marked as not synced. `faas rm METHOD:/path`: deletes a row and waits
// until the gateway has dropped it.
import fs from 'node:fs';
import { parseRouteKey } from '../routes/route-key.js';
import { AdminUnreachable, waitForSync, type RoutesView } from './admin-client.js';
import {
  ADMIN_FLAG, ADMIN_TOKEN_FLAG, adminApi, DB_FLAG, dbPath, EXIT_FAILED, EXIT_OK, HELP_FLAG, JSON_FLAG, parseArgs, refuse, syncPeriodMs, usage, type Io,
} from './args.js';
import { ago, isoTime, table } from './format.js';
import { deleteFunction, listFunctions, openForRead, openForWrite } from '../routes/function-store.js';
import { clusterTarget } from './cluster-target.js';

export const ROUTES_HELP = `Usage:
  faas routes [--admin URL] [--admin-token-file PATH] [--db PATH] [--json]

What the gateway serves now, from its GET /routes: each route's key, state (ok; stale = the
row is bad and the last good config is served; error = nothing is served; building = its
dependencies or Go program are being built, the previous version served meanwhile), runtime,
version, when its row was written, and the gateway's error for it (or what it is building);
then the state of its last sync.

When no gateway answers, says so on stderr, lists the rows of the database instead (state
"not synced"), and exits 1: what is served could not be known.

  --admin URL   FAAS_ADMIN  http://127.0.0.1:9090
  --admin-token-file PATH   FAAS_ADMIN_TOKEN_FILE: the admin API's bearer token, when the gateway has one
  --db PATH     FAAS_DB     ./data/faas.db (read only when no gateway answers)
  --json        {"source": "gateway", lastSyncAt, lastSuccessAt, lastError?, routes: [...]}
                or {"source": "database", "db", "error", routes: [{key, state: "not synced", runtime, updated}]}

Exit status: 0 listed from the gateway, 1 gateway unreachable (the database listed) or failed, 2 usage.

Examples:
  faas routes
  faas routes --json | jq -r '.routes[] | select(.state != "ok") | .key'
`;

export const RM_HELP = `Usage:
  faas rm METHOD:/path [--db PATH] [--admin URL] [--admin-token-file PATH] [--json]

Deletes the route's row, then waits (up to one sync period + 2 s) until the gateway no longer
serves it: calls then get 404 (or 405 when the path has other methods). Calls in flight finish.

Exit status: 0 removed (gone now, or no gateway answered), 1 no such row or the gateway did
not drop it in time, 2 usage.

Examples:
  faas rm GET:/hello
  faas rm POST:/api/resize --db /var/lib/faas/faas.db
`;

export async function runRoutes(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_FLAG, JSON_FLAG, DB_FLAG, ADMIN_FLAG, ADMIN_TOKEN_FLAG]);
  if (args.switches.has('--help')) {
    io.out(ROUTES_HELP);
    return EXIT_OK;
  }
  const problems = [...args.problems];
  if (args.positionals.length > 0) problems.push(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const db = dbPath(args, env, problems);
  const { url: admin, client } = adminApi(args, env, problems);
  if (problems.length > 0) return usage(io, 'routes', problems, ROUTES_HELP);
  const json = args.switches.has('--json');

  let view: RoutesView;
  try {
    view = await client.getJson<RoutesView>('/routes', io.signal);
  } catch (err) {
    if (!(err instanceof AdminUnreachable)) return refuse(io, 'routes', [(err as Error).message]);
    return fromDatabase(db, err.message, json, io);
  }
  if (json) {
    io.out(`${JSON.stringify({ source: 'gateway', admin, ...view })}\n`);
    return EXIT_OK;
  }
  io.out(routesTable(view));
  io.out(`${syncLine(view, view.routes.length, view.routes.filter((r) => r.state !== 'ok').length, Date.now())}\n`);
  return EXIT_OK;
}

export function routesTable(view: RoutesView): string {
  if (view.routes.length === 0) return 'no routes\n';
  return table(['KEY', 'STATE', 'RUNTIME', 'VERSION', 'UPDATED', 'ERROR'],
    view.routes.map((r) => [r.key, r.state, r.runtime, r.version, r.updated === undefined ? undefined : isoTime(r.updated), r.error ?? r.building]));
}

export interface SyncState {
  readonly lastSyncAt?: number | null;
  readonly lastSuccessAt?: number | null;
  readonly lastError?: string;
}

/** "sync: ok, last 0.2 s ago; 5 routes, 1 with errors", or the failure that has routes served from memory. */
export function syncLine(sync: SyncState, routes: number, errors: number, now: number): string {
  const sizes = `; ${routes} route${routes === 1 ? '' : 's'}${errors > 0 ? `, ${errors} with errors` : ''}`;
  if (sync.lastError) {
    return `sync: FAILING (last try ${ago(sync.lastSyncAt, now)}, last success ${ago(sync.lastSuccessAt, now)}; serving from memory): ${sync.lastError}${sizes}`;
  }
  return `sync: ok, last ${ago(sync.lastSuccessAt, now)}${sizes}`;
}

function fromDatabase(db: string, reason: string, json: boolean, io: Io): number {
  io.err(`faas routes: ${reason}; listing the rows of ${db} instead (not synced: gateway unreachable)\n`);
  if (!fs.existsSync(db)) return refuse(io, 'routes', [`there is no database at ${db} either (--db, FAAS_DB)`]);
  let rows;
  try {
    const conn = openForRead(db);
    try {
      rows = listFunctions(conn);
    } finally {
      conn.close();
    }
  } catch (err) {
    return refuse(io, 'routes', [`cannot read ${db}: ${(err as Error).message}`]);
  }
  const routes = rows.map((r) => ({ key: r.key, state: 'not synced', runtime: runtimeOf(r.v), updated: r.updated }));
  if (json) io.out(`${JSON.stringify({ source: 'database', db, error: reason, routes })}\n`);
  else io.out(routes.length === 0 ? 'no routes\n' : table(['KEY', 'STATE', 'RUNTIME', 'UPDATED'], routes.map((r) => [r.key, r.state, r.runtime, isoTime(r.updated)])));
  return EXIT_FAILED;
}

function runtimeOf(v: string): string | undefined {
  try {
    const runtime = (JSON.parse(v) as { runtime?: unknown }).runtime;
    return typeof runtime === 'string' ? runtime : undefined;
  } catch {
    return undefined;
  }
}

export async function runRm(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_FLAG, JSON_FLAG, DB_FLAG, ADMIN_FLAG, ADMIN_TOKEN_FLAG]);
  if (args.switches.has('--help')) {
    io.out(RM_HELP);
    return EXIT_OK;
  }
  const problems = [...args.problems];
  const [key, ...extra] = args.positionals;
  if (key === undefined) problems.push('missing METHOD:/path, the route to remove');
  if (extra.length > 0) problems.push(`unexpected argument ${JSON.stringify(extra[0])}`);
  const db = dbPath(args, env, problems);
  const { url: admin, client } = adminApi(args, env, problems);
  if (problems.length > 0) return usage(io, 'rm', problems, RM_HELP);
  const parsed = parseRouteKey(key!);
  if (!parsed.ok) return refuse(io, 'rm', [`METHOD:/path: ${parsed.error}`]);

  let removed: boolean;
  const cluster = clusterTarget(db, env); // a cluster node's database is a copy: delete in PostgreSQL
  if (cluster !== undefined && 'error' in cluster) return refuse(io, 'rm', [cluster.error]);
  const where = cluster?.url ?? db;
  try {
    if (cluster !== undefined) {
      removed = (await cluster.store.remove(key!, () => undefined).finally(() => cluster.store.close())).ok;
    } else {
      const conn = openForWrite(db);
      try {
        removed = deleteFunction(conn, key!);
      } finally {
        conn.close();
      }
    }
  } catch (err) {
    return refuse(io, 'rm', [`${where}: ${(err as Error).message}`]);
  }
  if (!removed) return refuse(io, 'rm', [`no route ${key} in ${where} (faas routes lists them)`]);
  const committedAt = Date.now();
  const json = args.switches.has('--json');
  if (!json) io.out(`${key}: deleted from ${where}\n`);

  const outcome = await waitForSync(client, { key: key!, committedAt, timeoutMs: syncPeriodMs(env) + 2000, ...(io.signal && { signal: io.signal }) });
  let code = EXIT_OK;
  let state: string;
  let line: string;
  if (outcome.kind === 'done') {
    state = 'gone';
    line = `gone now: the gateway at ${admin} no longer serves ${key}`;
  } else if (outcome.kind === 'unreachable') {
    state = 'no-gateway';
    line = `${outcome.reason}; a gateway syncing ${db} drops it within one sync period (${syncPeriodMs(env) / 1000} s by default)`;
  } else {
    code = EXIT_FAILED;
    state = 'timeout';
    const reason = outcome.kind === 'timeout' ? outcome.view?.lastError ?? outcome.reason : undefined;
    line = `the gateway at ${admin} still serves ${key} after ${(syncPeriodMs(env) + 2000) / 1000} s${reason ? ` (${reason})` : ''}. Is it using ${db}?`;
  }
  if (json) io.out(`${JSON.stringify({ key, db, removed: true, state, admin })}\n`);
  else if (code === EXIT_OK) io.out(`${line}\n`);
  if (code !== EXIT_OK) io.err(`faas rm: ${line}\n`);
  return code;
}
