// Stage: the route for METHOD:path (HEAD falls back to GET), a CORS preflight answered without a
// function, or 405 / 404. Sets the route, the client's address and the route's CORS headers.
import { GatewayError } from '../../errors.js';
import { corsHeaders, headerOf, preflight, withHead } from '../cors.js';
import { answerPreflight } from '../end-answer.js';
import { forward } from '../forwarded.js';
import type { Call } from './call.js';

export function findRoute(c: Call): boolean {
  const key = `${c.method}:${c.path}`;
  const table = c.deps.routes();
  c.table = table;
  const route = table.get(key) ?? (c.head ? table.get(`GET:${c.path}`) : undefined);
  if (route) {
    c.route = route;
    c.routeKey = route.key;
    c.clientIp = forward(c.headers, c.res.getRemoteAddress(), c.deps.trustedProxies);
    if (route.config.cors) c.cors = corsHeaders(route.config.cors, headerOf(c.headers, 'origin'));
    return true;
  }
  const pre = c.method === 'OPTIONS' ? preflight(table, c.path, c.headers) : undefined;
  if (pre) {
    c.routeKey = pre.route.key;
    if (pre.error) c.refuseEarly(pre.error, pre.headers);
    else {
      answerPreflight(c.res, pre.headers, c.requestId, c.deps.serverHeader); // no function is called
      c.observe(204);
    }
    return false;
  }
  const allowed = withHead(table.allowedMethods(c.path));
  if (allowed.length > 0) {
    c.fail(new GatewayError('METHOD_NOT_ALLOWED', `${c.path} has no function for ${c.method}; it has ${allowed.join(', ')}`), [['allow', allowed.join(', ')]]);
  } else {
    const building = c.deps.building?.(key);
    c.fail(building === undefined ? new GatewayError('ROUTE_NOT_FOUND', `no function is mapped to ${key}`)
      : new GatewayError('FUNCTION_BUILDING', `${key} is being built (${building}); it is served once the build ends`));
  }
  return false;
}
