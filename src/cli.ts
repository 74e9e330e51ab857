// The `faas` command: `faas gateway`, `faas worker`, `faas help`.
import { ConfigError } from './config.js';

const HELP = `faas — a single-node function gateway

Usage:
  faas gateway [options]   start the HTTP gateway and its workers
  faas worker  [options]   start one worker by hand (joins the gateway whose --run-dir it shares)
  faas keys    create NAME | revoke NAME | list   API keys for routes with "auth": "api-key"
  faas help                this text

Gateway options (flag / environment / default):
  --db PATH            FAAS_DB            ./data/faas.db
  --host H             FAAS_HOST          0.0.0.0
  --port N             FAAS_PORT          8080   (0 picks a free port)
  --admin-port N       FAAS_ADMIN_PORT    9090   (bound to 127.0.0.1)
  --workers N          FAAS_WORKERS       number of CPU cores
  --run-dir DIR        FAAS_RUN_DIR       /tmp/faas
  --sync-ms N          FAAS_SYNC_MS       5000
  --report-ms N        FAAS_REPORT_MS     500
  --max-body-bytes N   FAAS_MAX_BODY_BYTES 6291456
  --max-header-bytes N FAAS_MAX_HEADER_BYTES 16384
  --max-in-flight N    FAAS_MAX_IN_FLIGHT 10000

Worker options:
  --id ID              FAAS_WORKER_ID     w<pid>
  --run-dir DIR        FAAS_RUN_DIR       /tmp/faas
  --report-ms N        FAAS_REPORT_MS     500
  --idle-ttl-ms N      FAAS_IDLE_TTL_MS   600000
  --memory-budget-mb N FAAS_MEMORY_BUDGET_MB  half the host's memory / CPU cores
                       (supervised workers take these from the gateway's environment)

Example:
  faas gateway --port 8080 --workers 2
  sqlite3 data/faas.db "INSERT INTO functions(k, v) VALUES ('GET:/hi', '{\\"runtime\\":\\"python\\",\\"code\\":\\"def handle(r):\\\\n  return \\\\\\"hi\\\\\\"\\"}')"
  curl localhost:8080/hi
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'gateway': {
      const { runGateway } = await import('./main.js');
      await runGateway(rest, process.env);
      return -1; // keeps running
    }
    case 'worker': {
      const { runWorker } = await import('../workers/main.js');
      await runWorker(rest, process.env);
      return -1;
    }
    case 'keys': {
      const { runKeys } = await import('./keys-cli.js');
      return runKeys(rest, process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
    }
    case undefined:
    case 'help':
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
