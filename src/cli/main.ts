// The `faas` command: `faas gateway`, `faas worker`, the operators' commands (keys, deploy,
// routes, rm, invoke, logs, top: keys.ts and the rest of src/cli/), `faas help`.
import { ConfigError } from '../config.js';
import type { Io } from './args.js';

const HELP = `faas — a function gateway for your own machines, one or several

Usage:
  faas gateway [options]   start the HTTP gateway and its workers
  faas worker  [options]   start one worker by hand (joins the gateway whose --run-dir it shares)
  faas deploy METHOD:/path FILE|DIR --runtime node|python|wasm [options]
                           check a function's config with the gateway's rules, write its row, wait until it is live
  faas routes              what the gateway serves now, and its sync state
  faas rm METHOD:/path     delete a route's row, wait until it is gone
  faas invoke METHOD:/path [--data …] [-H …]   call a route through the gateway
  faas logs [METHOD:/path] [-f]                the gateway's recent calls, function output and errors
  faas top                 workers and routes, live: load, calls a second, latency, errors
  faas keys    create NAME | revoke NAME | list   API keys for routes with "auth": "api-key"
  faas help [COMMAND]      this text, or a command's (also: faas COMMAND --help)

Operators' commands take --json (output for scripts) and exit 0 done, 1 refused or failed,
2 usage. They find the database as the gateway does (--db, FAAS_DB, ./data/faas.db), the admin
API at --admin or FAAS_ADMIN (http://127.0.0.1:9090) with its token at --admin-token-file or
FAAS_ADMIN_TOKEN_FILE when it has one, and the gateway at --url or FAAS_URL (http://127.0.0.1:8080).

Gateway options (flag / environment / default):
  --db PATH            FAAS_DB            ./data/faas.db
  --host H             FAAS_HOST          0.0.0.0
  --port N             FAAS_PORT          8080   (0 picks a free port)
  --admin-port N       FAAS_ADMIN_PORT    9090
  --admin-host H       FAAS_ADMIN_HOST    127.0.0.1 (another address needs --admin-token-file)
  --admin-token-file PATH FAAS_ADMIN_TOKEN_FILE  none (a file holding the admin API's bearer token)
  --workers N          FAAS_WORKERS       number of CPU cores
  --run-dir DIR        FAAS_RUN_DIR       /tmp/faas
  --sync-ms N          FAAS_SYNC_MS       5000
  --report-ms N        FAAS_REPORT_MS     500
  --max-body-bytes N   FAAS_MAX_BODY_BYTES 6291456
  --max-header-bytes N FAAS_MAX_HEADER_BYTES 16384
  --max-in-flight N    FAAS_MAX_IN_FLIGHT 10000
  --max-connections N  FAAS_MAX_CONNECTIONS 10000  (0: no cap)
  --body-timeout-ms N  FAAS_BODY_TIMEOUT_MS 5000
  --policy NAME        FAAS_POLICY        least-loaded (SCHEDULING.md)
  --pin on|off         FAAS_PIN           off
  --access-log on|off  FAAS_ACCESS_LOG    on

Worker options:
  --id ID              FAAS_WORKER_ID     w<pid>
  --run-dir DIR        FAAS_RUN_DIR       /tmp/faas
  --report-ms N        FAAS_REPORT_MS     500
  --idle-ttl-ms N      FAAS_IDLE_TTL_MS   600000
  --memory-budget-mb N FAAS_MEMORY_BUDGET_MB  half the host's memory / CPU cores
                       (supervised workers take these from the gateway's environment)

Examples:
  faas gateway --port 8080 --workers 2
  faas deploy GET:/hi examples/handle.py --runtime python
  faas invoke 'GET:/hi?name=you'
  sqlite3 data/faas.db "INSERT INTO functions(k, v) VALUES ('GET:/hi', '{\\"runtime\\":\\"python\\",\\"code\\":\\"def handle(r):\\\\n  return \\\\\\"hi\\\\\\"\\"}')"
  curl localhost:8080/hi
`;

type OpsCommand = (argv: readonly string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>;

/** The operators' commands, loaded only when asked for (the gateway never loads them). */
const OPS: Readonly<Record<string, () => Promise<{ run: OpsCommand; help: string; follows?: boolean }>>> = {
  deploy: async () => {
    const m = await import('./deploy.js');
    return { run: m.runDeploy, help: m.DEPLOY_HELP };
  },
  routes: async () => {
    const m = await import('./routes.js');
    return { run: m.runRoutes, help: m.ROUTES_HELP };
  },
  rm: async () => {
    const m = await import('./routes.js');
    return { run: m.runRm, help: m.RM_HELP };
  },
  invoke: async () => {
    const m = await import('./invoke.js');
    return { run: m.runInvoke, help: m.INVOKE_HELP };
  },
  logs: async () => {
    const m = await import('./logs.js');
    return { run: m.runLogs, help: m.LOGS_HELP, follows: true };
  },
  top: async () => {
    const m = await import('./top.js');
    return { run: m.runTop, help: m.TOP_HELP, follows: true };
  },
};

async function runOps(name: string, argv: readonly string[]): Promise<number> {
  const { run, follows } = await OPS[name]!();
  const stop = new AbortController();
  // logs -f and top run until Ctrl-C, then end cleanly (exit 0); a second Ctrl-C kills as usual.
  if (follows) process.once('SIGINT', () => stop.abort());
  // A reader that goes away (faas logs | head) ends the command, not with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const io: Io = { out: (chunk) => process.stdout.write(chunk), err: (t) => process.stderr.write(t), signal: stop.signal };
  return run(argv, process.env, io);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'gateway': {
      const { runGateway } = await import('../main.js');
      await runGateway(rest, process.env);
      return -1; // keeps running
    }
    case 'worker': {
      const { runWorker } = await import('../../workers/main.js');
      await runWorker(rest, process.env);
      return -1;
    }
    case 'keys': {
      const { runKeys } = await import('./keys.js');
      return runKeys(rest, process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
    }
    case 'deploy':
    case 'routes':
    case 'rm':
    case 'invoke':
    case 'logs':
    case 'top':
      return runOps(command, rest);
    case 'help':
      if (rest[0] !== undefined && Object.hasOwn(OPS, rest[0])) {
        process.stdout.write((await OPS[rest[0]]!()).help);
        return 0;
      }
      if (rest[0] === 'keys') {
        process.stdout.write((await import('./keys.js')).KEYS_HELP);
        return 0;
      }
      process.stdout.write(HELP);
      return 0;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`faas: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`faas: ${err.message}\n`);
    else process.stderr.write(`faas: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
