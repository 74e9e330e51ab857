// The operator commands' writes and reads of the functions table: the same SQL an operator
// would type (README "Routes: the SQL an operator writes"), so the schema's triggers check each
// row, keep `updated` current and log the change for the gateway's next sync (schema.ts).
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { prepareDatabase } from '../routes/schema.js';

export interface WrittenRow {
  readonly updated: number;
  /** The key's change-log seq: the version the gateway will serve it as. */
  readonly version: number;
  /** 'created', 'updated', or 'redeployed' (the same config again, given a new version so a changed file at `path` is reread). */
  readonly change: 'created' | 'updated' | 'redeployed';
}

export interface FunctionRow {
  readonly k: string;
  readonly v: string;
  readonly updated: number;
}

/** Opens the database for writing, creating it (schema, triggers, demo routes) as the gateway would; `faas keys` opens it this way too. */
export function openForWrite(dbPath: string): Database.Database {
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });
  const db = new Database(dbPath, { timeout: 5000 });
  try {
    prepareDatabase(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** Opens an existing database read-only; never creates one. */
export function openForRead(dbPath: string): Database.Database {
  return new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
}

/**
 * Writes the key's whole config in one transaction: INSERT … ON CONFLICT(k) DO UPDATE. The same
 * text again would change nothing in the change log (its trigger fires on a different v only),
 * so the gateway would keep the instances that loaded the old file at `path`; such a row is
 * deleted and inserted again in the same transaction, which gives it a new version.
 */
export function upsertFunction(db: Database.Database, key: string, v: string): WrittenRow {
  return db.transaction((): WrittenRow => {
    const previous = db.prepare('SELECT v FROM functions WHERE k = ?').pluck().get(key) as string | undefined;
    if (previous === v) db.prepare('DELETE FROM functions WHERE k = ?').run(key);
    db.prepare('INSERT INTO functions(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v').run(key, v);
    const row = db.prepare('SELECT f.updated AS updated, c.seq AS version FROM functions f JOIN functions_changes c ON c.k = f.k WHERE f.k = ?')
      .get(key) as { updated: number; version: number };
    return { ...row, change: previous === undefined ? 'created' : previous === v ? 'redeployed' : 'updated' };
  }).immediate();
}

/** Deletes the key's row; false when there was none. */
export function deleteFunction(db: Database.Database, key: string): boolean {
  return db.prepare('DELETE FROM functions WHERE k = ?').run(key).changes > 0;
}

export function listFunctions(db: Database.Database): FunctionRow[] {
  return db.prepare('SELECT k, v, updated FROM functions ORDER BY k').all() as FunctionRow[];
}
