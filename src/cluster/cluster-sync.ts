// --cluster-db: keeps this node's SQLite a copy of the cluster's PostgreSQL (Kong's "traditional
// mode": every node caches the config it reads from one database). The route store then serves
// from SQLite exactly as on one node; nothing on the request path knows about PostgreSQL.
//
//   - One dedicated connection (a pg Client, not a pool: LISTEN belongs to a session) that
//     migrates the cluster schema (pg-schema.ts), LISTENs on faas_config, then reads.
//   - A read: one REPEATABLE READ snapshot of faas_config.version, functions and api_keys, written
//     into SQLite in one transaction (only the rows that differ), then the route store syncs at
//     once. It runs on every notification (debounced: a burst of statements is one read) and every
//     sync period as a backstop for a notification lost with a connection; the backstop skips the
//     copy when faas_config.version has not moved.
//   - Any error on the connection (PostgreSQL stopped, the link cut: the backstop's query then
//     times out) ends it; reconnects back off from 250 ms to 5 s, and each re-LISTENs before it
//     reads, so nothing committed in between is missed.
//   - Meanwhile the node serves its last copy. A config store outage must not drain every node:
//     /readyz stays ready with a warning, and faas_cluster_sync_age_seconds grows.
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Scraped } from '../observe/metrics.js';
import type { RouteStatus } from '../routes/route-store.js';
import type { Log } from '../protocol/log.js';
import { migratePg, NOTIFY_CHANNEL } from './pg-schema.js';

const DEBOUNCE_MS = 20;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;
const CONNECT_TIMEOUT_MS = 3000;
/** A read that takes longer means the link or the server is gone (a cut link never errors by itself). */
const QUERY_TIMEOUT_MS = 3000;
const BUSY_TIMEOUT_MS = 250;

export interface ClusterSyncOptions {
  /** postgres://user@host:port/db, without a password (config.ts refuses one in the URL). */
  readonly url: string;
  readonly password?: string;
  /** The node's SQLite file: the copy. */
  readonly dbPath: string;
  readonly syncMs: number;
  readonly log: Log;
}

export interface ClusterState {
  /** Where the config comes from, without a password. */
  readonly source: string;
  readonly connected: boolean;
  /** Unix ms of the last read that succeeded (changed or not). */
  readonly lastSyncAt?: number;
  /** Unix ms of the last copy made into this file, by this run or an earlier one; undefined: none yet. */
  readonly copiedAt?: number;
  /** faas_config.version of the copy. */
  readonly version?: number;
  readonly lastError?: string;
  readonly reads: number;
  readonly errors: number;
}

interface Row { k: string; v: string; version: string }
interface KeyRow { name: string; hash: string; created: string }

export class ClusterSync {
  private client: pg.Client | undefined;
  private connected = false;
  private closed = false;
  private backoffMs = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backstop: NodeJS.Timeout;
  private debounce: NodeJS.Timeout | undefined;
  /** Reads run one after another: each waits for the one before. */
  private reads$: Promise<unknown> = Promise.resolve();
  private copiedVersion: number | undefined;
  private lastSyncAt: number | undefined;
  private copiedAt: number | undefined;
  private lastError: string | undefined;
  private reads = 0;
  private errors = 0;
  private readonly local: Database.Database;

  /** The password (from --cluster-db-password-file), for the admin API's own connections. */
  readonly password: string | undefined;

  constructor(private readonly opts: ClusterSyncOptions) {
    this.password = opts.password;
    this.local = new Database(opts.dbPath, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    try {
      this.markCopy();
      this.copiedAt = (this.local.prepare('SELECT copied FROM cluster_source WHERE id = 1').pluck().get() as number | null) ?? undefined;
    } catch (err) {
      // Locked (or not migrated yet) at start: the first copy marks it. Until then the node is not ready.
      this.lastError = `${opts.dbPath} could not be marked as a copy yet: ${(err as Error).message}`;
    }
    this.backstop = setInterval(() => {
      if (this.connected) void this.read(false);
    }, opts.syncMs);
    this.backstop.unref();
  }

  private onCopied: () => void = () => {};

  /** Connects in the background (the node serves its copy meanwhile); `onCopied` runs after each read that changed the copy. */
  start(onCopied: () => void): void {
    this.onCopied = onCopied;
    void this.connect();
  }

  state(): ClusterState {
    return {
      source: this.opts.url, connected: this.connected, reads: this.reads, errors: this.errors,
      ...(this.lastSyncAt !== undefined && { lastSyncAt: this.lastSyncAt }),
      ...(this.copiedAt !== undefined && { copiedAt: this.copiedAt }),
      ...(this.copiedVersion !== undefined && { version: this.copiedVersion }),
      ...(this.lastError !== undefined && { lastError: this.lastError }),
    };
  }

  /**
   * What GET /routes says of keys, with the cluster's versions in place of this copy's change-log
   * seqs, so every node gives the same versions and ETags. A node still serving an older config
   * than its copy holds (the row is refused here) knows no cluster version for it: none is given.
   */
  inClusterVersions<T extends RouteStatus | undefined>(statuses: readonly T[]): T[] {
    let rows: Array<[string, number, number]> = [];
    try {
      rows = this.local.prepare('SELECT cv.k, c.seq, cv.version FROM cluster_versions cv JOIN functions_changes c ON c.k = cv.k').raw().all() as typeof rows;
    } catch {
      // The file cannot be read now (locked, not migrated): no cluster version is known, none is given.
    }
    const byKey = new Map(rows.map(([k, seq, version]) => [k, { seq, version }]));
    return statuses.map((status) => {
      if (status?.version === undefined) return status;
      const known = byKey.get(status.key);
      const { version: _local, ...rest } = status;
      return (known?.seq === status.version ? { ...rest, version: known.version } : rest) as T;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.backstop);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.debounce);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
    this.local.close();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const url = new URL(this.opts.url);
    if (this.opts.password !== undefined) url.password = encodeURIComponent(this.opts.password);
    const client = new pg.Client({
      connectionString: url.toString(), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS,
      keepAlive: true, keepAliveInitialDelayMillis: 5000, application_name: 'faas-gateway',
    });
    this.client = client;
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('the connection closed')));
    client.on('notification', (n) => {
      if (n.channel !== NOTIFY_CHANNEL) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.read(false), DEBOUNCE_MS);
    });
    try {
      await client.connect();
      const migrated = await migratePg(client);
      if (migrated.from !== migrated.to) this.opts.log({ msg: 'cluster schema migrated', source: this.opts.url, from: migrated.from, to: migrated.to });
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      this.lost(client, err);
      return;
    }
    if (client !== this.client) return;
    this.connected = true;
    this.backoffMs = BACKOFF_MIN_MS;
    this.opts.log({ msg: 'cluster config connected', source: this.opts.url });
    // A notification may have been missed while disconnected: read in full.
    void this.read(true);
  }

  /** Ends this connection (once) and schedules the next. */
  private lost(client: pg.Client, err: unknown): void {
    if (client !== this.client || this.closed) return;
    this.client = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    this.errors++;
    const message = err instanceof Error ? err.message : String(err);
    if (wasConnected || this.lastError !== message) {
      this.opts.log({ level: 'warn', msg: 'cluster config unreachable: serving the last copy', source: this.opts.url, error: message, retryMs: this.backoffMs });
    }
    this.lastError = message;
    client.removeAllListeners('notification');
    client.on('error', () => {}); // a late socket error on an abandoned client is expected
    void client.end().catch(() => {});
    this.reconnectTimer = setTimeout(() => void this.connect(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
  }

  /**
   * Reads PostgreSQL now and copies what changed (the admin API does, after a write, so that it
   * answers once the change is served); ok false, with why, when PostgreSQL could not be read.
   */
  async readNow(): Promise<{ readonly ok: boolean; readonly error?: string }> {
    if (!this.connected) return { ok: false, error: `the cluster database is unreachable (${this.lastError ?? 'connecting'})` };
    const ok = await this.read(false);
    return ok ? { ok } : { ok, error: `the cluster database could not be read (${this.lastError ?? 'unknown'})` };
  }

  /** Queues a read after those already queued; true when it read and copied. */
  private read(full: boolean): Promise<boolean> {
    const run = this.reads$.then(() => this.readOnce(full));
    this.reads$ = run;
    return run;
  }

  /** Reads PostgreSQL in one snapshot and copies what differs; `full` copies even when the version has not moved. */
  private async readOnce(full: boolean): Promise<boolean> {
    const client = this.client;
    if (client === undefined || !this.connected) return false;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const version = Number((await client.query<{ version: string }>('SELECT version FROM faas_config WHERE id = 1')).rows[0]?.version ?? 0);
      let rows: Row[] | undefined;
      let keys: KeyRow[] | undefined;
      if (full || version !== this.copiedVersion) {
        rows = (await client.query<Row>('SELECT k, v, version FROM functions')).rows;
        keys = (await client.query<KeyRow>('SELECT name, hash, created FROM api_keys')).rows;
      }
      await client.query('COMMIT');
      this.reads++;
      if (rows !== undefined && keys !== undefined) return this.copyRead(version, rows, keys);
      this.copied();
      return true;
    } catch (err) {
      if (client === this.client) this.lost(client, err);
      return false;
    }
  }

  private copyRead(version: number, rows: readonly Row[], keys: readonly KeyRow[]): boolean {
    let changed: number;
    try {
      changed = this.copy(rows, keys);
    } catch (err) {
      // The local file is busy (an operator's long transaction) or broken: the next read retries.
      this.errors++;
      this.lastError = `the copy into ${this.opts.dbPath} failed: ${(err as Error).message}`;
      this.opts.log({ level: 'warn', msg: 'cluster config not copied: serving the last copy', error: this.lastError });
      return false;
    }
    this.copiedVersion = version;
    this.copiedAt = Date.now();
    this.copied();
    if (changed > 0) {
      this.opts.log({ msg: 'cluster config copied', source: this.opts.url, version, changed });
      this.onCopied();
    }
    return true;
  }

  private copied(): void {
    this.lastSyncAt = Date.now();
    this.lastError = undefined;
  }

  /** Records where this file is copied from; a copy of another database is no copy of this one: a changed URL starts over (not ready until read). */
  private markCopy(): void {
    this.local.prepare(`INSERT INTO cluster_source(id, url, since) VALUES (1, ?, ?)
      ON CONFLICT(id) DO UPDATE SET url = excluded.url, since = excluded.since, copied = NULL WHERE url IS NOT excluded.url`).run(this.opts.url, Date.now());
  }

  /** Writes PostgreSQL's rows into SQLite in one transaction, touching only what differs; returns how many rows changed. */
  private copy(rows: readonly Row[], keys: readonly KeyRow[]): number {
    const db = this.local;
    return db.transaction((): number => {
      this.markCopy();
      db.prepare('INSERT INTO cluster_writer(id) VALUES (1)').run();
      let changed = 0;
      const local = new Map((db.prepare('SELECT k, v FROM functions').raw().all() as Array<[string, string]>));
      const versions = new Map((db.prepare('SELECT k, version FROM cluster_versions').raw().all() as Array<[string, number]>));
      const upsert = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v');
      const setVersion = db.prepare('INSERT INTO cluster_versions(k, version) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET version = excluded.version');
      const seen = new Set<string>();
      for (const row of rows) {
        seen.add(row.k);
        const version = Number(row.version);
        if (local.get(row.k) !== row.v) {
          upsert.run(row.k, row.v);
          changed++;
        }
        if (versions.get(row.k) !== version) setVersion.run(row.k, version);
      }
      const drop = db.prepare('DELETE FROM functions WHERE k = ?');
      const dropVersion = db.prepare('DELETE FROM cluster_versions WHERE k = ?');
      for (const k of local.keys()) {
        if (!seen.has(k)) {
          drop.run(k);
          changed++;
        }
      }
      for (const k of versions.keys()) if (!seen.has(k)) dropVersion.run(k);

      const localKeys = new Map((db.prepare('SELECT name, hash FROM api_keys').raw().all() as Array<[string, string]>));
      const upsertKey = db.prepare('INSERT INTO api_keys(name, hash, created) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET hash = excluded.hash, created = excluded.created');
      const names = new Set<string>();
      for (const key of keys) {
        names.add(key.name);
        if (localKeys.get(key.name) !== key.hash) {
          // A hash moved to another name would collide on the UNIQUE hash: free it first.
          db.prepare('DELETE FROM api_keys WHERE hash = ? AND name <> ?').run(key.hash, key.name);
          upsertKey.run(key.name, key.hash, Number(key.created));
          changed++;
        }
      }
      const dropKey = db.prepare('DELETE FROM api_keys WHERE name = ?');
      for (const name of localKeys.keys()) {
        if (!names.has(name)) {
          dropKey.run(name);
          changed++;
        }
      }
      db.prepare('UPDATE cluster_source SET copied = ? WHERE id = 1').run(Date.now());
      db.prepare('DELETE FROM cluster_writer').run();
      return changed;
    }).immediate();
  }
}

/**
 * A database that was a cluster copy and is now used without --cluster-db becomes its own source
 * again; returns where it was copied from (undefined: it was no copy). Throws when the file cannot
 * be written now (another writer holds it): the caller tries again later.
 */
export function releaseCopy(dbPath: string): string | undefined {
  const db = new Database(dbPath, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    // A database from before schema 7 (not migrated yet: its lock was held at start) was never a copy.
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cluster_source'").get() === undefined) return undefined;
    const row = db.prepare('SELECT url FROM cluster_source WHERE id = 1').get() as { url: string } | undefined;
    if (row !== undefined) db.prepare('DELETE FROM cluster_source').run();
    return row?.url;
  } finally {
    db.close();
  }
}

/** What /readyz warns of (ready still: the node serves its copy). */
export function clusterWarnings(state: ClusterState, syncMs: number, now = Date.now()): string[] {
  const age = state.lastSyncAt === undefined ? undefined : now - state.lastSyncAt;
  if (!state.connected) {
    return [`the cluster database ${state.source} is unreachable (${state.lastError ?? 'connecting'}): serving the copy of ` +
      `${state.lastSyncAt === undefined ? 'an earlier run (none read yet this run)' : `${Math.round(age! / 1000)} s ago`}`];
  }
  if (age !== undefined && age > 3 * syncMs) return [`the cluster database ${state.source} has not been read for ${Math.round(age / 1000)} s: ${state.lastError ?? 'reads are late'}`];
  if (state.lastError !== undefined) return [`the cluster config could not be copied: ${state.lastError}`];
  return [];
}

/** The cluster copy's metrics, read at each scrape. */
export function clusterMetrics(sync: ClusterSync, startedMs: number): Scraped[] {
  return [
    { name: 'faas_cluster_sync_age_seconds', help: 'Seconds since the cluster database was last read (since the gateway started, before a first read).', type: 'gauge',
      read: () => [[{}, (Date.now() - (sync.state().lastSyncAt ?? startedMs)) / 1000]] },
    { name: 'faas_cluster_connected', help: '1 while the connection to the cluster database is up, else 0 (serving the last copy).', type: 'gauge',
      read: () => [[{}, sync.state().connected ? 1 : 0]] },
    { name: 'faas_cluster_reads_total', help: 'Reads of the cluster database that succeeded.', type: 'counter', read: () => [[{}, sync.state().reads]] },
    { name: 'faas_cluster_errors_total', help: 'Connections lost and copies failed.', type: 'counter', read: () => [[{}, sync.state().errors]] },
  ];
}
