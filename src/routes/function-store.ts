// The functions table as the operators' tools change it — `faas deploy`, `faas rm`, and the admin
// API's /api/v1/functions — through one check and one write, so that SQL, the CLI and the API
// refuse the same rows for the same reasons and give the same versions.
//
//   checkFunction: the gateway's own rules for a row (route-key.ts, parseFunctionConfig, and what
//     this host needs: checkUsable, plus the gateway's host check when it is the gateway asking),
//     every problem at once. The schema's triggers (schema.ts) check the same rules again at the
//     INSERT, as they do for an operator's SQL.
//   writeFunction / removeFunction: one IMMEDIATE transaction that reads the row as it is, lets the
//     caller decide (a precondition: If-Match, a merge patch applied to the current config),
//     checks the result and writes it. SQLite lets one writer in at a time, so two writers that
//     both expect version 12 cannot both succeed: the second finds 13.
//
// A row's version is its key's seq in the change log (functions_changes, schema.ts): unique across
// keys, larger with every change, and what GET /routes says the gateway serves. Writing the same
// config again would log nothing (the trigger fires on a changed v only), so the gateway would keep
// instances that loaded an older file at `path`; such a write deletes and inserts the row in the
// same transaction, which gives it a new version ('redeployed'). Every successful write is a new
// version.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { FunctionConfig } from '../protocol/messages.js';
import { createKey, listKeys, revokeKey, type KeyInfo } from './api-keys.js';
import { planBuild } from '../build/plan.js';
import { checkUsable, parseFunctionConfig } from './function-config.js';
import { parseRouteKey } from './route-key.js';
import { prepareDatabase } from './schema.js';

/** A row of functions with its version. */
export interface StoredFunction {
  readonly key: string;
  /** The config as stored: JSON text. */
  readonly v: string;
  /** The key's change-log seq: the version the gateway serves it as. */
  readonly version: number;
  /** Unix ms, kept by the schema's triggers. */
  readonly updated: number;
}

export interface WrittenRow {
  readonly updated: number;
  /** The key's change-log seq: the version the gateway will serve it as. */
  readonly version: number;
  /** 'created', 'updated', or 'redeployed' (the same config again, given a new version so a changed file at `path` is reread). */
  readonly change: 'created' | 'updated' | 'redeployed';
}

/** What else a config needs of this host; undefined when it can be served. */
export type RowCheck = (config: FunctionConfig) => string | undefined;

export type CheckResult =
  | { readonly ok: true; readonly config: FunctionConfig }
  | { readonly ok: false; readonly problems: readonly string[] };

export interface OpenOptions {
  /** How long a statement waits for another writer's lock. The gateway keeps it short: it blocks its event loop. */
  readonly busyTimeoutMs?: number;
  /** Never create a database (the gateway: a file that went away must not come back empty). */
  readonly mustExist?: boolean;
}

/** Opens the database for writing, creating it (schema, triggers, demo routes) as the gateway would unless `mustExist`. */
export function openForWrite(dbPath: string, opts: OpenOptions = {}): Database.Database {
  if (!opts.mustExist) fs.mkdirSync(path.dirname(dbPath), { recursive: true });
  const db = new Database(dbPath, { timeout: opts.busyTimeoutMs ?? 5000, fileMustExist: opts.mustExist ?? false });
  try {
    prepareDatabase(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Opens an existing database read-only; never creates one. */
export function openForRead(dbPath: string, opts: OpenOptions = {}): Database.Database {
  return new Database(dbPath, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
}

/** Runs `fn` on a connection opened for it, and closes it. */
export function withDatabase<T>(open: () => Database.Database, fn: (db: Database.Database) => T): T {
  const db = open();
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** parseFunctionConfig joins its problems with "; "; each starts with "v." or "v ". */
export function splitProblems(error: string): string[] {
  return error.split(/; (?=v[. ])/);
}

/**
 * Every reason the gateway would not serve `v` at `key`: the key's rule, each broken field, and,
 * for a valid config, what this host lacks (`usable`: checkUsable, and the gateway's host check
 * when the gateway asks). Reads the filesystem; writes nothing.
 */
export function checkFunction(key: string, v: string, usable: RowCheck = checkUsable): CheckResult {
  const problems: string[] = [];
  const parsedKey = parseRouteKey(key);
  if (!parsedKey.ok) problems.push(parsedKey.error);
  const parsed = parseFunctionConfig(v);
  if (!parsed.ok) problems.push(...splitProblems(parsed.error));
  else {
    const unusable = usable(parsed.config);
    if (unusable !== undefined) problems.push(unusable);
    // What its build would refuse (no lock file, an unpinned requirement, no Go here): said before it is written.
    const planned = unusable === undefined ? planBuild(parsed.config) : undefined;
    if (planned && 'problem' in planned) problems.push(planned.problem);
  }
  if (problems.length > 0 || !parsed.ok) return { ok: false, problems };
  return { ok: true, config: parsed.config };
}

const ROW_SQL = `SELECT f.k AS key, f.v AS v, c.seq AS version, f.updated AS updated
  FROM functions f JOIN functions_changes c ON c.k = f.k`;

export function readFunction(db: Database.Database, key: string): StoredFunction | undefined {
  return db.prepare(`${ROW_SQL} WHERE f.k = ?`).get(key) as StoredFunction | undefined;
}

/** Rows in key order, after `after` (a key: where the previous page ended), at most `limit`. */
export function listFunctions(db: Database.Database, opts: { after?: string; limit?: number } = {}): StoredFunction[] {
  return db.prepare(`${ROW_SQL} WHERE f.k > ? ORDER BY f.k LIMIT ?`).all(opts.after ?? '', opts.limit ?? -1) as StoredFunction[];
}

/** One entry of a key's history (functions_versions): a config it was deployed with, or its deletion (v null). */
export interface FunctionVersion {
  readonly version: number;
  readonly updated: number;
  readonly v: string | null;
}

/** The key's kept history, newest first (schema.ts keeps VERSIONS_KEPT per key). */
export function readVersions(db: Database.Database, key: string): FunctionVersion[] {
  return db.prepare('SELECT seq AS version, updated, v FROM functions_versions WHERE k = ? ORDER BY seq DESC').all(key) as FunctionVersion[];
}

export function readVersion(db: Database.Database, key: string, version: number): FunctionVersion | undefined {
  return db.prepare('SELECT seq AS version, updated, v FROM functions_versions WHERE k = ? AND seq = ?').get(key, version) as FunctionVersion | undefined;
}

/** What a write does, decided inside its transaction from the row as it is now: the new config text, or a refusal. */
export type Decide<R> = (current: StoredFunction | undefined) => { readonly v: string } | { readonly refused: R };

export type WriteOutcome<R> =
  | { readonly ok: true; readonly written: WrittenRow; readonly v: string; readonly config: FunctionConfig }
  | { readonly ok: false; readonly refused: R }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Writes the key's whole config in one IMMEDIATE transaction: reads the row, asks `decide`, checks
 * the result with checkFunction, and upserts it (INSERT … ON CONFLICT(k) DO UPDATE). Nothing is
 * written when `decide` refuses or the check finds a problem.
 */
export function writeFunction<R>(db: Database.Database, key: string, decide: Decide<R>, usable: RowCheck = checkUsable): WriteOutcome<R> {
  return db.transaction((): WriteOutcome<R> => {
    const current = readFunction(db, key);
    const decided = decide(current);
    if ('refused' in decided) return { ok: false, refused: decided.refused };
    const checked = checkFunction(key, decided.v, usable);
    if (!checked.ok) return { ok: false, problems: checked.problems };
    const v = decided.v;
    if (current?.v === v) db.prepare('DELETE FROM functions WHERE k = ?').run(key);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(key, v);
    const row = readFunction(db, key)!;
    // A redeploy's delete is not a version anyone deployed: the history keeps only its insert.
    if (current?.v === v) db.prepare('DELETE FROM functions_versions WHERE k = ? AND seq > ? AND seq < ? AND v IS NULL').run(key, current.version, row.version);
    return { ok: true, written: { updated: row.updated, version: row.version, change: changeOf(current, v) }, v, config: checked.config };
  }).immediate();
}

/** What a write of `v` over `current` is (file header: the same config again is a redeploy). */
export function changeOf(current: StoredFunction | undefined, v: string): WrittenRow['change'] {
  return current === undefined ? 'created' : current.v === v ? 'redeployed' : 'updated';
}

/** `faas deploy`: the whole config, whatever the row held. */
export function upsertFunction(db: Database.Database, key: string, v: string, usable: RowCheck = checkUsable): WrittenRow {
  const outcome = writeFunction<never>(db, key, () => ({ v }), usable);
  if (!outcome.ok) throw new Error('refused' in outcome ? 'refused' : outcome.problems.join('; '));
  return outcome.written;
}

export type RemoveOutcome<R> =
  | { readonly ok: true; readonly removed: StoredFunction }
  | { readonly ok: false; readonly refused: R }
  | { readonly ok: false; readonly missing: true };

/** Deletes the key's row in one IMMEDIATE transaction, unless `refuse` (a precondition) objects to the row as it is. */
export function removeFunction<R>(db: Database.Database, key: string, refuse: (current: StoredFunction) => R | undefined = () => undefined): RemoveOutcome<R> {
  return db.transaction((): RemoveOutcome<R> => {
    const current = readFunction(db, key);
    if (current === undefined) return { ok: false, missing: true };
    const refused = refuse(current);
    if (refused !== undefined) return { ok: false, refused };
    db.prepare('DELETE FROM functions WHERE k = ?').run(key);
    return { ok: true, removed: current };
  }).immediate();
}

/** `faas rm`: deletes the key's row; false when there was none. */
export function deleteFunction(db: Database.Database, key: string): boolean {
  return removeFunction(db, key).ok;
}

/**
 * What the admin API reads and writes: the functions and api_keys tables, in this node's SQLite
 * (FunctionStore) or, with --cluster-db, in the cluster's PostgreSQL (src/cluster/pg-function-store.ts).
 * The same decisions either way: `decide` sees the row as it is inside the write's transaction.
 */
export interface FunctionSource {
  list(opts?: { after?: string; limit?: number }): Promise<StoredFunction[]>;
  get(key: string): Promise<StoredFunction | undefined>;
  versions(key: string): Promise<FunctionVersion[]>;
  version(key: string, version: number): Promise<FunctionVersion | undefined>;
  write<R>(key: string, decide: Decide<R>): Promise<WriteOutcome<R>>;
  remove<R>(key: string, refuse: (current: StoredFunction) => R | undefined): Promise<RemoveOutcome<R>>;
  /** A new API key: the key itself (stored nowhere), and when it was made. Throws KeyError for a bad or taken name. */
  createKey(name: string): Promise<{ readonly key: string; readonly created: number }>;
  listKeys(): Promise<KeyInfo[]>;
  revokeKey(name: string): Promise<boolean>;
}

/**
 * The tables the admin API changes (functions, api_keys), on the gateway's database. Each call
 * opens its own connection and closes it: the gateway's sync must see the write as another
 * connection's commit (PRAGMA data_version changes only then), a file replaced under the gateway
 * is simply opened anew, and the admin API is not a hot path. The busy timeout is short because
 * better-sqlite3 waits on the event loop: an operator's long transaction makes a write answer
 * "busy, retry" rather than stall every call the gateway serves.
 */
export class FunctionStore implements FunctionSource {
  constructor(
    readonly dbPath: string,
    /** checkUsable, and the gateway's own host check: what the gateway's sync will ask of the row. */
    readonly usable: RowCheck = checkUsable,
    private readonly busyTimeoutMs = 250,
  ) {}

  async list(opts: { after?: string; limit?: number } = {}): Promise<StoredFunction[]> {
    return withDatabase(() => this.reader(), (db) => listFunctions(db, opts));
  }

  async get(key: string): Promise<StoredFunction | undefined> {
    return withDatabase(() => this.reader(), (db) => readFunction(db, key));
  }

  async versions(key: string): Promise<FunctionVersion[]> {
    return withDatabase(() => this.reader(), (db) => readVersions(db, key));
  }

  async version(key: string, version: number): Promise<FunctionVersion | undefined> {
    return withDatabase(() => this.reader(), (db) => readVersion(db, key, version));
  }

  async write<R>(key: string, decide: Decide<R>): Promise<WriteOutcome<R>> {
    return withDatabase(() => this.writer(), (db) => writeFunction(db, key, decide, this.usable));
  }

  async remove<R>(key: string, refuse: (current: StoredFunction) => R | undefined): Promise<RemoveOutcome<R>> {
    return withDatabase(() => this.writer(), (db) => removeFunction(db, key, refuse));
  }

  async createKey(name: string): Promise<{ readonly key: string; readonly created: number }> {
    return withDatabase(() => this.writer(), (db) => {
      const key = createKey(db, name);
      return { key, created: db.prepare('SELECT created FROM api_keys WHERE name = ?').pluck().get(name) as number };
    });
  }

  async listKeys(): Promise<KeyInfo[]> {
    return withDatabase(() => this.reader(), (db) => listKeys(db));
  }

  async revokeKey(name: string): Promise<boolean> {
    return withDatabase(() => this.writer(), (db) => revokeKey(db, name));
  }

  private reader(): Database.Database {
    return openForRead(this.dbPath, { busyTimeoutMs: this.busyTimeoutMs });
  }

  private writer(): Database.Database {
    return openForWrite(this.dbPath, { busyTimeoutMs: this.busyTimeoutMs, mustExist: true });
  }
}
