// The routes the gateway serves: read from SQLite (schema.ts), turned into an immutable
// RouteTable that the request path reads with one Map.get.
//
// sync() is incremental and cheap when nothing changed, because it runs every period on the
// event loop (better-sqlite3 is synchronous):
//   1. PRAGMA data_version changes only when another connection committed; unchanged means
//      there is nothing to read (one pragma, no table scan, whatever the table size);
//   2. otherwise one query joins the change log to the rows: every key whose seq is above the
//      last one seen, with its row, or no row for a delete (schema.ts says why no commit is
//      ever missed);
//   3. each row is checked (route-key.ts, function-config.ts); a bad one keeps the last good
//      config for its key and shows as 'stale' on the admin API. One bad row never takes the
//      others down. A row that needs a build (src/build/: dependencies, a Go program) waits
//      for it as 'building', the last good config served meanwhile, and is tried each sync.
// A new RouteTable is built only when something changed, so a request holding a Route keeps
// the config it started with. The price is one Map copy per sync that changes anything (about
// 30 ms at 100k routes, microseconds at hundreds); a sync that changes nothing costs a pragma. The database failing (locked beyond the busy timeout, unreadable,
// corrupt, schema gone) never throws out of sync(): the last snapshot keeps serving, lastError
// says why, and the next call retries.
//
// The file itself changing under the gateway is noticed too, each sync, for the price of a stat:
//   - replaced (mv, cp to a new inode, a restore by rename): the new file is opened and read in
//     full; until a good file is in place (missing, a folder, not a database) the last snapshot
//     keeps serving and lastError names the problem;
//   - its change log gone backwards (`sqlite3 faas.db ".restore backup.db"` writes an older
//     database into the same file): read in full, since `seq > last seen` would show nothing.
//
// In WAL mode a reader does not wait for writers, so an operator's long transaction neither
// blocks sync() nor shows before it commits. The busy timeout matters for the schema migration
// (a write) and for rollback-journal databases; it is short because it blocks the event loop.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { BuildReport, BuildStep } from '../build/builds.js';
import type { FunctionConfig } from '../protocol/messages.js';
import { KeyRing } from './api-keys.js';
import { RouteTable, type Route } from './route-table.js';
import { checkUsable, parseFunctionConfig } from './function-config.js';
import { parseRouteKey } from './route-key.js';
import { prepareDatabase } from './schema.js';

export interface SyncOutcome {
  readonly ok: boolean;
  /** Change-log entries applied (inserts, updates, deletes, and rows that became usable). */
  readonly changed: number;
  /** Rows of this sync that could not be used (see `problems`, and status()). */
  readonly errors: number;
  readonly durationMs: number;
  /** Why the database could not be read; the previous snapshot is still served. */
  readonly error?: string;
  /** The rows behind `errors`, for the log. */
  readonly problems?: ReadonlyArray<{ readonly key: string; readonly error: string }>;
}

export interface RouteStatus {
  readonly key: string;
  /**
   * 'stale': serving the last good config while the current row is bad; 'building': the row's
   * dependencies or program are being built (src/build/), the previous version (if any) served meanwhile.
   */
  readonly state: 'ok' | 'error' | 'stale' | 'building';
  readonly version?: number;
  readonly updated?: number;
  readonly runtime?: string;
  readonly error?: string;
  /** State 'building': what runs (npm ci, pip install, go build) and for how long. */
  readonly building?: string;
  /** The served version's build, where it has one: what was built, and when. */
  readonly build?: BuildReport;
}

/** The sync state, without the per-route list. */
export interface StoreHealth {
  readonly lastSyncAt?: number;
  readonly lastSuccessAt?: number;
  /** Set while the database cannot be read (routes are served from memory), with when it last failed. */
  readonly lastError?: string;
  readonly lastErrorAt?: number;
}

export interface StoreStatus extends StoreHealth {
  readonly routes: RouteStatus[];
}

export interface RouteStoreOptions {
  /** How long a statement waits for a lock before SQLITE_BUSY. Default 250 ms. */
  readonly busyTimeoutMs?: number;
  /** What else a config needs of this host (the limits its cgroups can enforce: src/host/host-limits.ts). */
  readonly hostCheck?: (config: FunctionConfig) => string | undefined;
  /** Dependencies and Go programs (src/build/builds.ts); without it, a row that needs a build is served unbuilt. */
  readonly builds?: BuildStep;
}

interface ChangeRow {
  readonly k: unknown;
  readonly seq: number;
  readonly v: unknown;
  readonly updated: number | null;
  readonly present: number;
}

/**
 * A row the gateway cannot use yet; `pending` holds a valid config that failed checkUsable or
 * waits for its build, tried again each sync. `building`: `error` says what is being built.
 */
interface Problem {
  readonly error: string;
  readonly pending?: Route;
  readonly building?: true;
}

const CHANGES_SQL = `
  SELECT c.k AS k, c.seq AS seq, f.v AS v, f.updated AS updated, f.rowid IS NOT NULL AS present
  FROM functions_changes c LEFT JOIN functions f ON f.k = c.k
  WHERE c.seq > ? ORDER BY c.seq`;

export class RouteStore {
  private table = RouteTable.EMPTY;
  private readonly problems = new Map<string, Problem>();
  private statements: { readonly dataVersion: Database.Statement; readonly changes: Database.Statement; readonly keys: Database.Statement;
    readonly lastSeq: Database.Statement } | undefined;
  /** The file this connection has open: a different inode at the path means it was replaced. */
  private inode: number;
  /** The inode of the open file's WAL (`-wal`), seen at the last sync. */
  private walInode: number | undefined;
  /** Set when the file was replaced, until a sync has read the new one in full. */
  private needFull = false;
  private schemaReady = false;
  private lastSeq = 0;
  private dataVersion: number | undefined;
  private lastSyncAt: number | undefined;
  private lastSuccessAt: number | undefined;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;

  private constructor(private db: Database.Database | undefined, private readonly dbPath: string, private readonly busyTimeoutMs: number,
    private readonly usable: (config: FunctionConfig) => string | undefined, private readonly builds: BuildStep | undefined) {
    this.inode = fs.statSync(dbPath).ino;
  }

  /**
   * Opens (creating the folder and the file if needed), switches to WAL, migrates, and seeds the
   * demo routes into a fresh database. A database locked by another writer is not an error
   * here: the schema step is retried by sync(). Throws when the file is not a usable database.
   */
  static open(dbPath: string, opts: RouteStoreOptions = {}): RouteStore {
    const unusable = (err: unknown): Error => new Error(`cannot use ${dbPath} as the routes database: ${describe(err)}`, { cause: err });
    let db: Database.Database;
    try {
      fs.mkdirSync(path.dirname(path.resolve(dbPath)), { recursive: true });
      db = new Database(dbPath, { timeout: opts.busyTimeoutMs ?? 250 });
    } catch (err) {
      throw unusable(err);
    }
    const hostCheck = opts.hostCheck;
    const usable = hostCheck ? (config: FunctionConfig) => checkUsable(config) ?? hostCheck(config) : checkUsable;
    const store = new RouteStore(db, dbPath, opts.busyTimeoutMs ?? 250, usable, opts.builds);
    try {
      store.ensureSchema();
    } catch (err) {
      if (!isBusy(err)) {
        db.close();
        throw unusable(err);
      }
      store.fail(err);
    }
    return store;
  }

  /** The routes to serve now. Hold on to the returned table for the whole request. */
  get snapshot(): RouteTable {
    return this.table;
  }

  sync(): SyncOutcome {
    const started = performance.now();
    this.lastSyncAt = Date.now();
    try {
      if (this.reopenIfReplaced()) this.needFull = true;
      let full = this.needFull;
      const { dataVersion, changes, keys, lastSeq } = this.prepare();
      const version = dataVersion.get() as number;
      const unchanged = version === this.dataVersion && !full;
      // A change log that went backwards is another database's (a restore): read it all.
      if (!unchanged && ((lastSeq.get() as number | null) ?? 0) < this.lastSeq) full = true;
      const rows = unchanged ? [] : (changes.all(full ? 0 : this.lastSeq) as ChangeRow[]);
      const ring = unchanged ? this.table.keys : KeyRing.fromRows(keys.all() as Array<{ name: string; hash: string }>);
      // Nothing can throw past this point: the snapshot changes all at once or not at all.
      if (full) {
        this.lastSeq = 0;
        this.problems.clear();
      }
      const outcome = this.apply(rows, ring, started, full);
      this.needFull = false;
      this.dataVersion = version;
      this.lastSuccessAt = this.lastSyncAt;
      this.lastError = undefined;
      this.lastErrorAt = undefined;
      return outcome;
    } catch (err) {
      this.statements = undefined; // re-prepared next time, in case the schema changed under us
      return { ok: false, changed: 0, errors: 0, durationMs: performance.now() - started, error: this.fail(err) };
    }
  }

  status(): StoreStatus {
    const keys = [...new Set([...this.table.routes.keys(), ...this.problems.keys()])].sort();
    return { ...this.health(), routes: keys.map((key) => this.statusOf(key)!) };
  }

  /** One key's entry of status(): what is served for it and why not the row, if so; undefined when the gateway knows nothing of it. */
  statusOf(key: string): RouteStatus | undefined {
    const route = this.table.get(key);
    const problem = this.problems.get(key);
    const built = route?.config.built && this.builds?.report(route.config.built);
    const serving = route && { version: route.version, updated: route.updated, runtime: route.config.runtime, ...(built && { build: built }) };
    if (!problem) return route ? { key, state: 'ok', ...serving } : undefined;
    if (problem.building) return { key, state: 'building', ...serving, building: problem.error };
    return { key, state: route ? 'stale' : 'error', ...serving, error: problem.error };
  }

  /** status() without the route list, which sorts every key: for probes, metrics and summaries. */
  health(): StoreHealth {
    return {
      ...(this.lastSyncAt !== undefined && { lastSyncAt: this.lastSyncAt }),
      ...(this.lastSuccessAt !== undefined && { lastSuccessAt: this.lastSuccessAt }),
      ...(this.lastError !== undefined && { lastError: this.lastError, lastErrorAt: this.lastErrorAt }),
    };
  }

  /** Rows the gateway cannot use (status() shows them as 'stale' or 'error'); rows waiting for their build are not counted. */
  get problemCount(): number {
    let n = 0;
    for (const p of this.problems.values()) if (!p.building) n++;
    return n;
  }

  close(): void {
    this.statements = undefined;
    this.db?.close();
    this.db = undefined;
  }

  /**
   * Opens the file now at the path if it is not the one this connection has (true: read it in
   * full). Throws, keeping the old connection, while the path holds no usable database.
   */
  private reopenIfReplaced(): boolean {
    let ino: number;
    try {
      ino = fs.statSync(this.dbPath).ino;
    } catch (err) {
      throw new Error(`the database file ${this.dbPath} is gone (${(err as NodeJS.ErrnoException).code}); serving the routes read before`, { cause: err });
    }
    const wal = `${this.dbPath}-wal`;
    if (this.db && ino === this.inode) {
      this.walInode = inodeOf(wal);
      return false;
    }
    if (this.db) {
      this.statements = undefined;
      this.db.close();
      this.db = undefined;
      // SQLite leaves the WAL of a database that was moved or unlinked in place, and would read
      // it as the new file's: pages of the old database over the new one. The old file's WAL
      // (the inode seen while it was open) goes; a WAL that came with the new file stays.
      if (this.walInode !== undefined && inodeOf(wal) === this.walInode) {
        fs.rmSync(wal, { force: true });
        fs.rmSync(`${this.dbPath}-shm`, { force: true });
      }
      this.walInode = undefined;
    }
    // fileMustExist: a path that vanished between the stat and here must not become an empty database.
    const next = new Database(this.dbPath, { timeout: this.busyTimeoutMs, fileMustExist: true });
    try {
      prepareDatabase(next);
    } catch (err) {
      next.close();
      throw new Error(`the database file ${this.dbPath} was replaced by one that cannot be used: ${describe(err)}`, { cause: err });
    }
    this.db = next;
    this.inode = ino;
    this.schemaReady = true;
    this.dataVersion = undefined;
    return true;
  }

  /** The open connection; sync() has reopened (or failed) before this is reached. */
  private get conn(): Database.Database {
    if (!this.db) throw new Error(`the database ${this.dbPath} is not open`);
    return this.db;
  }

  private ensureSchema(): void {
    if (this.schemaReady) return;
    prepareDatabase(this.conn);
    this.schemaReady = true;
  }

  private prepare(): NonNullable<RouteStore['statements']> {
    this.ensureSchema();
    const db = this.conn;
    this.statements ??= {
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      changes: db.prepare(CHANGES_SQL),
      keys: db.prepare('SELECT name, hash FROM api_keys'),
      lastSeq: db.prepare('SELECT max(seq) FROM functions_changes').pluck(),
    };
    return this.statements;
  }

  /** Applies change rows (in seq order) and the keys, retries pending rows, and swaps in a new table if anything changed. */
  private apply(rows: readonly ChangeRow[], ring: KeyRing, started: number, full: boolean): SyncOutcome {
    let next: Map<string, Route> | undefined;
    // A full read starts from nothing: a key the new database lacks is not served.
    const write = (): Map<string, Route> => (next ??= full ? new Map() : new Map(this.table.routes));
    if (full) write();
    const problems: Array<{ key: string; error: string }> = [];
    /** Keys this sync's rows left waiting: not tried again below. */
    const seen = new Set<string>();
    let changed = 0;

    for (const row of rows) {
      const key = String(row.k);
      const parsed = row.present ? toRoute(key, row) : undefined;
      const result = parsed && 'route' in parsed ? this.admit(parsed.route, true) : parsed;
      changed++;
      this.lastSeq = row.seq;
      if (result === undefined) {
        if (this.table.routes.has(key) || next?.has(key)) write().delete(key);
        this.problems.delete(key);
      } else if ('route' in result) {
        write().set(key, result.route);
        this.problems.delete(key);
      } else {
        this.problems.set(key, result.problem);
        seen.add(key);
        if (!result.problem.building) problems.push({ key, error: result.problem.error });
      }
    }
    // A row that was valid but unusable (say its `path` did not exist yet) may be usable now,
    // and one whose build was running may be built (or have failed).
    for (const [key, problem] of this.problems) {
      if (!problem.pending || seen.has(key)) continue;
      const result = this.admit(problem.pending, false);
      if ('route' in result) {
        write().set(key, result.route);
        this.problems.delete(key);
        changed++;
      } else if (result.problem.error !== problem.error || result.problem.building !== problem.building) {
        this.problems.set(key, result.problem);
        if (!result.problem.building) problems.push({ key, error: result.problem.error });
      }
    }
    const keysChanged = !ring.equals(this.table.keys);
    if (next || keysChanged) this.table = new RouteTable(next ?? this.table.routes, keysChanged ? ring : this.table.keys);
    return {
      ok: true, changed, errors: problems.length, durationMs: performance.now() - started,
      ...(problems.length > 0 && { problems }),
    };
  }

  /**
   * A valid route as it can be served on this host: usable here, and built (its config then
   * names the build), or why not yet. `fresh`: the row was just written (a failed build is retried).
   */
  private admit(route: Route, fresh: boolean): { route: Route } | { problem: Problem } {
    const unusable = this.usable(route.config);
    if (unusable !== undefined) return { problem: { error: unusable, pending: route } };
    if (!this.builds) return { route };
    const prepared = this.builds.prepare(route.key, route.config, fresh);
    if ('config' in prepared) return { route: prepared.config === route.config ? route : Object.freeze({ ...route, config: prepared.config }) };
    if ('building' in prepared) return { problem: { error: prepared.building, pending: route, building: true } };
    return { problem: { error: prepared.error, pending: route } };
  }

  private fail(err: unknown): string {
    this.lastError = describe(err);
    this.lastErrorAt = Date.now();
    return this.lastError;
  }
}

/** Checks one present row against the rules: a Route, or why it is not one. */
function toRoute(key: string, row: ChangeRow): { route: Route } | { problem: Problem } {
  const parsedKey = parseRouteKey(key);
  const parsed = typeof row.v === 'string' ? parseFunctionConfig(row.v) : { ok: false as const, error: `v must be text holding JSON (got ${typeof row.v})` };
  if (!parsedKey.ok || !parsed.ok) {
    const errors = [parsedKey, parsed].flatMap((r) => (r.ok ? [] : [r.error]));
    return { problem: { error: errors.join('; ') } };
  }
  return { route: Object.freeze({ key, method: parsedKey.method, path: parsedKey.path, version: row.seq, updated: row.updated ?? 0, config: parsed.config }) };
}

function inodeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}
