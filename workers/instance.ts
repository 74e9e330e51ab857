// A running function instance: one sandbox, the frame channel to its runtime host, and the
// calls in flight on it. A timed-out or crashed instance is retired and never reused.
import type { Duplex } from 'node:stream';
import { encodeInstanceFrame, InstanceFrameDecoder, type HostInvoke, type HostLoad, type HostMessage } from '../src/protocol/instance-frames.js';
import { toOutcome } from './cgi.js';
import { BatchWriter } from '../src/protocol/frames.js';
import type { CgroupUsage, SandboxProcess } from './runners/runner.js';
import { oversizedAnswer } from '../src/protocol/messages.js';
import type { Log } from '../src/protocol/log.js';
import { callUsage, type CallUsage } from './call-usage.js';
import type { AnswerStream, CallOutcome, CallOutput } from './call.js';
import { BodyStream } from '../src/protocol/body-stream.js';

interface PendingCall {
  readonly resolve: (outcome: CallOutcome) => void;
  readonly requestId: string;
  readonly timer: NodeJS.Timeout;
  readonly output: CallOutput | undefined;
  /** The instance's cgroup usage as the call was sent; undefined without one. */
  readonly before: CgroupUsage | undefined;
  /** Set once the host has started streaming the answer: the call is settled by ending it. */
  stream?: AnswerStream;
  /** The call's timeout_ms, which also bounds its ctx.waitUntil work. */
  readonly timeoutMs: number;
}


const OUTPUT_TAIL_BYTES = 2048;
const EMPTY = Buffer.alloc(0);
/** How long a stopped instance (idle, evicted, replaced, worker stopping) has to exit on SIGTERM. */
export const STOP_GRACE_MS = 1000;

export class Instance {
  readonly ready: Promise<void>;
  /** Resolves once the sandbox has exited. */
  readonly gone: Promise<void>;
  /** Calls this instance may run at once (python hosts run one at a time). */
  readonly capacity: number;
  lastUsedMs = Date.now();
  /** Calls that have claimed a slot (waiting for start-up or running); see InstancePool. */
  claims = 0;
  /**
   * Slots lent to the gateway for the direct data path (direct-leases.ts): calls it sends the
   * instance itself. They count as claims do; the instance stops only once the gateway gives them back.
   */
  leased = 0;
  /** Asks the gateway to give the lease back (set by DirectLeases when it lends one). */
  onRevoke: (() => void) | undefined;
  /** Why the sandbox exited, once it has: "the function's process exited (code 1): …". */
  exitMessage = '';
  isReady = false;
  retired = false;
  exited = false;
  private readonly pending = new Map<number, PendingCall>();
  /** Calls answered whose ctx.waitUntil work still runs: the timer that stops waiting for it, and whose work it is (for its output). */
  private readonly background = new Map<number, { readonly timer: NodeJS.Timeout; readonly requestId: string }>();
  private nextId = 1;
  private outputTail = '';
  /** Frames to the host, one write per event-loop turn; attached once the channel exists. */
  private readonly out = new BatchWriter();
  /** Timed out: killed without a grace period. */
  private stuck = false;
  /** The gateway was asked for its lease back and has not given it yet. */
  private revoking = false;
  /** stop() waits for the lease to come back: the gateway's calls on the instance end first. */
  private stopOnRelease = false;
  private graceTimer?: NodeJS.Timeout;
  /** The cgroup usage read this event-loop turn (usage()); null when none was. */
  private turnUsage: CgroupUsage | undefined | null = null;
  private readonly nextTurn = (): void => {
    this.turnUsage = null;
  };

  constructor(
    readonly name: string,
    private readonly sandbox: SandboxProcess,
    capacity: number,
    startTimeoutMs: number,
    private readonly log: Log,
  ) {
    this.capacity = capacity;
    this.gone = sandbox.exited.then(() => {});
    for (const stream of sandbox.output) {
      stream.on('data', (chunk: Buffer) => {
        this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
      });
    }
    const decoder = new InstanceFrameDecoder();
    let markReady: () => void = () => {};
    let failReady: (err: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
    const startTimer = setTimeout(() => {
      failReady(new Error(`instance did not start within ${startTimeoutMs} ms`));
      this.kill();
    }, startTimeoutMs);

    const attach = (channel: Duplex): void => {
      channel.on('data', (chunk: Buffer) => {
        let messages;
        try {
          messages = decoder.push(chunk);
        } catch (err) {
          this.log({ level: 'error', msg: 'instance protocol error', instance: name, error: (err as Error).message });
          this.kill();
          return;
        }
        for (const { meta, body } of messages) this.onMessage(meta, body, markReady, failReady, startTimer);
      });
      channel.on('error', () => {});
      this.out.attach(channel);
    };
    if (sandbox.channel instanceof Promise) sandbox.channel.then(attach, () => {}); // no connection: the start timer or the exit says why
    else attach(sandbox.channel);
    void sandbox.exited.then(({ code, signal, limit }) => {
      this.exited = true;
      this.retired = true;
      clearTimeout(startTimer);
      clearTimeout(this.graceTimer);
      this.log({ level: 'info', msg: 'instance exited', instance: name, code, signal, ...(limit ? { limit } : {}) });
      const cause = limit ? `was killed: ${limit}` : `exited (${signal ?? `code ${code}`})`;
      const detail = `${cause}${this.outputTail && !limit ? `: ${this.outputTail.trim().slice(-500)}` : ''}`;
      this.exitMessage = `the function's process ${detail}`;
      this.leased = 0;
      failReady(new Error(`instance ${detail}`));
      for (const [id, call] of this.pending) {
        this.settle(id, { ok: false, code: 'FUNCTION_CRASHED', message: `the function's process ${detail}` });
        void call;
      }
    });
  }

  get pid(): number {
    return this.sandbox.pid;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Answered calls whose ctx.waitUntil work still runs: the instance is not idle. */
  get backgroundWork(): number {
    return this.background.size;
  }

  get hasRoom(): boolean {
    return !this.retired && this.claims + this.leased < this.capacity;
  }

  /** The host's end of the direct channel, for the gateway (runner.ts SandboxProcess.direct). */
  get direct(): SandboxProcess['direct'] {
    return this.sandbox.direct;
  }

  /** Whether a call's CPU and memory can be read from the instance's cgroup (then direct calls report them too). */
  get accounted(): boolean {
    return this.sandbox.usage !== undefined;
  }

  /** Tells the host to report the figures of the gateway's calls itself: the worker does not see them. */
  accountDirectCalls(): void {
    this.out.write(...encodeInstanceFrame({ t: 'account' }));
  }

  /** The gateway has given its slots back and sends no more calls: the instance may stop, if it was to. */
  released(): void {
    this.leased = 0;
    this.revoking = false;
    if (this.stopOnRelease) this.stop();
    else if (this.retired && this.idle) this.stopOrKill();
  }

  /** A call the gateway sent ran past its timeout_ms: as for one of the worker's own, the instance is replaced. */
  timedOut(): void {
    this.stuck = true;
    this.retire();
  }

  /**
   * Runs one call. With `bodyIn`, the request body is streamed: `body` is empty and bodyIn's
   * chunks are passed on as they come (the caller's stream, consumed here).
   */
  invoke(call: Omit<HostInvoke, 't' | 'id' | 'deadlineMs'>, body: Buffer, timeoutMs: number, output?: CallOutput,
    bodyIn?: BodyStream): Promise<CallOutcome> {
    const id = this.nextId++;
    this.lastUsedMs = Date.now();
    return new Promise<CallOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.stuck = true; // no grace for it: killed once its other calls are settled
        this.settle(id, { ok: false, code: 'FUNCTION_TIMEOUT', message: `the function ran past its timeout_ms of ${timeoutMs} ms; its instance was replaced` });
        this.retire();
      }, timeoutMs);
      this.pending.set(id, { resolve, requestId: call.requestId, timer, output, before: this.usage(), timeoutMs });
      this.out.write(...encodeInstanceFrame({ t: 'invoke', id, deadlineMs: Date.now() + timeoutMs, ...call, ...(bodyIn && { bodyStream: true }) }, body));
      bodyIn?.consume({
        chunk: (bytes) => {
          if (this.pending.has(id)) this.out.write(...encodeInstanceFrame({ t: 'chunk', id }, bytes));
        },
        end: (failure) => {
          if (this.pending.has(id)) this.out.write(...encodeInstanceFrame({ t: 'end', id, ...(failure && { error: failure.message }) }));
        },
      });
    });
  }

  /** Hands a pre-started sandbox its function; `ready` resolves once it has loaded. */
  load(msg: HostLoad, files: Buffer): void {
    this.out.write(...encodeInstanceFrame(msg, files));
  }

  /** No new calls; the sandbox is stopped once the calls already running are settled. */
  retire(): void {
    this.retired = true;
    this.revoke();
    if (this.idle) this.stopOrKill();
  }

  /** No call running, none lent to the gateway and no ctx.waitUntil work left: a retired instance may stop. */
  private get idle(): boolean {
    return this.pending.size === 0 && this.background.size === 0 && this.leased === 0;
  }

  private revoke(): void {
    if (this.leased === 0 || this.revoking) return;
    this.revoking = true;
    this.onRevoke?.();
  }

  /**
   * SIGTERM, then SIGKILL for the whole tree if it has not exited within STOP_GRACE_MS. With slots
   * lent to the gateway, once it has given them back (its calls on the instance have ended), unless
   * `now` (the worker is stopping).
   */
  stop(now = false): void {
    this.retired = true;
    if (this.leased > 0 && !now && !this.exited) {
      this.stopOnRelease = true;
      this.revoke();
      return;
    }
    if (this.exited || this.graceTimer) return;
    this.sandbox.terminate();
    this.graceTimer = setTimeout(() => {
      this.log({ level: 'warn', msg: 'instance did not exit on SIGTERM; killed', instance: this.name, graceMs: STOP_GRACE_MS });
      this.kill();
    }, STOP_GRACE_MS);
    this.graceTimer.unref();
  }

  kill(): void {
    this.retired = true;
    if (!this.exited) this.sandbox.kill();
  }

  /**
   * The sandbox's cgroup usage now (a few small files read synchronously), or undefined. One read
   * serves every call that starts or ends on this instance in the same event-loop turn: their
   * frames to the host go out together at the end of the turn anyway (BatchWriter), and their
   * answers were read in it, so a second read would only add its own cost (≈ 2–3 µs a file).
   */
  private usage(): CgroupUsage | undefined {
    if (this.turnUsage !== null) return this.turnUsage;
    if (!this.sandbox.usage) return undefined;
    try {
      this.turnUsage = this.sandbox.usage();
    } catch {
      this.turnUsage = undefined; // its cgroup is gone (the instance exited): no figure, not a failed call
    }
    setImmediate(this.nextTurn);
    return this.turnUsage;
  }

  private stopOrKill(): void {
    if (this.stuck) this.kill();
    else this.stop();
  }

  private onMessage(meta: HostMessage, body: Buffer, markReady: () => void, failReady: (err: Error) => void, startTimer: NodeJS.Timeout): void {
    switch (meta.t) {
      case 'ready':
        clearTimeout(startTimer);
        this.isReady = true;
        markReady();
        return;
      case 'load_error':
        clearTimeout(startTimer);
        failReady(new Error(`function failed to load: ${meta.message}`));
        this.kill();
        return;
      case 'head': {
        const call = this.pending.get(meta.id);
        if (!call || call.stream) return;
        const stream: AnswerStream = new BodyStream<CallUsage>({
          ack: (bytes) => this.out.write(...encodeInstanceFrame({ t: 'ack', id: meta.id, bytes })),
          cancel: () => this.out.write(...encodeInstanceFrame({ t: 'cancel', id: meta.id })),
        });
        call.stream = stream;
        call.resolve({ ok: true, status: meta.status, headers: meta.headers, body: EMPTY, stream });
        return;
      }
      case 'chunk':
        this.pending.get(meta.id)?.stream?.push(body);
        return;
      case 'end':
        if (meta.waitUntil) this.waitFor(meta.id);
        this.settle(meta.id, meta.error === undefined ? { ok: true, status: 0, headers: [], body: EMPTY }
          : { ok: false, code: 'FUNCTION_ERROR', message: `the answer's stream broke off: ${meta.error}` });
        return;
      case 'done':
        clearTimeout(this.background.get(meta.id)?.timer);
        this.background.delete(meta.id);
        if (this.retired && this.idle) this.stopOrKill();
        return;
      case 'result': {
        if (meta.waitUntil) this.waitFor(meta.id);
        const oversized = oversizedAnswer(body.length);
        this.settle(meta.id, oversized ? { ok: false, code: 'FUNCTION_RESPONSE_INVALID', message: oversized }
          : { ok: true, status: meta.status, headers: meta.headers, body });
        return;
      }
      case 'error':
        this.settle(meta.id, { ok: false, code: meta.code, message: meta.message });
        return;
      case 'cgi':
        this.settle(meta.id, toOutcome({ exitCode: meta.exitCode, stdout: body, stderr: meta.stderr }));
        return;
      case 'log': {
        const call = this.pending.get(meta.id);
        if (call?.output) call.output(meta.stream, meta.text);
        // Printed after the answer went (ctx.waitUntil work): the gateway has closed the call, the worker logs it.
        else this.log({ level: 'info', msg: 'function output', instance: this.name, requestId: call?.requestId ?? this.background.get(meta.id)?.requestId,
          stream: meta.stream, text: meta.text });
        return;
      }
    }
  }

  /**
   * Keeps a retired instance alive for a call's ctx.waitUntil work, until its host says it is
   * done or the call's time is up (the host stops waiting at the call's deadline itself; this is
   * the backstop).
   */
  private waitFor(id: number): void {
    const call = this.pending.get(id);
    if (!call) return;
    const timer = setTimeout(() => {
      this.background.delete(id);
      if (this.retired && this.idle) this.stopOrKill();
    }, call.timeoutMs);
    timer.unref();
    this.background.set(id, { timer, requestId: call.requestId });
  }

  /** Ends a call: resolves its promise, or, once its answer is streaming, ends the stream. */
  private settle(id: number, outcome: CallOutcome): void {
    const call = this.pending.get(id);
    if (!call) return; // already timed out; a late answer is dropped
    this.pending.delete(id);
    clearTimeout(call.timer);
    const usage = call.before && callUsage(call.before, this.usage());
    if (call.stream) call.stream.end(outcome.ok ? undefined : { code: outcome.code, message: outcome.message }, usage);
    else call.resolve(usage ? { ...outcome, usage } : outcome);
    if (this.retired && this.idle) this.stopOrKill();
  }
}
