// Asynchronous invocations, stored durably (README "Async invocations"): the SQL of the queue. The
// dispatcher (src/async/dispatcher.ts) decides; this file only reads and writes, synchronously.
//
// Its own file beside the routes database (`faas.db` → `faas-invocations.db`), not a table in it:
// the queue is written on every async call and every attempt, and the routes file is the
// operators' — their long transactions would hold the queue's writes (better-sqlite3 waits on
// the event loop), and a routes file replaced by a backup (route-store.ts reads it in full)
// would take the queue back in time, running finished invocations again. Operators read it with
// plain SQL (`sqlite3 data/faas-invocations.db "SELECT id, route, state, attempts, error FROM
// invocations WHERE state = 'failed'"`) and change it through the admin API.
//
// Durability: WAL with synchronous=FULL, so a commit is on disk (the WAL fsynced) before it
// returns: a 202 survives the gateway's SIGKILL (NORMAL would do for that: the WAL is in the page
// cache) and the machine's power going too (NORMAL would lose the last commits). The price is an
// fsync per commit, so callers batch: everything one event-loop turn wants written is one
// transaction (commit()).
//
// At-least-once: an attempt's start (state running, attempts + 1) is committed before the call is
// sent, so a call a crash cut short is run again with a higher attempt number, never the same one.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CallRequest } from '../calls.js';

export type InvocationState = 'queued' | 'running' | 'succeeded' | 'failed';
export type CallbackState = 'pending' | 'delivered' | 'failed';

export const INVOCATIONS_SCHEMA_VERSION = 1;

/** Where the queue lives, given the routes database: `data/faas.db` → `data/faas-invocations.db`. */
export function invocationsDbPath(routesDb: string): string {
  const ext = path.extname(routesDb);
  return `${ext === '' ? routesDb : routesDb.slice(0, -ext.length)}-invocations${ext === '' ? '.db' : ext}`;
}

/** A call accepted for later. */
export interface NewInvocation extends CallRequest {
  readonly id: string;
  readonly route: string;
  readonly callbackUrl: string | undefined;
  readonly created: number;
}

/** What the dispatcher keeps in memory of a queued invocation. */
export interface QueuedRef {
  readonly seq: number;
  readonly id: string;
  readonly route: string;
  /** When it (last) entered the queue: accepted, or retried by an operator. Its age and ttl count from here. */
  readonly queuedAt: number;
  readonly nextAt: number;
}

/** An invocation whose attempt has just been recorded as started. */
export interface Started extends CallRequest {
  readonly seq: number;
  readonly id: string;
  readonly route: string;
  /** Including this one. */
  readonly attempts: number;
  /** Attempts made before the last operator retry: attempts - retryFrom count against `retries`. */
  readonly retryFrom: number;
  readonly queuedAt: number;
  readonly callbackUrl: string | undefined;
}

/** The function's answer, as kept (body bounded by the caller). */
export interface StoredResult {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** The whole body's length: more than body.length when it was cut. */
  readonly bytes: number;
}

/** One write; commit() applies a list of them in one transaction. */
export type Change =
  | { readonly kind: 'insert'; readonly row: NewInvocation }
  /** Back to the queue: a failed attempt to retry (`error`), or one that never reached a function (`uncount`: attempts - 1). */
  | { readonly kind: 'requeue'; readonly id: string; readonly nextAt: number; readonly uncount: boolean; readonly errorCode: string; readonly error: string }
  | { readonly kind: 'finish'; readonly id: string; readonly state: 'succeeded' | 'failed'; readonly finished: number; readonly expires: number;
      readonly result: StoredResult | undefined; readonly errorCode: string | undefined; readonly error: string | undefined; readonly callback: boolean }
  | { readonly kind: 'callback'; readonly id: string; readonly state: CallbackState; readonly attempts: number; readonly error: string | undefined };

/** An invocation as the status URL and the admin API show it. */
export interface InvocationRow {
  readonly seq: number;
  readonly id: string;
  readonly route: string;
  readonly state: InvocationState;
  readonly attempts: number;
  readonly created: number;
  readonly queuedAt: number;
  readonly nextAt: number;
  readonly started: number | null;
  readonly finished: number | null;
  readonly expires: number | null;
  readonly requestId: string;
  readonly bodyBytes: number;
  /** The function's status, once it answered. */
  readonly status: number | null;
  /** The function's answer (not in lists). */
  readonly result: StoredResult | undefined;
  readonly errorCode: string | null;
  readonly error: string | null;
  readonly callbackUrl: string | null;
  readonly callbackState: CallbackState | null;
  readonly callbackAttempts: number;
  readonly callbackError: string | null;
}

export interface ListQuery {
  readonly state?: InvocationState;
  readonly route?: string;
  /** Only those accepted after this seq (the previous page's `next`). */
  readonly after: number;
  readonly limit: number;
}

interface RawRow {
  seq: number; id: string; route: string; state: InvocationState; attempts: number; retry_from: number; created: number; queued_at: number;
  next_at: number; started: number | null; finished: number | null; expires: number | null; request_id: string; method: string; path: string;
  query: string; headers: string; body: Buffer; body_bytes: number; client_ip: string; status: number | null; result_headers: string | null;
  result_body: Buffer | null; result_bytes: number | null; error_code: string | null; error: string | null; callback_url: string | null;
  callback_state: CallbackState | null; callback_attempts: number;
}

/** A list's columns: no bodies. */
const LIST_COLUMNS = `seq, id, route, state, attempts, created, queued_at, next_at, started, finished, expires, request_id,
  length(body) AS body_bytes, status, result_bytes, error_code, error, callback_url, callback_state, callback_attempts, callback_error`;
const VIEW_COLUMNS = `${LIST_COLUMNS}, result_headers, result_body`;

export class InvocationStore {
  private readonly s: ReturnType<typeof prepare>;

  private constructor(private readonly db: Database.Database, readonly file: string) {
    this.s = prepare(db);
  }

  /** Opens (creating) the queue's database: WAL, synchronous=FULL, the schema at its version. */
  static open(file: string): InvocationStore {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: 1000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      migrate(db);
      return new InvocationStore(db, file);
    } catch (err) {
      db?.close();
      throw new Error(`cannot use ${file} as the async invocations database: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Applies `changes`, then records an attempt's start for each of `starts` still queued, in one
   * transaction (one fsync). Returns the invocations started, in the order asked.
   */
  commit(changes: readonly Change[], starts: readonly string[], now: number): Started[] {
    return this.db.transaction((): Started[] => {
      for (const c of changes) this.apply(c);
      const started: Started[] = [];
      for (const id of starts) {
        const r = this.s.start.get(now, id) as RawRow | undefined;
        if (r) started.push(toStarted(r));
      }
      return started;
    }).immediate();
  }

  /**
   * After a restart: attempts that were running when the gateway stopped. They were counted when
   * they started; the dispatcher decides whether each goes back to the queue or is dead-lettered.
   */
  interrupted(): Array<{ readonly id: string; readonly route: string; readonly attempts: number; readonly retryFrom: number }> {
    return (this.s.interrupted.all() as RawRow[]).map((r) => ({ id: r.id, route: r.route, attempts: r.attempts, retryFrom: r.retry_from }));
  }

  /** Every queued invocation, oldest first: what the dispatcher loads at start. */
  queued(): QueuedRef[] {
    return (this.s.queued.all() as RawRow[]).map((r) => ({ seq: r.seq, id: r.id, route: r.route, queuedAt: r.queued_at, nextAt: r.next_at }));
  }

  /** Finished invocations whose callback has not been delivered yet (nor given up on). */
  pendingCallbacks(): string[] {
    return this.s.pendingCallbacks.all() as string[];
  }

  get(id: string): InvocationRow | undefined {
    const r = this.s.get.get(id) as (RawRow & { callback_error: string | null }) | undefined;
    return r && toRow(r);
  }

  list(q: ListQuery): InvocationRow[] {
    return (this.s.list.all({ state: q.state ?? null, route: q.route ?? null, after: q.after, limit: q.limit }) as Array<RawRow & { callback_error: string | null }>)
      .map((r) => toRow(r, false));
  }

  /** A dead letter back to the queue, its retries counted afresh. Undefined when there is no such invocation. */
  retry(id: string, now: number): { readonly ok: true; readonly ref: QueuedRef } | { readonly ok: false; readonly state: InvocationState } | undefined {
    return this.db.transaction(() => {
      const r = this.s.get.get(id) as RawRow | undefined;
      if (!r) return undefined;
      if (r.state !== 'failed') return { ok: false as const, state: r.state };
      this.s.retry.run({ now, id });
      return { ok: true as const, ref: { seq: r.seq, id, route: r.route, queuedAt: now, nextAt: now } };
    }).immediate();
  }

  /** Deletes finished invocations past their retention whose callback is done. Returns how many. */
  sweep(now: number, limit = 1000): number {
    return this.s.sweep.run(now, limit).changes;
  }

  /** Failed invocations kept (the dead-letter list). */
  deadLetters(): number {
    return this.s.deadLetters.get() as number;
  }

  close(): void {
    this.db.close();
  }

  private apply(c: Change): void {
    switch (c.kind) {
      case 'insert': {
        const r = c.row;
        this.s.insert.run(r.id, r.route, r.created, r.created, r.created, r.requestId, r.method, r.path, r.query, JSON.stringify(r.headers), r.body,
          r.clientIp, r.callbackUrl ?? null);
        return;
      }
      case 'requeue':
        this.s.requeue.run(c.nextAt, c.uncount ? 1 : 0, c.errorCode, c.error, c.id);
        return;
      case 'finish':
        this.s.finish.run(c.state, c.finished, c.expires, c.result?.status ?? null, c.result ? JSON.stringify(c.result.headers) : null,
          c.result?.body ?? null, c.result?.bytes ?? null, c.errorCode ?? null, c.error ?? null, c.callback ? 1 : 0, c.id);
        return;
      case 'callback':
        this.s.callback.run(c.state, c.attempts, c.error ?? null, c.id);
        return;
    }
  }
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    const from = db.pragma('user_version', { simple: true }) as number;
    if (from > INVOCATIONS_SCHEMA_VERSION) {
      throw new Error(`its schema is version ${from}, newer than this gateway understands (${INVOCATIONS_SCHEMA_VERSION}); upgrade the gateway`);
    }
    if (from < 1) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS invocations (
          seq INTEGER PRIMARY KEY,           -- acceptance order
          id TEXT NOT NULL UNIQUE,           -- 128 random bits, base64url: the status URL's, the only key a client holds
          route TEXT NOT NULL,               -- 'METHOD:/path'
          state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
          attempts INTEGER NOT NULL DEFAULT 0,    -- attempts started (what the function sees as x-faas-attempt)
          retry_from INTEGER NOT NULL DEFAULT 0,  -- attempts before the last operator retry
          created INTEGER NOT NULL,          -- unix ms, accepted
          queued_at INTEGER NOT NULL,        -- unix ms, accepted or retried by an operator: ttl_s counts from here
          next_at INTEGER NOT NULL,          -- unix ms: not started before (backoff)
          started INTEGER,                   -- unix ms, the last attempt's start
          finished INTEGER,                  -- unix ms
          expires INTEGER,                   -- unix ms: a finished invocation is deleted after (finished + ttl_s)
          request_id TEXT NOT NULL,
          method TEXT NOT NULL, path TEXT NOT NULL, query TEXT NOT NULL,
          headers TEXT NOT NULL,             -- JSON [name, value, ...], as the function gets them
          body BLOB NOT NULL,
          client_ip TEXT NOT NULL,
          status INTEGER,                    -- the function's answer, once it gave one
          result_headers TEXT,
          result_body BLOB,                  -- at most 1 MiB of it
          result_bytes INTEGER,              -- its whole length
          error_code TEXT, error TEXT,       -- the last failure: an error code of the README, or FUNCTION_STATUS (a 5xx answer)
          callback_url TEXT,
          callback_state TEXT CHECK (callback_state IN ('pending', 'delivered', 'failed')),
          callback_attempts INTEGER NOT NULL DEFAULT 0,
          callback_error TEXT
        );
        CREATE INDEX IF NOT EXISTS invocations_state ON invocations(state, route, seq);
        CREATE INDEX IF NOT EXISTS invocations_expires ON invocations(expires) WHERE expires IS NOT NULL;
        CREATE INDEX IF NOT EXISTS invocations_callbacks ON invocations(callback_state) WHERE callback_state = 'pending';
      `);
    }
    db.pragma(`user_version = ${INVOCATIONS_SCHEMA_VERSION}`);
  }).immediate();
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(`INSERT INTO invocations(id, route, state, created, queued_at, next_at, request_id, method, path, query, headers, body,
      client_ip, callback_url) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    start: db.prepare(`UPDATE invocations SET state = 'running', attempts = attempts + 1, started = ? WHERE id = ? AND state = 'queued'
      RETURNING seq, id, route, attempts, retry_from, queued_at, request_id, method, path, query, headers, body, client_ip, callback_url`),
    requeue: db.prepare(`UPDATE invocations SET state = 'queued', next_at = ?, attempts = attempts - ?, error_code = ?, error = ?
      WHERE id = ? AND state = 'running'`),
    finish: db.prepare(`UPDATE invocations SET state = ?, finished = ?, expires = ?, status = ?, result_headers = ?, result_body = ?, result_bytes = ?,
      error_code = coalesce(?, error_code), error = coalesce(?, error),
      callback_state = CASE WHEN ? AND callback_url IS NOT NULL THEN 'pending' ELSE callback_state END
      WHERE id = ? AND state IN ('queued', 'running')`),
    callback: db.prepare('UPDATE invocations SET callback_state = ?, callback_attempts = ?, callback_error = ? WHERE id = ?'),
    interrupted: db.prepare("SELECT id, route, attempts, retry_from FROM invocations WHERE state = 'running' ORDER BY seq"),
    queued: db.prepare("SELECT seq, id, route, queued_at, next_at FROM invocations WHERE state = 'queued' ORDER BY seq"),
    pendingCallbacks: db.prepare("SELECT id FROM invocations WHERE callback_state = 'pending' ORDER BY seq").pluck(),
    get: db.prepare(`SELECT ${VIEW_COLUMNS}, retry_from FROM invocations WHERE id = ?`),
    list: db.prepare(`SELECT ${LIST_COLUMNS} FROM invocations
      WHERE (@state IS NULL OR state = @state) AND (@route IS NULL OR route = @route) AND seq > @after ORDER BY seq LIMIT @limit`),
    retry: db.prepare(`UPDATE invocations SET state = 'queued', queued_at = @now, next_at = @now, retry_from = attempts, finished = NULL, expires = NULL,
      status = NULL, result_headers = NULL, result_body = NULL, result_bytes = NULL,
      callback_state = NULL, callback_attempts = 0, callback_error = NULL WHERE id = @id`),
    sweep: db.prepare(`DELETE FROM invocations WHERE seq IN (SELECT seq FROM invocations WHERE expires <= ?
      AND (callback_state IS NULL OR callback_state <> 'pending') LIMIT ?)`),
    deadLetters: db.prepare("SELECT count(*) FROM invocations WHERE state = 'failed'").pluck(),
  };
}

function toStarted(r: RawRow): Started {
  return {
    seq: r.seq, id: r.id, route: r.route, attempts: r.attempts, retryFrom: r.retry_from, queuedAt: r.queued_at, requestId: r.request_id,
    method: r.method, path: r.path, query: r.query, headers: JSON.parse(r.headers) as string[], body: r.body, clientIp: r.client_ip,
    callbackUrl: r.callback_url ?? undefined,
  };
}

function toRow(r: RawRow & { callback_error: string | null }, withResult = true): InvocationRow {
  return {
    seq: r.seq, id: r.id, route: r.route, state: r.state, attempts: r.attempts, created: r.created, queuedAt: r.queued_at, nextAt: r.next_at,
    started: r.started, finished: r.finished, expires: r.expires, requestId: r.request_id, bodyBytes: r.body_bytes, status: r.status,
    result: withResult && r.status !== null
      ? { status: r.status, headers: JSON.parse(r.result_headers ?? '[]') as string[], body: r.result_body ?? Buffer.alloc(0), bytes: r.result_bytes ?? 0 }
      : undefined,
    errorCode: r.error_code, error: r.error, callbackUrl: r.callback_url, callbackState: r.callback_state,
    callbackAttempts: r.callback_attempts, callbackError: r.callback_error,
  };
}
