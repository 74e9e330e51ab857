// `faas invoke METHOD:/path`: one HTTP call to the gateway, as a client would make it; the
// body on stdout, or with --json the whole answer with the gateway's own headers picked out.
import fs from 'node:fs';
import { parseRouteKey } from '../routes/route-key.js';
import { describe } from './admin-client.js';
import { baseUrl, EXIT_FAILED, EXIT_OK, HELP_FLAG, JSON_FLAG, parseArgs, refuse, usage, valueOf, type Io } from './args.js';
import { utf8 } from './format.js';

export const INVOKE_HELP = `Usage:
  faas invoke METHOD:/path[?query] [--data STRING|@FILE|@-] [-H 'Name: value']... [--url URL] [--json]

Calls the route through the gateway and prints the answer's body on stdout. A call that is not
answered 2xx prints its status and the gateway's error JSON on stderr.

  --data, -d STRING|@FILE|@-   the request body: the text itself, a file's bytes, or stdin
  -H, --header 'Name: value'   a request header; repeat for more
  --url URL                    FAAS_URL  http://127.0.0.1:8080 (the gateway's HTTP port)
  --json                       print {status, headers, body, requestId, worker, serverTiming};
                               serverTiming: gateway and function ms, start (cold|warm), and cpu
                               (ms of CPU the function's instance used during the call, where known);
                               a body that is not UTF-8 is given as base64 with "isBase64Encoded": true

Exit status: 0 answered 2xx, 1 any other status or no answer, 2 usage.

Examples:
  faas invoke GET:/hello
  faas invoke 'GET:/hi?name=you' --json
  faas invoke POST:/echo --data '{"a":1}' -H 'content-type: application/json'
  faas invoke POST:/wasm --data @photo.jpg -H "x-api-key: $KEY" > out.bin
`;

export async function runInvoke(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_FLAG, JSON_FLAG, { name: '--data', alias: '-d', value: 'one' },
    { name: '--header', alias: '-H', value: 'many' }, { name: '--url', value: 'one' }]);
  if (args.switches.has('--help')) {
    io.out(INVOKE_HELP);
    return EXIT_OK;
  }
  const problems = [...args.problems];
  const [target, ...extra] = args.positionals;
  if (target === undefined) problems.push('missing METHOD:/path, the route to call');
  if (extra.length > 0) problems.push(`unexpected argument ${JSON.stringify(extra[0])}`);
  const url = baseUrl(args, '--url', 'FAAS_URL', env, 'http://127.0.0.1:8080', problems);
  if (problems.length > 0) return usage(io, 'invoke', problems, INVOKE_HELP);

  const request = buildRequest(target!, valueOf(args, '--data'), args.values.get('--header') ?? []);
  if ('problems' in request) return refuse(io, 'invoke', request.problems);

  let res: Response;
  let bytes: Uint8Array;
  try {
    res = await fetch(`${url}${request.path}`, {
      method: request.method, headers: request.headers, redirect: 'manual',
      ...(request.body !== undefined && { body: request.body }), ...(io.signal && { signal: io.signal }),
    });
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (err) {
    return refuse(io, 'invoke', [`no answer from the gateway at ${url} (${describe(err)}); is it running? (--url, FAAS_URL)`]);
  }
  const ok = res.status >= 200 && res.status < 300;
  const text = utf8(bytes);
  if (args.switches.has('--json')) {
    io.out(`${JSON.stringify({
      status: res.status,
      headers: Object.fromEntries(res.headers),
      ...(text === undefined ? { body: Buffer.from(bytes).toString('base64'), isBase64Encoded: true } : { body: text }),
      requestId: res.headers.get('x-request-id'),
      worker: res.headers.get('x-faas-worker'),
      serverTiming: parseServerTiming(res.headers.get('server-timing')),
    })}\n`);
  } else if (ok) io.out(bytes);
  if (!ok) {
    const id = res.headers.get('x-request-id');
    io.err(`faas invoke: ${request.method}:${request.path} answered ${res.status}${id ? ` (request id ${id})` : ''}\n`);
    if (!args.switches.has('--json')) io.err(`${text ?? `(${bytes.length} bytes, not text)`}\n`);
  }
  return ok ? EXIT_OK : EXIT_FAILED;
}

interface Request {
  readonly method: string;
  /** The path and query, as sent. */
  readonly path: string;
  readonly headers: Array<[string, string]>;
  readonly body?: string | Uint8Array;
}

/** The call to make, or every reason it cannot be made. Reads --data @FILE. */
export function buildRequest(target: string, data: string | undefined, headerFlags: readonly string[]): Request | { problems: string[] } {
  const problems: string[] = [];
  const q = target.indexOf('?');
  const key = parseRouteKey(q < 0 ? target : target.slice(0, q));
  if (!key.ok) problems.push(`METHOD:/path: ${key.error}`);
  const headers: Array<[string, string]> = [];
  for (const h of headerFlags) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) problems.push(`-H must be 'Name: value' with a header name of letters, digits and !#$%&'*+.^_\`|~- (got ${JSON.stringify(h)})`);
    else headers.push([name, h.slice(colon + 1).trim()]);
  }
  let body: string | Uint8Array | undefined;
  if (data !== undefined) {
    if (key.ok && (key.method === 'GET' || key.method === 'HEAD')) problems.push(`--data cannot be sent with ${key.method}: HTTP gives a ${key.method} request no body`);
    else if (data.startsWith('@')) {
      const file = data.slice(1);
      try {
        body = new Uint8Array(fs.readFileSync(file === '-' ? 0 : file));
      } catch (err) {
        problems.push(`--data ${JSON.stringify(data)}: cannot read ${file === '-' ? 'stdin' : JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    } else body = data;
  }
  if (problems.length > 0 || !key.ok) return { problems };
  return { method: key.method, path: `${key.path}${q < 0 ? '' : target.slice(q)}`, headers, ...(body !== undefined && { body }) };
}

/** "gateway;dur=1.2, function;dur=0.8, start;desc=cold, cpu;dur=0.5" → {gateway: 1.2, function: 0.8, start: "cold", cpu: 0.5}. */
export function parseServerTiming(header: string | null): Record<string, number | string | true> | null {
  if (header === null) return null;
  const out: Record<string, number | string | true> = {};
  for (const metric of header.split(',')) {
    const [name, ...params] = metric.split(';').map((s) => s.trim());
    if (!name) continue;
    let value: number | string | true = true;
    for (const p of params) {
      const [k, v = ''] = p.split('=');
      const unquoted = v.replace(/^"(.*)"$/, '$1');
      if (k === 'dur' && unquoted !== '' && Number.isFinite(Number(unquoted))) value = Number(unquoted);
      else if (k === 'desc' && value === true) value = unquoted;
    }
    out[name] = value;
  }
  return out;
}
