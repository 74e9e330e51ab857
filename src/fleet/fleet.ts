// The worker fleet as the gateway sees it: which workers exist (spawned by the supervisor, or
// started by hand and announced by their first report), their latest load report, the
// stream connection to each, and the calls in flight. invoke() is the load balancer: pick a
// worker with the scheduler, send the call (to the instance it lent us on the direct data path,
// direct-instance.ts, or through the worker), map the answer.
import type { Socket } from 'node:net';
import path from 'node:path';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Invocation, InvocationResult } from '../calls.js';
import type { Log } from '../protocol/log.js';
import type { FunctionSpec, WorkerReport } from '../protocol/messages.js';
import type { DropReason } from '../protocol/report.js';
import { createPolicy, type Policy, type PolicyName, type WorkerView } from '../scheduler/policies.js';
import { MetricsSocket } from './metrics-socket.js';
import { Supervisor } from './supervisor.js';
import { WorkerConnection, type CallReply, type FunctionOutput } from './worker-connection.js';
import { DirectInstance, type DirectEvents } from './direct-instance.js';
import { parseToGateway, USED_EVERY_MS } from '../protocol/direct.js';

/** Extra time the gateway gives a worker past the function's timeout (cold start, queueing). */
const GATEWAY_GRACE_MS = 15_000;

export class WorkerState implements WorkerView {
  report: WorkerReport | undefined;
  lastReportMs = -Infinity;
  inFlight = 0;
  /** inFlight by function key (keys with none are deleted, so the map stays as small as the calls). */
  readonly calls = new Map<string, number>();
  /** Keys with a ready instance: the last report's list, plus keys answered since. */
  warm: ReadonlySet<string> = new Set();
  conn: WorkerConnection | undefined;
  served = 0;
  /** Reports this worker process numbered but the gateway never got (gaps in `seq`). */
  missedReports = 0;
  /** Instances the worker lent us (the direct data path), by instance name. */
  readonly leases = new Map<string, DirectInstance>();
  /** The lease calls of a key go to: the newest version's. */
  readonly direct = new Map<string, DirectInstance>();

  constructor(readonly id: string, readonly supervised: boolean) {}

  get score(): number {
    return this.report?.score ?? 0;
  }

  inFlightOf(key: string): number {
    return this.calls.get(key) ?? 0;
  }

  isWarm(key: string): boolean {
    return this.warm.has(key);
  }

  get connected(): boolean {
    return this.conn?.connected === true;
  }
}

export interface FleetOptions {
  readonly runDir: string;
  readonly workers: number;
  readonly reportMs: number;
  readonly log: Log;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly policy?: PolicyName;
  /** Pin each spawned worker to a CPU of its own (Supervisor). */
  readonly pin?: boolean;
  /** What functions print, as their workers send it. */
  readonly onOutput?: (output: FunctionOutput) => void;
  /** Take the warm instances spawned workers lend (--data-path direct), rather than send every call through the worker. */
  readonly direct?: boolean;
}

export class Fleet {
  readonly workers = new Map<string, WorkerState>();
  readonly staleAfterMs: number;
  private readonly supervisor: Supervisor;
  private readonly metrics: MetricsSocket;
  readonly policy: Policy;
  private readonly now: () => number;
  private readonly random: () => number;
  private list: WorkerState[] = [];
  private warmSpecs: readonly FunctionSpec[] = [];

  constructor(private readonly opts: FleetOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    // "A worker that stops reporting for ~2 periods is not chosen."
    this.staleAfterMs = 2 * opts.reportMs + 100;
    this.policy = createPolicy(opts.policy ?? 'least-loaded', this.staleAfterMs);
    this.supervisor = new Supervisor({
      count: opts.workers,
      runDir: opts.runDir,
      reportMs: opts.reportMs,
      pin: opts.pin ?? false,
      log: opts.log,
      onExit: (id) => this.forget(id, 'process exited'),
      ...(opts.direct && { hello: { t: 'direct' as const }, onMessage: (id, msg, socket) => this.onLease(id, msg, socket) }),
    });
    if (opts.direct) setInterval(() => this.reportUse(), USED_EVERY_MS).unref();
    this.metrics = new MetricsSocket({
      path: metricsSocketPath(opts.runDir),
      accept: (r) => this.accept(r),
      onReport: (r, at) => this.onReport(r, at),
      log: opts.log,
    });
  }

  start(): void {
    for (let i = 1; i <= this.opts.workers; i++) this.add(new WorkerState(`w${i}`, true));
    this.supervisor.start();
  }

  async stop(): Promise<void> {
    await this.supervisor.stop();
    for (const w of this.workers.values()) w.conn?.close();
    this.metrics.close();
  }

  datagramCounters(): ReturnType<MetricsSocket['counters']> {
    return this.metrics.counters();
  }

  supervisedInfo(id: string): { pid: number | undefined; restarts: number } | undefined {
    return this.supervisor.workers.get(id);
  }

  /** Workers that could take a call right now. */
  available(): WorkerState[] {
    const now = this.now();
    return this.list.filter((w) => this.isAvailable(w, now));
  }

  /** Connected and reported within staleAfterMs: a worker calls can be sent to. */
  isAvailable(w: WorkerState, now: number = this.now()): boolean {
    return w.connected && now - w.lastReportMs <= this.staleAfterMs;
  }

  /**
   * Places a call: the policy's pick among the workers that can take it; a worker that refuses it
   * at capacity (before running it) is skipped and the next pick tried, until none is left.
   * Promise chains rather than async functions: one promise per call on the way there and back.
   */
  invoke(inv: Invocation, refusedBy?: Set<string>, refusal?: GatewayError): Promise<InvocationResult> {
    const { key, config } = inv.route;
    const w = this.policy.pick(this.list, this.now(), this.random, { key, maxConcurrency: config.maxConcurrency, refusedBy }) as WorkerState | undefined;
    if (!w?.conn) {
      if (refusal) return Promise.reject(refusal);
      if (this.available().length === 0) return Promise.reject(new GatewayError('NO_WORKER_AVAILABLE', 'no worker is connected and reporting; retry shortly'));
      return Promise.reject(new GatewayError('FUNCTION_AT_CAPACITY', `every worker runs ${config.maxConcurrency} calls of ${key} (its max_concurrency)`));
    }
    return this.send(w, w.conn, inv).catch((err: unknown) => {
      if (!(err instanceof GatewayError && err.code === 'FUNCTION_AT_CAPACITY')) throw err;
      return this.invoke(inv, (refusedBy ?? new Set()).add(w.id), err);
    });
  }

  private send(w: WorkerState, conn: WorkerConnection, inv: Invocation): Promise<InvocationResult> {
    const { route } = inv;
    const direct = w.direct.get(route.key);
    const leased = direct?.version === route.version && direct.open ? direct : undefined;
    if (leased?.full) {
      return Promise.reject(new GatewayError('FUNCTION_AT_CAPACITY', `${route.key} is at its max_concurrency of ${route.config.maxConcurrency} on worker ${w.id}`, w.id));
    }
    w.inFlight++;
    w.calls.set(route.key, w.inFlightOf(route.key) + 1);
    const settled = (): void => {
      w.inFlight--;
      const left = w.inFlightOf(route.key) - 1;
      if (left > 0) w.calls.set(route.key, left);
      else w.calls.delete(route.key);
    };
    const reply: Promise<CallReply> = leased
      ? leased.invoke(route, inv.requestId, inv.method, inv.path, inv.query, inv.headers, inv.body, inv.bodyIn, inv.clientIp)
      : conn.invoke(route, inv.requestId, inv.method, inv.path, inv.query, inv.headers, inv.body, route.config.timeoutMs + GATEWAY_GRACE_MS,
        inv.bodyIn, inv.clientIp);
    return reply.then(({ result, body, stream }) => {
        // A streamed answer is in flight on the worker until its stream ends.
        if (stream) void stream.finished.then(settled);
        else settled();
        w.served++;
        if (result.error) throw new GatewayError(result.error.code as ErrorCode, result.error.message, w.id, result);
        if (!w.warm.has(route.key)) w.warm = new Set(w.warm).add(route.key);
        const invalid = invalidResponse(result.status, result.headers);
        if (invalid) {
          stream?.cancel();
          throw new GatewayError('FUNCTION_RESPONSE_INVALID', invalid, w.id, result);
        }
        return { status: result.status, headers: result.headers, body, stream, workerId: w.id, cold: result.cold, fnMs: result.fnMs,
          cpuUs: result.cpuUs, memPeak: result.memPeak };
      }, (err: unknown) => {
        settled();
        throw err;
      });
  }

  /** Functions every worker should keep min_warm instances of; sent now and to every new connection. */
  keepWarm(specs: readonly FunctionSpec[]): void {
    this.warmSpecs = specs;
    for (const w of this.list) w.conn?.keepWarm(specs);
  }

  /** A message from a spawned worker's IPC channel: a lease of an instance, or about one (src/protocol/direct.ts). */
  private onLease(workerId: string, raw: unknown, socket: Socket | undefined): void {
    const msg = parseToGateway(raw);
    const w = this.workers.get(workerId);
    if (typeof msg === 'string' || !w) {
      socket?.destroy();
      this.opts.log({ level: 'warn', msg: 'dropped a message from a worker', worker: workerId, error: typeof msg === 'string' ? msg : 'unknown worker' });
      return;
    }
    if (msg.t === 'lease') {
      if (!socket) {
        this.opts.log({ level: 'warn', msg: 'a lease came without its socket; not taken', worker: workerId, instance: msg.instance });
        this.supervisor.send(workerId, { t: 'release', instance: msg.instance });
        return;
      }
      const d = new DirectInstance(workerId, msg.instance, msg.key, msg.version, msg.slots, socket, this.directEvents(w));
      this.opts.log({ msg: 'instance lent for direct calls', worker: workerId, instance: msg.instance, slots: msg.slots });
      w.leases.set(msg.instance, d);
      const current = w.direct.get(msg.key);
      if (!current || current.version <= msg.version || !current.open) w.direct.set(msg.key, d);
      return;
    }
    const d = w.leases.get(msg.instance);
    if (!d) return; // released meanwhile
    if (msg.t === 'slots') d.slots = msg.slots;
    else if (msg.t === 'revoke') d.revoke();
    else if (msg.t === 'reclaim') {
      if (d.idle) d.revoke(); // released at once
      else this.supervisor.send(workerId, { t: 'busy', instance: msg.instance });
    }
    else d.gone(msg.message);
  }

  private directEvents(w: WorkerState): DirectEvents {
    return {
      release: (d) => {
        w.leases.delete(d.name);
        if (w.direct.get(d.key) === d) w.direct.delete(d.key);
        this.supervisor.send(w.id, { t: 'release', instance: d.name });
      },
      stuck: (d) => {
        this.supervisor.send(w.id, { t: 'timeout', instance: d.name });
      },
      output: (o) => this.opts.onOutput?.(o),
    };
  }

  /** Tells each worker which of the instances it lent ran calls since the last time, or run one now (its idle reaper's clock). */
  private reportUse(): void {
    for (const w of this.list) {
      const used: string[] = [];
      for (const d of w.leases.values()) {
        if (!d.used && d.idle) continue;
        d.used = false;
        used.push(d.name);
      }
      if (used.length > 0) this.supervisor.send(w.id, { t: 'used', instances: used });
    }
  }

  /** "Known worker": one we spawned (same pid), or one started by hand whose socket is in our run dir. */
  private accept(r: WorkerReport): DropReason | undefined {
    if (path.dirname(r.socket) !== this.opts.runDir) return 'unknown_worker';
    const supervised = this.supervisor.workers.get(r.id);
    if (supervised) return supervised.pid === r.pid ? undefined : 'unknown_worker';
    return processExists(r.pid) ? undefined : 'unknown_worker';
  }

  private onReport(r: WorkerReport, receivedAtMs: number): void {
    let w = this.workers.get(r.id);
    if (!w) {
      w = new WorkerState(r.id, false);
      this.add(w);
      this.opts.log({ msg: 'worker joined', worker: r.id, pid: r.pid, socket: r.socket });
    }
    if (w.report && (w.report.pid !== r.pid || w.report.socket !== r.socket)) w.conn?.close();
    // The metrics socket passes only increasing seqs per process: a jump is reports lost on the
    // way (the worker dropped one the gateway's full queue could not take).
    else if (w.report) w.missedReports += r.seq - w.report.seq - 1;
    w.report = r;
    w.warm = new Set(r.warm);
    w.lastReportMs = receivedAtMs;
    if (!w.conn || w.conn.closed) {
      w.conn = new WorkerConnection(r.id, r.socket, (conn, reason, hung) => {
        if (w!.conn === conn) w!.conn = undefined;
        this.opts.log({ level: 'warn', msg: 'worker connection closed', worker: r.id, reason });
        if (hung) this.killHung(w!, r.pid, reason);
      }, this.warmSpecs, this.opts.onOutput);
    }
  }

  /**
   * A worker that stopped answering on its stream (a blocked event loop, SIGSTOP) is killed: a
   * supervised one is then restarted, one started by hand is left to whatever started it. Its
   * sandboxes die with it. It is forgotten at once, so no call goes to it meanwhile.
   */
  private killHung(w: WorkerState, pid: number, why: string): void {
    try {
      process.kill(pid, 'SIGKILL');
      this.opts.log({ level: 'error', msg: 'worker hung; killed', worker: w.id, pid });
    } catch (err) {
      this.opts.log({ level: 'error', msg: 'worker hung; could not kill it', worker: w.id, pid, error: (err as Error).message });
    }
    this.forget(w.id, 'hung', why);
  }

  /** `why`: what calls still running on its instances are answered with (the worker connection's own words, when it gave up on it). */
  private forget(id: string, reason: string, why = `worker ${id} is gone (${reason}) mid-request`): void {
    const w = this.workers.get(id);
    if (!w) return;
    w.conn?.close();
    w.conn = undefined;
    // Its instances die with it: what they run is answered as the worker hop answers it.
    for (const d of [...w.leases.values()]) d.fail('WORKER_DIED', why);
    w.leases.clear();
    w.direct.clear();
    w.report = undefined;
    w.warm = new Set();
    w.lastReportMs = -Infinity;
    if (!w.supervised) {
      this.workers.delete(id);
      this.list = [...this.workers.values()];
    }
    this.opts.log({ level: 'warn', msg: 'worker gone', worker: id, reason });
  }

  private add(w: WorkerState): void {
    this.workers.set(w.id, w);
    this.list = [...this.workers.values()];
  }
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The function's answer goes onto the wire as it is, so it must be valid HTTP: a final
 * status, and header names and values without CR, LF or NUL (no response splitting).
 */
function invalidResponse(status: number, headers: readonly string[]): string | undefined {
  if (!Number.isInteger(status) || status < 200 || status > 599) return `the function answered status ${status}; it must be an integer 200–599`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (typeof name !== 'string' || !HEADER_NAME.test(name)) return `the function answered an invalid header name ${JSON.stringify(name)}`;
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) return `the function answered an invalid value for header ${name} (control characters are not allowed)`;
  }
  return undefined;
}

export function metricsSocketPath(runDir: string): string {
  return path.join(runDir, 'metrics.sock');
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
