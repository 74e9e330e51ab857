// The gateway's end of one worker's stream socket. Every call in flight sits in a Map keyed
// by frame id; when the connection drops, each of them is rejected at once with WORKER_DIED
// (piscina's _onError does the same for its tasks). A streamed answer resolves its call at its
// head and stays in the map, fed by Chunk frames, until its End (or the connection's end, or
// its deadline) ends the stream.
import { BodyStream, type GatewayStream, type StreamedBody } from '../protocol/body-stream.js';
import net from 'node:net';
import { GatewayError } from '../errors.js';
import { FrameDecoder, FrameWriter } from '../protocol/frames.js';
import { FrameType, type EndMessage, type FunctionSpec, type ResultMessage } from '../protocol/messages.js';


export interface CallReply {
  readonly result: ResultMessage;
  /** Empty when the answer is streamed. */
  readonly body: Buffer;
  readonly stream?: GatewayStream;
}


/** What a function printed during a call, tagged with the call. */
export interface FunctionOutput {
  readonly workerId: string;
  readonly key: string;
  readonly requestId: string;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

interface Pending {
  readonly key: string;
  readonly requestId: string;
  readonly resolve: (reply: CallReply) => void;
  readonly reject: (err: GatewayError) => void;
  /** Date.now() past which the call is failed with FUNCTION_TIMEOUT, and the limit it stands for. */
  readonly deadline: number;
  readonly limitMs: number;
  /** Set once the answer streams: the call stays here until the stream ends. */
  stream?: GatewayStream;
}

/** How often calls past their deadline are looked for: the deadline is a backstop seconds past the worker's own timeout, so one timer per connection instead of one per call. */
const SWEEP_MS = 500;
/** A connected worker is pinged this often; any frame from it counts as an answer. */
export const PING_EVERY_MS = 1000;
/** A worker silent this long on its stream (no pong, no result) is hung: its calls fail and the fleet kills it. */
export const HUNG_AFTER_MS = 10_000;

export class WorkerConnection {
  private readonly socket: net.Socket;
  private readonly writer: FrameWriter;
  private readonly pending = new Map<number, Pending>();
  /** Function versions this connection has already sent the config of. */
  private readonly sentVersions = new Set<number>();
  private nextId = 1;
  private readonly sweeper: NodeJS.Timeout;
  /** Date.now() of the last frame from the worker (or of connecting). */
  private lastHeard = Date.now();
  private lastPing = 0;
  connected = false;
  closed = false;

  constructor(
    readonly workerId: string,
    socketPath: string,
    /** `hung`: the worker stopped answering pings (it should be killed), rather than the connection dropping. */
    private readonly onClose: (conn: WorkerConnection, reason: string, hung: boolean) => void,
    /** What the worker should keep warm: sent once connected. */
    warmSpecs: readonly FunctionSpec[] = [],
    private readonly onOutput: (output: FunctionOutput) => void = () => {},
  ) {
    this.socket = net.createConnection(socketPath);
    this.writer = new FrameWriter(this.socket);
    const decoder = new FrameDecoder();
    this.socket.on('connect', () => {
      this.connected = true;
      this.lastHeard = Date.now();
    });
    if (warmSpecs.length > 0) this.keepWarm(warmSpecs); // queued until connected
    this.socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.fail('WORKER_PROTOCOL_ERROR', `worker ${workerId} sent an unreadable frame: ${(err as Error).message}`);
        return;
      }
      this.lastHeard = Date.now();
      for (const { message, body } of frames) {
        if (message.t === FrameType.Output) {
          const call = this.pending.get(message.id);
          // Output of a call already failed here (timed out) still belongs to the log; untagged.
          this.onOutput({ workerId, key: call?.key ?? '', requestId: call?.requestId ?? '', stream: message.stream, text: message.text });
          continue;
        }
        if (message.t === FrameType.Chunk) {
          this.pending.get(message.id)?.stream?.push(body);
          continue;
        }
        if (message.t === FrameType.End) {
          const call = this.pending.get(message.id);
          if (!call?.stream) continue;
          this.pending.delete(message.id);
          call.stream.end(message.error, message);
          continue;
        }
        if (message.t !== FrameType.Result) continue;
        const call = this.pending.get(message.id);
        if (!call || call.stream) continue;
        if (message.stream && !message.error) {
          const { id } = message;
          const stream = new BodyStream<EndMessage>({
            ack: (bytes) => this.writer.send({ t: FrameType.Ack, id, bytes }),
            // The worker stops the function; nothing it still sends is wanted here.
            cancel: () => {
              this.pending.delete(id);
              this.writer.send({ t: FrameType.Cancel, id });
              stream.end({ code: 'FUNCTION_ERROR', message: 'the client went away' });
            },
          });
          call.stream = stream;
          call.resolve({ result: message, body, stream: call.stream });
          continue;
        }
        this.pending.delete(message.id);
        call.resolve({ result: message, body });
      }
    });
    this.sweeper = setInterval(() => this.tick(Date.now()), SWEEP_MS);
    this.sweeper.unref();
    this.socket.on('error', (err) => this.fail('WORKER_DIED', `connection to worker ${workerId} failed: ${err.message}`));
    this.socket.on('close', () => this.fail('WORKER_DIED', `worker ${workerId} closed its connection mid-request`));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends a call; fails it with FUNCTION_TIMEOUT if no answer comes within limitMs (give or take
   * SWEEP_MS); a streamed answer still going then is cut. With `bodyIn`, the request body follows
   * the call in Chunk frames as the client sends it (`body` is then empty).
   */
  invoke(spec: FunctionSpec, requestId: string, method: string, path: string, query: string, headers: string[], body: Buffer,
    limitMs: number, bodyIn?: StreamedBody, clientIp?: string): Promise<CallReply> {
    if (this.closed) return Promise.reject(new GatewayError('WORKER_DIED', `worker ${this.workerId} is gone`, this.workerId));
    const id = this.nextId++;
    const first = !this.sentVersions.has(spec.version);
    if (first) this.sentVersions.add(spec.version);
    return new Promise<CallReply>((resolve, reject) => {
      this.pending.set(id, { key: spec.key, requestId, resolve, reject, deadline: Date.now() + limitMs, limitMs });
      this.writer.send({
        t: FrameType.Invoke, id, key: spec.key, version: spec.version,
        ...(first ? { spec: spec.config } : {}),
        requestId, method, path, query, headers, ...(bodyIn && { bodyStream: true as const }), ...(clientIp !== undefined && { clientIp }),
      }, body);
      bodyIn?.replay({
        chunk: (bytes) => {
          if (this.pending.has(id)) this.writer.send({ t: FrameType.Chunk, id }, bytes);
        },
        end: (failure) => {
          if (this.pending.has(id)) this.writer.send({ t: FrameType.End, id, ...(failure && { error: failure }) });
        },
      });
    });
  }

  /** The functions this worker should keep instances of (WarmMessage). */
  keepWarm(specs: readonly FunctionSpec[]): void {
    if (this.closed) return;
    this.writer.send({ t: FrameType.Warm, id: 0, specs: specs.map(({ key, version, config }) => ({ key, version, config })) });
  }

  close(): void {
    this.fail('WORKER_DIED', `worker ${this.workerId} connection closed by the gateway`);
  }

  /** Fails overdue calls; pings the worker, and gives up on it once it has been silent HUNG_AFTER_MS. */
  private tick(now: number): void {
    this.expire(now);
    if (!this.connected || this.closed) return;
    if (now - this.lastHeard >= HUNG_AFTER_MS) {
      this.fail('WORKER_DIED', `worker ${this.workerId} answered no health ping for ${Math.round((now - this.lastHeard) / 1000)} s (hung); it is being replaced`, true);
      return;
    }
    if (now - this.lastPing >= PING_EVERY_MS) {
      this.lastPing = now;
      this.writer.send({ t: FrameType.Ping, id: 0 });
    }
  }

  private expire(now: number): void {
    for (const [id, call] of this.pending) {
      if (call.deadline > now) continue;
      this.pending.delete(id);
      const message = `worker ${this.workerId} did not answer within ${call.limitMs} ms`;
      if (call.stream) {
        this.writer.send({ t: FrameType.Cancel, id });
        call.stream.end({ code: 'FUNCTION_TIMEOUT', message });
      } else call.reject(new GatewayError('FUNCTION_TIMEOUT', message, this.workerId));
    }
  }

  private fail(code: 'WORKER_DIED' | 'WORKER_PROTOCOL_ERROR', message: string, hung = false): void {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    clearInterval(this.sweeper);
    this.socket.destroy();
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) {
      // A streamed answer's status is long gone: it can only be cut short.
      if (call.stream) call.stream.end({ code: 'FUNCTION_CRASHED', message });
      else call.reject(new GatewayError(code, message, this.workerId));
    }
    this.onClose(this, message, hung);
  }
}
