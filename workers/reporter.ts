// Every report period the worker samples its process tree (itself and the sandboxes it runs),
// updates its smoothed load and sends one datagram to the gateway's metrics socket. Metrics
// never travel on the request path (STYLE.md): a slow gateway delays reports, never calls.
//
// node-unix-socket's sendTo (measured here, 0.2.7): an unbound AF_UNIX datagram socket can send,
// so nothing is bound and nothing needs unlinking. The callback runs synchronously when the
// kernel takes or refuses the datagram (ENOENT: no gateway yet; ECONNREFUSED: a stale socket
// file); when the gateway's queue is full (net.unix.max_dgram_qlen, 10 here) the library keeps
// the datagram in user space and retries whenever poll says the socket is writable, which for
// an unconnected datagram socket is at once: a busy loop (measured: ~1,300 wake-ups a second per
// worker; with 100 workers on 2 cores that kept the machine saturated, the gateway starved and
// the queues full, for good). So a report the kernel does not take at once is dropped, by
// replacing the socket (which empties the library's queue), and counted as skipped; the
// gateway sees the gap in seq. A load report is only worth its freshness: the next one comes a
// period later. Failures are counted and logged at most once per LOG_EVERY_MS; none of them
// stops the timer, so a worker started before its gateway begins delivering as soon as the
// gateway binds.
//
// The library's socket has no unref(): stop() must run for the worker process to exit.
import { DgramSocket } from 'node-unix-socket';
import type { WorkerReport } from '../src/protocol/messages.js';
import { encodeReport, fitWarmKeys, REPORT_FIELD_RULES, validateReport } from '../src/protocol/report.js';
import { LoadScore, type LoadParts } from './load-score.js';
import type { ProcReader } from './proc-stats.js';

/** At most one log line per kind of trouble per this many milliseconds. */
export const LOG_EVERY_MS = 10_000;

export interface ReporterOptions {
  readonly id: string;
  /** The worker's own stream socket, where the gateway sends calls; goes into every report. */
  readonly socketPath: string;
  readonly gatewayMetricsPath: string;
  readonly intervalMs: number;
  readonly reader: ProcReader;
  /** Pids of the sandbox processes the worker runs now (their descendants are found by scan). */
  readonly childPids: () => readonly number[];
  /** Function keys with a warm instance, most important first; capped to fit one datagram. */
  readonly warmKeys: () => readonly string[];
  /** CPUs the worker has to itself (it was pinned); their busy time counts in its cpu part. */
  readonly cores?: readonly number[];
  /** Wall clock, ms since the epoch: the report's `time`. */
  readonly now: () => number;
  /** Monotonic clock in ms, for rates. Default performance.now. */
  readonly clock?: () => number;
  /** The process the tree is rooted at. Default process.pid. */
  readonly pid?: number;
  readonly log?: (line: string) => void;
}

export interface ReporterCounters {
  /** Datagrams the kernel took. */
  readonly sent: number;
  /** Sends refused (no gateway, stale socket file, …). */
  readonly failed: number;
  /** Reports dropped because the gateway's queue was full (the kernel did not take them at once). */
  readonly skipped: number;
  /** Ticks where sampling /proc or building the report threw. */
  readonly errors: number;
}

export class Reporter {
  private readonly score: LoadScore;
  private readonly pid: number;
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private socket: DgramSocket | undefined;
  private seq = 0;
  private counts = { sent: 0, failed: 0, skipped: 0, errors: 0 };
  private failingSince: number | undefined;
  private lastLogMs = new Map<string, number>();

  constructor(private readonly options: ReporterOptions) {
    this.pid = options.pid ?? process.pid;
    this.clock = options.clock ?? (() => performance.now());
    this.log = options.log ?? ((line) => console.error(line));
    this.score = new LoadScore(options.reader.clockTicksPerSecond);
    if (!(Number.isInteger(options.intervalMs) && options.intervalMs > 0)) {
      throw new Error(`reporter: intervalMs must be a positive integer (got ${options.intervalMs})`);
    }
    // The gateway would drop every report of a worker whose identity breaks the rules: refuse now.
    const identity = { ...this.build({ cpu: 0, mem: 0, io: 0, score: 0 }), warm: [] };
    const probe = validateReport(identity);
    if (!probe.ok && probe.field) {
      const got = JSON.stringify(identity[probe.field]);
      throw new Error(`reporter: ${probe.field} ${REPORT_FIELD_RULES[probe.field]} (got ${got})`);
    }
  }

  /** Primes the counters now and reports every intervalMs from then on. */
  start(): void {
    if (this.timer) return;
    try {
      this.sample();
    } catch (err) {
      this.counts.errors++;
      this.limitedLog('error', `reporter: could not sample /proc: ${(err as Error).message}`);
    }
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.closeSocket();
  }

  /** The latest smoothed parts and score, unrounded; undefined until the first report. */
  last(): LoadParts | undefined {
    return this.score.last();
  }

  counters(): ReporterCounters {
    return { ...this.counts };
  }

  private tick(): void {
    try {
      const parts = this.sample();
      if (!parts) return;
      const base = this.build(parts);
      const report: WorkerReport = { ...base, warm: fitWarmKeys(base, this.options.warmKeys()) };
      this.seq++;
      this.send(encodeReport(report));
    } catch (err) {
      this.counts.errors++;
      this.limitedLog('error', `reporter: could not build a load report: ${(err as Error).message}`);
    }
  }

  private sample(): LoadParts | undefined {
    const timeMs = this.clock();
    const { reader, cores } = this.options;
    const tree = reader.sampleTree(this.pid, this.options.childPids());
    return this.score.update({ timeMs, ...tree, cores: cores && reader.sampleCores(cores) });
  }

  private build(parts: LoadParts): Omit<WorkerReport, 'warm'> {
    const { id, socketPath } = this.options;
    const [cpu, mem, io, score] = [parts.cpu, parts.mem, parts.io, parts.score].map(round2);
    return { v: 1, id, pid: this.pid, socket: socketPath, cpu, mem, io, score, seq: this.seq, time: this.options.now() };
  }

  private send(buf: Buffer): void {
    const socket = this.openSocket();
    let answered = false;
    const done = (err: Error | undefined): void => {
      answered = true;
      if (socket !== this.socket) return; // a replaced socket's late callback
      if (err) this.failed(err);
      else this.delivered();
    };
    try {
      socket.sendTo(buf, 0, buf.length, this.options.gatewayMetricsPath, done);
    } catch (err) {
      done(err as Error);
    }
    if (answered) return;
    // Queued in user space: the gateway's queue is full. Drop it rather than spin on it.
    this.counts.skipped++;
    this.limitedLog('full', `reporter: the gateway's datagram queue at ${this.options.gatewayMetricsPath} is full; dropping load reports until it drains`);
    this.closeSocket();
  }

  private delivered(): void {
    this.counts.sent++;
    if (this.failingSince === undefined) return;
    this.log(`reporter: delivering load reports to ${this.options.gatewayMetricsPath} again`);
    this.failingSince = undefined;
    this.lastLogMs.delete('send');
  }

  private failed(err: Error): void {
    this.counts.failed++;
    this.failingSince ??= this.clock();
    this.limitedLog(
      'send',
      `reporter: cannot send load reports to ${this.options.gatewayMetricsPath}: ${err.message} ` +
        `(${this.counts.failed} failed so far); still trying every ${this.options.intervalMs} ms`,
    );
  }

  private openSocket(): DgramSocket {
    if (this.socket) return this.socket;
    const socket = new DgramSocket();
    // The library closes the socket before emitting 'error'; without a listener it would throw.
    socket.on('error', (err: Error) => {
      if (socket === this.socket) this.socket = undefined;
      this.limitedLog('socket', `reporter: metrics socket error: ${err.message}`);
    });
    this.socket = socket;
    return socket;
  }

  private closeSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
  }

  private limitedLog(kind: string, line: string): void {
    const now = this.clock();
    const last = this.lastLogMs.get(kind);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.lastLogMs.set(kind, now);
    this.log(line);
  }
}

/** Two decimals are plenty for a 0–100 load and keep the datagram short. */
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
