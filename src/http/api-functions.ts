// /api/v1/functions (api-v1.ts routes here): list, get, PUT, PATCH, DELETE and versions of the
// functions table's rows, through the check and write `faas deploy` uses (src/routes/function-store.ts).
//
// A write runs the gateway's sync at once, so it answers when the change is served (200/201), or,
// when the gateway does not serve it, 202 with what it serves instead and why.
//
// Versions and conditional requests: a row's version is its change-log seq (schema.ts), sent as a
// strong ETag ("14"). If-Match is checked inside the write's transaction, so of two writers that
// read version 14 exactly one succeeds and the other gets 412. A PUT that would replace an
// existing row and a DELETE must say which version they replace (If-Match: "14", or * for
// whatever is there): else 428, as they could silently undo another operator's change. A PATCH
// (JSON merge patch, RFC 7396) changes only the fields it names and is applied to the row as it is
// inside the transaction, so If-Match is optional there.
import type { FunctionSource, StoredFunction } from '../routes/function-store.js';
import type { RouteStatus } from '../routes/route-store.js';
import { VERSIONS_KEPT } from '../routes/schema.js';
import { ApiError, isObject, type Answer, type ApiRequest } from './api-io.js';

const DEFAULT_LIST_LIMIT = 1000;
const MAX_LIST_LIMIT = 10_000;
const BASE = '/api/v1';

export interface FunctionApiDeps {
  readonly store: FunctionSource;
  /** Runs the gateway's sync now (what its timer runs; in a cluster, a read of PostgreSQL first); ok false, with why, when it could not read the database. */
  readonly syncNow: () => Promise<{ readonly ok: boolean; readonly error?: string }>;
  /** What the gateway serves for one key now, as GET /routes shows it; undefined when it knows nothing of it. */
  readonly routeStatus: (key: string) => RouteStatus | undefined;
  readonly syncMs: number;
}

/** What the gateway does with a key, beside its row: `ok` serves this version; the rest say what instead and why. */
export interface Serving {
  readonly state: 'ok' | 'pending' | 'stale' | 'error' | 'building';
  /** The version the gateway serves (absent: none). */
  readonly version?: number;
  readonly error?: string;
  /** State 'building': what the gateway is building for this version (npm ci, pip install, go build). */
  readonly building?: string;
  /** The served version's build, where it has one. */
  readonly build?: RouteStatus['build'];
}

function serving(status: RouteStatus | undefined, version: number, sync?: { ok: boolean; error?: string }): Serving {
  const served = status?.version === undefined ? {} : { version: status.version };
  if (sync && !sync.ok) return { state: 'pending', ...served, error: `the gateway could not read its database (${sync.error}); it retries every sync period` };
  if (status === undefined) return { state: 'pending' };
  const build = status.build && { build: status.build };
  if (status.state === 'ok') return status.version === version ? { state: 'ok', version, ...build } : { state: 'pending', ...served };
  return {
    state: status.state, ...served, ...(status.error !== undefined && { error: status.error }),
    ...(status.building !== undefined && { building: status.building }),
  };
}

function functionView(deps: FunctionApiDeps, row: StoredFunction, withCode: boolean, sync?: { ok: boolean; error?: string }): Record<string, unknown> {
  const config = parseStored(row.v);
  let codeBytes: number | undefined;
  if (!withCode && isObject(config) && typeof config.code === 'string') {
    codeBytes = Buffer.byteLength(config.code);
    delete config.code;
  }
  return {
    key: row.key, version: row.version, updated: row.updated, config,
    ...(codeBytes !== undefined && { codeBytes }),
    serving: serving(deps.routeStatus(row.key), row.version, sync),
  };
}

export async function listFunctions(deps: FunctionApiDeps, query: URLSearchParams): Promise<Answer> {
  const problems: string[] = [];
  const code = query.get('code');
  if (code !== null && code !== '0' && code !== '1') problems.push(`code must be 0 or 1 (got ${JSON.stringify(code)})`);
  const rawLimit = query.get('limit');
  const limit = rawLimit === null ? DEFAULT_LIST_LIMIT : Number(rawLimit);
  if (rawLimit !== null && !(/^\d+$/.test(rawLimit) && limit >= 1 && limit <= MAX_LIST_LIMIT)) problems.push(`limit must be an integer between 1 and ${MAX_LIST_LIMIT} (got ${JSON.stringify(rawLimit)})`);
  if (problems.length > 0) throw new ApiError('INVALID_REQUEST', problems.join('; '));
  const after = query.get('after') ?? undefined;
  // One more than asked for says whether there is a next page.
  const rows = await deps.store.list({ ...(after !== undefined && { after }), limit: limit + 1 });
  const page = rows.slice(0, limit);
  return {
    status: 200,
    body: { functions: page.map((r) => functionView(deps, r, code === '1')), ...(rows.length > limit && { next: page[page.length - 1]!.key }) },
  };
}

export async function getFunction(deps: FunctionApiDeps, key: string): Promise<Answer> {
  const row = await deps.store.get(key);
  if (row === undefined) throw notFound(key);
  return { status: 200, body: functionView(deps, row, true), headers: [['etag', etag(row.version)]] };
}

/** PUT (the whole config) and PATCH (a merge patch of it). */
export async function writeFunction(deps: FunctionApiDeps, key: string, req: ApiRequest): Promise<Answer> {
  const ifMatch = parseTags(req.ifMatch, 'If-Match');
  const ifNoneMatch = parseTags(req.ifNoneMatch, 'If-None-Match');
  const put = req.method === 'PUT';
  const outcome = await deps.store.write<ApiError>(key, (current) => {
    if (!put && current === undefined) return { refused: notFound(key, ' (PATCH changes a function that exists; PUT creates one)') };
    const failed = precondition(key, current, ifMatch, ifNoneMatch);
    if (failed) return { refused: failed };
    if (put && current !== undefined && ifMatch === undefined && ifNoneMatch === undefined) {
      return { refused: new ApiError('PRECONDITION_REQUIRED', `${key} exists (version ${current.version}): to replace it send If-Match: ${etag(current.version)} `
        + '(the version you read), or If-Match: * to replace whatever version is there') };
    }
    if (put) return { v: JSON.stringify(req.body) };
    const base = parseStored(current!.v);
    if (!isObject(base)) return { refused: new ApiError('VALIDATION_FAILED', `${key}'s stored config is not a JSON object, so there is nothing to merge into; PUT a whole config`) };
    return { v: JSON.stringify(mergePatch(base, req.body)) };
  });
  if (!outcome.ok) {
    if ('refused' in outcome) throw outcome.refused;
    throw new ApiError('VALIDATION_FAILED', `${key}: refused, nothing written: ${outcome.problems.join('; ')}`, outcome.problems);
  }
  const sync = await deps.syncNow();
  const row: StoredFunction = { key, v: outcome.v, version: outcome.written.version, updated: outcome.written.updated };
  const view = functionView(deps, row, true, sync);
  const live = (view.serving as Serving).state === 'ok';
  const created = outcome.written.change === 'created';
  const headers: Array<[string, string]> = [['etag', etag(row.version)]];
  if (created) headers.push(['location', `${BASE}/functions/${encodeURIComponent(key)}`]);
  if (!live) headers.push(['retry-after', String(Math.ceil(deps.syncMs / 1000))]);
  return { status: live ? (created ? 201 : 200) : 202, body: { ...view, change: outcome.written.change }, headers };
}

export async function deleteFunction(deps: FunctionApiDeps, key: string, req: ApiRequest): Promise<Answer> {
  const ifMatch = parseTags(req.ifMatch, 'If-Match');
  const outcome = await deps.store.remove<ApiError>(key, (current) => {
    if (ifMatch === undefined) {
      return new ApiError('PRECONDITION_REQUIRED', `to delete ${key} (version ${current.version}) send If-Match: ${etag(current.version)} `
        + '(the version you read), or If-Match: * to delete whatever version is there');
    }
    return precondition(key, current, ifMatch, undefined);
  });
  if (!outcome.ok) throw 'refused' in outcome ? outcome.refused : notFound(key);
  const sync = await deps.syncNow();
  const status = deps.routeStatus(key);
  const gone = sync.ok && status?.version === undefined;
  return {
    status: gone ? 200 : 202,
    body: { key, version: outcome.removed.version, deleted: true,
      serving: gone ? null : serving(status, -1, sync) },
    ...(!gone && { headers: [['retry-after', String(Math.ceil(deps.syncMs / 1000))] as const] }),
  };
}

/**
 * A key's kept history (functions_versions, schema.ts), newest first: each version with when it was
 * made, whether it is the row now, whether the gateway serves it (with why not when the row is
 * refused), and deletions. Code is left out, as in the list; GET …/versions/{version} has it.
 */
export async function versions(deps: FunctionApiDeps, key: string): Promise<Answer> {
  const kept = await deps.store.versions(key);
  const row = await deps.store.get(key);
  const status = deps.routeStatus(key);
  if (kept.length === 0 && row === undefined && status?.version === undefined) throw notFound(key);
  const list = kept.map((entry) => {
    const served = status?.version === entry.version;
    const current = row?.version === entry.version;
    if (entry.v === null) return { version: entry.version, updated: entry.updated, deleted: true, row: false, served: false };
    const config = parseStored(entry.v);
    return {
      version: entry.version, updated: entry.updated, deleted: false, row: current, served,
      ...(isObject(config) && typeof config.runtime === 'string' && { runtime: config.runtime }),
      ...(isObject(config) && typeof config.code === 'string' && { codeBytes: Buffer.byteLength(config.code) }),
      ...(current && !served && status?.error !== undefined && { error: status.error }),
    };
  });
  return { status: 200, body: { key, kept: VERSIONS_KEPT, versions: list } };
}

/** One kept version with its whole config: what a PUT with If-Match on the current version puts back. */
export async function version(deps: FunctionApiDeps, key: string, wanted: number): Promise<Answer> {
  const entry = await deps.store.version(key, wanted);
  if (entry === undefined) {
    throw new ApiError('FUNCTION_NOT_FOUND', `${key} has no kept version ${wanted}; GET ${BASE}/functions/${encodeURIComponent(key)}/versions lists the ${VERSIONS_KEPT} newest`);
  }
  const row = await deps.store.get(key);
  return {
    status: 200,
    body: { key, version: entry.version, updated: entry.updated, deleted: entry.v === null, row: row?.version === entry.version,
      config: entry.v === null ? null : parseStored(entry.v) },
    headers: [['etag', etag(entry.version)]],
  };
}

type Tags = '*' | readonly number[];

/** An If-Match / If-None-Match value: `*`, or strong entity tags ("14"). A weak tag (W/"14") never matches: If-Match compares strongly. */
function parseTags(raw: string, header: string): Tags | undefined {
  const text = raw.trim();
  if (text === '') return undefined;
  if (text === '*') return '*';
  const versions: number[] = [];
  for (const part of text.split(',')) {
    const m = /^(W\/)?"(\d{1,15})"$/.exec(part.trim());
    if (!m) throw new ApiError('INVALID_REQUEST', `${header} must be * or entity tags such as "14", the ETag of a version (got ${JSON.stringify(raw)})`);
    if (m[1] === undefined) versions.push(Number(m[2]));
  }
  return versions;
}

const matches = (tags: Tags, version: number): boolean => tags === '*' || tags.includes(version);

function precondition(key: string, current: StoredFunction | undefined, ifMatch: Tags | undefined, ifNoneMatch: Tags | undefined): ApiError | undefined {
  if (ifMatch !== undefined) {
    if (current === undefined) return new ApiError('PRECONDITION_FAILED', `If-Match: ${shown(ifMatch)}, but ${key} does not exist (deleted since it was read?); nothing written`);
    if (!matches(ifMatch, current.version)) {
      return new ApiError('PRECONDITION_FAILED', `If-Match: ${shown(ifMatch)}, but ${key} is at version ${current.version}: it changed since it was read. `
        + `GET it again, reapply your change, and send If-Match: ${etag(current.version)}; nothing written`);
    }
  }
  if (ifNoneMatch !== undefined && current !== undefined && matches(ifNoneMatch, current.version)) {
    return new ApiError('PRECONDITION_FAILED', `If-None-Match: ${shown(ifNoneMatch)}, but ${key} exists (version ${current.version}); nothing written`);
  }
  return undefined;
}

const shown = (tags: Tags): string => (tags === '*' ? '*' : tags.map(etag).join(', '));
export const etag = (version: number): string => `"${version}"`;

function notFound(key: string, hint = ''): ApiError {
  return new ApiError('FUNCTION_NOT_FOUND', `no function ${key}${hint}`);
}

/** JSON merge patch (RFC 7396): null removes a field, an object merges, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete out[name];
    // defineProperty: a field named "__proto__" stays a field.
    else Object.defineProperty(out, name, { value: mergePatch(out[name], value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A stored `v`: JSON text the triggers let in; a row from before them may hold anything, shown as its text. */
function parseStored(v: string): Record<string, unknown> | unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
