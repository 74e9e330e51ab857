// `faas deploy METHOD:/path FILE|DIR --runtime …`: builds the route's row, checks it with the
// gateway's own rules before writing anything, writes it with one upsert, then waits until the
// gateway serves it. The check and the write are the admin API's too (src/routes/function-store.ts:
// checkFunction, writeFunction), so `faas deploy`, PUT /api/v1/functions/{key} and the schema's
// triggers refuse the same rows in the same words.
import { checkFunction, openForWrite, upsertFunction, type WrittenRow } from '../routes/function-store.js';
import { clusterTarget } from './cluster-target.js';
import { waitForSync, type SyncOutcome } from './admin-client.js';
import {
  ADMIN_FLAG, ADMIN_TOKEN_FLAG, adminApi, DB_FLAG, dbPath, EXIT_FAILED, EXIT_OK, HELP_FLAG, JSON_FLAG, parseArgs, refuse, syncPeriodMs, usage,
  valueOf, type Io, type ParsedArgs,
} from './args.js';
import { ago } from './format.js';
import { resolveSource, type Source } from './source.js';
import { BUILD_TIMEOUT_MS } from '../build/tool.js';

export const DEPLOY_HELP = `Usage:
  faas deploy METHOD:/path FILE|DIR --runtime node|python|wasm|go [options]

Checks the function's config with the gateway's own rules, writes its row in the functions
table (every problem is listed at once and nothing is written if there is one), then waits
until the gateway serves it. The row holds the whole config: options left out take their
defaults, even if an earlier deploy set them.

Options (the config field each sets, README "Routes"):
  --runtime R               runtime: node, python, wasm or go (required)
  --mode M                  mode: process, container, or thread (wasm only, and wasm's default)
  --handler NAME            handler (default fetch or handler for node, handle for python, Handle for go)
  --timeout-ms N            timeout_ms, 1-900000 (default 30000)
  --memory-mb N             memory_mb, 16-16384 (default 128)
  --max-concurrency N       max_concurrency, 1-10000 (default 100)
  --min-warm N              min_warm, 0-4 (default 0)
  --cpu CORES               cpu: cores an instance may use, 0.1-16 (default: no quota)
  --isolation runc|gvisor   isolation (container mode; default runc)
  --env NAME=VALUE          env: a variable the function sees; repeat for more
  --auth none|api-key       auth (default none)
  --rate-limit RPS[/BURST]  rate_limit per client; BURST defaults to RPS rounded up (at least 1)
  --image ROOTFS|NAME       image (container mode): a root file system folder, or an image name
  --event v1|v2             event: what a Lambda handler gets, the REST API event (v1, default) or HTTP API 2.0 (v2)
  --cors-origin ORIGIN      cors.origins: an origin browsers may call from (https://app.example, or *); repeat for more
  --allow-scripts           dependencies.scripts: let the install run packages' own scripts (npm install
                            scripts, python source builds); a risk: that code runs on the gateway's host
  --inline                  store the file's contents as "code" (wasm: base64) instead of its "path"
  --db PATH                 FAAS_DB       ./data/faas.db
  --admin URL               FAAS_ADMIN    http://127.0.0.1:9090 (the gateway to wait for)
  --admin-token-file PATH   FAAS_ADMIN_TOKEN_FILE  the admin API's bearer token, when the gateway has one
  --no-wait                 write, and do not wait for the gateway
  --json                    print one JSON object: the row, its version, and whether it is live

FILE|DIR: a file is stored as "path": its real absolute path (symlinks resolved). A folder is
mounted whole, so its entry can import the files beside it; the entry is the first of
index.mjs, index.js, index.cjs (node) or main.py, handler.py (python) that it holds (deploy says
which when it holds several). A wasm folder must hold exactly one .wasm file, which is stored.
A go folder is a module (go.mod), compiled by the gateway; a go FILE is one .go file or a
compiled program (ELF).
Dependencies (README "Dependencies"): a node folder with package.json and package-lock.json gets
npm ci, a python folder with requirements.txt (pinned) gets pip install, a go module is compiled;
the gateway does it before serving the new version (the old one is served meanwhile), and deploy
waits for it and says what was installed or built.
Functions in a sandbox read their code as uid 65534: every folder above it needs o+x and the
code o+r (deploy checks; --inline avoids it).

"Live now" means the gateway's GET /routes shows this version of the row (it polls for up to
one sync period + 2 s, FAAS_SYNC_MS or 5 s). With no gateway answering, the row is written and
will be served within one sync period of a gateway starting on, or syncing, this database.

Exit status: 0 written (live, or no gateway answered), 1 refused (nothing written), or the
gateway refused the row or did not apply it in time, 2 usage.

Examples:
  faas deploy GET:/hello examples/fetch.mjs --runtime node
  faas deploy POST:/echo examples/lambda.cjs --runtime node --env GREETING=hi --timeout-ms 5000
  faas deploy GET:/py examples/handle.py --runtime python --inline --rate-limit 10/20
  faas deploy POST:/wasm examples/wasm/hello.wasm --runtime wasm
  faas deploy GET:/boxed examples/container --runtime node --mode container
  faas deploy GET:/go examples/go-hello --runtime go
`;

const SPECS = [
  HELP_FLAG, JSON_FLAG, DB_FLAG, ADMIN_FLAG, ADMIN_TOKEN_FLAG,
  { name: '--runtime', value: 'one' }, { name: '--mode', value: 'one' }, { name: '--handler', value: 'one' },
  { name: '--timeout-ms', value: 'one' }, { name: '--memory-mb', value: 'one' }, { name: '--max-concurrency', value: 'one' },
  { name: '--min-warm', value: 'one' }, { name: '--env', value: 'many' }, { name: '--auth', value: 'one' },
  { name: '--rate-limit', value: 'one' }, { name: '--image', value: 'one' }, { name: '--cpu', value: 'one' }, { name: '--isolation', value: 'one' },
  { name: '--event', value: 'one' }, { name: '--cors-origin', value: 'many' }, { name: '--inline' }, { name: '--no-wait' }, { name: '--allow-scripts' },
] as const;

/** The flag behind each field of `v`, so that a refusal names what the operator typed. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  runtime: '--runtime', mode: '--mode', handler: '--handler', timeout_ms: '--timeout-ms', memory_mb: '--memory-mb',
  max_concurrency: '--max-concurrency', min_warm: '--min-warm', env: '--env', auth: '--auth', rate_limit: '--rate-limit',
  image: '--image', cpu: '--cpu', isolation: '--isolation', event: '--event', cors: '--cors-origin', path: 'FILE', code: 'FILE',
  dependencies: '--allow-scripts',
};

export async function runDeploy(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.switches.has('--help')) {
    io.out(DEPLOY_HELP);
    return EXIT_OK;
  }
  const usageProblems = [...args.problems];
  const [key, file, ...extra] = args.positionals;
  if (key === undefined) usageProblems.push('missing METHOD:/path, the route to deploy');
  if (file === undefined) usageProblems.push('missing FILE|DIR, the function\'s code');
  if (extra.length > 0) usageProblems.push(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (valueOf(args, '--runtime') === undefined) usageProblems.push('missing --runtime node|python|wasm|go');
  const db = dbPath(args, env, usageProblems);
  const { url: admin, client } = adminApi(args, env, usageProblems);
  if (usageProblems.length > 0) return usage(io, 'deploy', usageProblems, DEPLOY_HELP);

  const plan = planDeployment(key!, file!, args);
  if (!plan.ok) return refuse(io, 'deploy', plan.problems, `refused ${key}, nothing written to ${db}`);
  for (const note of plan.notes) io.err(`note: ${note}\n`);

  let written: WrittenRow;
  // A cluster node's database is a copy: the row goes to the cluster's PostgreSQL (cluster-target.ts).
  const cluster = clusterTarget(db, env);
  if (cluster !== undefined && 'error' in cluster) return refuse(io, 'deploy', [cluster.error]);
  const where = cluster?.url ?? db;
  try {
    if (cluster !== undefined) {
      const outcome = await cluster.store.write<never>(key!, () => ({ v: plan.v })).finally(() => cluster.store.close());
      if (!outcome.ok) return refuse(io, 'deploy', 'problems' in outcome ? outcome.problems : [], `refused ${key}, nothing written to ${where}`);
      written = outcome.written;
    } else {
      const conn = openForWrite(db);
      try {
        written = upsertFunction(conn, key!, plan.v);
      } finally {
        conn.close();
      }
    }
  } catch (err) {
    // The schema's triggers refuse what the checks above let through only if the database is
    // from another version; either way the operator sees the rule it names.
    return refuse(io, 'deploy', [`${where}: ${(err as Error).message}`]);
  }
  const committedAt = Date.now();
  const json = args.switches.has('--json');
  const source = plan.source.path !== undefined ? `path ${plan.source.path}` : `inline code (${plan.source.code!.length} characters)`;
  if (!json) io.out(`${key}: ${written.change} in ${where} (version ${written.version}): ${plan.runtime}, ${source}\n`);

  const outcome: SyncOutcome | undefined = args.switches.has('--no-wait') ? undefined : await waitForSync(client, {
    key: key!, version: written.version, committedAt, timeoutMs: syncPeriodMs(env) + 2000, buildTimeoutMs: BUILD_TIMEOUT_MS + syncPeriodMs(env),
    onBuilding: (what) => { if (!json) io.out(`building: ${what}; the gateway serves the previous version (if any) until it is done\n`); },
    ...(io.signal && { signal: io.signal }),
  });
  const live = describeOutcome(outcome, admin, db, key!, env, committedAt);
  if (json) {
    io.out(`${JSON.stringify({ key, db, change: written.change, version: written.version, updated: written.updated,
      v: JSON.parse(plan.v), notes: plan.notes, live: { state: live.state, admin, ...(live.error && { error: live.error }),
        ...(outcome?.kind === 'done' && outcome.route?.build && { build: outcome.route.build }) } })}\n`);
  } else if (live.code === EXIT_OK) io.out(`${live.line}\n`);
  if (live.code !== EXIT_OK) io.err(`faas deploy: ${live.line}\n`);
  return live.code;
}

type Plan =
  | { readonly ok: true; readonly v: string; readonly runtime: string; readonly source: Source; readonly notes: readonly string[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/** The row to write, or every reason not to. Reads the filesystem (the code, checkUsable), writes nothing. */
export function planDeployment(key: string, file: string, args: ParsedArgs): Plan {
  const problems: string[] = [];

  const runtime = valueOf(args, '--runtime')!;
  const mode = valueOf(args, '--mode');
  const resolved = resolveSource(file, runtime, mode, args.switches.has('--inline'));
  problems.push(...resolved.problems);

  const v: Record<string, unknown> = { runtime };
  if (mode !== undefined) v.mode = mode;
  if (resolved.source?.path !== undefined) v.path = resolved.source.path;
  else if (resolved.source?.code !== undefined) v.code = resolved.source.code;
  else v.path = '/'; // a placeholder, so the config's other fields are still checked; never written
  const text = (flag: string, field: string): void => {
    const raw = valueOf(args, flag);
    if (raw !== undefined) v[field] = raw;
  };
  const number = (flag: string, field: string): void => {
    const raw = valueOf(args, flag);
    if (raw !== undefined) v[field] = jsonValue(raw);
  };
  text('--handler', 'handler');
  text('--image', 'image');
  number('--timeout-ms', 'timeout_ms');
  number('--memory-mb', 'memory_mb');
  number('--max-concurrency', 'max_concurrency');
  number('--min-warm', 'min_warm');
  number('--cpu', 'cpu');
  text('--isolation', 'isolation');
  const envVars = parseEnvFlags(args.values.get('--env') ?? [], problems);
  if (envVars !== undefined) v.env = envVars;
  text('--auth', 'auth');
  const rateLimit = valueOf(args, '--rate-limit');
  if (rateLimit !== undefined) v.rate_limit = parseRateLimit(rateLimit);
  text('--event', 'event');
  const origins = args.values.get('--cors-origin');
  if (origins !== undefined) v.cors = { origins }; // the rest of cors (methods, headers, max_age, credentials) is SQL's: README "CORS"
  if (args.switches.has('--allow-scripts')) v.dependencies = { scripts: true };

  const json = JSON.stringify(v);
  // The same check as the admin API's PUT (src/routes/function-store.ts); what the host needs is
  // asked only of real code, not of the placeholder.
  const checked = checkFunction(key, json, resolved.source ? undefined : () => undefined);
  if (!checked.ok) problems.push(...checked.problems.map(labelled));
  if (problems.length > 0 || !resolved.source) return { ok: false, problems };
  return { ok: true, v: json, runtime, source: resolved.source, notes: resolved.source.notes };
}

/** A flag's text as the JSON value the operator meant: a number when it reads as one, else the text (which the rules then name). */
function jsonValue(raw: string): unknown {
  return /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
}

/** "10/20" → {rps: 10, burst: 20}; "0.5" → {rps: 0.5, burst: 1}; text that is no number is kept for the rule to name. */
export function parseRateLimit(raw: string): { rps: unknown; burst: unknown } {
  const slash = raw.indexOf('/');
  const rps = jsonValue(slash < 0 ? raw : raw.slice(0, slash));
  const burst = slash < 0 ? (typeof rps === 'number' && rps > 0 ? Math.max(1, Math.ceil(rps)) : 1) : jsonValue(raw.slice(slash + 1));
  return { rps, burst };
}

function parseEnvFlags(values: readonly string[], problems: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of values) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      problems.push(`--env must be NAME=VALUE (got ${JSON.stringify(item)})`);
      continue;
    }
    const name = item.slice(0, eq);
    if (Object.hasOwn(out, name)) problems.push(`--env sets ${name} twice (${JSON.stringify(out[name])} and ${JSON.stringify(item.slice(eq + 1))}); set it once`);
    Object.defineProperty(out, name, { value: item.slice(eq + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export { splitProblems } from '../routes/function-store.js';

/** "v.timeout_ms must be …" → "--timeout-ms: v.timeout_ms must be …"; "functions.k …" → "METHOD:/path: functions.k …". */
export function labelled(problem: string): string {
  if (problem.startsWith('functions.k')) return `METHOD:/path: ${problem}`;
  const field = /^v\.([a-z_]+)/.exec(problem)?.[1];
  const flag = field === undefined ? undefined : FLAG_OF_FIELD[field];
  return flag === undefined ? problem : `${flag}: ${problem}`;
}

function describeOutcome(outcome: SyncOutcome | undefined, admin: string, db: string, key: string, env: NodeJS.ProcessEnv, committedAt: number):
  { code: number; state: string; line: string; error?: string } {
  const period = `${syncPeriodMs(env) / 1000} s`;
  if (outcome === undefined) return { code: EXIT_OK, state: 'not-waited', line: `not waited for: a gateway syncing ${db} serves it within one sync period (${period})` };
  switch (outcome.kind) {
    case 'done': {
      const b = outcome.route?.build;
      const built = b ? `\nbuilt: ${b.summary}${b.builtAt < committedAt ? ` (the gateway's cache had it from ${new Date(b.builtAt).toISOString()}: nothing ran)` : ` in ${(b.ms / 1000).toFixed(1)} s`}` : '';
      return { code: EXIT_OK, state: 'live', line: `live now: the gateway at ${admin} serves ${key} (version ${outcome.route?.version})${built}` };
    }
    case 'refused': {
      const r = outcome.route;
      const serving = r.state === 'stale' ? `it keeps serving version ${r.version}, the last good config` : `it serves nothing at ${key}`;
      return { code: EXIT_FAILED, state: 'refused', error: r.error ?? 'refused',
        line: `the gateway at ${admin} cannot serve the row written: ${r.error}; ${serving}. Fix it and deploy again.` };
    }
    case 'unreachable':
      return { code: EXIT_OK, state: 'no-gateway',
        line: `not live yet: ${outcome.reason}; a gateway serves it within one sync period (${period} by default) of starting on, or syncing, ${db}` };
    case 'timeout': {
      const v = outcome.view;
      const sync = v ? `its last successful sync was ${ago(v.lastSuccessAt, Date.now())}${v.lastError ? ` (failing: ${v.lastError})` : ''}` : outcome.reason ?? 'it did not answer';
      return { code: EXIT_FAILED, state: 'timeout', error: sync,
        line: `the gateway at ${admin} has not applied the row within ${(syncPeriodMs(env) + 2000) / 1000} s: ${sync}. Is it using ${db}?` };
    }
  }
}
