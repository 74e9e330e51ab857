// The worker's side of the gateway ⇄ worker stream: a Unix socket server that reads Invoke
// frames, runs them on the instance pool (many at once, told apart by id) and writes Result
// frames back as they finish, in whatever order that is.
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { FrameType, type FunctionSpec, type InvokeMessage, type ResultMessage } from '../src/protocol/messages.js';
import type { Log } from '../src/protocol/log.js';
import type { InstancePool } from './pool.js';

export class InvokeServer {
  private server: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private socketPath = '';
  /** Inode of the socket file this server made: a different one (or none) means it was removed. */
  private inode = -1;

  constructor(private readonly pool: InstancePool, private readonly log: Log) {}

  listen(socketPath: string): Promise<void> {
    this.socketPath = socketPath;
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer((socket) => this.serve(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        fs.chmodSync(socketPath, 0o600);
        this.inode = fs.statSync(socketPath).ino;
        resolve();
      });
    });
  }

  /**
   * Listens again when the socket file is gone or is not ours any more (an operator's rm, a temp
   * cleaner): connections made before keep working, but no new one could reach this worker, so a
   * gateway that reconnects (after its own restart, or a dropped connection) would find nothing.
   */
  async keepSocketFile(): Promise<void> {
    if (!this.server) return;
    let ino: number | undefined;
    try {
      ino = fs.statSync(this.socketPath).ino;
    } catch {
      ino = undefined;
    }
    if (ino === this.inode) return;
    this.log({ level: 'warn', msg: 'socket file removed or replaced; listening on it again', socket: this.socketPath });
    this.server.close(); // stops accepting; its connections carry on
    await this.listen(this.socketPath);
  }

  close(): void {
    this.server?.close();
    for (const c of this.connections) c.destroy();
  }

  private serve(socket: net.Socket): void {
    this.connections.add(socket);
    const decoder = new FrameDecoder();
    const writer = new FrameWriter(socket);
    const specs = new Map<number, FunctionSpec>();
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.log({ level: 'error', msg: 'bad frame from gateway; closing connection', error: (err as Error).message });
        socket.destroy();
        return;
      }
      for (const { message, body } of frames) {
        if (message.t === FrameType.Invoke) this.invoke(message, body, specs, writer);
        else if (message.t === FrameType.Ping) writer.send({ t: FrameType.Pong, id: message.id });
        else if (message.t === FrameType.Warm) this.pool.keepWarm(message.specs);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.connections.delete(socket));
  }

  private invoke(msg: InvokeMessage, body: Buffer, specs: Map<number, FunctionSpec>, writer: FrameWriter): void {
    const started = performance.now();
    if (msg.spec) specs.set(msg.version, { key: msg.key, version: msg.version, config: msg.spec });
    const spec = specs.get(msg.version);
    const reply = (result: Omit<ResultMessage, 't' | 'id' | 'fnMs'>, out?: Buffer): void =>
      writer.send({ t: FrameType.Result, id: msg.id, fnMs: performance.now() - started, ...result }, out);
    if (!spec) {
      reply({ status: 502, headers: [], cold: false, error: { code: 'WORKER_PROTOCOL_ERROR', message: `worker has no config for ${msg.key} version ${msg.version}` } });
      return;
    }
    const req = { requestId: msg.requestId, method: msg.method, path: msg.path, query: msg.query, headers: msg.headers };
    const output = (stream: 'stdout' | 'stderr', text: string): void => writer.send({ t: FrameType.Output, id: msg.id, stream, text });
    this.pool.invoke(spec, req, body, output).then(
      ({ outcome, cold }) => {
        // The instance's CPU and peak memory during the call (call-usage.ts), when its cgroup has them; absent otherwise.
        const u = outcome.usage;
        if (outcome.ok) reply({ status: outcome.status, headers: outcome.headers, cold, ...u }, outcome.body);
        else reply({ status: 0, headers: [], cold, error: { code: outcome.code, message: outcome.message }, ...u });
      },
      (err: unknown) => reply({ status: 0, headers: [], cold: false, error: { code: 'FUNCTION_UNAVAILABLE', message: String(err) } }),
    );
  }
}
