// The worker's side of the gateway ⇄ worker stream: a Unix socket server that reads Invoke
// frames, runs them on the instance pool (many at once, told apart by id) and writes Result
// frames back as they finish, in whatever order that is. A streamed answer is a Result with
// `stream`, Chunk frames as the function produces them and an End; the gateway's Acks and
// Cancel pass through to the instance. A streamed request body comes the other way the same way.
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { FrameType, type FunctionSpec, type InvokeMessage, type ResultMessage } from '../src/protocol/messages.js';
import type { Log } from '../src/protocol/log.js';
import type { InstancePool } from './pool.js';
import { BodyStream } from '../src/protocol/body-stream.js';
import type { AnswerStream } from './call.js';

/** What one gateway connection has streaming, by call id. */
interface Streams {
  /** Answers being streamed to the gateway. */
  readonly answers: Map<number, AnswerStream>;
  /** Request bodies being streamed from the gateway. */
  readonly bodies: Map<number, BodyStream>;
}

/** A request body needs no flow control: the gateway caps it (--max-body-bytes) before it is sent. */
const NO_FLOW = { ack: () => {}, cancel: () => {} };

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
    const streams: Streams = { answers: new Map(), bodies: new Map() };
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
        switch (message.t) {
          case FrameType.Invoke: this.invoke(message, body, specs, writer, streams); break;
          case FrameType.Chunk: streams.bodies.get(message.id)?.push(body); break;
          case FrameType.End:
            streams.bodies.get(message.id)?.end(message.error); // an error: the client went mid-body
            streams.bodies.delete(message.id);
            break;
          case FrameType.Ack: streams.answers.get(message.id)?.ack(message.bytes); break;
          case FrameType.Cancel: streams.answers.get(message.id)?.cancel(); break;
          case FrameType.Ping: writer.send({ t: FrameType.Pong, id: message.id }); break;
          case FrameType.Warm: this.pool.keepWarm(message.specs); break;
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.connections.delete(socket);
      // Nobody is left to read what is streaming: the functions stop, the bodies end short.
      for (const answer of streams.answers.values()) answer.cancel();
      for (const bodyIn of streams.bodies.values()) bodyIn.end({ code: 'WORKER_PROTOCOL_ERROR', message: 'the gateway closed the connection' });
    });
  }

  private invoke(msg: InvokeMessage, body: Buffer, specs: Map<number, FunctionSpec>, writer: FrameWriter, streams: Streams): void {
    const started = performance.now();
    if (msg.spec) specs.set(msg.version, { key: msg.key, version: msg.version, config: msg.spec });
    const spec = specs.get(msg.version);
    const reply = (result: Omit<ResultMessage, 't' | 'id' | 'fnMs'>, out?: Buffer): void =>
      writer.send({ t: FrameType.Result, id: msg.id, fnMs: performance.now() - started, ...result }, out);
    if (!spec) {
      reply({ status: 502, headers: [], cold: false, error: { code: 'WORKER_PROTOCOL_ERROR', message: `worker has no config for ${msg.key} version ${msg.version}` } });
      return;
    }
    const req = { requestId: msg.requestId, method: msg.method, path: msg.path, query: msg.query, headers: msg.headers,
      ...(msg.clientIp !== undefined && { clientIp: msg.clientIp }) };
    const output = (stream: 'stdout' | 'stderr', text: string): void => writer.send({ t: FrameType.Output, id: msg.id, stream, text });
    let bodyIn: BodyStream | undefined;
    if (msg.bodyStream) {
      bodyIn = new BodyStream(NO_FLOW);
      streams.bodies.set(msg.id, bodyIn);
    }
    const { id } = msg;
    this.pool.invoke(spec, req, body, output, bodyIn).then(
      ({ outcome, cold }) => {
        if (!outcome.ok || !outcome.stream) streams.bodies.delete(id); // a body the call did not read to the end
        // The instance's CPU and peak memory during the call (call-usage.ts), when its cgroup has them; absent otherwise.
        const u = outcome.usage;
        if (!outcome.ok) reply({ status: 0, headers: [], cold, error: { code: outcome.code, message: outcome.message }, ...u });
        else if (!outcome.stream) reply({ status: outcome.status, headers: outcome.headers, cold, ...u }, outcome.body);
        else {
          reply({ status: outcome.status, headers: outcome.headers, cold, stream: true });
          const answer = outcome.stream;
          streams.answers.set(id, answer);
          answer.consume({
            chunk: (bytes) => writer.send({ t: FrameType.Chunk, id }, bytes),
            end: (error, usage) => {
              streams.answers.delete(id);
              streams.bodies.delete(id);
              writer.send({ t: FrameType.End, id, fnMs: performance.now() - started, ...(error && { error }), ...usage });
            },
          });
        }
      },
      (err: unknown) => {
        streams.bodies.delete(id);
        reply({ status: 0, headers: [], cold: false, error: { code: 'FUNCTION_UNAVAILABLE', message: String(err) } });
      },
    );
  }
}
