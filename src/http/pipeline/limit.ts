// Stage: a route with rate_limit takes a token for its client (the API key's name, else the
// address): from this gateway's buckets (rate-limit.ts) at once, or with --cluster-redis from
// Redis (rate-limit-redis.ts), whose verdict the call waits for before it runs (invoke.ts) while
// its body is read.
import { GatewayError } from '../../errors.js';
import type { Limit } from '../rate-limit.js';
import type { Call } from './call.js';

export function rateLimit(c: Call): boolean {
  const route = c.route!;
  const limit = route.config.rateLimit;
  if (!limit) return true;
  const client = c.client ?? `ip ${c.clientIp}`;
  if (c.deps.clusterLimiter) {
    c.allowedLater = c.deps.clusterLimiter.take(route.key, client, limit).then((verdict) => {
      if (verdict.allowed) c.limitHeaders = verdict.headers;
      else c.fail(overLimit(route.key, limit), verdict.headers); // nothing if the client went; a body is read and dropped
      return verdict.allowed;
    });
    return true;
  }
  const verdict = c.deps.limiter.take(route.key, client, limit);
  if (!verdict.allowed) {
    c.refuseEarly(overLimit(route.key, limit), verdict.headers);
    return false;
  }
  c.limitHeaders = verdict.headers;
  return true;
}

function overLimit(key: string, limit: Limit): GatewayError {
  return new GatewayError('RATE_LIMITED', `over the rate limit of ${key} (${limit.rps}/s, burst ${limit.burst})`);
}
