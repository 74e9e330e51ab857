// The `v` column of the functions table: a function's config as JSON (CONTRACT §2), validated
// and turned into the camelCase FunctionConfig the rest of the gateway reads, defaults applied.
//
// parseFunctionConfig is pure: the same text always gives the same answer, so it is safe to
// run on every sync and easy to test. checkUsable holds what depends on this host and build
// (does `path` exist, is the runtime implemented), which the schema's triggers cannot know.
//
// The rules below are also compiled into SQL triggers by schema.ts; a JSON null counts as an
// absent optional field in both places. Every problem is listed at once, as STYLE.md asks.
import fs from 'node:fs';
import { IMAGE_INTERPRETERS, type AsyncConfig, type CorsConfig, type FunctionConfig, type Isolation, type LambdaEvent, type Mode, type Runtime } from '../protocol/messages.js';
import { findContainerEngine, findRunsc, IMAGE_NAME } from '../host/container-engine.js';
import { METHODS, quote } from './route-key.js';

export const RUNTIMES = ['node', 'python', 'wasm', 'go'] as const satisfies readonly Runtime[];
export const MODES = ['process', 'container', 'thread'] as const satisfies readonly Mode[];
export const AUTHS = ['none', 'api-key'] as const satisfies readonly FunctionConfig['auth'][];
/** How a container-mode function is isolated: runc (namespaces) or gVisor's runsc (a user-space kernel). */
export const ISOLATIONS = ['runc', 'gvisor'] as const satisfies readonly Isolation[];
/** What a Lambda handler is given: API Gateway's REST event (v1, the default) or the HTTP API payload 2.0 (v2). */
export const EVENTS = ['v1', 'v2'] as const satisfies readonly LambdaEvent[];
export const FIELDS = [
  'runtime', 'mode', 'code', 'path', 'handler', 'timeout_ms', 'memory_mb', 'max_concurrency',
  'env', 'auth', 'rate_limit', 'min_warm', 'image', 'cpu', 'isolation', 'event', 'cors', 'async', 'dependencies',
] as const;
export const DEPENDENCIES_FIELDS = ['scripts'] as const;
/** Runtimes whose `dependencies` installs (package.json, requirements.txt); Go's come vendored or from GOPROXY. */
export const DEPENDENCY_RUNTIMES = ['node', 'python'] as const satisfies readonly Runtime[];
export const CORS_FIELDS = ['origins', 'methods', 'headers', 'max_age', 'credentials'] as const;
/** Access-Control-Max-Age, seconds: a day at most (Firefox's own cap; Chrome's is 2 hours). */
export const CORS_MAX_AGE = { min: 0, max: 86_400 } as const;
/** RFC 9110 token characters, as the body of a character class (RegExp here, GLOB in checks-sql.ts). */
export const TOKEN_CHARS = "!#$%&'*+.^_`|~0-9A-Za-z-";
/** `cpu`: cores an instance may use (a CFS quota per 100 ms period); unset means no quota. */
export const CPU_CORES = { min: 0.1, max: 16 } as const;
export const RATE_LIMIT_FIELDS = ['rps', 'burst'] as const;
export const INTEGER_FIELDS = {
  timeout_ms: { min: 1, max: 900_000, fallback: 30_000 },
  memory_mb: { min: 16, max: 16_384, fallback: 128 },
  max_concurrency: { min: 1, max: 10_000, fallback: 100 },
  // Instances each worker keeps started for this function (a python instance runs one call at
  // a time, up to 4 per worker; a node instance runs many, so node keeps at most one).
  min_warm: { min: 0, max: 4, fallback: 0 },
} as const;
export const HANDLER_MAX_CHARS = 128;
/**
 * `async`: how the route's asynchronous invocations are run (README, Async invocations). The
 * defaults are Lambda's where it has one: two retries; a day of retention rather than its 6 h
 * event age, so that an operator has time to look at a dead letter.
 */
export const ASYNC_FIELDS = {
  /** Invocations of the route running at once. */
  concurrency: { min: 1, max: 1000, fallback: 4 },
  /** Further attempts after a failed one (5xx, timeout, crash, worker died). */
  retries: { min: 0, max: 10, fallback: 2 },
  /** Wait before the first retry, doubled for each next one. */
  backoff_ms: { min: 0, max: 3_600_000, fallback: 1000 },
  /** Seconds an invocation may wait unfinished (then dead-lettered), and its record is kept once finished. */
  ttl_s: { min: 1, max: 2_592_000, fallback: 86_400 },
} as const;
/** What a route without `async` gets. */
export const ASYNC_DEFAULTS: AsyncConfig = Object.freeze({
  concurrency: ASYNC_FIELDS.concurrency.fallback, retries: ASYNC_FIELDS.retries.fallback,
  backoffMs: ASYNC_FIELDS.backoff_ms.fallback, ttlS: ASYNC_FIELDS.ttl_s.fallback,
});

const oneOf = (values: readonly string[]): string => values.map((s) => `"${s}"`).join(', ');
export const RULES = {
  json: 'must be valid JSON',
  object: 'must be a JSON object',
  unknown: 'is not a known field',
  allowed: `allowed fields: ${FIELDS.join(', ')}`,
  runtime: `must be one of ${oneOf(RUNTIMES)}`,
  mode: `must be one of ${oneOf(MODES)}`,
  source: 'must have exactly one of "code" (the source inline) or "path" (an absolute path)',
  code: 'must be a non-empty string',
  path: 'must be an absolute path (a string starting with "/")',
  image: 'must be the absolute path of a root file system folder (a string starting with "/"), or a Docker/Podman image name (letters, digits and . _ / : @ -, at most 255)',
  imageMode: 'needs "mode": "container"',
  threadMode: '"thread" is for runtime "wasm" only',
  handler: `must be an identifier: a letter, "_" or "$", then letters, digits, "_" or "$" (at most ${HANDLER_MAX_CHARS})`,
  goHandler: 'of a go function must be an exported Go function name: a capital letter, then letters, digits or "_" (default Handle)',
  dependencies: `must be an object {"scripts": true|false}; allowed fields: ${DEPENDENCIES_FIELDS.join(', ')}`,
  dependenciesScripts: 'must be true or false (true lets installs run the packages\' own scripts: npm install scripts, python source builds)',
  dependenciesRuntime: `is for runtimes ${oneOf(DEPENDENCY_RUNTIMES)}: a go function brings its modules in vendor/ (or through the gateway's --go-proxy)`,
  integer: (min: number, max: number) => `must be an integer between ${min} and ${max}`,
  env: 'must be an object whose values are strings',
  envName: 'names must match [A-Za-z_][A-Za-z0-9_]*',
  envValue: 'must be a string',
  auth: `must be one of ${oneOf(AUTHS)}`,
  rateLimit: `must be an object {"rps": N, "burst": M}; allowed fields: ${RATE_LIMIT_FIELDS.join(', ')}`,
  rps: 'must be a number greater than 0',
  burst: 'must be an integer of at least 1',
  cpu: `must be a number of cores between ${CPU_CORES.min} and ${CPU_CORES.max} (0.5 is half a core)`,
  isolation: `must be one of ${oneOf(ISOLATIONS)}`,
  isolationMode: 'needs "mode": "container"',
  event: `must be one of ${oneOf(EVENTS)}`,
  cors: `must be an object {"origins": [...], "methods": [...], "headers": [...], "max_age": N, "credentials": true|false}; allowed fields: ${CORS_FIELDS.join(', ')}`,
  corsOrigins: 'must be a non-empty array of origins, each "*" (any) or scheme://host[:port] without a path ("https://app.example", "http://localhost:3000")',
  corsMethods: `must be a non-empty array of methods, each one of ${METHODS.join(', ')}`,
  corsHeaders: 'must be an array of header names (letters, digits and !#$%&\'*+.^_`|~-)',
  corsCredentials: 'must be true or false',
  corsCredentialsAny: 'cannot be true with the origin "*": browsers refuse credentials from a wildcard; list the origins',
  async: `must be an object {"concurrency": N, "retries": N, "backoff_ms": N, "ttl_s": N}; allowed fields: ${Object.keys(ASYNC_FIELDS).join(', ')}`,
} as const;

export type FunctionConfigResult =
  | { readonly ok: true; readonly config: FunctionConfig }
  | { readonly ok: false; readonly error: string };

type Json = Record<string, unknown>;

const HANDLER = new RegExp(`^[A-Za-z_$][A-Za-z0-9_$]{0,${HANDLER_MAX_CHARS - 1}}$`);
const TOKEN = new RegExp(`^[${TOKEN_CHARS}]+$`);
const ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const GO_HANDLER = /^[A-Z][A-Za-z0-9_]*$/;

export function parseFunctionConfig(v: string): FunctionConfigResult {
  let raw: unknown;
  try {
    raw = JSON.parse(v);
  } catch (err) {
    return { ok: false, error: `v ${RULES.json} (${(err as Error).message})` };
  }
  if (!isObject(raw)) return { ok: false, error: `v ${RULES.object} (got ${quote(raw)})` };

  const problems: string[] = [];
  const bad = (field: string, rule: string, value: unknown): void => {
    problems.push(`v.${field} ${rule} (got ${quote(value)})`);
  };
  for (const field of Object.keys(raw)) {
    if (!(FIELDS as readonly string[]).includes(field)) problems.push(`v.${field} ${unknownField(field)}`);
  }
  const get = (field: string): unknown => (raw[field] === null ? undefined : raw[field]);

  const runtime = get('runtime');
  if (runtime === undefined) problems.push(`v.runtime is required and ${RULES.runtime}`);
  else if (!includes(RUNTIMES, runtime)) bad('runtime', RULES.runtime, runtime);
  // A WebAssembly module runs in a worker thread unless asked to run in a sandboxed process.
  const mode = get('mode') ?? (runtime === 'wasm' ? 'thread' : 'process');
  if (!includes(MODES, mode)) bad('mode', RULES.mode, mode);
  else if (mode === 'thread' && runtime !== 'wasm' && runtime !== undefined) bad('mode', RULES.threadMode, mode);

  const code = get('code');
  const path = get('path');
  if ((code === undefined) === (path === undefined)) {
    problems.push(`v ${RULES.source}; it has ${code === undefined ? 'neither' : 'both'}`);
  }
  if (code !== undefined && (typeof code !== 'string' || code === '')) bad('code', RULES.code, code);
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/'))) bad('path', RULES.path, path);

  const image = get('image');
  if (image !== undefined) {
    if (typeof image !== 'string' || !(image.startsWith('/') || IMAGE_NAME.test(image))) bad('image', RULES.image, image);
    else if (mode !== 'container') bad('image', RULES.imageMode, mode);
  }

  const isolation = get('isolation');
  if (isolation !== undefined) {
    if (!includes(ISOLATIONS, isolation)) bad('isolation', RULES.isolation, isolation);
    else if (mode !== 'container') bad('isolation', RULES.isolationMode, mode);
  }
  const cpu = get('cpu');
  if (cpu !== undefined && !(typeof cpu === 'number' && cpu >= CPU_CORES.min && cpu <= CPU_CORES.max)) bad('cpu', RULES.cpu, cpu);

  const handler = get('handler');
  if (handler !== undefined && !(typeof handler === 'string' && HANDLER.test(handler))) bad('handler', RULES.handler, handler);
  else if (handler !== undefined && runtime === 'go' && !GO_HANDLER.test(handler as string)) bad('handler', RULES.goHandler, handler);

  const integers: Record<string, number> = {};
  for (const [field, { min, max, fallback }] of Object.entries(INTEGER_FIELDS)) {
    const value = get(field) ?? fallback;
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) bad(field, RULES.integer(min, max), value);
    integers[field] = value as number;
  }

  const env = parseEnv(get('env'), problems);
  const auth = get('auth') ?? 'none';
  if (!includes(AUTHS, auth)) bad('auth', RULES.auth, auth);
  const rateLimit = parseRateLimit(get('rate_limit'), problems);
  const event = get('event');
  if (event !== undefined && !includes(EVENTS, event)) bad('event', RULES.event, event);
  const cors = parseCors(get('cors'), problems);
  const asyncConfig = parseAsync(get('async'), problems);
  const dependencies = parseDependencies(get('dependencies'), runtime, problems);

  if (problems.length > 0) return { ok: false, error: problems.join('; ') };
  const config: FunctionConfig = {
    runtime: runtime as Runtime,
    mode: mode as Mode,
    ...(code !== undefined && { code: code as string }),
    ...(path !== undefined && { path: path as string }),
    ...(handler !== undefined && { handler: handler as string }),
    ...(image !== undefined && { image: image as string }),
    ...(isolation !== undefined && { isolation: isolation as Isolation }),
    ...(cpu !== undefined && { cpu: cpu as number }),
    timeoutMs: integers.timeout_ms!,
    memoryMb: integers.memory_mb!,
    maxConcurrency: integers.max_concurrency!,
    minWarm: integers.min_warm!,
    env,
    auth: auth as FunctionConfig['auth'],
    ...(rateLimit !== undefined && { rateLimit }),
    ...(event === 'v2' && { event: 'v2' }), // v1 is the default: left out, as a row without the field
    ...(cors !== undefined && { cors }),
    ...(asyncConfig !== undefined && { async: asyncConfig }),
    ...(dependencies !== undefined && { dependencies }),
  };
  return { ok: true, config: Object.freeze(config) };
}

/**
 * What a valid config still needs from this host and build. Returns the reason it cannot be
 * served, or undefined when it can. Reads the filesystem; keep it out of the pure path.
 */
export function checkUsable(config: FunctionConfig): string | undefined {
  if (config.isolation === 'gvisor') {
    if (findRunsc() === undefined) return 'v.isolation "gvisor" needs gVisor\'s runsc, which this host does not have: install the Debian package runsc';
    if (config.image !== undefined && !config.image.startsWith('/')) {
      return `v.isolation "gvisor" runs the host's /usr or a root file system folder ("image": "/…"), not an image name for Docker or Podman (got ${quote(config.image)})`;
    }
  }
  if (config.image !== undefined) {
    const missing = imageProblem(config.image, config.runtime);
    if (missing) return missing;
  }
  if (config.path === undefined) return undefined;
  try {
    const stat = fs.statSync(config.path);
    if (!stat.isFile() && !stat.isDirectory()) return `v.path ${quote(config.path)} must be a file or a folder`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `v.path ${quote(config.path)} does not exist on this host`;
    return `v.path ${quote(config.path)} cannot be read (${code ?? (err as Error).message})`;
  }
  return undefined;
}

function imageProblem(image: string, runtime: Runtime): string | undefined {
  if (!image.startsWith('/')) {
    // The image itself is looked for when an instance starts: asking the engine here would stall the sync.
    return findContainerEngine() ? undefined : `v.image ${quote(image)} names an image, but this host has no Docker daemon or Podman to run it`;
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(image);
  } catch {
    return `v.image ${quote(image)} does not exist on this host`;
  }
  if (!stat.isDirectory()) return `v.image ${quote(image)} must be a folder holding a root file system`;
  if (runtime === 'go') return undefined; // a static program: no interpreter needed
  const interpreter = runtime === 'python' ? 'python' : 'node'; // a wasm module runs in the node host
  const candidates = IMAGE_INTERPRETERS[interpreter];
  if (!candidates.some((p) => fs.existsSync(`${image}${p}`))) return `v.image ${quote(image)} has no ${interpreter} interpreter (looked for ${candidates.join(', ')})`;
  return undefined;
}

function parseEnv(value: unknown, problems: string[]): Readonly<Record<string, string>> {
  if (value === undefined) return Object.freeze({});
  if (!isObject(value)) {
    problems.push(`v.env ${RULES.env} (got ${quote(value)})`);
    return {};
  }
  for (const [name, text] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) problems.push(`v.env has an invalid name ${quote(name)}: ${RULES.envName}`);
    else if (typeof text !== 'string') problems.push(`v.env.${name} ${RULES.envValue} (got ${quote(text)})`);
  }
  // fromEntries defines own properties, so a "__proto__" name stays a plain entry.
  return Object.freeze(Object.fromEntries(Object.entries(value))) as Record<string, string>;
}

function parseRateLimit(value: unknown, problems: string[]): FunctionConfig['rateLimit'] {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.keys(value).some((f) => !(RATE_LIMIT_FIELDS as readonly string[]).includes(f))) {
    problems.push(`v.rate_limit ${RULES.rateLimit} (got ${quote(value)})`);
    return undefined;
  }
  const { rps, burst } = value;
  if (typeof rps !== 'number' || !(rps > 0) || !Number.isFinite(rps)) problems.push(`v.rate_limit.rps ${RULES.rps} (got ${quote(rps)})`);
  if (!Number.isInteger(burst) || (burst as number) < 1) problems.push(`v.rate_limit.burst ${RULES.burst} (got ${quote(burst)})`);
  return Object.freeze({ rps: rps as number, burst: burst as number });
}

/** `cors` (README "CORS"): every broken sub-field is its own problem. Header names are kept lower-case. */
function parseCors(value: unknown, problems: string[]): CorsConfig | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.keys(value).some((f) => !(CORS_FIELDS as readonly string[]).includes(f))) {
    problems.push(`v.cors ${RULES.cors} (got ${quote(value)})`);
    return undefined;
  }
  const field = (name: string): unknown => (value[name] === null ? undefined : value[name]);
  const before = problems.length;
  const list = (name: string, rule: string, ok: (item: string) => boolean, nonEmpty: boolean): string[] | undefined => {
    const items = field(name);
    if (items === undefined) return undefined;
    if (!Array.isArray(items) || (nonEmpty && items.length === 0) || !items.every((i) => typeof i === 'string' && ok(i))) {
      problems.push(`v.cors.${name} ${rule} (got ${quote(items)})`);
    }
    return items as string[];
  };
  const origins = list('origins', RULES.corsOrigins, (o) => o === '*' || ORIGIN.test(o), true);
  if (origins === undefined) problems.push(`v.cors.origins is required and ${RULES.corsOrigins}`);
  const methods = list('methods', RULES.corsMethods, (m) => (METHODS as readonly string[]).includes(m), true);
  const headers = list('headers', RULES.corsHeaders, (h) => TOKEN.test(h), false);
  const maxAge = field('max_age');
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && (maxAge as number) >= CORS_MAX_AGE.min && (maxAge as number) <= CORS_MAX_AGE.max)) {
    problems.push(`v.cors.max_age ${RULES.integer(CORS_MAX_AGE.min, CORS_MAX_AGE.max)} (got ${quote(maxAge)})`);
  }
  const credentials = field('credentials');
  if (credentials !== undefined && typeof credentials !== 'boolean') problems.push(`v.cors.credentials ${RULES.corsCredentials} (got ${quote(credentials)})`);
  else if (credentials === true && origins?.includes('*')) problems.push(`v.cors.credentials ${RULES.corsCredentialsAny} (got true)`);
  if (problems.length > before) return undefined;
  return Object.freeze({
    origins: Object.freeze([...origins!]),
    ...(methods !== undefined && { methods: Object.freeze([...methods]) }),
    ...(headers !== undefined && { headers: Object.freeze(headers.map((h) => h.toLowerCase())) }),
    ...(maxAge !== undefined && { maxAge: maxAge as number }),
    ...(credentials !== undefined && { credentials: credentials as boolean }),
  });
}

/** `dependencies` (README "Dependencies"): only `scripts`, a boolean; node and python only. */
function parseDependencies(value: unknown, runtime: unknown, problems: string[]): FunctionConfig['dependencies'] {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.keys(value).some((f) => !(DEPENDENCIES_FIELDS as readonly string[]).includes(f))) {
    problems.push(`v.dependencies ${RULES.dependencies} (got ${quote(value)})`);
    return undefined;
  }
  const scripts = value.scripts === null ? undefined : value.scripts;
  if (scripts !== undefined && typeof scripts !== 'boolean') problems.push(`v.dependencies.scripts ${RULES.dependenciesScripts} (got ${quote(scripts)})`);
  if (typeof runtime === 'string' && includes(RUNTIMES, runtime) && !includes(DEPENDENCY_RUNTIMES, runtime)) {
    problems.push(`v.dependencies ${RULES.dependenciesRuntime} (runtime ${quote(runtime)})`);
  }
  return Object.freeze({ scripts: scripts === true });
}

/** `async` (README "Async invocations"): each field an integer in its range, defaults for the rest. */
function parseAsync(value: unknown, problems: string[]): AsyncConfig | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.keys(value).some((f) => !Object.hasOwn(ASYNC_FIELDS, f))) {
    problems.push(`v.async ${RULES.async} (got ${quote(value)})`);
    return undefined;
  }
  const got: Record<string, number> = {};
  let ok = true;
  for (const [field, { min, max, fallback }] of Object.entries(ASYNC_FIELDS)) {
    const given = value[field] === null ? undefined : value[field];
    const n = given ?? fallback;
    if (!Number.isInteger(n) || (n as number) < min || (n as number) > max) {
      problems.push(`v.async.${field} ${RULES.integer(min, max)} (got ${quote(given)})`);
      ok = false;
    }
    got[field] = n as number;
  }
  if (!ok) return undefined;
  return Object.freeze({ concurrency: got.concurrency!, retries: got.retries!, backoffMs: got.backoff_ms!, ttlS: got.ttl_s! });
}

/** "is not a known field", with a hint when the name looks like a misspelt one (timeout → timeout_ms). */
function unknownField(field: string): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const given = norm(field);
  const hint = FIELDS.find((f) => given.length >= 3 && (norm(f).startsWith(given) || given.startsWith(norm(f))));
  return `${RULES.unknown}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; ${RULES.allowed}`;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function includes<T extends string>(values: readonly T[], value: unknown): value is T {
  return (values as readonly unknown[]).includes(value);
}
