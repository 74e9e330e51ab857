// The schemas of the admin API's OpenAPI document (openapi.ts has the paths): built from the
// error codes, the config fields and their ranges, the key's methods, so they cannot drift.
import { STATUS_PATH } from '../async/view.js';
import { ERRORS } from '../errors.js';
import {
  ASYNC_FIELDS, AUTHS, CORS_MAX_AGE, CPU_CORES, EVENTS, FIELDS, HANDLER_MAX_CHARS, INTEGER_FIELDS, ISOLATIONS, MODES, RUNTIMES,
} from '../routes/function-config.js';
import { METHODS } from '../routes/route-key.js';

export type Schema = Record<string, unknown>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ ...schema, type: [schema.type as string, 'null'] });
const integer = (min: number, max: number): Schema => nullable({ type: 'integer', minimum: min, maximum: max });
const enumOf = (values: readonly string[]): Schema => ({ type: ['string', 'null'], enum: [...values, null] });
export const object = (properties: Record<string, Schema>, required: readonly string[] = [], closed = true): Schema =>
  ({ type: 'object', properties, required: [...required], ...(closed && { additionalProperties: false }) });
const arrayOf = (items: Schema): Schema => ({ type: 'array', items });
export const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const numOrNull: Schema = { type: ['number', 'null'] };
const intOrNull: Schema = { type: ['integer', 'null'] };

/** Each config field's schema; a field without one (added to FIELDS since) is still allowed, undescribed here. */
const FIELD_SCHEMAS: Partial<Record<(typeof FIELDS)[number], Schema>> = {
  runtime: { type: 'string', enum: [...RUNTIMES] },
  mode: enumOf(MODES),
  code: nullable({ type: 'string', minLength: 1, description: 'the source inline (wasm: the module, base64); lists leave it out unless ?code=1' }),
  path: nullable({ type: 'string', pattern: '^/', description: 'an absolute path to a file or folder on the gateway\'s host' }),
  handler: nullable({ type: 'string', pattern: `^[A-Za-z_$][A-Za-z0-9_$]{0,${HANDLER_MAX_CHARS - 1}}$` }),
  ...Object.fromEntries(Object.entries(INTEGER_FIELDS).map(([name, { min, max, fallback }]) => [name, { ...integer(min, max), default: fallback }])),
  env: nullable({ type: 'object', additionalProperties: str }),
  auth: enumOf(AUTHS),
  rate_limit: nullable(object({ rps: { type: 'number', exclusiveMinimum: 0 }, burst: { type: 'integer', minimum: 1 } }, ['rps', 'burst'])),
  image: nullable({ type: 'string', description: 'container mode: a root file system folder (absolute) or an image name' }),
  cpu: nullable({ type: 'number', minimum: CPU_CORES.min, maximum: CPU_CORES.max }),
  isolation: enumOf(ISOLATIONS),
  event: enumOf(EVENTS),
  cors: nullable(object({
    origins: { type: 'array', items: str, minItems: 1 },
    methods: { type: ['array', 'null'], items: { type: 'string', enum: [...METHODS] }, minItems: 1 },
    headers: { type: ['array', 'null'], items: str },
    max_age: integer(CORS_MAX_AGE.min, CORS_MAX_AGE.max),
    credentials: { type: ['boolean', 'null'] },
  }, ['origins'])),
  async: nullable(object(Object.fromEntries(Object.entries(ASYNC_FIELDS).map(([name, { min, max, fallback }]) =>
    [name, { ...integer(min, max), default: fallback }])))),
  dependencies: nullable(object({
    scripts: { type: ['boolean', 'null'], description: 'let installs run the packages\' own scripts (npm install scripts, python source builds); off by default' },
  })),
};

const buildReport = object({
  kind: { type: 'string', enum: ['npm', 'pip', 'go'] }, what: str, summary: str,
  ms: { type: 'integer', description: 'how long the build took' }, builtAt: { type: 'integer', description: 'unix ms' }, bytes: int,
}, ['kind', 'what', 'summary']);

const serving = object({
  state: { type: 'string', enum: ['ok', 'pending', 'stale', 'error', 'building'],
    description: 'ok: the gateway serves this version; pending: not read yet (it serves `version`, an older one, or nothing); stale: the row cannot be served and the last good config (`version`) is; error: nothing is served; building: its dependencies or program are being built (`version`, an older one, is served meanwhile, if any)' },
  version: int,
  error: str,
  building: { type: 'string', description: 'state building: what runs, and for how long' },
  build: buildReport,
}, ['state']);

const functionProps: Record<string, Schema> = {
  key: { type: 'string', description: 'METHOD:/path' },
  version: { type: 'integer', description: 'the row\'s change-log seq; the ETag is this number in quotes' },
  updated: { type: 'integer', description: 'when the row was last written, unix ms' },
  config: ref('FunctionConfig'),
  codeBytes: { type: 'integer', description: 'the size of the inline code left out of a list' },
  serving: ref('Serving'),
};

const worker = object({
  id: str, pid: intOrNull, socket: { type: ['string', 'null'] }, supervised: bool, connected: bool, available: bool,
  score: numOrNull, cpu: numOrNull, mem: numOrNull, io: numOrNull, inFlight: int, served: int, missedReports: int,
  msSinceReport: numOrNull, restarts: int, warm: { type: 'array' },
  lent: { type: 'array', description: 'instances the worker lent the gateway (the direct data path)', items: object({
    instance: str, key: str, version: int, slots: int, busy: int, open: bool,
  }, ['instance', 'key', 'version', 'slots', 'busy', 'open']) },
}, ['id', 'pid', 'available', 'score', 'inFlight'], false);

const routeStatus = object({
  key: str, state: { type: 'string', enum: ['ok', 'error', 'stale', 'building'] }, version: int, updated: int, runtime: str, error: str,
  building: str, build: buildReport,
}, ['key', 'state']);

const logEntry = object({
  seq: int, time: int, level: { type: 'string', enum: ['info', 'warn', 'error'] }, kind: { type: 'string', enum: ['access', 'output', 'error'] },
  route: str, requestId: str, msg: str, traceId: str, status: int, worker: str, ms: num, cold: bool,
  stream: { type: 'string', enum: ['stdout', 'stderr'] }, text: str, code: str,
}, ['seq', 'time', 'level', 'kind', 'route', 'requestId', 'msg']);

export const INVOCATION_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
const time: Schema = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T', description: 'ISO 8601, UTC' };
const timeOrNull: Schema = { ...time, type: ['string', 'null'] };

/** src/async/view.ts `invocationView`: what the status URL and /api/v1/invocations[/ID] answer. */
const invocation = object({
  invocationId: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
  status: { type: 'string', pattern: `^${STATUS_PATH.replaceAll('.', '\\.')}`, description: 'its status URL on the public port' },
  route: { type: 'string', description: 'METHOD:/path' },
  state: { type: 'string', enum: [...INVOCATION_STATES], description: 'failed: its retries are spent (a dead letter), or it waited past async.ttl_s' },
  attempts: { type: 'integer', minimum: 0 },
  acceptedAt: time,
  requeuedAt: { ...time, description: 'when a retry through the API queued it again' },
  nextAttemptAt: { ...time, description: 'queued, waiting out its backoff: when it runs next' },
  startedAt: timeOrNull,
  finishedAt: timeOrNull,
  expiresAt: { ...time, description: 'when its record is deleted (finished + async.ttl_s)' },
  requestId: str,
  requestBytes: { type: 'integer', minimum: 0 },
  error: { anyOf: [{ type: 'null' }, object({ code: str, message: { type: ['string', 'null'] } }, ['code', 'message'])], description: 'the last failure, kept after a later success' },
  result: {
    ...object({
      status: int,
      headers: { type: 'object', additionalProperties: { type: ['string', 'array'], items: str }, description: 'a repeated header: an array of its values' },
      body: { type: 'string', description: 'UTF-8 text, or base64 (isBase64Encoded)' },
      isBase64Encoded: bool,
      bytes: { type: 'integer', minimum: 0, description: 'the whole answer\'s size' },
      truncated: { type: 'boolean', description: 'the stored body is the first part of a larger answer' },
    }, ['status']),
    description: 'once the function answered: its answer (lists show its status only)',
  },
  callback: object({
    url: str, state: { type: 'string', enum: ['waiting', 'pending', 'delivered', 'failed'] }, attempts: { type: 'integer', minimum: 0 }, error: { type: ['string', 'null'] },
  }, ['url', 'state', 'attempts', 'error']),
}, ['invocationId', 'status', 'route', 'state', 'attempts', 'acceptedAt', 'startedAt', 'finishedAt', 'requestId', 'requestBytes', 'error']);

export const SCHEMAS: Record<string, Schema> = {
  Error: object({
    statusCode: int,
    code: { type: 'string', enum: Object.keys(ERRORS) },
    error: str,
    message: str,
    problems: { ...arrayOf(str), description: 'every problem, when the message joins several (422)' },
  }, ['statusCode', 'code', 'error', 'message']),
  FunctionConfig: {
    type: 'object',
    description: 'The row\'s `v` as stored: README "Routes" gives each field\'s meaning and rule. JSON null means "the default".',
    properties: Object.fromEntries(FIELDS.map((f) => [f, FIELD_SCHEMAS[f] ?? {}])),
    required: ['runtime'],
    additionalProperties: false,
  },
  Serving: serving,
  Function: object(functionProps, ['key', 'version', 'updated', 'config', 'serving']),
  FunctionWritten: object({
    ...functionProps,
    change: { type: 'string', enum: ['created', 'updated', 'redeployed'], description: 'redeployed: the same config again, as a new version (a changed file at `path` is reread)' },
  }, ['key', 'version', 'updated', 'config', 'serving', 'change']),
  FunctionList: object({
    functions: arrayOf(ref('Function')),
    next: { type: 'string', description: 'more rows follow: ask again with ?after= this key' },
  }, ['functions']),
  FunctionDeleted: object({
    key: str, version: { type: 'integer', description: 'the version the row had' }, deleted: { const: true },
    serving: { anyOf: [{ type: 'null' }, ref('Serving')], description: 'null: the gateway serves nothing at the key any more' },
  }, ['key', 'version', 'deleted', 'serving']),
  Versions: object({
    key: str,
    kept: { type: 'integer', description: 'how many versions of each key are kept (deletions count)' },
    versions: arrayOf(object({
      version: int, updated: int,
      deleted: { type: 'boolean', description: 'this version deleted the key' },
      row: { type: 'boolean', description: 'the functions table holds this version' },
      served: { type: 'boolean', description: 'the gateway serves this version' },
      runtime: str,
      codeBytes: { type: 'integer', description: 'the size of inline code (GET the version for the code itself)' },
      error: { type: 'string', description: 'why the gateway does not serve the row' },
    }, ['version', 'updated', 'deleted', 'row', 'served'])),
  }, ['key', 'kept', 'versions']),
  Version: object({
    key: str, version: int, updated: int,
    deleted: { type: 'boolean', description: 'this version deleted the key; config is null' },
    row: { type: 'boolean', description: 'the functions table holds this version' },
    config: { anyOf: [{ type: 'null' }, { type: 'object' }], description: 'the config as deployed: PUT it (If-Match: the current version) to put it back' },
  }, ['key', 'version', 'updated', 'deleted', 'row', 'config']),
  KeyCreated: object({
    name: str, key: { type: 'string', pattern: '^faas_', description: 'shown once: only its SHA-256 is stored' },
    created: int, live: { type: 'boolean', description: 'the gateway accepts it already' },
  }, ['name', 'key', 'created', 'live']),
  KeyList: object({ keys: arrayOf(object({ name: str, created: int }, ['name', 'created'])) }, ['keys']),
  KeyRevoked: object({ name: str, revoked: { const: true }, live: bool }, ['name', 'revoked', 'live']),
  Workers: arrayOf(worker),
  Routes: object({
    lastSyncAt: int, lastSuccessAt: int, lastError: str, lastErrorAt: int, routes: arrayOf(routeStatus),
  }, ['routes']),
  Stats: object({
    time: int, windowS: int,
    workers: arrayOf(object({ id: str, available: bool }, ['id', 'available'], false)),
    routes: arrayOf(object({ key: str, state: str }, ['key'], false)),
    sync: object({ lastSyncAt: intOrNull, lastSuccessAt: intOrNull, lastError: str, routes: int, configErrors: int }, [], false),
    recentErrors: arrayOf(object({ time: int, route: str, status: int, code: str, requestId: str, message: str }, ['time', 'status', 'code'], false)),
  }, ['time', 'windowS', 'workers', 'routes', 'sync'], false),
  LogsPage: object({ entries: arrayOf(logEntry), next: int }, ['entries', 'next']),
  InvokeRequest: object({
    query: { type: 'string', description: 'the query string, without "?"' },
    headers: { type: 'object', additionalProperties: str, description: 'request headers; framing headers are the gateway\'s and dropped' },
    body: { type: 'string', description: 'the request body, as UTF-8' },
    bodyBase64: { type: 'string', description: 'the request body as base64 (instead of body)' },
  }),
  InvokeResult: object({
    requestId: str,
    status: { type: 'integer', description: 'the status a client of the public port would have got' },
    code: { type: 'string', enum: Object.keys(ERRORS), description: 'the gateway\'s error code when the call failed (body is then its error JSON)' },
    headers: arrayOf({ type: 'array', items: str, minItems: 2, description: '[name, value]' }),
    body: { type: 'string', description: 'the answer\'s body when it is UTF-8' },
    bodyBase64: { type: 'string', description: 'the answer\'s body when it is not UTF-8' },
    truncated: { const: true, description: 'a streamed answer longer than 1 MiB: the first MiB, the rest cancelled' },
    streamError: { type: 'string', description: 'a streamed answer that broke off: why' },
    ms: { type: 'number', description: 'the call in the gateway, ms' },
    fnMs: { type: 'number', description: 'the worker\'s time on it, ms' },
    cold: bool,
    worker: { type: ['string', 'null'] },
    output: arrayOf(object({ stream: { type: 'string', enum: ['stdout', 'stderr'] }, text: str }, ['stream', 'text'])),
  }, ['requestId', 'status', 'headers', 'ms', 'fnMs', 'cold', 'worker', 'output']),
  Invocation: invocation,
  InvocationList: object({
    invocations: { ...arrayOf(ref('Invocation')), description: 'oldest first, each without its answer\'s headers and body (GET /invocations/{id} has them)' },
    next: { ...intOrNull, description: 'a full page: ask again with ?after= this; null: the last page' },
  }, ['invocations', 'next']),
  InvocationRetried: {
    anyOf: [ref('Invocation'), object({ invocationId: str, state: { const: 'queued' } }, ['invocationId', 'state'])],
    description: 'the invocation, queued again (just its id and state should its record be gone by the time the answer is written)',
  },
};
