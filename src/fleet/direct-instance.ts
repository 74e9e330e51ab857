// The gateway's end of one instance its worker lent it (the direct data path, src/protocol/
// direct.ts): calls go over the instance's own socket, in its runtime host's frames
// (instance-frames.ts), and come back as the worker's would (a CallReply), so that the fleet
// answers both paths alike. What the worker did for such calls is done here: the timeout_ms
// timer (a timed-out call is answered 504 and its instance reported stuck, to be replaced), the
// answer-size limit, the streamed answer's flow control, the function's output. The worker
// keeps everything else, and is told off the hot path what it needs (Fleet: release, timeout, used).
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors.js';
import { BodyStream, type GatewayStream, type StreamedBody } from '../protocol/body-stream.js';
import { BatchWriter } from '../protocol/frames.js';
import { encodeInstanceFrame, InstanceFrameDecoder, type DirectUsage, type HostInvoke, type HostMessage } from '../protocol/instance-frames.js';
import { FrameType, oversizedAnswer, type EndMessage, type FunctionSpec, type ResultMessage, type WorkerErrorCode } from '../protocol/messages.js';
import type { CallReply, FunctionOutput } from './worker-connection.js';

/** What the fleet hears from a direct instance. */
export interface DirectEvents {
  /** The gateway is done with the instance (revoked and idle, or its socket closed): give the lease back. */
  release(d: DirectInstance): void;
  /** A call ran past its timeout_ms (or the host broke the protocol): the worker replaces the instance. */
  stuck(d: DirectInstance): void;
  output(o: FunctionOutput): void;
}

interface DirectCall {
  readonly requestId: string;
  readonly started: number;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout;
  /** Until the head of the answer: how the call's promise settles. */
  resolve: ((reply: CallReply) => void) | undefined;
  reject: ((err: GatewayError) => void) | undefined;
  stream?: GatewayStream;
  /** Answered; its ctx.waitUntil work still runs (a `done` frame ends it). It holds the lease, not a slot. */
  background?: true;
}

/** How long calls on a closed socket wait for the worker to say why the instance exited before they are answered without it. */
const GONE_WAIT_MS = 250;
const EMPTY = Buffer.alloc(0);

export class DirectInstance {
  /** Calls waiting for their answer or streaming it: what the slots bound. */
  busy = 0;
  /** No new calls: the worker asked for the lease back, a call timed out, or the socket closed. */
  revoked = false;
  private closed = false;
  private released = false;
  /** Ran a call since the fleet last asked (the worker's idle reaper hears of it once a second). */
  used = false;
  private readonly calls = new Map<number, DirectCall>();
  private nextId = 1;
  private readonly out: BatchWriter;
  private goneTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly workerId: string,
    readonly name: string,
    readonly key: string,
    readonly version: number,
    /** Calls the worker lets the gateway run on the instance at once. */
    public slots: number,
    private readonly socket: Socket,
    private readonly events: DirectEvents,
  ) {
    this.out = new BatchWriter(socket);
    const decoder = new InstanceFrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.events.stuck(this);
        this.broken(`the instance sent an unreadable frame: ${(err as Error).message}`);
        return;
      }
      for (const { meta, body } of frames) {
        const wrong = malformed(meta);
        if (wrong) {
          this.events.stuck(this);
          this.broken(`the instance sent a malformed ${JSON.stringify(String((meta as { t?: unknown }).t))} frame: ${wrong}`);
          return;
        }
        this.onMessage(meta, body);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.broken("the function's process closed its connection"));
  }

  /** Takes calls: leased, not revoked, connected. */
  get open(): boolean {
    return !this.revoked && !this.closed;
  }

  get full(): boolean {
    return this.busy >= this.slots;
  }

  /** No call on it, ctx.waitUntil work included. */
  get idle(): boolean {
    return this.calls.size === 0;
  }

  invoke(spec: FunctionSpec, requestId: string, method: string, path: string, query: string, headers: string[], body: Buffer,
    bodyIn?: StreamedBody, clientIp?: string): Promise<CallReply> {
    const id = this.nextId++;
    const { timeoutMs, event } = spec.config;
    this.busy++;
    this.used = true;
    return new Promise<CallReply>((resolve, reject) => {
      const call: DirectCall = { requestId, started: performance.now(), timeoutMs, resolve, reject, timer: setTimeout(() => this.timedOut(id, timeoutMs), timeoutMs) };
      this.calls.set(id, call);
      const frame: HostInvoke = { t: 'invoke', id, requestId, method, path, query, headers, deadlineMs: Date.now() + timeoutMs,
        ...(clientIp !== undefined && { clientIp }), ...(event === 'v2' && { event: 'v2' as const }), ...(bodyIn && { bodyStream: true as const }) };
      this.out.write(...encodeInstanceFrame(frame, body));
      bodyIn?.replay({
        chunk: (bytes) => {
          if (this.calls.has(id)) this.out.write(...encodeInstanceFrame({ t: 'chunk', id }, bytes));
        },
        end: (failure) => {
          if (this.calls.has(id)) this.out.write(...encodeInstanceFrame({ t: 'end', id, ...(failure && { error: failure.message }) }));
        },
      });
    });
  }

  /** The worker wants the lease back: no new calls; released once the running ones have ended. */
  revoke(): void {
    this.revoked = true;
    this.releaseIfIdle();
  }

  /** The worker says the instance exited: its calls are answered with why. */
  gone(message: string): void {
    this.fail('FUNCTION_CRASHED', message);
  }

  /** Every call still here fails with `code` (the worker died: WORKER_DIED; the instance did: FUNCTION_CRASHED). */
  fail(code: 'FUNCTION_CRASHED' | 'WORKER_DIED', message: string): void {
    clearTimeout(this.goneTimer);
    this.revoked = true;
    if (!this.closed) {
      this.closed = true;
      this.socket.destroy();
    }
    const calls = [...this.calls.values()];
    this.calls.clear();
    this.busy = 0;
    for (const call of calls) {
      clearTimeout(call.timer);
      // A streamed answer's status is long gone: it can only be cut short.
      if (call.stream) call.stream.end({ code: 'FUNCTION_CRASHED', message });
      else call.reject?.(new GatewayError(code, message, this.workerId));
    }
    this.releaseIfIdle();
  }

  /** The socket closed or broke: the worker is likely to say why in a moment (gone); else the calls are answered without it. */
  private broken(message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.revoked = true;
    this.socket.destroy();
    if (this.calls.size === 0) {
      this.releaseIfIdle();
      return;
    }
    this.goneTimer = setTimeout(() => this.fail('FUNCTION_CRASHED', message), GONE_WAIT_MS);
  }

  private releaseIfIdle(): void {
    if (this.released || !this.revoked || this.calls.size > 0) return;
    this.released = true;
    this.events.release(this);
  }

  /**
   * Ends a call's slot; with ctx.waitUntil work (`background`) the call stays, holding the lease,
   * until its host says `done` or its timeout_ms has passed again (as the worker waits for it).
   */
  private finish(id: number, call: DirectCall, background: boolean | undefined): void {
    clearTimeout(call.timer);
    if (!call.background) this.busy--;
    if (background && !call.background) {
      call.background = true;
      call.timer = setTimeout(() => this.finish(id, call, false), call.timeoutMs);
      return;
    }
    this.calls.delete(id);
    this.releaseIfIdle();
  }

  private timedOut(id: number, timeoutMs: number): void {
    const call = this.calls.get(id);
    if (!call) return;
    const message = `the function ran past its timeout_ms of ${timeoutMs} ms; its instance was replaced`;
    this.revoked = true;
    this.events.stuck(this);
    if (call.stream) {
      this.out.write(...encodeInstanceFrame({ t: 'cancel', id }));
      call.stream.end({ code: 'FUNCTION_TIMEOUT', message });
    } else this.settle(call, { status: 0, headers: [], error: { code: 'FUNCTION_TIMEOUT', message } }, EMPTY);
    this.finish(id, call, false);
  }

  /** Resolves a call's promise with what the worker would have sent (a Result). */
  private settle(call: DirectCall, answer: Pick<ResultMessage, 'status' | 'headers' | 'error' | 'cpuUs' | 'memPeak'>, body: Buffer,
    stream?: GatewayStream): void {
    const resolve = call.resolve;
    call.resolve = undefined;
    call.reject = undefined;
    resolve?.({ result: { t: FrameType.Result, id: 0, cold: false, fnMs: performance.now() - call.started, ...answer, ...(stream && { stream: true }) },
      body, ...(stream && { stream }) });
  }

  private onMessage(meta: HostMessage, body: Buffer): void {
    switch (meta.t) {
      case 'result': {
        const call = this.calls.get(meta.id);
        if (!call || !call.resolve) return;
        const oversized = oversizedAnswer(body.length);
        const usage = usageOf(meta);
        if (oversized) this.settle(call, { status: 0, headers: [], error: { code: 'FUNCTION_RESPONSE_INVALID', message: oversized }, ...usage }, EMPTY);
        else this.settle(call, { status: meta.status, headers: meta.headers, ...usage }, body);
        this.finish(meta.id, call, meta.waitUntil);
        return;
      }
      case 'error': {
        const call = this.calls.get(meta.id);
        if (!call) return;
        const failure = { code: meta.code as WorkerErrorCode, message: meta.message };
        if (call.stream) call.stream.end(failure);
        else this.settle(call, { status: 0, headers: [], error: failure, ...usageOf(meta) }, EMPTY);
        this.finish(meta.id, call, false);
        return;
      }
      case 'head': {
        const call = this.calls.get(meta.id);
        if (!call || !call.resolve) return;
        const { id } = meta;
        const stream: GatewayStream = new BodyStream<EndMessage>({
          ack: (bytes) => this.out.write(...encodeInstanceFrame({ t: 'ack', id, bytes })),
          // The host stops the function's stream and ends the call (`end`); nothing more is passed on.
          cancel: () => {
            this.out.write(...encodeInstanceFrame({ t: 'cancel', id }));
            stream.end({ code: 'FUNCTION_ERROR', message: 'the client went away' });
          },
        });
        call.stream = stream;
        this.settle(call, { status: meta.status, headers: meta.headers }, EMPTY, stream);
        return;
      }
      case 'chunk':
        this.calls.get(meta.id)?.stream?.push(body);
        return;
      case 'end': {
        const call = this.calls.get(meta.id);
        if (!call?.stream) return;
        const error = meta.error === undefined ? undefined : { code: 'FUNCTION_ERROR' as const, message: `the answer's stream broke off: ${meta.error}` };
        call.stream.end(error, { t: FrameType.End, id: meta.id, fnMs: performance.now() - call.started, ...(error && { error }),
          ...usageOf(meta) });
        this.finish(meta.id, call, meta.waitUntil);
        return;
      }
      case 'done': {
        const call = this.calls.get(meta.id);
        if (call?.background) this.finish(meta.id, call, false);
        return;
      }
      case 'log': {
        const call = this.calls.get(meta.id);
        this.events.output({ workerId: this.workerId, key: this.key, requestId: call?.requestId ?? '', stream: meta.stream, text: meta.text });
        return;
      }
      default: // ready, load_error, cgi: the worker's business, never sent on this channel
    }
  }
}

/** A call's figures as the host measured them (the fields it sent, none it did not). */
function usageOf(meta: DirectUsage): DirectUsage {
  return { ...(meta.cpuUs !== undefined && { cpuUs: meta.cpuUs }), ...(meta.memPeak !== undefined && { memPeak: meta.memPeak }) };
}

const ERROR_CODES: ReadonlySet<string> = new Set(['FUNCTION_ERROR', 'FUNCTION_RESPONSE_INVALID']);
const isCount = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);

/**
 * What is wrong with a frame from the host, which runs the function's code and shares its
 * process: a function can write to the socket too. Anything the answer is built from must have
 * its type; the answer's status and headers are checked as HTTP by the fleet (invalidResponse).
 */
function malformed(meta: HostMessage): string | undefined {
  const m = meta as unknown as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || !Number.isSafeInteger(m.id)) return 'it has no numeric id';
  if ((m.t === 'result' || m.t === 'head') && (!Number.isInteger(m.status) || !Array.isArray(m.headers)
    || !(m.headers as unknown[]).every((h) => typeof h === 'string'))) return 'status must be an integer and headers strings';
  if (m.t === 'error' && (!ERROR_CODES.has(m.code as string) || typeof m.message !== 'string')) return 'it needs a known code and a message';
  if (m.t === 'log' && (typeof m.text !== 'string' || (m.stream !== 'stdout' && m.stream !== 'stderr'))) return 'it needs text and a stream';
  if (m.t === 'end' && m.error !== undefined && typeof m.error !== 'string') return 'its error must be a string';
  if (!isCount(m.cpuUs) || !isCount(m.memPeak)) return 'cpuUs and memPeak must be numbers';
  return undefined;
}
