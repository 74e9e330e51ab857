// The OpenAPI 3.1 document of the admin API's /api/v1, served at /api/v1/openapi.json (a copy is
// docs/openapi.json: `node scripts/write-openapi.mjs` after a build writes it, a unit test checks
// it is current). What a document can take from the code it does: the error codes (src/errors.ts),
// the config fields and their ranges (function-config.ts), the key's methods, so it cannot drift
// from the rules; the async invocation schema follows invocationView (async/view.ts) by hand.
// test/integration/api.test.ts calls every operation on a real gateway and checks each answer's
// status and body against it. The schemas are openapi-schemas.ts.
import { INVOCATION_STATES, object, ref, SCHEMAS, str, type Schema } from './openapi-schemas.js';

const json = (schema: Schema): Schema => ({ content: { 'application/json': { schema } } });
const answer = (description: string, schema: string, headers?: Record<string, Schema>): Schema =>
  ({ description, ...(headers && { headers }), ...json(ref(schema)) });
const error = (description: string): Schema => answer(description, 'Error');
const header = (description: string): Schema => ({ description, schema: str });
const ETAG = { ETag: header('the version, "14"') };
const common = (...codes: number[]): Record<string, Schema> =>
  Object.fromEntries([401, 403, 500, ...codes].sort().map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));

const keyParam = {
  name: 'key', in: 'path', required: true, schema: str,
  description: 'METHOD:/path, URL-encoded as one segment (GET%3A%2Fhello). Also written /functions/GET/hello (the method, then the path as sent), but not for /versions.',
};
const invocationParam = { name: 'id', in: 'path', required: true, schema: str, description: 'the invocationId (the 202\'s, or its Location\'s last segment)' };
const ifMatch = { name: 'If-Match', in: 'header', schema: str, description: 'the ETag of the version you read ("14"), or * for whatever version is there' };
const ifNoneMatch = { name: 'If-None-Match', in: 'header', schema: str, description: '* : create only, 412 if the function exists' };
const bodyOf = (schema: Schema, types = ['application/json']): Schema =>
  ({ required: true, content: Object.fromEntries(types.map((t) => [t, { schema }])) });

const PATHS: Record<string, Schema> = {
  '/functions': {
    get: {
      operationId: 'listFunctions', summary: 'Functions, in key order, with config, version and what the gateway serves',
      parameters: [
        { name: 'code', in: 'query', schema: { type: 'string', enum: ['0', '1'] }, description: '1: include inline code' },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 } },
        { name: 'after', in: 'query', schema: str, description: 'the key the previous page ended with (its `next`)' },
      ],
      responses: { 200: answer('a page of functions', 'FunctionList'), 400: error('a bad query parameter'), ...common(405) },
    },
  },
  '/functions/{key}': {
    parameters: [keyParam],
    get: {
      operationId: 'getFunction', summary: 'One function: its whole config (code included), version, and what the gateway serves',
      responses: { 200: answer('the function', 'Function', ETAG), 400: error('a key that is not valid percent-encoding'), 404: error('no such function'), ...common(405) },
    },
    put: {
      operationId: 'putFunction', summary: 'Create or replace a function: the body is its config, exactly as the row\'s `v`',
      description: 'Checked as the schema\'s triggers and faas deploy check it. Replacing an existing function needs If-Match. Answers once the gateway serves it (200, 201), or 202 with what it serves instead.',
      parameters: [ifMatch, ifNoneMatch],
      requestBody: bodyOf(ref('FunctionConfig')),
      responses: {
        200: answer('replaced, and served', 'FunctionWritten', ETAG), 201: answer('created, and served', 'FunctionWritten', { ...ETAG, Location: header('the function\'s URL') }),
        202: answer('written; not served yet (`serving` says what is, and why)', 'FunctionWritten', { ...ETAG, 'Retry-After': header('seconds') }),
        400: error('not JSON, or a bad If-Match'), 412: error('If-Match / If-None-Match did not hold'), 413: error('body over 8 MiB'),
        415: error('not application/json'), 422: error('the config or key breaks a rule (problems lists each)'),
        428: error('the function exists and If-Match is missing'), 503: error('the database is busy'), ...common(405),
      },
    },
    patch: {
      operationId: 'patchFunction', summary: 'Change some fields of a function\'s config (JSON merge patch: null removes a field)',
      parameters: [ifMatch],
      requestBody: bodyOf({ type: 'object' }, ['application/merge-patch+json', 'application/json']),
      responses: {
        200: answer('changed, and served', 'FunctionWritten', ETAG),
        202: answer('written; not served yet', 'FunctionWritten', { ...ETAG, 'Retry-After': header('seconds') }),
        400: error('not JSON, or a bad If-Match'), 404: error('no such function'), 412: error('If-Match did not hold'), 413: error('body over 8 MiB'),
        415: error('not JSON'), 422: error('the result breaks a rule'), 503: error('the database is busy'), ...common(405),
      },
    },
    delete: {
      operationId: 'deleteFunction', summary: 'Delete a function (If-Match required)',
      parameters: [ifMatch],
      responses: {
        200: answer('deleted, and no longer served', 'FunctionDeleted'),
        202: answer('deleted; still served until the gateway reads the database', 'FunctionDeleted', { 'Retry-After': header('seconds') }),
        400: error('a bad If-Match'), 404: error('no such function'), 412: error('If-Match did not hold'),
        428: error('If-Match is missing'), 503: error('the database is busy'), ...common(405),
      },
    },
  },
  '/functions/{key}/versions': {
    parameters: [{ ...keyParam, description: 'METHOD:/path, URL-encoded as one segment (GET%3A%2Fhello)' }],
    get: {
      operationId: 'functionVersions', summary: 'The kept history of a key: each version deployed (and deletions), which one is the row, which one is served',
      responses: { 200: answer('the versions, newest first', 'Versions'), 404: error('no such function'), ...common(405) },
    },
  },
  '/functions/{key}/versions/{version}': {
    parameters: [{ ...keyParam, description: 'METHOD:/path, URL-encoded as one segment (GET%3A%2Fhello)' },
      { name: 'version', in: 'path', required: true, schema: { type: 'integer', minimum: 1 }, description: 'a version from the list' }],
    get: {
      operationId: 'functionVersion', summary: 'One kept version with its whole config, to compare or put back',
      responses: { 200: answer('the version', 'Version', ETAG), 404: error('no such kept version'), ...common(405) },
    },
  },
  '/functions/{key}/invoke': {
    parameters: [{ ...keyParam, description: 'METHOD:/path, URL-encoded as one segment (GET%3A%2Fhello)' }],
    post: {
      operationId: 'invokeFunction', summary: 'Call the function as the public port would (its method and path), and see what it printed',
      description: 'Runs through the same workers as the public port, without the route\'s auth and rate limit, counted as a call. ' +
        'A call that fails (the function threw, timed out, no worker) is still a 200 answer: `status` and `code` say how it failed.',
      requestBody: bodyOf(ref('InvokeRequest')),
      responses: {
        200: answer('the call\'s answer, timing and output', 'InvokeResult'), 400: error('not JSON, or a bad field'),
        404: error('the gateway serves no function at the key'), 413: error('the body is over --max-body-bytes, or the request over 8 MiB'),
        415: error('not application/json'), ...common(405),
      },
    },
  },
  '/keys': {
    get: { operationId: 'listKeys', summary: 'API keys: names and creation times, never keys', responses: { 200: answer('the keys', 'KeyList'), ...common(405) } },
    post: {
      operationId: 'createKey', summary: 'Make an API key; the answer shows it, once',
      requestBody: bodyOf(object({ name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' } }, ['name'])),
      responses: {
        201: answer('made, and accepted by the gateway', 'KeyCreated', { Location: header('the key\'s URL') }),
        202: answer('made; accepted once the gateway reads the database', 'KeyCreated'),
        400: error('not JSON'), 409: error('the name is taken'), 413: error('body over 8 MiB'), 415: error('not application/json'),
        422: error('a bad name'), 503: error('the database is busy'), ...common(405),
      },
    },
  },
  '/keys/{name}': {
    parameters: [{ name: 'name', in: 'path', required: true, schema: str }],
    delete: {
      operationId: 'revokeKey', summary: 'Revoke an API key: calls with it get 401',
      responses: { 200: answer('revoked', 'KeyRevoked'), 202: answer('revoked; refused once the gateway reads the database', 'KeyRevoked'),
        404: error('no such key'), 503: error('the database is busy'), ...common(405) },
    },
  },
  '/workers': { get: { operationId: 'workers', summary: 'The fleet, as GET /workers', responses: { 200: answer('each worker', 'Workers'), ...common(405) } } },
  '/routes': { get: { operationId: 'routes', summary: 'What the gateway serves now and its sync state, as GET /routes', responses: { 200: answer('the routes', 'Routes'), ...common(405) } } },
  '/stats': { get: { operationId: 'stats', summary: 'Now and over the last 10 s, as GET /stats', responses: { 200: answer('the figures', 'Stats'), ...common(405) } } },
  '/logs': {
    get: {
      operationId: 'logs', summary: 'The recent log, as GET /logs (follow=1: server-sent events)',
      parameters: [
        { name: 'route', in: 'query', schema: str }, { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0 } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2000 } }, { name: 'follow', in: 'query', schema: { type: 'string', enum: ['0', '1'] } },
      ],
      responses: {
        200: { description: 'a page of entries, or with follow=1 a stream of `log` events', content: { 'application/json': { schema: ref('LogsPage') }, 'text/event-stream': { schema: str } } },
        400: error('a bad query parameter'), ...common(405),
      },
    },
  },
  '/invocations': {
    get: {
      operationId: 'listInvocations', summary: 'Async invocations, oldest first; ?state=failed is the dead-letter list',
      parameters: [
        { name: 'state', in: 'query', schema: { type: 'string', enum: [...INVOCATION_STATES] } },
        { name: 'route', in: 'query', schema: str, description: 'METHOD:/path' },
        { name: 'after', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 }, description: 'the previous page\'s `next`' },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      ],
      responses: { 200: answer('a page of invocations', 'InvocationList'), 400: error('a bad query parameter'), ...common() },
    },
  },
  '/invocations/{id}': {
    parameters: [invocationParam],
    get: {
      operationId: 'getInvocation', summary: 'One async invocation, with the function\'s answer: what its status URL shows',
      responses: { 200: answer('the invocation', 'Invocation'), 404: error('no invocation has this id (never accepted, or deleted async.ttl_s after it finished)'), ...common() },
    },
  },
  '/invocations/{id}/retry': {
    parameters: [invocationParam],
    post: {
      operationId: 'retryInvocation', summary: 'Queue a failed invocation (a dead letter) again, with its route\'s retries afresh; its attempts are numbered on from the last',
      description: 'No request body. The function sees the same request; a route changed since runs its new config.',
      responses: {
        202: answer('queued again', 'InvocationRetried'), 404: error('no invocation has this id'),
        409: error('the invocation is queued, running or succeeded: only a failed one can be retried'), ...common(),
      },
    },
  },
  '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', ...json({ type: 'object' }) }, ...common(405) } } },
};

export const OPENAPI = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'faas gateway management API',
    version: '1',
    description: 'On the admin port (127.0.0.1:9090 by default). Writes land in the functions and api_keys tables that operators edit with SQL. ' +
      'Errors are {statusCode, code, error, message}; the codes are README\'s error table. ' +
      'With --admin-token-file every request needs Authorization: Bearer TOKEN; without it the port answers loopback names only.',
  },
  servers: [{ url: '/api/v1' }],
  security: [{}, { adminToken: [] }],
  paths: PATHS,
  components: {
    schemas: SCHEMAS,
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'the token in the gateway\'s --admin-token-file; needed only when it has one' } },
    responses: {
      E401: error('a token is configured and the request has none, or a wrong one (WWW-Authenticate)'),
      E403: error('a page of another origin asking for a change, or a name other than loopback without a token'),
      E405: error('the path does not take this method (Allow lists those it takes)'),
      E500: error('the database could not be read or written'),
    },
  },
});
