// Who may use the admin port (README "API", *Who may use it*). Three checks, in this order, on
// what a request says before anything else is read:
//
//   1. Without a token (the default: the port listens on loopback only), the Host header must be
//      a loopback name. A web page can make a browser send requests to 127.0.0.1 — and with DNS
//      rebinding (attacker.example resolving to 127.0.0.1) even read the answers as same-origin —
//      but only under its own name, which this refuses (what Vite's and Jupyter's allowed hosts do).
//   2. With --admin-token-file, every request but GET / (the dashboard's page, which holds no
//      data and asks for the token) and /healthz must carry `Authorization: Bearer TOKEN`,
//      checked in constant time (src/admin-token.ts). No cookie is ever set or read, so a page of
//      another origin has nothing a browser would add for it: no CSRF.
//   3. A request that changes something (any method but GET and HEAD) from a browser page of
//      another origin is refused by its `Origin` (or `Sec-Fetch-Site`), even with a token:
//      defence in depth. A same-origin page, curl and the faas commands send no foreign origin.
import type { TokenCheck } from '../admin-token.js';
import type { ErrorCode } from '../errors.js';
import type { HttpRequest } from './uws.js';

export interface AdminAccess {
  /** The token every request needs (but GET / and /healthz); undefined: none, and loopback names only. */
  readonly token?: TokenCheck;
}

export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Paths that need no token: the dashboard page asks for it, and a liveness probe says nothing. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/', '/healthz']);
const LOOPBACK_NAME = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;
const BEARER = /^Bearer +(\S+) *$/i;
const REALM = 'Bearer realm="faas-admin"';

/** Why the request may not be served, or undefined. Reads `req` synchronously, as uWS requires. */
export function refuseAccess(req: HttpRequest, access: AdminAccess): Refusal | undefined {
  const method = req.getMethod().toUpperCase();
  const path = req.getUrl();
  const host = req.getHeader('host');
  if (access.token === undefined) {
    if (path !== '/healthz' && host !== '' && !LOOPBACK_NAME.test(host)) {
      return {
        code: 'ADMIN_HOST_NOT_ALLOWED', headers: [],
        message: `the admin API answers only to loopback names (localhost, 127.0.0.1, [::1]) while it has no token, not ${JSON.stringify(host)}: ` +
          'use http://127.0.0.1:PORT, or start the gateway with --admin-token-file',
      };
    }
  } else if (!(OPEN_PATHS.has(path) && (method === 'GET' || method === 'HEAD'))) {
    const authorization = req.getHeader('authorization');
    const presented = BEARER.exec(authorization)?.[1];
    if (authorization === '' || presented === undefined) {
      return {
        code: 'ADMIN_TOKEN_MISSING', headers: [['www-authenticate', REALM]],
        message: 'the admin API needs its token: send Authorization: Bearer TOKEN (the token in the gateway\'s --admin-token-file)',
      };
    }
    if (!access.token.matches(presented)) {
      return {
        code: 'ADMIN_TOKEN_INVALID', headers: [['www-authenticate', `${REALM}, error="invalid_token"`]],
        message: 'the bearer token is not the admin API\'s (the one in the gateway\'s --admin-token-file)',
      };
    }
  }
  if (method !== 'GET' && method !== 'HEAD') return refuseForeignOrigin(req, host);
  return undefined;
}

/** A browser page of another origin asking for a change: its Origin names another host, or Sec-Fetch-Site says cross-site. */
function refuseForeignOrigin(req: HttpRequest, host: string): Refusal | undefined {
  const origin = req.getHeader('origin');
  const site = req.getHeader('sec-fetch-site');
  let foreign = site !== '' && site !== 'same-origin' && site !== 'none';
  if (origin !== '') {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined; // "null" (a sandboxed frame, a file:// page) or garbage
    }
    if (originHost === undefined || originHost.toLowerCase() !== host.toLowerCase()) foreign = true;
  }
  if (!foreign) return undefined;
  return {
    code: 'ADMIN_ORIGIN_NOT_ALLOWED', headers: [],
    message: `a page of another origin (${origin === '' ? `Sec-Fetch-Site: ${site}` : `Origin: ${origin}`}) may not change anything through the admin API at ${host || 'this host'}`,
  };
}
