// The SQLite schema the operators write to (CONTRACT §2), its triggers, and its migrations.
//
// Why a change log instead of `WHERE updated > last_sync`: the C original compared
// second-resolution timestamps, so a change committed in the same second as the previous sync
// was never seen, and a DELETE leaves no row to compare at all. Here every INSERT, UPDATE and
// DELETE upserts the key into `functions_changes` with the next sequence number, and the
// gateway asks for `seq > last seen`.
//
// Why seq order is commit order: SQLite lets one writer at a time hold the database (WAL or
// rollback journal alike), and a trigger computes `max(seq) + 1` inside the writing transaction,
// after every earlier commit is visible to it and before any later writer can start. So each
// committed transaction's seqs are larger than every seq committed before it, and a reader that
// has seen up to S can never later find a committed change with a seq at or below S. A rolled
// back transaction's seqs vanish with it, and were never visible. max(seq) never decreases,
// because rows are only ever replaced by a larger seq, and deleted keys stay as tombstones
// (one row per key ever used) so a gateway that was down still sees the delete.
//
// History (schema 7): the same triggers copy every change into `functions_versions` (the key, its
// seq, the config or NULL for a delete), keeping the newest VERSIONS_KEPT per key, so
// GET /api/v1/functions/{key}/versions can list what was deployed and a config can be put back.
//
// A cluster node's copy (schema 7, src/cluster/cluster-sync.ts): with --cluster-db the functions
// and api_keys rows are PostgreSQL's, copied here. `cluster_source` then holds where from, and
// triggers refuse every write to those tables except the copy's own: it inserts a row into
// `cluster_writer` first and deletes it before it commits, so no other connection ever sees it
// (SQLite lets one writer in at a time). An operator's sqlite3 gets a message saying where to write.
//
// Versions live in PRAGMA user_version. To change a rule, bump SCHEMA_VERSION and add a step
// that calls createTriggers again (it drops and recreates them).
import type Database from 'better-sqlite3';
import { KEY_NAME_RULE } from './api-keys.js';
import { checksSql } from './checks-sql.js';

export const SCHEMA_VERSION = 7;

/** How many versions of each key functions_versions keeps (deletes count as versions). */
export const VERSIONS_KEPT = 20;

/**
 * Unix time in ms. unixepoch('subsec') would be shorter but needs SQLite 3.42, and Debian 12's
 * sqlite3 CLI is 3.40: there it returns NULL and every INSERT would fail NOT NULL. strftime
 * evaluates 'now' once per statement, so %s and %f agree.
 */
export const NOW_MS_SQL = "(CAST(strftime('%s', 'now') AS INTEGER) * 1000 + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER))";
const NEXT_SEQ = '(SELECT coalesce(max(seq), 0) + 1 FROM functions_changes)';
const logKey = (key: string): string =>
  `INSERT INTO functions_changes(k, seq) VALUES (${key}, ${NEXT_SEQ}) ON CONFLICT(k) DO UPDATE SET seq = excluded.seq;`;
/** Copies a key's change (its seq from the log, just written) into the history, and drops what is past VERSIONS_KEPT. */
const keepVersion = (key: string, v: string): string => `
  INSERT INTO functions_versions(k, seq, v, updated)
    SELECT ${key}, seq, ${v}, ${NOW_MS_SQL} FROM functions_changes WHERE k = ${key};
  DELETE FROM functions_versions WHERE k = ${key} AND seq <= (
    SELECT seq FROM functions_versions WHERE k = ${key} ORDER BY seq DESC LIMIT 1 OFFSET ${VERSIONS_KEPT});`;

export interface MigrateResult {
  readonly from: number;
  readonly to: number;
  /** True when this call created the functions table: a fresh database, ready for demo routes. */
  readonly created: boolean;
}

/** Brings the schema to SCHEMA_VERSION in one IMMEDIATE transaction, so two gateways never both migrate. */
export function migrate(db: Database.Database): MigrateResult {
  return db.transaction((): MigrateResult => {
    const from = db.pragma('user_version', { simple: true }) as number;
    if (from > SCHEMA_VERSION) {
      throw new Error(`the database schema is version ${from}, newer than this gateway understands (${SCHEMA_VERSION}); upgrade the gateway`);
    }
    let created = false;
    if (from < 1) created = createV1(db);
    if (from < 7) createV7(db); // 7: functions_versions (before the triggers that fill it), the cluster copy's tables
    if (from < 7) createTriggers(db); // 2: min_warm and image; 4: cpu and isolation; 5: event and cors; 6: async; 7: history
    if (from < 3) createApiKeys(db); // 3: api_keys
    if (from < 7) createCopyGuard(db);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return { from, to: SCHEMA_VERSION, created };
  }).immediate();
}

/**
 * Version 1. A functions table that exists without a version (made by hand from the contract, or
 * by the C original) lacks the default and the triggers: it is rebuilt and its rows kept.
 * Returns whether the table is new.
 */
function createV1(db: Database.Database): boolean {
  const existed = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'functions'").get() !== undefined;
  if (existed) db.exec('ALTER TABLE functions RENAME TO functions_unversioned');
  db.exec(`
    CREATE TABLE functions (
      k TEXT PRIMARY KEY,          -- 'METHOD:/path'
      v TEXT NOT NULL,             -- the function's config, JSON
      updated INTEGER NOT NULL DEFAULT ${NOW_MS_SQL}  -- unix ms, kept current by triggers
    );
    CREATE TABLE functions_changes (
      k TEXT PRIMARY KEY,          -- a key that was inserted, updated or deleted
      seq INTEGER NOT NULL         -- commit order of its last change; see the file header
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX functions_changes_seq ON functions_changes(seq);
  `);
  if (existed) {
    // Copied before the triggers exist: a bad old row should show up on GET /routes, not
    // abort the upgrade. The log is filled in by hand for the same reason.
    db.exec(`
      INSERT INTO functions(k, v) SELECT k, v FROM functions_unversioned;
      DROP TABLE functions_unversioned;
      INSERT INTO functions_changes(k, seq) SELECT k, row_number() OVER (ORDER BY k) FROM functions;
    `);
  }
  return !existed;
}

/** (Re)creates every trigger on functions. */
export function createTriggers(db: Database.Database): void {
  const checks = checksSql();
  db.exec(`
    DROP TRIGGER IF EXISTS functions_check_insert;
    DROP TRIGGER IF EXISTS functions_check_update;
    DROP TRIGGER IF EXISTS functions_touch_insert;
    DROP TRIGGER IF EXISTS functions_touch_update;
    DROP TRIGGER IF EXISTS functions_log_insert;
    DROP TRIGGER IF EXISTS functions_log_update;
    DROP TRIGGER IF EXISTS functions_log_delete;

    -- Refuse a bad row in the operator's own SQL client, naming the field and the rule.
    CREATE TRIGGER functions_check_insert BEFORE INSERT ON functions BEGIN ${checks} END;
    CREATE TRIGGER functions_check_update BEFORE UPDATE OF k, v ON functions BEGIN ${checks} END;

    -- Keep updated current, whatever the operator wrote. The WHEN clause ends the recursion
    -- even with PRAGMA recursive_triggers on ('now' is fixed for the whole statement).
    CREATE TRIGGER functions_touch_insert AFTER INSERT ON functions WHEN NEW.updated IS NOT ${NOW_MS_SQL}
    BEGIN UPDATE functions SET updated = ${NOW_MS_SQL} WHERE rowid = NEW.rowid; END;
    CREATE TRIGGER functions_touch_update AFTER UPDATE ON functions WHEN NEW.updated IS NOT ${NOW_MS_SQL}
    BEGIN UPDATE functions SET updated = ${NOW_MS_SQL} WHERE rowid = NEW.rowid; END;

    -- The change log (file header). A renamed key logs its old name too, so it disappears.
    -- Each change is also kept in functions_versions (NULL v: deleted).
    CREATE TRIGGER functions_log_insert AFTER INSERT ON functions BEGIN ${logKey('NEW.k')} ${keepVersion('NEW.k', 'NEW.v')} END;
    CREATE TRIGGER functions_log_update AFTER UPDATE OF k, v ON functions
    WHEN OLD.k IS NOT NEW.k OR OLD.v IS NOT NEW.v BEGIN
      INSERT INTO functions_changes(k, seq) SELECT OLD.k, ${NEXT_SEQ} WHERE OLD.k IS NOT NEW.k
        ON CONFLICT(k) DO UPDATE SET seq = excluded.seq;
      INSERT INTO functions_versions(k, seq, v, updated)
        SELECT OLD.k, seq, NULL, ${NOW_MS_SQL} FROM functions_changes WHERE k = OLD.k AND OLD.k IS NOT NEW.k;
      ${logKey('NEW.k')} ${keepVersion('NEW.k', 'NEW.v')}
    END;
    CREATE TRIGGER functions_log_delete AFTER DELETE ON functions BEGIN ${logKey('OLD.k')} ${keepVersion('OLD.k', 'NULL')} END;
  `);
}

/**
 * Version 7: the history of each key (file header). A database from before it starts its history
 * with the rows as they are, under their current seqs.
 */
function createV7(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS cluster_source (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      url TEXT NOT NULL,           -- the PostgreSQL these rows are copied from (no password)
      since INTEGER NOT NULL,      -- unix ms: when this file became a copy
      copied INTEGER               -- unix ms of the last copy; NULL: none yet (the node is not ready)
    );
    CREATE TABLE IF NOT EXISTS cluster_writer (id INTEGER PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS cluster_versions (
      k TEXT PRIMARY KEY,          -- a key of functions
      version INTEGER NOT NULL     -- its version in PostgreSQL: the ETag every node gives
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS functions_versions (
      k TEXT NOT NULL,             -- 'METHOD:/path'
      seq INTEGER NOT NULL,        -- the change-log seq this config was (is) served as: its version
      v TEXT,                      -- the config, JSON; NULL: the key was deleted
      updated INTEGER NOT NULL,    -- unix ms of the change
      PRIMARY KEY (k, seq)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO functions_versions(k, seq, v, updated)
      SELECT f.k, c.seq, f.v, f.updated FROM functions f JOIN functions_changes c ON c.k = f.k;
  `);
}

export const COPY_REFUSAL = 'this database is a read-only copy of the cluster database (--cluster-db; see the table cluster_source): '
  + 'write to PostgreSQL instead, with psql or with faas and the admin API of a gateway started with --cluster-db';

/** Version 7: writes to a cluster copy are refused, except the copy's own (file header). */
function createCopyGuard(db: Database.Database): void {
  const guard = `SELECT RAISE(ABORT, '${COPY_REFUSAL}') WHERE EXISTS (SELECT 1 FROM cluster_source) AND NOT EXISTS (SELECT 1 FROM cluster_writer);`;
  for (const table of ['functions', 'api_keys']) {
    for (const op of ['INSERT', 'UPDATE', 'DELETE']) {
      const name = `${table}_copy_${op.toLowerCase()}`;
      db.exec(`DROP TRIGGER IF EXISTS ${name}; CREATE TRIGGER ${name} BEFORE ${op} ON ${table} BEGIN ${guard} END;`);
    }
  }
}

/**
 * Version 3: API keys (`faas keys`, src/routes/api-keys.ts). Only a key's SHA-256 is stored. The
 * gateway rereads the table whenever the database changed (PRAGMA data_version), so a revoked
 * key stops working within one sync period; no change log is needed for a table this small.
 */
function createApiKeys(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS api_keys (
      name TEXT PRIMARY KEY,       -- what the operator calls it: faas keys revoke NAME
      hash TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the key; the key itself is never stored
      created INTEGER NOT NULL DEFAULT ${NOW_MS_SQL}
    );
    DROP TRIGGER IF EXISTS api_keys_check_insert;
    DROP TRIGGER IF EXISTS api_keys_check_update;
    CREATE TRIGGER api_keys_check_insert BEFORE INSERT ON api_keys BEGIN ${API_KEY_CHECKS} END;
    CREATE TRIGGER api_keys_check_update BEFORE UPDATE ON api_keys BEGIN ${API_KEY_CHECKS} END;
  `);
}

/** What the api_keys triggers say (here and in PostgreSQL, src/cluster/pg-schema.ts). */
export const API_KEY_MESSAGES = {
  name: `api_keys.name ${KEY_NAME_RULE}`,
  hash: 'api_keys.hash must be the SHA-256 of the key as 64 lower-case hex digits (faas keys create makes both)',
} as const;

const API_KEY_CHECKS = `
  SELECT RAISE(ABORT, '${API_KEY_MESSAGES.name}')
    WHERE typeof(NEW.name) <> 'text' OR length(NEW.name) NOT BETWEEN 1 AND 64 OR NEW.name GLOB '*[^A-Za-z0-9._-]*';
  SELECT RAISE(ABORT, '${API_KEY_MESSAGES.hash}')
    WHERE typeof(NEW.hash) <> 'text' OR length(NEW.hash) <> 64 OR NEW.hash GLOB '*[^0-9a-f]*';`;

/** Functions a fresh database starts with, so that the gateway answers something on first start. */
export const DEMO_ROUTES: ReadonlyArray<readonly [key: string, config: Record<string, unknown>]> = [
  ['GET:/hello', {
    runtime: 'node',
    code: "export default { async fetch(request, env, ctx) { return new Response('hello from faas\\n') } }",
  }],
  ['POST:/echo', {
    runtime: 'node',
    code: "exports.handler = async (event) => ({ statusCode: 200, headers: { 'content-type': event.headers['content-type'] || 'application/octet-stream' }, body: event.body, isBase64Encoded: event.isBase64Encoded })",
  }],
  ['GET:/py/hello', {
    runtime: 'python',
    code: 'def handle(request):\n    return {"hello": "from python", "path": request.path}\n',
  }],
];

/** Inserts DEMO_ROUTES. Call it only when migrate() reports `created`: operators' deletes stay deleted. */
export function seedDemoRoutes(db: Database.Database): void {
  const insert = db.prepare('INSERT INTO functions(k, v) VALUES (?, ?)');
  db.transaction(() => {
    for (const [key, config] of DEMO_ROUTES) insert.run(key, JSON.stringify(config));
  })();
}

/**
 * Makes a database ready for the gateway: WAL (readers never wait for writers), the schema at
 * SCHEMA_VERSION, and the demo routes if it is new. One transaction, so a crash in between never
 * leaves a fresh database without its demos. The gateway and `faas keys` both open it so.
 */
export function prepareDatabase(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    if (migrate(db).created) seedDemoRoutes(db);
  }).immediate();
}
