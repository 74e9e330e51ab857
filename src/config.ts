// Configuration: flags with environment equivalents (CONTRACT §1), validated at start with
// every problem listed at once. A bad value is an error, never a silent default.
import os from 'node:os';
import path from 'node:path';
import { readTokenFile } from './admin-token.js';
import { parsePgUrl, readPasswordFile } from './cluster/pg-url.js';
import { parseTrustedProxies, type Cidr } from './http/forwarded.js';
import { parseRedisUrl, redactRedisUrl } from './http/redis-url.js';
import { POLICY_NAMES, type PolicyName } from './scheduler/policies.js';

export interface GatewayConfig {
  readonly db: string;
  readonly host: string;
  readonly port: number;
  readonly adminPort: number;
  /** Where the admin port listens: loopback unless told; anything else needs adminTokenFile (admin-access.ts). */
  readonly adminHost: string;
  /** A file holding the admin API's bearer token (src/admin-token.ts); undefined: no token, loopback names only. */
  readonly adminTokenFile: string | undefined;
  /** Where HAProxy's agent-check is answered (src/http/agent-check.ts); undefined: no agent-check. */
  readonly agentPort: number | undefined;
  /** The address the agent-check listens on: --host unless told. */
  readonly agentHost: string;
  readonly workers: number;
  readonly runDir: string;
  readonly syncMs: number;
  readonly reportMs: number;
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxInFlight: number;
  /** Client connections on the public port; past it, requests get 503 TOO_MANY_CONNECTIONS (0: no cap). */
  readonly maxConnections: number;
  /** Time a request body has to arrive in, from its headers; past it, 408 and close. */
  readonly bodyTimeoutMs: number;
  /** How the gateway picks a worker for each call (src/scheduler/policies.ts, SCHEDULING.md). */
  readonly policy: PolicyName;
  /** Pin each worker (and its sandboxes) to one of the gateway's CPUs in turn (SCHEDULING.md). */
  readonly pin: 'off' | 'on';
  /** One JSON log line per answered request (route, status, worker, durations, cold, request and trace ids). */
  readonly accessLog: 'off' | 'on';
  /** `direct`: warm node instances in process sandboxes take calls from the gateway itself; `worker`: every call goes through its worker. */
  readonly dataPath: 'direct' | 'worker';
  /**
   * Serve functions whose limits this host's cgroups cannot enforce (memory_mb, the process
   * limit, cpu), instead of refusing their rows; /readyz, /metrics and the log say what is missing.
   */
  readonly allowUnenforcedLimits: boolean;
  /**
   * Peers whose X-Forwarded-For / Forwarded / X-Forwarded-Proto / X-Forwarded-Host are believed
   * (load balancers in front); from any other peer they are dropped. Empty: trust nobody.
   */
  readonly trustedProxies: readonly Cidr[];
  /** The Server header of every answer on the public port; undefined: none (`off`). */
  readonly serverHeader: string | undefined;
  /** The cluster's PostgreSQL (src/cluster/cluster-sync.ts): this node's database becomes a read-only copy of it; undefined: one node. */
  readonly clusterDb: string | undefined;
  /** A file holding the cluster database's password; undefined: PGPASSFILE or none. */
  readonly clusterDbPasswordFile: string | undefined;
  /** Where the cluster's rate-limit buckets live (src/http/rate-limit-redis.ts); undefined: per node, in memory. */
  readonly clusterRedis: string | undefined;
  /** The build cache (src/build/builds.ts): node_modules, python packages, Go programs; undefined: RUN_DIR/deps. */
  readonly depsDir: string | undefined;
  /** The build cache's bound, MiB: past it, entries no route uses are evicted. */
  readonly depsMaxMb: number;
  /** pip's index for requirements.txt installs; undefined: pip's default (PyPI), unless pipFindLinks. */
  readonly pipIndexUrl: string | undefined;
  /** A folder (or URL) of wheels pip may install from; alone, without pipIndexUrl, pip looks nowhere else. */
  readonly pipFindLinks: string | undefined;
  /** GOPROXY when compiling Go functions: off (vendor/ and the local module cache only) unless given. */
  readonly goProxy: string;
}

export interface WorkerConfig {
  readonly id: string;
  readonly runDir: string;
  readonly reportMs: number;
  readonly idleTtlMs: number;
  readonly memoryBudgetMb: number;
  /** The process sandbox: bwrap where installed, else unshare + setpriv (auto), or one of them forced. */
  readonly sandbox: 'auto' | 'bwrap' | 'unshare';
  /** How long a new instance has to start before its call fails (503 FUNCTION_UNAVAILABLE). */
  readonly startTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

type Parser<T> = (raw: string) => { value: T } | { error: string };

interface Option<T> {
  readonly flag: string;
  readonly env?: string;
  readonly fallback: T;
  readonly parse: Parser<T>;
  /** A switch: the flag alone means on (`--flag=off` and its env variable can still say off). */
  readonly switch?: boolean;
  /** The value as a problem may show it, without its secrets. */
  readonly redact?: (raw: string) => string;
}

export const int = (min: number, max: number): Parser<number> => (raw) => {
  const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  return Number.isSafeInteger(n) && n >= min && n <= max ? { value: n } : { error: `must be an integer between ${min} and ${max}` };
};
const text = (rule: RegExp, describe: string): Parser<string> => (raw) =>
  (rule.test(raw) ? { value: raw } : { error: `must be ${describe}` });
const oneOf = <T extends string>(values: readonly T[]): Parser<T> => (raw) =>
  ((values as readonly string[]).includes(raw) ? { value: raw as T } : { error: `must be one of ${values.join(', ')}` });
const onOff: Parser<boolean> = (raw) =>
  (/^(on|1|true|yes)$/i.test(raw) ? { value: true } : /^(off|0|false|no)$/i.test(raw) ? { value: false } : { error: 'must be on or off' });
/** A header value: visible ASCII, spaces inside, at most 256 characters; `off` for none. */
const serverHeader: Parser<string | undefined> = (raw) => (raw === 'off' ? { value: undefined }
  : /^[\x21-\x7e](?:[\x20-\x7e]{0,254}[\x21-\x7e])?$/.test(raw) ? { value: raw }
    : { error: 'must be off, or a header value of at most 256 printable ASCII characters (faas, "acme-edge/1.2")' });
/** A token file the gateway can use now (src/admin-token.ts says what that takes). */
const tokenFile: Parser<string | undefined> = (raw) => {
  const read = readTokenFile(raw);
  return 'error' in read ? { error: `must name a file holding the admin API's token: ${read.error}` } : { value: path.resolve(raw) };
};
const dir: Parser<string> = (raw) => (raw.length > 0 ? { value: path.resolve(raw) } : { error: 'must be a non-empty path' });
/** An http(s) URL, as pip and Go take them. */
const url: Parser<string> = (raw) => (/^https?:\/\/[^\s]+$/.test(raw) ? { value: raw } : { error: 'must be an http:// or https:// URL' });
/** A folder of wheels (made absolute) or an http(s) URL. */
const folderOrUrl: Parser<string> = (raw) => (/^https?:\/\//.test(raw) ? url(raw) : dir(raw));
/** GOPROXY's own syntax: off, direct, or URLs separated by , or |. */
const goProxy: Parser<string> = (raw) => (/^(off|direct|https?:\/\/[^\s,|]+)([,|](off|direct|https?:\/\/[^\s,|]+))*$/.test(raw)
  ? { value: raw } : { error: 'must be off, direct, or proxy URLs separated by "," or "|" (GOPROXY\'s syntax)' });

const GATEWAY_OPTIONS = {
  db: { flag: '--db', env: 'FAAS_DB', fallback: './data/faas.db', parse: dir },
  host: { flag: '--host', env: 'FAAS_HOST', fallback: '0.0.0.0', parse: text(/^[0-9A-Za-z.:-]+$/, 'an IP address or host name') },
  port: { flag: '--port', env: 'FAAS_PORT', fallback: 8080, parse: int(0, 65535) },
  adminPort: { flag: '--admin-port', env: 'FAAS_ADMIN_PORT', fallback: 9090, parse: int(0, 65535) },
  adminHost: { flag: '--admin-host', env: 'FAAS_ADMIN_HOST', fallback: '127.0.0.1', parse: text(/^[0-9A-Za-z.:-]+$/, 'an IP address or host name') },
  adminTokenFile: { flag: '--admin-token-file', env: 'FAAS_ADMIN_TOKEN_FILE', fallback: undefined, parse: tokenFile },
  agentPort: { flag: '--agent-port', env: 'FAAS_AGENT_PORT', fallback: undefined, parse: int(1, 65535) },
  // undefined until loadGatewayConfig: then --host's value.
  agentHost: { flag: '--agent-host', env: 'FAAS_AGENT_HOST', fallback: undefined, parse: text(/^[0-9A-Za-z.:-]+$/, 'an IP address or host name') },
  workers: { flag: '--workers', env: 'FAAS_WORKERS', fallback: os.availableParallelism(), parse: int(1, 256) },
  runDir: { flag: '--run-dir', env: 'FAAS_RUN_DIR', fallback: '/tmp/faas', parse: dir },
  syncMs: { flag: '--sync-ms', env: 'FAAS_SYNC_MS', fallback: 5000, parse: int(50, 3_600_000) },
  reportMs: { flag: '--report-ms', env: 'FAAS_REPORT_MS', fallback: 500, parse: int(50, 60_000) },
  maxBodyBytes: { flag: '--max-body-bytes', env: 'FAAS_MAX_BODY_BYTES', fallback: 6 * 1024 * 1024, parse: int(0, 15 * 1024 * 1024) },
  maxHeaderBytes: { flag: '--max-header-bytes', env: 'FAAS_MAX_HEADER_BYTES', fallback: 16 * 1024, parse: int(1024, 1024 * 1024) },
  maxInFlight: { flag: '--max-in-flight', env: 'FAAS_MAX_IN_FLIGHT', fallback: 10_000, parse: int(1, 1_000_000) },
  bodyTimeoutMs: { flag: '--body-timeout-ms', env: 'FAAS_BODY_TIMEOUT_MS', fallback: 5_000, parse: int(100, 600_000) },
  maxConnections: { flag: '--max-connections', env: 'FAAS_MAX_CONNECTIONS', fallback: 10_000, parse: int(0, 1_000_000) },
  policy: { flag: '--policy', env: 'FAAS_POLICY', fallback: 'least-loaded', parse: oneOf(POLICY_NAMES) },
  pin: { flag: '--pin', env: 'FAAS_PIN', fallback: 'off', parse: oneOf(['off', 'on'] as const) },
  accessLog: { flag: '--access-log', env: 'FAAS_ACCESS_LOG', fallback: 'on', parse: oneOf(['off', 'on'] as const) },
  dataPath: { flag: '--data-path', env: 'FAAS_DATA_PATH', fallback: 'direct', parse: oneOf(['direct', 'worker'] as const) },
  allowUnenforcedLimits: { flag: '--allow-unenforced-limits', env: 'FAAS_ALLOW_UNENFORCED_LIMITS', fallback: false, parse: onOff, switch: true },
  trustedProxies: { flag: '--trusted-proxies', env: 'FAAS_TRUSTED_PROXIES', fallback: [], parse: parseTrustedProxies },
  // nginx always says who it is (server_tokens off hides only the version): the same, without a version.
  serverHeader: { flag: '--server-header', env: 'FAAS_SERVER_HEADER', fallback: 'faas', parse: serverHeader },
  clusterDb: { flag: '--cluster-db', env: 'FAAS_CLUSTER_DB', fallback: undefined, parse: parsePgUrl },
  clusterDbPasswordFile: { flag: '--cluster-db-password-file', env: 'FAAS_CLUSTER_DB_PASSWORD_FILE', fallback: undefined,
    parse: (raw) => { const read = readPasswordFile(raw); return 'error' in read ? { error: read.error } : { value: path.resolve(raw) }; } },
  clusterRedis: { flag: '--cluster-redis', env: 'FAAS_CLUSTER_REDIS', fallback: undefined, parse: parseRedisUrl, redact: redactRedisUrl },
  depsDir: { flag: '--deps-dir', env: 'FAAS_DEPS_DIR', fallback: undefined, parse: dir },
  depsMaxMb: { flag: '--deps-max-mb', env: 'FAAS_DEPS_MAX_MB', fallback: 4096, parse: int(64, 16_777_216) },
  pipIndexUrl: { flag: '--pip-index-url', env: 'FAAS_PIP_INDEX_URL', fallback: undefined, parse: url },
  pipFindLinks: { flag: '--pip-find-links', env: 'FAAS_PIP_FIND_LINKS', fallback: undefined, parse: folderOrUrl },
  goProxy: { flag: '--go-proxy', env: 'FAAS_GO_PROXY', fallback: 'off', parse: goProxy },
} satisfies Record<keyof GatewayConfig, Option<unknown>>;

const WORKER_OPTIONS = {
  id: { flag: '--id', env: 'FAAS_WORKER_ID', fallback: `w${process.pid}`, parse: text(/^[A-Za-z0-9_.-]{1,64}$/, '1–64 characters of A-Z a-z 0-9 _ . -') },
  runDir: GATEWAY_OPTIONS.runDir,
  reportMs: GATEWAY_OPTIONS.reportMs,
  idleTtlMs: { flag: '--idle-ttl-ms', env: 'FAAS_IDLE_TTL_MS', fallback: 600_000, parse: int(1000, 86_400_000) },
  // Half the host's memory shared by one worker per core (the default fleet).
  memoryBudgetMb: { flag: '--memory-budget-mb', env: 'FAAS_MEMORY_BUDGET_MB',
    fallback: Math.floor(os.totalmem() / 1048576 / 2 / os.availableParallelism()), parse: int(64, 1_048_576) },
  sandbox: { flag: '--sandbox', env: 'FAAS_SANDBOX', fallback: 'auto', parse: oneOf(['auto', 'bwrap', 'unshare'] as const) },
  startTimeoutMs: { flag: '--start-timeout-ms', env: 'FAAS_START_TIMEOUT_MS', fallback: 10_000, parse: int(1000, 600_000) },
} satisfies Record<keyof WorkerConfig, Option<unknown>>;

export function loadGatewayConfig(argv: readonly string[], env: NodeJS.ProcessEnv): GatewayConfig {
  const config = load(GATEWAY_OPTIONS, argv, env) as GatewayConfig;
  const exposed = adminExposure(config);
  if (exposed !== undefined) throw new ConfigError([exposed]);
  if (config.clusterDbPasswordFile !== undefined && config.clusterDb === undefined) {
    throw new ConfigError(['--cluster-db-password-file is the password of --cluster-db, which is not set: give both, or neither for one node']);
  }
  return withAgentHost(config);
}

/** --agent-host defaults to --host, and means nothing without --agent-port: said, not ignored. */
function withAgentHost(config: GatewayConfig): GatewayConfig {
  const given = config.agentHost as string | undefined;
  if (given !== undefined && config.agentPort === undefined) {
    throw new ConfigError([`--agent-host ${given} needs --agent-port N (1–65535): without it the gateway answers no agent-check`]);
  }
  return given === undefined ? Object.freeze({ ...config, agentHost: config.host }) : config;
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|::1)$/i;

/** The admin API (functions with their code and env, API keys) off loopback without a token: refused at start. */
function adminExposure(config: GatewayConfig): string | undefined {
  if (LOOPBACK_HOST.test(config.adminHost) || config.adminTokenFile !== undefined) return undefined;
  return `--admin-host ${config.adminHost} would open the admin API (functions with their code and env, API keys) beyond this machine without a token: ` +
    'give --admin-token-file PATH too, a file holding the bearer token every admin request must then carry ' +
    '(openssl rand -hex 32 > PATH; chmod 600 PATH), or keep the default 127.0.0.1 and reach it over ssh -L 9090:127.0.0.1:9090';
}

/** `faas keys`: where the database is, as the gateway finds it. */
export function loadKeysConfig(argv: readonly string[], env: NodeJS.ProcessEnv): { readonly db: string } {
  return load({ db: GATEWAY_OPTIONS.db }, argv, env) as { db: string };
}

export function loadWorkerConfig(argv: readonly string[], env: NodeJS.ProcessEnv): WorkerConfig {
  return load(WORKER_OPTIONS, argv, env) as WorkerConfig;
}

/** Flags win over the environment, which wins over defaults. Throws ConfigError listing every problem. */
function load(options: Record<string, Option<unknown>>, argv: readonly string[], env: NodeJS.ProcessEnv): object {
  const problems: string[] = [];
  const byFlag = new Map(Object.entries(options).map(([name, o]) => [o.flag, name]));
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const name = byFlag.get(flag);
    if (!name) {
      problems.push(`unknown option ${JSON.stringify(flag)} (known: ${[...byFlag.keys()].join(', ')})`);
      if (eq < 0 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) i++; // its value
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : options[name]!.switch ? 'on' : argv[++i];
    if (value === undefined) problems.push(`${flag} needs a value`);
    else fromFlags.set(name, value);
  }
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(options)) {
    const flagValue = fromFlags.get(name);
    const envValue = o.env ? env[o.env] : undefined;
    const raw = flagValue ?? (envValue !== undefined && envValue !== '' ? envValue : undefined);
    if (raw === undefined) {
      out[name] = o.fallback;
      continue;
    }
    const parsed = o.parse(raw);
    const source = flagValue !== undefined ? o.flag : `${o.env} (from ${o.flag})`;
    if ('error' in parsed) problems.push(`${source} ${parsed.error} (got ${JSON.stringify(o.redact ? o.redact(raw) : raw)})`);
    else out[name] = parsed.value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out);
}

