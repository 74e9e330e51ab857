// The --cluster-redis URL (rate-limit-redis.ts): its rule, checked at start (config.ts), and the
// form that may be shown — logs, /readyz and config errors never show a password.

const RULE = 'redis://[[user]:password@]host[:port][/db], rediss://… (the same, over TLS) or unix:///path/to/redis.sock';

/** The URL if it is one ioredis can be pointed at as rate-limit-redis.ts does, else what is wrong. */
export function parseRedisUrl(raw: string): { value: string } | { error: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { error: `must be a Redis URL: ${RULE}` };
  }
  if (u.search !== '' || u.hash !== '') return { error: `must be a Redis URL without ?query or #fragment: ${RULE}` };
  if (u.protocol === 'unix:') {
    if (u.host !== '' || u.username !== '' || u.password !== '' || u.pathname.length < 2 || u.pathname.endsWith('/')) {
      return { error: `must name a socket file by its absolute path, unix:///path/to/redis.sock, with no host or password (the file's mode guards it)` };
    }
    return { value: raw };
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return { error: `must be a Redis URL (scheme redis, rediss or unix): ${RULE}` };
  if (u.hostname === '') return { error: `must name a host: ${RULE}` };
  if (u.port === '0') return { error: `must have a port between 1 and 65535: ${RULE}` };
  if (!/^(\/(\d{1,5})?)?$/.test(u.pathname)) return { error: `must end with an optional database number, /0 to /99999: ${RULE}` };
  return { value: raw };
}

/** The URL with its password (if any) replaced by ***. */
export function redactRedisUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password === '') return raw;
    u.password = '***';
    return u.toString();
  } catch {
    return raw.replace(/:[^:@/]*@/, ':***@');
  }
}
