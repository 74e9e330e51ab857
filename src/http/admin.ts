// The admin API (CONTRACT §5), on its own loopback port: health, readiness, Prometheus
// metrics, and the fleet and route tables as JSON.
import { uws, type HttpResponse, type TemplatedApp } from './uws.js';

export interface AdminDeps {
  /** { ready, ...details } — 503 when not ready. */
  readonly readiness: () => { ready: boolean } & Record<string, unknown>;
  readonly metrics: () => string;
  readonly workers: () => unknown;
  readonly routes: () => unknown;
}

export function createAdminServer(deps: AdminDeps): TemplatedApp {
  const app = uws().App();
  app.get('/healthz', (res) => json(res, 200, { status: 'ok' }));
  app.get('/readyz', (res) => {
    const r = deps.readiness();
    json(res, r.ready ? 200 : 503, r);
  });
  app.get('/metrics', (res) => {
    const body = deps.metrics();
    res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8').end(body));
  });
  app.get('/workers', (res) => json(res, 200, deps.workers()));
  app.get('/routes', (res) => json(res, 200, deps.routes()));
  app.any('/*', (res, req) => json(res, 404, { statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found',
    message: `the admin API has no ${req.getMethod().toUpperCase()} ${req.getUrl()}; try GET /healthz, /readyz, /metrics, /workers, /routes` }));
  return app;
}

function json(res: HttpResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.cork(() => res.writeStatus(status === 200 ? '200 OK' : status === 404 ? '404 Not Found' : '503 Service Unavailable')
    .writeHeader('content-type', 'application/json').end(text));
}
