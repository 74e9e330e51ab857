// The management API on the admin port, /api/v1 (README "Management API"; the OpenAPI document is
// openapi.ts, served at /api/v1/openapi.json): routing, the API keys, the read views. Functions
// are api-functions.ts, calling one api-invoke.ts, JSON in and out api-io.ts. Writes go to the same tables operators edit
// with SQL, through the same checks as `faas deploy` and `faas keys`.
import { KEY_NAME, KEY_NAME_RULE, KeyError } from '../routes/api-keys.js';
import { METHODS } from '../routes/route-key.js';
import { deleteFunction, getFunction, listFunctions, version, versions, writeFunction, type FunctionApiDeps } from './api-functions.js';
import { invokeFunction, type InvokeDeps } from './api-invoke.js';
import { API_MAX_BODY_BYTES, ApiError, asApiError, errorAnswer, isObject, parseJson, readBody, send, type Answer, type ApiRequest } from './api-io.js';
import { OPENAPI } from './openapi.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from './uws.js';

export { mergePatch } from './api-functions.js';
export { sendError } from './api-io.js';

export const API_BASE = '/api/v1';

export interface ApiV1Deps extends FunctionApiDeps {
  readonly workers: () => unknown;
  readonly routes: () => unknown;
  readonly stats: () => unknown;
  /** GET /api/v1/logs: admin.ts's /logs handler (a page of JSON, or server-sent events). */
  readonly logs: (res: HttpResponse, req: HttpRequest) => void;
  /** POST /api/v1/functions/{key}/invoke (api-invoke.ts); without it that answers 404. */
  readonly invoke?: InvokeDeps;
}

type Resource = 'functions' | 'function' | 'versions' | 'version' | 'invoke' | 'keys' | 'key' | 'workers' | 'routes' | 'stats' | 'logs' | 'openapi';

const ALLOWED: Readonly<Record<Resource, readonly string[]>> = {
  functions: ['GET'], function: ['GET', 'PUT', 'PATCH', 'DELETE'], versions: ['GET'], version: ['GET'], invoke: ['POST'], keys: ['GET', 'POST'], key: ['DELETE'],
  workers: ['GET'], routes: ['GET'], stats: ['GET'], logs: ['GET'], openapi: ['GET'],
};
const WITH_BODY: ReadonlySet<string> = new Set(['PUT', 'PATCH', 'POST']);

interface Target {
  readonly resource: Resource;
  /** The function's key, or the API key's name. */
  readonly param?: string;
  /** /functions/{key}/versions/{version}: the version. */
  readonly version?: number;
}

interface Request extends ApiRequest {
  readonly target: Target;
}

/** Serves /api/v1/* on `app`. `guard` runs first on every request (admin-access.ts): false when it has answered with a refusal. */
export function registerApiV1(app: TemplatedApp, deps: ApiV1Deps, guard: (res: HttpResponse, req: HttpRequest) => boolean): void {
  app.any(`${API_BASE}/*`, (res, req) => {
    if (!guard(res, req)) return;
    const method = req.getMethod().toUpperCase();
    const url = req.getUrl();
    let target: Target;
    try {
      target = resolve(url, method);
    } catch (err) {
      if (req.getHeader('content-length') !== '' || req.getHeader('transfer-encoding') !== '') res.onData(() => {});
      send(res, { aborted: false }, errorAnswer(asApiError(err)));
      return;
    }
    if (target.resource === 'logs') {
      deps.logs(res, req);
      return;
    }
    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const query = new URLSearchParams(req.getQuery() ?? '');
    const ifMatch = req.getHeader('if-match');
    const ifNoneMatch = req.getHeader('if-none-match');
    const contentType = req.getHeader('content-type');
    const contentLength = req.getHeader('content-length');
    const hasBody = contentLength !== '' ? contentLength !== '0' : req.getHeader('transfer-encoding') !== '';
    const reply = (a: Answer): void => send(res, state, a);
    const refuse = (err: ApiError): void => {
      if (hasBody) res.onData(() => {}); // uWS reads and drops a body nobody takes; the client reads the answer
      reply(errorAnswer(err));
    };
    const request = (body?: unknown): Request => ({ method, target, query, ifMatch, ifNoneMatch, ...(body !== undefined && { body }) });
    if (!WITH_BODY.has(method)) {
      run(deps, request(), reply);
      return;
    }
    const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
    const patch = method === 'PATCH' && mediaType === 'application/merge-patch+json';
    if (mediaType !== 'application/json' && !patch) {
      refuse(new ApiError('UNSUPPORTED_MEDIA_TYPE', `send the body as JSON with content-type: application/json${method === 'PATCH' ? ' (or application/merge-patch+json)' : ''} (got ${contentType === '' ? 'no content-type' : JSON.stringify(contentType)})`));
      return;
    }
    if (/^\d+$/.test(contentLength) && Number(contentLength) > API_MAX_BODY_BYTES) {
      refuse(new ApiError('PAYLOAD_TOO_LARGE', `the request body of ${contentLength} bytes is over the admin API's limit of ${API_MAX_BODY_BYTES} bytes`));
      return;
    }
    readBody(res, state, (bytes) => {
      if (bytes === undefined) {
        reply(errorAnswer(new ApiError('PAYLOAD_TOO_LARGE', `the request body is over the admin API's limit of ${API_MAX_BODY_BYTES} bytes`)));
        return;
      }
      let body: unknown;
      try {
        body = parseJson(bytes);
      } catch (err) {
        reply(errorAnswer(asApiError(err)));
        return;
      }
      run(deps, request(body), reply);
    });
  });
}


/** The resource a path names, or an ApiError: 404 for no such path, 405 (with Allow) for a method it does not take. */
function resolve(url: string, method: string): Target {
  const segments = url.slice(API_BASE.length + 1).split('/');
  const [first, second, ...rest] = segments;
  let target: Target | undefined;
  const decode = (text: string, what: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw new ApiError('INVALID_REQUEST', `the ${what} in the path is not valid percent-encoding (got ${JSON.stringify(text)})`);
    }
  };
  switch (first) {
    case 'functions':
      if (second === undefined) target = { resource: 'functions' };
      else if ((METHODS as readonly string[]).includes(second)) {
        // The readable form, /functions/GET/hello/world: everything after the method is the path, as sent.
        target = { resource: 'function', param: `${second}:/${rest.join('/')}` };
      } else {
        const key = decode(second, 'function key');
        if (!key.includes(':')) break;
        if (rest.length === 0) target = { resource: 'function', param: key };
        else if (rest.length === 1 && rest[0] === 'versions') target = { resource: 'versions', param: key };
        else if (rest.length === 2 && rest[0] === 'versions' && /^\d{1,15}$/.test(rest[1]!)) target = { resource: 'version', param: key, version: Number(rest[1]) };
        else if (rest.length === 1 && rest[0] === 'invoke') target = { resource: 'invoke', param: key };
      }
      break;
    case 'keys':
      if (second === undefined) target = { resource: 'keys' };
      else if (rest.length === 0 && second !== '') target = { resource: 'key', param: decode(second, 'key name') };
      break;
    case 'workers':
    case 'routes':
    case 'stats':
    case 'logs':
      if (second === undefined) target = { resource: first };
      break;
    case 'openapi.json':
      if (second === undefined) target = { resource: 'openapi' };
      break;
    default:
      break;
  }
  if (target === undefined) {
    throw new ApiError('ROUTE_NOT_FOUND', `the admin API has no ${method} ${url}; the operations are listed at ${API_BASE}/openapi.json`);
  }
  const allowed = ALLOWED[target.resource];
  if (!allowed.includes(method)) {
    throw new ApiError('METHOD_NOT_ALLOWED', `${url} takes ${allowed.join(', ')}, not ${method}`, undefined, [['allow', allowed.join(', ')]]);
  }
  return target;
}


function run(deps: ApiV1Deps, req: Request, reply: (a: Answer) => void): void {
  try {
    const answer = dispatch(deps, req);
    if (answer instanceof Promise) answer.then(reply, (err: unknown) => reply(errorAnswer(asApiError(err))));
    else reply(answer);
  } catch (err) {
    reply(errorAnswer(asApiError(err)));
  }
}

function dispatch(deps: ApiV1Deps, req: Request): Answer | Promise<Answer> {
  const { resource, param } = req.target;
  switch (resource) {
    case 'invoke':
      return invokeFunction(deps.invoke, param!, req.body);
    case 'functions':
      return listFunctions(deps, req.query);
    case 'function':
      if (req.method === 'GET') return getFunction(deps, param!);
      if (req.method === 'DELETE') return deleteFunction(deps, param!, req);
      return writeFunction(deps, param!, req);
    case 'versions':
      return versions(deps, param!);
    case 'version':
      return version(deps, param!, req.target.version!);
    case 'keys':
      return req.method === 'GET' ? deps.store.listKeys().then((keys) => ({ status: 200, body: { keys } })) : createKey(deps, req.body);
    case 'key':
      return revokeKey(deps, param!);
    case 'workers':
      return { status: 200, body: deps.workers() };
    case 'routes':
      return { status: 200, body: deps.routes() };
    case 'stats':
      return { status: 200, body: deps.stats() };
    case 'openapi':
      return { status: 200, body: OPENAPI };
    case 'logs':
      break; // deps.logs, before the body
  }
  throw new ApiError('ROUTE_NOT_FOUND', `the admin API has no ${req.method} ${API_BASE}/${resource}`);
}

// ---- API keys ----

async function createKey(deps: ApiV1Deps, body: unknown): Promise<Answer> {
  const problems: string[] = [];
  if (!isObject(body)) problems.push(`the body must be a JSON object {"name": "..."} (got ${JSON.stringify(body)?.slice(0, 80)})`);
  else {
    for (const field of Object.keys(body)) if (field !== 'name') problems.push(`${field} is not a known field; allowed fields: name`);
    if (body.name === undefined) problems.push(`name is required and ${KEY_NAME_RULE}`);
    else if (typeof body.name !== 'string' || !KEY_NAME.test(body.name)) problems.push(`name ${KEY_NAME_RULE} (got ${JSON.stringify(body.name)})`);
  }
  if (problems.length > 0) throw new ApiError('VALIDATION_FAILED', `no key made: ${problems.join('; ')}`, problems);
  const name = (body as { name: string }).name;
  let made: { key: string; created: number };
  try {
    made = await deps.store.createKey(name);
  } catch (err) {
    // The name's rule was checked above: what createKey still refuses is a name in use.
    if (err instanceof KeyError) throw new ApiError('API_KEY_EXISTS', err.message);
    throw err;
  }
  const live = (await deps.syncNow()).ok;
  return {
    status: live ? 201 : 202,
    body: { name, key: made.key, created: made.created, live },
    headers: [['location', `${API_BASE}/keys/${encodeURIComponent(name)}`]],
  };
}

async function revokeKey(deps: ApiV1Deps, name: string): Promise<Answer> {
  if (!(await deps.store.revokeKey(name))) throw new ApiError('API_KEY_NOT_FOUND', `no API key named ${JSON.stringify(name)}`);
  const live = (await deps.syncNow()).ok;
  return { status: live ? 200 : 202, body: { name, revoked: true, live } };
}
