// The admin API's reads and writes with --cluster-db: the functions and api_keys tables in the
// cluster's PostgreSQL, with the decisions FunctionStore makes on SQLite (function-store.ts): the
// row read inside the write's transaction and handed to `decide` (If-Match, merge patches), the
// gateway's own check (checkFunction) before the schema's triggers check again, the same
// 'redeployed' rule. Each node's copy then follows by NOTIFY (cluster-sync.ts).
//
// Two writers of one key take turns on an advisory lock held for the transaction (a key that does
// not exist yet has no row to lock), and the row is read FOR UPDATE so that an operator's psql,
// which takes no advisory lock, is ordered too. A version is the cluster's, the same on every node.
//
// A small pool (2), not the sync's connection: a write must not queue behind a slow read, and
// LISTEN's session is the sync's alone. Errors reaching PostgreSQL at all become
// CLUSTER_DB_UNAVAILABLE (503 with Retry-After); its refusals keep their SQLSTATE (23514: a
// trigger's check) for api-io.ts.
import pg from 'pg';
import { generateKey, hashKey, KeyError, KEY_NAME, KEY_NAME_RULE, type KeyInfo } from '../routes/api-keys.js';
import { changeOf, checkFunction, type Decide, type FunctionSource, type FunctionVersion, type RemoveOutcome, type RowCheck, type StoredFunction, type WriteOutcome } from '../routes/function-store.js';
import { checkUsable } from '../routes/function-config.js';

const POOL_SIZE = 2;
const TIMEOUT_MS = 5000;

type Client = pg.PoolClient;

export class PgFunctionStore implements FunctionSource {
  private readonly pool: pg.Pool;

  constructor(private readonly url: string, password: string | undefined, readonly usable: RowCheck = checkUsable) {
    const withPassword = new URL(url);
    if (password !== undefined) withPassword.password = encodeURIComponent(password);
    this.pool = new pg.Pool({ connectionString: withPassword.toString(), max: POOL_SIZE, connectionTimeoutMillis: TIMEOUT_MS,
      query_timeout: TIMEOUT_MS, idleTimeoutMillis: 30_000, application_name: 'faas-gateway-admin' });
    this.pool.on('error', () => {}); // an idle client's lost connection: the next checkout makes a new one
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  list(opts: { after?: string; limit?: number } = {}): Promise<StoredFunction[]> {
    return this.session(async (c) => (await c.query(
      `SELECT k, v, version, updated FROM functions WHERE k COLLATE "C" > $1 ORDER BY k COLLATE "C" ${opts.limit === undefined ? '' : 'LIMIT $2'}`,
      opts.limit === undefined ? [opts.after ?? ''] : [opts.after ?? '', opts.limit])).rows.map(stored));
  }

  get(key: string): Promise<StoredFunction | undefined> {
    return this.session((c) => read(c, key, false));
  }

  versions(key: string): Promise<FunctionVersion[]> {
    return this.session(async (c) => (await c.query('SELECT version, updated, v FROM functions_versions WHERE k = $1 ORDER BY version DESC', [key])).rows.map(kept));
  }

  version(key: string, version: number): Promise<FunctionVersion | undefined> {
    return this.session(async (c) => {
      const row = (await c.query('SELECT version, updated, v FROM functions_versions WHERE k = $1 AND version = $2', [key, version])).rows[0];
      return row === undefined ? undefined : kept(row);
    });
  }

  write<R>(key: string, decide: Decide<R>): Promise<WriteOutcome<R>> {
    return this.transaction(key, async (c): Promise<WriteOutcome<R>> => {
      const current = await read(c, key, true);
      const decided = decide(current);
      if ('refused' in decided) return { ok: false, refused: decided.refused };
      const checked = checkFunction(key, decided.v, this.usable);
      if (!checked.ok) return { ok: false, problems: checked.problems };
      const v = decided.v;
      // The same config again gets a new version, as on SQLite, so nodes reread a changed file at `path`.
      if (current?.v === v) await c.query('DELETE FROM functions WHERE k = $1', [key]);
      const row = (await c.query<{ version: string; updated: string }>(
        'INSERT INTO functions(k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING version, updated', [key, v])).rows[0]!;
      const version = Number(row.version);
      if (current?.v === v) await c.query('DELETE FROM functions_versions WHERE k = $1 AND version > $2 AND version < $3 AND v IS NULL', [key, current.version, version]);
      return { ok: true, written: { updated: Number(row.updated), version, change: changeOf(current, v) }, v, config: checked.config };
    });
  }

  remove<R>(key: string, refuse: (current: StoredFunction) => R | undefined): Promise<RemoveOutcome<R>> {
    return this.transaction(key, async (c): Promise<RemoveOutcome<R>> => {
      const current = await read(c, key, true);
      if (current === undefined) return { ok: false, missing: true };
      const refused = refuse(current);
      if (refused !== undefined) return { ok: false, refused };
      await c.query('DELETE FROM functions WHERE k = $1', [key]);
      return { ok: true, removed: current };
    });
  }

  createKey(name: string): Promise<{ readonly key: string; readonly created: number }> {
    if (!KEY_NAME.test(name)) return Promise.reject(new KeyError(`key name ${JSON.stringify(name)} ${KEY_NAME_RULE}`));
    const key = generateKey();
    return this.session(async (c) => {
      try {
        const row = (await c.query<{ created: string }>('INSERT INTO api_keys(name, hash) VALUES ($1, $2) RETURNING created', [name, hashKey(key).toString('hex')])).rows[0]!;
        return { key, created: Number(row.created) };
      } catch (err) {
        if ((err as { code?: string }).code === '23505' && (err as { constraint?: string }).constraint === 'api_keys_pkey') {
          throw new KeyError(`a key named ${JSON.stringify(name)} exists; revoke it first or pick another name`);
        }
        throw err;
      }
    });
  }

  listKeys(): Promise<KeyInfo[]> {
    return this.session(async (c) => (await c.query<{ name: string; created: string }>('SELECT name, created FROM api_keys ORDER BY name COLLATE "C"')).rows
      .map((r) => ({ name: r.name, created: Number(r.created) })));
  }

  revokeKey(name: string): Promise<boolean> {
    return this.session(async (c) => ((await c.query('DELETE FROM api_keys WHERE name = $1', [name])).rowCount ?? 0) > 0);
  }

  /** Runs `fn` on a pooled connection; a failure to reach PostgreSQL becomes CLUSTER_DB_UNAVAILABLE. */
  private async session<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unavailable(err);
    }
    let broken = false;
    try {
      return await fn(client);
    } catch (err) {
      broken = !(err instanceof KeyError) && !isSqlState(err);
      throw broken ? this.unavailable(err) : err;
    } finally {
      client.release(broken);
    }
  }

  /** `fn` in one transaction holding the key's advisory lock; rolled back when it returns a refusal or throws. */
  private transaction<T extends { ok: boolean }>(key: string, fn: (c: Client) => Promise<T>): Promise<T> {
    return this.session(async (c) => {
      await c.query('BEGIN');
      try {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
        const result = await fn(c);
        await c.query(result.ok ? 'COMMIT' : 'ROLLBACK');
        return result;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  private unavailable(err: unknown): Error {
    const reason = err instanceof Error ? err.message : String(err);
    return Object.assign(new Error(`the cluster database ${this.url} could not be reached: ${reason}; nothing was written`), { code: 'CLUSTER_DB_UNAVAILABLE' });
  }
}

/** PostgreSQL's own refusals carry a five-character SQLSTATE; anything else is the connection. */
function isSqlState(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && code !== '57P01';
}

async function read(c: Client, key: string, forUpdate: boolean): Promise<StoredFunction | undefined> {
  const row = (await c.query(`SELECT k, v, version, updated FROM functions WHERE k = $1${forUpdate ? ' FOR UPDATE' : ''}`, [key])).rows[0];
  return row === undefined ? undefined : stored(row);
}

// pg gives bigint columns as strings.
const stored = (r: { k: string; v: string; version: string; updated: string }): StoredFunction =>
  ({ key: r.k, v: r.v, version: Number(r.version), updated: Number(r.updated) });
const kept = (r: { version: string; updated: string; v: string | null }): FunctionVersion =>
  ({ version: Number(r.version), updated: Number(r.updated), v: r.v });
