// CORS at the gateway (src/http/cors.ts): preflights answered from the route table, and the
// headers added to a cors route's answers.
import { describe, expect, it } from 'vitest';
import { corsHeaders, preflight, withHead } from '../../src/http/cors.js';
import type { CorsConfig } from '../../src/protocol/messages.js';
import { parseFunctionConfig } from '../../src/routes/function-config.js';
import { RouteTable, type Route } from '../../src/routes/route-table.js';

function table(rows: Record<string, Record<string, unknown>>): RouteTable {
  const routes = new Map<string, Route>();
  for (const [key, extra] of Object.entries(rows)) {
    const parsed = parseFunctionConfig(JSON.stringify({ runtime: 'node', code: 'x', ...extra }));
    if (!parsed.ok) throw new Error(parsed.error);
    const at = key.indexOf(':');
    routes.set(key, { key, method: key.slice(0, at), path: key.slice(at + 1), version: 1, updated: 0, config: parsed.config });
  }
  return new RouteTable(routes);
}
const asked = (origin: string, method: string, extra: string[] = []): string[] =>
  ['origin', origin, 'access-control-request-method', method, ...extra];
const APP = 'https://app.example';

describe('preflight', () => {
  const routes = table({
    'GET:/items': { cors: { origins: [APP], max_age: 600, credentials: true } },
    'PUT:/items': { cors: { origins: [APP], headers: ['X-Token', 'Content-Type'] } },
    'POST:/items': {},
    'GET:/open': { cors: { origins: ['*'] } },
    'GET:/plain': {},
  });

  it('answers an allowed origin with the route\'s cors: the origin echoed, methods of the path with cors, the asked headers echoed', () => {
    const pre = preflight(routes, '/items', asked(APP, 'GET', ['access-control-request-headers', 'x-trace, content-type']));
    expect(pre?.error).toBeUndefined();
    expect(pre?.route.key).toBe('GET:/items');
    expect(Object.fromEntries(pre!.headers)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, HEAD, PUT', // POST has no cors
      'access-control-allow-headers': 'x-trace, content-type',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Headers',
    });
  });

  it('uses the cors of the method asked for, with its configured headers (lower-case)', () => {
    const pre = preflight(routes, '/items', asked(APP, 'PUT', ['access-control-request-headers', 'x-other']));
    expect(pre?.route.key).toBe('PUT:/items');
    expect(Object.fromEntries(pre!.headers)).toMatchObject({ 'access-control-allow-headers': 'x-token, content-type', vary: 'Origin' });
    expect(Object.fromEntries(pre!.headers)['access-control-allow-credentials']).toBeUndefined();
    expect(preflight(routes, '/items', asked(APP, 'HEAD'))?.route.key).toBe('GET:/items'); // HEAD is served by GET
  });

  it('answers `*` for any origin on a wildcard route without credentials', () => {
    const pre = preflight(routes, '/open', asked('https://anyone.example', 'GET'));
    expect(Object.fromEntries(pre!.headers)['access-control-allow-origin']).toBe('*');
  });

  it('refuses an origin that is not listed, naming it', () => {
    const pre = preflight(routes, '/items', asked('https://evil.example', 'GET'));
    expect(pre?.error?.code).toBe('CORS_ORIGIN_NOT_ALLOWED');
    expect(pre?.error?.status).toBe(403);
    expect(pre?.error?.message).toBe('origin "https://evil.example" is not allowed to call /items (not in the cors origins of GET:/items)');
    expect(pre?.headers).toEqual([['vary', 'Origin']]);
  });

  it('is none of its business without Origin and Access-Control-Request-Method, or without cors on the path', () => {
    expect(preflight(routes, '/items', ['origin', APP])).toBeUndefined();
    expect(preflight(routes, '/items', ['access-control-request-method', 'GET'])).toBeUndefined();
    expect(preflight(routes, '/plain', asked(APP, 'GET'))).toBeUndefined();
    expect(preflight(routes, '/nowhere', asked(APP, 'GET'))).toBeUndefined();
  });
});

describe('corsHeaders', () => {
  const listed: CorsConfig = { origins: [APP], credentials: true };

  it('adds Allow-Origin, Allow-Credentials, Expose-Headers and Vary for an allowed origin (matched without regard to case)', () => {
    expect(Object.fromEntries(corsHeaders(listed, 'HTTPS://APP.example'))).toEqual({
      'access-control-allow-origin': 'HTTPS://APP.example',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'x-request-id, x-faas-worker, ratelimit, ratelimit-policy, retry-after',
      vary: 'Origin',
    });
  });

  it('adds only Vary for another origin or none: the answer still depends on the origin', () => {
    expect(corsHeaders(listed, 'https://evil.example')).toEqual([['vary', 'Origin']]);
    expect(corsHeaders(listed, undefined)).toEqual([['vary', 'Origin']]);
  });

  it('answers `*` with no Vary on a wildcard route', () => {
    expect(Object.fromEntries(corsHeaders({ origins: ['*'] }, 'https://x.example'))).toMatchObject({ 'access-control-allow-origin': '*' });
    expect(corsHeaders({ origins: ['*'] }, undefined)).toEqual([]);
  });
});

describe('withHead', () => {
  it('puts HEAD beside GET in Allow', () => {
    expect(withHead(['GET', 'POST'])).toEqual(['GET', 'HEAD', 'POST']);
    expect(withHead(['GET', 'HEAD'])).toEqual(['GET', 'HEAD']);
    expect(withHead(['POST'])).toEqual(['POST']);
  });
});
