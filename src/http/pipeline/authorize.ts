// Stage: a route with "auth": "api-key" needs a key the gateway knows (api-keys.ts), sent as
// x-api-key or Authorization: Bearer. The key is the gateway's business: the function never sees
// it (it may log what it gets).
import { GatewayError } from '../../errors.js';
import { removeHeader, type Call } from './call.js';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export function authorize(c: Call): boolean {
  const route = c.route!;
  if (route.config.auth !== 'api-key') return true;
  const bearer = c.authorization !== undefined ? BEARER.exec(c.authorization)?.[1] : undefined;
  const presented = c.apiKey ?? bearer;
  if (presented === undefined) {
    c.refuseEarly(new GatewayError('API_KEY_MISSING', `${route.key} needs an API key: send x-api-key or Authorization: Bearer`), [['www-authenticate', 'Bearer realm="faas"']]);
    return false;
  }
  const name = c.table!.keys.check(presented);
  if (name === undefined) {
    c.refuseEarly(new GatewayError('API_KEY_INVALID', 'the API key is not valid (unknown or revoked)'), [['www-authenticate', 'Bearer realm="faas", error="invalid_token"']]);
    return false;
  }
  removeHeader(c.headers, c.apiKey !== undefined ? 'x-api-key' : 'authorization');
  c.client = `key ${name}`;
  return true;
}
