// The frame channel of a sandbox that connects to the worker, rather than inheriting fd 3: a
// container (container-runner.ts) or a child of the python zygote (python-zygote.ts). The worker
// listens on a socket in a folder only the sandbox user can enter; the first connection is the
// channel, and the socket is closed so nobody else can connect.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';

export interface ChannelSocket {
  /** The socket's path on the host. */
  readonly path: string;
  /** The sandbox's connection, once it has made it. */
  readonly channel: Promise<Duplex>;
  /** Stops listening (the promise rejects if nobody connected). */
  close(): void;
}

/** Listens at DIR/channel.sock, made DIR owned by and only reachable for `uid`; listening when this returns. */
export function listenForChannel(dir: string, uid: number): ChannelSocket {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chownSync(dir, uid, uid);
  const socketPath = path.join(dir, 'channel.sock');
  const server = net.createServer();
  server.listen(socketPath); // a Unix socket binds synchronously: the file exists now
  fs.chmodSync(socketPath, 0o600);
  fs.chownSync(socketPath, uid, uid);
  const channel = new Promise<Duplex>((resolve, reject) => {
    server.once('connection', (socket) => {
      server.close(); // one connection, from this sandbox's host; nobody else's
      resolve(socket);
    });
    server.once('error', reject);
    server.once('close', () => reject(new Error('the sandbox never connected')));
  });
  channel.catch(() => {});
  return { path: socketPath, channel, close: () => server.close() };
}
