// `faas top`: the gateway's workers and routes over the last few seconds (GET /stats), redrawn
// every interval like top(1); --once prints one frame for scripts and tests.
import { AdminUnreachable, sleep, type StatsView } from './admin-client.js';
import { ADMIN_FLAG, ADMIN_TOKEN_FLAG, adminApi, EXIT_OK, HELP_FLAG, intFlag, JSON_FLAG, parseArgs, refuse, usage, type Io } from './args.js';
import { fixed, isoTime, ms, table } from './format.js';
import { syncLine } from './routes.js';

export const TOP_HELP = `Usage:
  faas top [--admin URL] [--interval-ms N] [--once] [--json]

Workers (score and its cpu/mem/io parts, calls in flight, calls a second, p50/p99 latency
and errors over the gateway's window, restarts, up/down), routes (calls a second, p50/p99,
mean CPU ms and peak memory MiB of their instance during a call where workers report them,
errors), the routes' sync state and the latest errors, from the gateway's GET /stats,
redrawn every interval until Ctrl-C.

  --admin URL        FAAS_ADMIN  http://127.0.0.1:9090
  --admin-token-file PATH   FAAS_ADMIN_TOKEN_FILE: the admin API's bearer token, when the gateway has one
  --interval-ms N    100-60000 (default 1000)
  --once             print one frame and exit, without clearing the screen
  --json             the GET /stats object (with --once: once; else one per line, each interval)

Exit status: 0 done (or Ctrl-C), 1 no gateway answers (--once) or it refused, 2 usage.

Examples:
  faas top
  faas top --once
  faas top --once --json | jq '.workers[] | {id, score, inFlight}'
`;

export const CLEAR_SCREEN = '\x1b[H\x1b[2J';

export async function runTop(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_FLAG, JSON_FLAG, ADMIN_FLAG, ADMIN_TOKEN_FLAG, { name: '--interval-ms', value: 'one' }, { name: '--once' }]);
  if (args.switches.has('--help')) {
    io.out(TOP_HELP);
    return EXIT_OK;
  }
  const problems = [...args.problems];
  if (args.positionals.length > 0) problems.push(`unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const { url: admin, client } = adminApi(args, env, problems);
  if (problems.length > 0) return usage(io, 'top', problems, TOP_HELP);
  const refusals: string[] = [];
  const intervalMs = intFlag(args, '--interval-ms', 100, 60_000, 1000, refusals);
  if (refusals.length > 0) return refuse(io, 'top', refusals);
  const once = args.switches.has('--once');
  const json = args.switches.has('--json');

  while (!io.signal?.aborted) {
    let frame: string;
    try {
      const stats = await client.getJson<StatsView>('/stats', io.signal);
      frame = json ? `${JSON.stringify(stats)}\n` : renderTop(stats, admin);
    } catch (err) {
      if (io.signal?.aborted) break;
      if (once || !(err instanceof AdminUnreachable)) return refuse(io, 'top', [`${(err as Error).message} (--admin, FAAS_ADMIN)`]);
      frame = json ? '' : `faas top — ${admin}\n\n${(err as Error).message}; trying again every ${intervalMs} ms\n`;
      if (json) io.err(`faas top: ${(err as Error).message}\n`);
    }
    io.out(once || json ? frame : `${CLEAR_SCREEN}${frame}`);
    if (once) return EXIT_OK;
    await sleep(intervalMs, io.signal);
  }
  return EXIT_OK;
}

/** One frame: a title, the workers, the routes, the sync line, the latest errors. Pure. */
export function renderTop(stats: StatsView, admin: string): string {
  const parts: string[] = [`faas top — ${admin} — ${isoTime(stats.time)} — calls over the last ${stats.windowS} s\n`];
  parts.push(stats.workers.length === 0 ? 'no workers\n' : table(
    ['WORKER', 'PID', 'STATE', 'SCORE', 'CPU', 'MEM', 'IO', 'IN-FLIGHT', 'RPS', 'P50ms', 'P99ms', 'ERR', 'RESTARTS'],
    [...stats.workers].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })).map((w) => [
      w.id, w.pid, w.available ? 'up' : 'down', fixed(w.score), fixed(w.cpu), fixed(w.mem), fixed(w.io), w.inFlight,
      fixed(w.rps), ms(w.p50Ms), ms(w.p99Ms), w.errors, w.restarts,
    ])));
  parts.push(stats.routes.length === 0 ? 'no routes\n' : table(
    ['ROUTE', 'STATE', 'RUNTIME', 'RPS', 'P50ms', 'P99ms', 'CPUms', 'MEM-MiB', 'ERR'],
    [...stats.routes].sort((a, b) => a.key.localeCompare(b.key)).map((r) => [
      r.key, r.state, r.runtime, fixed(r.rps), ms(r.p50Ms), ms(r.p99Ms), ms(r.cpuMeanMs), fixed(r.memPeakMeanMb), r.errors,
    ])));
  parts.push(`${syncLine(stats.sync, stats.sync.routes ?? stats.routes.length, stats.sync.configErrors ?? 0, stats.time)}\n`);
  const errors = (stats.recentErrors ?? []).slice(0, 5);
  if (errors.length > 0) {
    parts.push(`latest errors:\n${table(['TIME', 'ROUTE', 'STATUS', 'CODE', 'REQUEST-ID', 'WORKER', 'MESSAGE'],
      errors.map((e) => [isoTime(e.time), e.route, e.status, e.code, e.requestId, e.worker, e.message]))}`);
  }
  return parts.join('\n');
}
