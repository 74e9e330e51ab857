// The management API's plumbing (api-v1.ts): its answers and errors as JSON in the gateway's shape
// ({statusCode, code, error, message}, codes in src/errors.ts), and request bodies read with a limit.
import { errorBody, ERRORS, statusLine, type ErrorCode } from '../errors.js';
import type { HttpResponse } from './uws.js';

/** A function's config with inline code (a wasm module as base64) fits; the public port's limit does not apply here. */
export const API_MAX_BODY_BYTES = 8 * 1024 * 1024;

/** What a handler needs of a request, read from uWS before any callback. */
export interface ApiRequest {
  readonly method: string;
  readonly query: URLSearchParams;
  readonly ifMatch: string;
  readonly ifNoneMatch: string;
  readonly body?: unknown;
}

export interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

/** An error answer, thrown anywhere in a handler and turned into the error JSON. */
export class ApiError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly problems?: readonly string[],
    readonly headers: ReadonlyArray<readonly [string, string]> = []) {
    super(message);
  }
}

export function parseJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new ApiError('INVALID_REQUEST', 'the request body is empty; send a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError('INVALID_REQUEST', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Anything a handler threw, as an answer. SQLite's errors are told apart by their code (better-sqlite3 sets it): src/http imports nothing of it. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return new ApiError('DATABASE_BUSY', `another writer holds the database (${(err as Error).message}); nothing was written, retry`, undefined, [['retry-after', '1']]);
  }
  if (code === 'CLUSTER_DB_UNAVAILABLE') return new ApiError('CLUSTER_DB_UNAVAILABLE', (err as Error).message, undefined, [['retry-after', '1']]);
  if (code === 'SQLITE_CONSTRAINT_TRIGGER' || code === '23514' /* PostgreSQL's check_violation: the cluster schema's triggers */) {
    // The triggers refused what checkFunction let through: a database whose rules are newer than this gateway's.
    return new ApiError('VALIDATION_FAILED', `the database refused the row: ${(err as Error).message}`, [(err as Error).message]);
  }
  return new ApiError('INTERNAL_ERROR', `the admin API failed: ${typeof code === 'string' ? `${code}: ` : ''}${(err as Error)?.message ?? String(err)}`);
}

export function errorAnswer(err: ApiError): Answer {
  const status = ERRORS[err.code].status;
  return { status, body: JSON.parse(errorBody(err.code, err.message, err.problems)), headers: err.headers };
}

export function send(res: HttpResponse, state: { aborted: boolean }, a: Answer): void {
  if (state.aborted) return;
  const text = JSON.stringify(a.body, null, 2);
  res.cork(() => {
    res.writeStatus(statusLine(a.status)).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store');
    for (const [name, value] of a.headers ?? []) res.writeHeader(name, value);
    res.end(text);
  });
}

/** The whole body, or undefined when it passed API_MAX_BODY_BYTES (the rest is read and dropped). uWS reuses each chunk: copied. */
export function readBody(res: HttpResponse, state: { aborted: boolean }, done: (bytes: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (state.aborted) return;
    if (!over) {
      received += chunk.byteLength;
      if (received > API_MAX_BODY_BYTES) {
        over = true;
        chunks.length = 0;
      } else chunks.push(Buffer.from(new Uint8Array(chunk)));
    }
    if (isLast) done(over ? undefined : Buffer.concat(chunks));
  });
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The error JSON for an admin refusal (admin-access.ts) or any answer outside /api/v1 that wants the same shape. */
export function sendError(res: HttpResponse, code: ErrorCode, message: string, headers: ReadonlyArray<readonly [string, string]> = []): void {
  const status = ERRORS[code].status;
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store');
    for (const [name, value] of headers) res.writeHeader(name, value);
    res.end(JSON.stringify(JSON.parse(errorBody(code, message)), null, 2));
  });
}
