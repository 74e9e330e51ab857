// A real redis-server (Debian's, /usr/bin/redis-server) for the cluster rate-limit tests: one per
// test file, on a Unix socket in a temp dir (no port to race for), no persistence. It can be
// killed, paused (SIGSTOP: a Redis that hangs) and started again on the same socket.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REDIS_SERVER = '/usr/bin/redis-server';
/** Why the suites that need Redis are skipped, or undefined when it is installed. */
export const NO_REDIS = fs.existsSync(REDIS_SERVER) ? undefined : `${REDIS_SERVER} is not installed (apt-get install redis-server)`;

export interface RedisServer {
  /** unix:///…/redis.sock, or redis://… when started on a port. */
  readonly url: string;
  /** Starts it again (same socket or port) after kill(); nothing if it runs. */
  start(): Promise<void>;
  /** SIGKILL, as a crash: waits until it has exited. */
  kill(): Promise<void>;
  pause(): void;
  resume(): void;
  /** Kills it and removes its folder. */
  stop(): Promise<void>;
}

export async function startRedis(opts: { port?: number; password?: string } = {}): Promise<RedisServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-redis-'));
  const socket = path.join(dir, 'redis.sock');
  const args = ['--port', String(opts.port ?? 0), '--bind', '127.0.0.1', '--unixsocket', socket, '--unixsocketperm', '700',
    '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.password ? ['--requirepass', opts.password] : [])];
  let proc: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    if (proc && proc.exitCode === null && proc.signalCode === null) return; // running
    fs.rmSync(socket, { force: true });
    const p = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 5000;
    while (!(await answers(socket))) {
      if (p.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: opts.port ? `redis://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${opts.port}` : `unix://${socket}`,
    start,
    kill,
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    stop: async () => {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port free now (the kernel's pick, released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Whether something on the socket answers PING (with PONG, or NOAUTH when it wants a password). */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.createConnection(socket);
    c.once('error', () => resolve(false));
    c.once('data', (d) => {
      c.destroy();
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    c.once('connect', () => c.write('PING\r\n'));
  });
}
