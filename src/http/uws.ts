// Loads the uWebSockets.js native binary, and nothing else. The package silently falls back
// to a slow pure-JS server when its binary does not load; we refuse that and fail loudly.
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type * as Uws from 'uWebSockets.js';

const require = createRequire(import.meta.url);

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';

let loaded: typeof Uws | undefined;

export function uws(): typeof Uws {
  if (loaded) return loaded;
  const pkgDir = path.dirname(require.resolve('uWebSockets.js/package.json'));
  const name = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const binary = path.join(pkgDir, 'binaries', name);
  try {
    loaded = require(binary) as typeof Uws;
  } catch (err) {
    throw new Error(
      `uWebSockets.js: the native binary ${name} did not load (${(err as Error).message.split('\n')[0]}). ` +
        `The installed package ships binaries for Node 20 (ABI 115) on linux x64/arm64; this is Node ${process.version} ` +
        `(ABI ${process.versions.modules}) on ${process.platform}/${process.arch}. Run Node 20 and reinstall with npm install. ` +
        `The package's pure-JS fallback is deliberately not used.`,
    );
  }
  if (typeof loaded.us_listen_socket_close !== 'function' || typeof loaded.App !== 'function') {
    throw new Error(`uWebSockets.js: ${binary} loaded but does not export App/us_listen_socket_close; not a uWS binary`);
  }
  // uWS writes `uWebSockets: 20` on every answer unless its loop is silent (Date stays): answers
  // say who sent them with the gateway's own Server header (--server-header) instead.
  loaded._cfg('silent');
  return loaded;
}

/**
 * Listens and resolves with the bound port (port 0 picks a free one). uWS binds with
 * SO_REUSEPORT, so a second gateway on the same port would silently take half the traffic
 * (PERF.md); a plain bind first makes a taken port an error.
 */
export async function listen(app: Uws.TemplatedApp, host: string, port: number): Promise<{ socket: Uws.us_listen_socket; port: number }> {
  const u = uws();
  if (port !== 0) await assertPortFree(host, port);
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (!socket) reject(new Error(`could not listen on ${host}:${port} (in use, or not permitted)`));
      else resolve({ socket, port: u.us_socket_local_port(socket as unknown as Uws.us_socket) });
    });
  });
}

function assertPortFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`port ${host}:${port} is not free (${err.code ?? err.message}); choose another with --port/--admin-port or 0 for any`)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
