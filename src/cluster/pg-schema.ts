// The cluster's configuration in PostgreSQL (--cluster-db): the same functions and api_keys tables
// as each node's SQLite (CONTRACT §2, src/routes/schema.ts), refusing the same rows in the same
// words (the checks are generated from one list, src/routes/checks-sql.ts), so an operator's psql
// is as safe as their sqlite3 was. Every gateway runs migrate() when it connects; an advisory lock
// makes concurrent starts take turns.
//
// What differs from SQLite, and why:
//   - A row's version is a column, set from a sequence by the BEFORE trigger on every change of k
//     or v. PostgreSQL commits out of sequence order, so a reader cannot ask "what changed after
//     seq N" the way a node asks its SQLite; nodes do not need to: each sync reads every row in
//     one REPEATABLE READ snapshot (cluster-sync.ts). The version is the ETag the admin API gives
//     in cluster mode, the same on every node.
//   - One statement-level trigger per table bumps faas_config.version and calls
//     pg_notify('faas_config'): one notification per statement however many rows it touched, and
//     a version a node compares to skip a sync that would change nothing.
//   - History (functions_versions, VERSIONS_KEPT per key) is kept here, under the cluster version.
import type pg from 'pg';
import { checksPlpgsql, pgString } from '../routes/checks-sql.js';
import { API_KEY_MESSAGES, VERSIONS_KEPT } from '../routes/schema.js';

export const PG_SCHEMA_VERSION = 1;
export const NOTIFY_CHANNEL = 'faas_config';
/** pg_advisory_xact_lock key for migrations: "faas" in ASCII. */
const MIGRATE_LOCK = 0x66616173;
const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/**
 * SQLite's JSON functions over text, as the generated checks call them (checks-sql.ts, POSTGRES).
 * A path is SQLite's '$.a.b'; json_type's words: null, true, false, integer, real, text, array,
 * object, SQL NULL when absent. A number is 'integer' when written without a fraction or exponent,
 * as SQLite reads it.
 */
const HELPERS = `
CREATE OR REPLACE FUNCTION faas_json_path(path text) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN path = '$' THEN ARRAY[]::text[] ELSE string_to_array(substr(path, 3), '.') END $$;
CREATE OR REPLACE FUNCTION faas_json_valid(v text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF v IS NULL THEN RETURN false; END IF;
  PERFORM v::jsonb;
  RETURN true;
EXCEPTION WHEN others THEN RETURN false;
END $$;
CREATE OR REPLACE FUNCTION faas_json_word(j jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE jsonb_typeof(j)
    WHEN 'string' THEN 'text'
    WHEN 'number' THEN CASE WHEN j::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END
    WHEN 'boolean' THEN j::text
    ELSE jsonb_typeof(j) END $$;
CREATE OR REPLACE FUNCTION faas_json_type(v text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT faas_json_word(v::jsonb #> faas_json_path(path)) $$;
CREATE OR REPLACE FUNCTION faas_json_text(v text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v::jsonb #> faas_json_path(path)) = 'string' THEN v::jsonb #>> faas_json_path(path) END $$;
CREATE OR REPLACE FUNCTION faas_json_num(v text, path text) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v::jsonb #> faas_json_path(path)) = 'number' THEN (v::jsonb #>> faas_json_path(path))::numeric END $$;
CREATE OR REPLACE FUNCTION faas_json_array_length(v text, path text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v::jsonb #> faas_json_path(path)) = 'array' THEN jsonb_array_length(v::jsonb #> faas_json_path(path)) END $$;
CREATE OR REPLACE FUNCTION faas_json_each(v text, path text) RETURNS TABLE(key text, value text, type text) LANGUAGE sql IMMUTABLE AS $$
  SELECT e.key, CASE WHEN jsonb_typeof(e.value) = 'string' THEN e.value #>> '{}' ELSE e.value::text END, faas_json_word(e.value)
    FROM jsonb_each(CASE WHEN jsonb_typeof(v::jsonb #> faas_json_path(path)) = 'object' THEN v::jsonb #> faas_json_path(path) ELSE '{}'::jsonb END) e
  UNION ALL
  SELECT (a.n - 1)::text, CASE WHEN jsonb_typeof(a.value) = 'string' THEN a.value #>> '{}' ELSE a.value::text END, faas_json_word(a.value)
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(v::jsonb #> faas_json_path(path)) = 'array' THEN v::jsonb #> faas_json_path(path) ELSE '[]'::jsonb END)
      WITH ORDINALITY AS a(value, n) $$;
`;

const TABLES = `
CREATE TABLE IF NOT EXISTS faas_config (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
INSERT INTO faas_config(id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS functions_version_seq;
CREATE TABLE IF NOT EXISTS functions (
  k text PRIMARY KEY,                     -- 'METHOD:/path'
  v text NOT NULL,                        -- the function's config, JSON (as written: text, like SQLite)
  updated bigint NOT NULL DEFAULT ${NOW_MS},  -- unix ms, kept current by the trigger
  version bigint NOT NULL DEFAULT nextval('functions_version_seq')  -- set by the trigger on every change
);
CREATE TABLE IF NOT EXISTS functions_versions (
  k text NOT NULL, version bigint NOT NULL,
  v text,                                 -- NULL: the key was deleted
  updated bigint NOT NULL,
  PRIMARY KEY (k, version)
);
CREATE TABLE IF NOT EXISTS api_keys (
  name text PRIMARY KEY,
  hash text NOT NULL UNIQUE,              -- hex SHA-256 of the key; the key itself is never stored
  created bigint NOT NULL DEFAULT ${NOW_MS}
);
`;

function triggers(): string {
  return `
CREATE OR REPLACE FUNCTION faas_functions_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.k IS NOT DISTINCT FROM OLD.k AND NEW.v IS NOT DISTINCT FROM OLD.v THEN
    NEW.version := OLD.version;
    NEW.updated := OLD.updated;
    RETURN NEW;
  END IF;
  ${checksPlpgsql()}
  NEW.version := nextval('functions_version_seq');
  NEW.updated := ${NOW_MS};
  RETURN NEW;
END $fn$;

CREATE OR REPLACE FUNCTION faas_functions_history() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE key text;
BEGIN
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.k IS DISTINCT FROM OLD.k) THEN
    INSERT INTO functions_versions(k, version, v, updated) VALUES (OLD.k, nextval('functions_version_seq'), NULL, ${NOW_MS});
    DELETE FROM functions_versions WHERE k = OLD.k AND version <= (
      SELECT version FROM functions_versions WHERE k = OLD.k ORDER BY version DESC LIMIT 1 OFFSET ${VERSIONS_KEPT});
  END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version) THEN
    INSERT INTO functions_versions(k, version, v, updated) VALUES (NEW.k, NEW.version, NEW.v, NEW.updated)
      ON CONFLICT (k, version) DO NOTHING;
    DELETE FROM functions_versions WHERE k = NEW.k AND version <= (
      SELECT version FROM functions_versions WHERE k = NEW.k ORDER BY version DESC LIMIT 1 OFFSET ${VERSIONS_KEPT});
  END IF;
  RETURN NULL;
END $fn$;

CREATE OR REPLACE FUNCTION faas_api_keys_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF NEW.name IS NULL OR length(NEW.name) NOT BETWEEN 1 AND 64 OR NEW.name ~ '[^A-Za-z0-9._-]' THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = ${pgString(API_KEY_MESSAGES.name)};
  ELSIF NEW.hash IS NULL OR length(NEW.hash) <> 64 OR NEW.hash ~ '[^0-9a-f]' THEN
    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = ${pgString(API_KEY_MESSAGES.hash)};
  END IF;
  RETURN NEW;
END $fn$;

CREATE OR REPLACE FUNCTION faas_config_changed() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE faas_config SET version = version + 1 WHERE id = 1;
  PERFORM pg_notify('${NOTIFY_CHANNEL}', TG_TABLE_NAME);
  RETURN NULL;
END $fn$;

DROP TRIGGER IF EXISTS functions_check ON functions;
DROP TRIGGER IF EXISTS functions_history ON functions;
DROP TRIGGER IF EXISTS functions_notify ON functions;
DROP TRIGGER IF EXISTS api_keys_check ON api_keys;
DROP TRIGGER IF EXISTS api_keys_notify ON api_keys;
CREATE TRIGGER functions_check BEFORE INSERT OR UPDATE ON functions FOR EACH ROW EXECUTE FUNCTION faas_functions_check();
CREATE TRIGGER functions_history AFTER INSERT OR UPDATE OR DELETE ON functions FOR EACH ROW EXECUTE FUNCTION faas_functions_history();
CREATE TRIGGER functions_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON functions FOR EACH STATEMENT EXECUTE FUNCTION faas_config_changed();
CREATE TRIGGER api_keys_check BEFORE INSERT OR UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION faas_api_keys_check();
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION faas_config_changed();
`;
}

export interface PgMigrateResult {
  readonly from: number;
  readonly to: number;
}

/**
 * Brings the cluster schema to PG_SCHEMA_VERSION in one transaction under an advisory lock (two
 * gateways starting together take turns; the second finds the work done). Refuses a schema from
 * a newer gateway, as the SQLite migration does.
 */
export async function migratePg(client: pg.Client | pg.PoolClient): Promise<PgMigrateResult> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    // Made here, not in TABLES: the version must be read before anything else is created.
    await client.query('CREATE TABLE IF NOT EXISTS faas_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)');
    const row = (await client.query<{ version: number }>('SELECT version FROM faas_schema WHERE id = 1')).rows[0];
    const from = row?.version ?? 0;
    if (from > PG_SCHEMA_VERSION) {
      throw new Error(`the cluster database's schema is version ${from}, newer than this gateway understands (${PG_SCHEMA_VERSION}); upgrade the gateway`);
    }
    if (from < PG_SCHEMA_VERSION) {
      await client.query(HELPERS);
      await client.query(TABLES);
      await client.query(triggers());
      await client.query('INSERT INTO faas_schema(id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version', [PG_SCHEMA_VERSION]);
    }
    await client.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
