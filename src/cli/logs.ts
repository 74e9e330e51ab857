// `faas logs [METHOD:/path] [-f]`: the gateway's recent log of calls (GET /logs): what
// functions printed and calls that failed (and, with -f, an access line per call); one line each, with the request id to grep for. -f follows
// the live stream (GET /logs?follow=1, server-sent events) until Ctrl-C.
import { parseRouteKey } from '../routes/route-key.js';
import { AdminUnreachable, type LogEntry, type LogsPage } from './admin-client.js';
import { ADMIN_FLAG, ADMIN_TOKEN_FLAG, adminApi, EXIT_OK, HELP_FLAG, intFlag, JSON_FLAG, parseArgs, refuse, usage, type Io } from './args.js';
import { isoTime, ms } from './format.js';

export const LOGS_HELP = `Usage:
  faas logs [METHOD:/path] [-f] [--limit N] [--admin URL] [--json]

The gateway's recent log, oldest first, one line per entry:
  TIME  REQUEST-ID  ROUTE  [KIND]  what happened
KIND is stdout or stderr (what the function printed, with the call's request id), error (a
call that failed, and why) or, while following, access (each call: status, ms, worker, cold;
the gateway does not keep those: its access log on stderr has them all).

  METHOD:/path     only this route's entries
  -f, --follow     print the last entries, then new ones as they come, until Ctrl-C
  --limit N        how many recent entries, 1-2000 (the gateway keeps the last 2000) (default 100; 10 with -f)
  --admin URL      FAAS_ADMIN  http://127.0.0.1:9090
  --admin-token-file PATH   FAAS_ADMIN_TOKEN_FILE: the admin API's bearer token, when the gateway has one
  --json           one JSON object per entry and line (as GET /logs gives them)

Exit status: 0 done (or Ctrl-C), 1 no gateway answers or the stream broke, 2 usage.

Examples:
  faas logs GET:/hello
  faas logs -f | grep -v '\\[access\\]'
  faas logs --json --limit 1000 | jq -r 'select(.status >= 500) | .requestId'
`;

export async function runLogs(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_FLAG, JSON_FLAG, ADMIN_FLAG, ADMIN_TOKEN_FLAG, { name: '--follow', alias: '-f' }, { name: '--limit', value: 'one' }]);
  if (args.switches.has('--help')) {
    io.out(LOGS_HELP);
    return EXIT_OK;
  }
  const problems = [...args.problems];
  const [route, ...extra] = args.positionals;
  if (extra.length > 0) problems.push(`unexpected argument ${JSON.stringify(extra[0])}`);
  const { url: admin, client } = adminApi(args, env, problems);
  if (problems.length > 0) return usage(io, 'logs', problems, LOGS_HELP);
  const follow = args.switches.has('--follow');
  const refusals: string[] = [];
  const limit = intFlag(args, '--limit', 1, 2000, follow ? 10 : 100, refusals);
  const key = route === undefined ? undefined : parseRouteKey(route);
  if (key && !key.ok) refusals.push(`METHOD:/path: ${key.error}`);
  if (refusals.length > 0) return refuse(io, 'logs', refusals);

  const json = args.switches.has('--json');
  const print = (e: LogEntry): void => io.out(json ? `${JSON.stringify(e)}\n` : formatEntry(e));
  const routeQuery = route === undefined ? '' : `&route=${encodeURIComponent(route)}`;
  try {
    const page = await client.getJson<LogsPage>(`/logs?limit=${limit}${routeQuery}`, io.signal);
    for (const e of page.entries) print(e);
    if (!follow) return EXIT_OK;
    // From just after the page: the gateway first replays what was kept since it (seq > after),
    // then sends entries as they come (access entries, which are not kept, carry the seq of the
    // newest kept one).
    for await (const e of client.follow(`/logs?follow=1&after=${page.next}${routeQuery}`, io.signal)) print(e);
  } catch (err) {
    if (io.signal?.aborted) return EXIT_OK;
    return refuse(io, 'logs', [(err as Error).message + (err instanceof AdminUnreachable ? ' (--admin, FAAS_ADMIN)' : '')]);
  }
  if (io.signal?.aborted) return EXIT_OK;
  return refuse(io, 'logs', [`the gateway at ${admin} closed the log stream (stopped or restarted?)`]);
}

/** One entry as lines of `TIME  REQUEST-ID  ROUTE  [KIND]  text`; text of several lines gives several lines. */
export function formatEntry(e: LogEntry): string {
  const kind = e.kind === 'output' ? e.stream ?? 'stdout' : e.kind;
  const prefix = `${isoTime(e.time)}  ${e.requestId ?? '-'}  ${e.route ?? '-'}  [${kind}]  `;
  let text: string;
  if (e.kind === 'access') {
    text = [e.status ?? '-', e.ms === undefined ? undefined : `${ms(e.ms)}ms`, e.worker, e.cold ? 'cold' : undefined]
      .filter((p) => p !== undefined).join(' ');
  } else if (e.kind === 'output') {
    text = (e.text ?? e.msg ?? '').replace(/\n$/, '');
  } else {
    text = [e.status, e.code, e.msg, e.text, e.worker && `(worker ${e.worker})`].filter((p) => p !== undefined && p !== '').join(' ');
  }
  return `${text.split('\n').map((line) => `${prefix}${line}`.trimEnd()).join('\n')}\n`;
}
