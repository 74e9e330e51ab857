// CORS for routes with a `cors` field, answered by the gateway as nginx's `add_header` recipes
// or Express's `cors` middleware do: a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered 204 without calling a function, and the answers
// of the route itself get Access-Control-Allow-Origin. On such a route the gateway owns these
// headers: a function's own Access-Control-* are dropped, since two Allow-Origin lines make
// browsers refuse the answer. Pure: the server hands in the route table and the headers.
//
// What is allowed is the browser's to enforce: the gateway says which methods and headers the
// route takes, and refuses outright (403) only an origin that is not listed.
import { GatewayError } from '../errors.js';
import type { CorsConfig } from '../protocol/messages.js';
import type { Route, RouteTable } from '../routes/route-table.js';

export type Headers = ReadonlyArray<readonly [string, string]>;

/** The gateway's own answer headers, readable by the page's script (x-request-id to report a failure, the rate-limit budget). */
const EXPOSED = 'x-request-id, x-faas-worker, ratelimit, ratelimit-policy, retry-after';

export type Preflight =
  | { readonly route: Route; readonly headers: Headers; readonly error?: undefined }
  | { readonly route: Route; readonly headers: Headers; readonly error: GatewayError };

/** The value of the first `name` header of a flat [name, value, …] list. */
export function headerOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

/** `*` answers any origin, unless credentials are allowed (the schema refuses that pair; checked again here). */
function wildcard(cors: CorsConfig): boolean {
  return cors.origins.includes('*') && cors.credentials !== true;
}

function allows(cors: CorsConfig, origin: string): boolean {
  const o = origin.toLowerCase();
  return cors.origins.some((allowed) => allowed === '*' || allowed.toLowerCase() === o);
}

/** The allowed origin's headers, on a route with cors: Allow-Origin, Allow-Credentials; undefined for one not allowed. */
function originHeaders(cors: CorsConfig, origin: string): Array<[string, string]> | undefined {
  if (!allows(cors, origin)) return undefined;
  const out: Array<[string, string]> = [['access-control-allow-origin', wildcard(cors) ? '*' : origin]];
  if (cors.credentials === true) out.push(['access-control-allow-credentials', 'true']);
  return out;
}

/**
 * What an answer of a route with cors carries besides the function's headers. `Vary: Origin`
 * whenever the answer depends on the origin, with or without one in this request: a cache must
 * not give one origin's answer to another.
 */
export function corsHeaders(cors: CorsConfig, origin: string | undefined): Headers {
  const vary: Array<[string, string]> = wildcard(cors) ? [] : [['vary', 'Origin']];
  const allowed = origin === undefined ? undefined : originHeaders(cors, origin);
  return allowed ? [...allowed, ['access-control-expose-headers', EXPOSED], ...vary] : vary;
}

/**
 * The answer to an OPTIONS request on `path`, when it is a preflight and a route of the path has
 * cors; undefined otherwise (the request is then routed as any other: an `OPTIONS:/p` route, or 405).
 * The cors that answers is the one of the route for the method asked for (HEAD: its GET), else
 * the first of the path's routes that has one (the browser then refuses the method itself).
 */
export function preflight(table: RouteTable, path: string, headers: readonly string[]): Preflight | undefined {
  const origin = headerOf(headers, 'origin');
  const asked = headerOf(headers, 'access-control-request-method');
  if (origin === undefined || asked === undefined) return undefined;
  const method = asked.toUpperCase();
  const own = table.get(`${method}:${path}`) ?? (method === 'HEAD' ? table.get(`GET:${path}`) : undefined);
  const withCors = corsMethods(table, path);
  // The first is a route of its own: an added HEAD only ever follows its GET.
  const route = own?.config.cors ? own : withCors.length > 0 ? table.get(`${withCors[0]}:${path}`) : undefined;
  const cors = route?.config.cors;
  if (!route || !cors) return undefined;
  const allowed = originHeaders(cors, origin);
  if (!allowed) {
    return { route, headers: [['vary', 'Origin']],
      error: new GatewayError('CORS_ORIGIN_NOT_ALLOWED', `origin ${JSON.stringify(origin)} is not allowed to call ${path} (not in the cors origins of ${route.key})`) };
  }
  const out: Array<[string, string]> = [...allowed, ['access-control-allow-methods', (cors.methods ?? withCors).join(', ')]];
  const askedHeaders = headerOf(headers, 'access-control-request-headers');
  const allowHeaders = cors.headers !== undefined ? cors.headers.join(', ') : askedHeaders;
  if (allowHeaders) out.push(['access-control-allow-headers', allowHeaders]);
  if (cors.maxAge !== undefined) out.push(['access-control-max-age', String(cors.maxAge)]);
  out.push(['vary', cors.headers === undefined ? 'Origin, Access-Control-Request-Headers' : 'Origin']);
  return { route, headers: out };
}

/** Methods of the path whose route has cors, HEAD beside a GET that has no HEAD route of its own. */
function corsMethods(table: RouteTable, path: string): string[] {
  const out: string[] = [];
  for (const method of table.allowedMethods(path)) if (table.get(`${method}:${path}`)!.config.cors) out.push(method);
  return out.includes('GET') && !table.get(`HEAD:${path}`) ? withHead(out) : out;
}

/** `Allow` with HEAD beside GET: a HEAD request is served by the GET route when the path has no HEAD route. */
export function withHead(methods: readonly string[]): string[] {
  const out = [...methods];
  if (out.includes('GET') && !out.includes('HEAD')) out.splice(out.indexOf('GET') + 1, 0, 'HEAD');
  return out;
}
