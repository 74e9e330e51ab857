// The public HTTP server. Each request is a Call (pipeline/call.ts) that goes through the stages
// below in the order it meets them; a stage either passes it on (true) or has answered it
// (false). A new stage is one file in pipeline/ and one line here. The only module besides
// admin.ts that touches uWebSockets.js, and its rules (STYLE.md) live in pipeline/call.ts.
import { performance } from 'node:perf_hooks';
import { admit } from './pipeline/admit.js';
import { authorize } from './pipeline/authorize.js';
import { receive } from './pipeline/body.js';
import { Call, type InFlight, type ServerDeps } from './pipeline/call.js';
import { count } from './pipeline/count.js';
import { findRoute } from './pipeline/find-route.js';
import { rateLimit } from './pipeline/limit.js';
import { statusUrl } from './pipeline/status-url.js';
import { uws, type TemplatedApp } from './uws.js';

export type { ServerDeps } from './pipeline/call.js';

type Stage = (c: Call) => boolean;

const PIPELINE: readonly Stage[] = [
  admit, //      draining, --max-connections, framing, header size
  statusUrl, //  an async invocation's status URL
  findRoute, //  the route, a CORS preflight, or 405 / 404
  authorize, //  "auth": "api-key"
  rateLimit, //  rate_limit, here or in Redis
  count, //      --max-in-flight, the declared body's size
  receive, //    the body, then the call and its answer (invoke.ts)
];

/** How often bodies being read are checked against --body-timeout-ms. */
const BODY_SWEEP_MS = 250;

export function createServer(deps: ServerDeps): TemplatedApp {
  const app = uws().App();
  const calls: InFlight = { inFlight: 0, reading: new Set() };
  setInterval(() => {
    const now = performance.now();
    for (const r of calls.reading) {
      if (r.deadline > now) continue;
      calls.reading.delete(r);
      r.expire();
    }
  }, BODY_SWEEP_MS).unref();
  app.any('/*', (res, req) => {
    try {
      const c = new Call(deps, calls, res, req);
      for (const stage of PIPELINE) if (!stage(c)) return;
    } catch (err) {
      // A bug here must not take the process down: uWS would abort on an unanswered request.
      deps.log({ level: 'error', msg: 'request handler failed', error: err instanceof Error ? err.stack : String(err) });
      try {
        res.cork(() => res.writeStatus('500 Internal Server Error').end('', true));
      } catch {
        /* already answered or aborted */
      }
    }
  });
  return app;
}
