// The gateway's end of the load reports: a Unix datagram socket at RUN_DIR/metrics.sock that
// every worker sends one report to per period. The only gateway file that imports
// node-unix-socket (STYLE.md: one owner folder per native dependency).
//
// Each datagram passes four gates, and is dropped and counted by reason at the first it fails:
//   1. decodeReport: size, UTF-8 JSON object, version, every field (src/protocol/report.ts);
//   2. accept(report): is this a worker the fleet knows (the fleet decides what that means);
//   3. seq strictly greater than the last accepted for this (id, pid): replays and reorderings;
//   4. then onReport(report, receivedAtMs).
// Dropped datagrams are logged at most once per reason per LOG_EVERY_MS, with the count since
// the previous line; counters() has the totals for /metrics.
//
// Capacity (measured on Linux with node-unix-socket 0.2.7): AF_UNIX datagrams are charged to
// the SENDER's buffer, and what limits the receiver is its queue length,
// net.unix.max_dgram_qlen datagrams (10 here), not SO_RCVBUF. A sender that finds the queue
// full is not refused: the library holds the datagram and sends it once there is room. 100
// senders against a receiver whose event loop was blocked for 1.5 s delivered 100 of 100
// (test/integration/metrics-socket.test.ts repeats this), so 100 workers at 2 reports a second
// are delayed by a busy gateway, never dropped. SO_RCVBUF is still raised to RECV_BUFFER_BYTES,
// which costs nothing and covers systems that do charge the receiver.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { DgramSocket } from 'node-unix-socket';
import { createLog, type Log } from '../protocol/log.js';
import type { WorkerReport } from '../protocol/messages.js';
import { decodeReport, DROP_REASONS, REPORT_FIELD_RULES, type DropReason } from '../protocol/report.js';

export const RECV_BUFFER_BYTES = 1024 * 1024;
/** At most one log line per drop reason per this many milliseconds. */
export const LOG_EVERY_MS = 10_000;
/** (id, pid) pairs whose last seq is remembered; the oldest is forgotten beyond this. */
export const MAX_TRACKED_SENDERS = 10_000;

export interface MetricsSocketOptions {
  readonly path: string;
  /** Undefined to accept the report, or why it is dropped (e.g. 'unknown_worker'). */
  readonly accept: (report: WorkerReport) => DropReason | undefined;
  readonly onReport: (report: WorkerReport, receivedAtMs: number) => void;
  readonly log?: Log;
  /** The clock receivedAtMs is read from. Default Date.now. */
  readonly now?: () => number;
}

export interface MetricsCounters {
  readonly received: number;
  readonly accepted: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

export class MetricsSocket {
  private readonly socket: DgramSocket;
  private readonly now: () => number;
  private readonly log: Log;
  private readonly lastSeq = new Map<string, number>();
  private readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  private readonly lastLog = new Map<DropReason, { atMs: number; countAt: number }>();
  private received = 0;
  private accepted = 0;
  private closed = false;

  /** Binds at options.path now, replacing a stale socket file; throws if another process listens there. */
  constructor(private readonly options: MetricsSocketOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? createLog('metrics-socket');
    removeStaleSocket(options.path);
    this.socket = new DgramSocket();
    try {
      this.socket.bind(options.path);
      chmodSync(options.path, 0o600); // only our uid may report (workers run as the gateway's user)
      this.socket.setRecvBufferSize(RECV_BUFFER_BYTES);
    } catch (err) {
      this.socket.close(); // an open socket would keep the process alive
      throw err;
    }
    this.socket.on('data', (buf: Buffer) => this.onDatagram(buf));
    // The library closes the socket before emitting 'error'; without a listener it would throw.
    this.socket.on('error', (err: Error) => {
      this.log({ level: 'error', msg: 'metrics socket failed; workers load reports are no longer received', path: options.path, error: err.message });
    });
  }

  counters(): MetricsCounters {
    return { received: this.received, accepted: this.accepted, dropped: { ...this.dropped } };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
    try {
      unlinkSync(this.options.path);
    } catch {
      // already gone
    }
  }

  private onDatagram(buf: Buffer): void {
    this.received++;
    const receivedAtMs = this.now();
    const decoded = decodeReport(buf);
    if (!decoded.ok) {
      const field = decoded.field;
      return this.drop(decoded.reason, field ? { field, rule: REPORT_FIELD_RULES[field] } : { bytes: buf.length });
    }
    const report = decoded.report;
    try {
      const rejected = this.options.accept(report);
      if (rejected) return this.drop(rejected, { worker: report.id, pid: report.pid });
      const sender = `${report.id}/${report.pid}`;
      const last = this.lastSeq.get(sender);
      if (last !== undefined && report.seq <= last) {
        return this.drop('replayed', { worker: report.id, pid: report.pid, seq: report.seq, lastSeq: last });
      }
      this.remember(sender, report.seq);
      this.accepted++;
      this.options.onReport(report, receivedAtMs);
    } catch (err) {
      this.log({ level: 'error', msg: 'load report handler threw', worker: report.id, error: (err as Error).message });
    }
  }

  /** Map order is insertion order: re-inserting keeps the most recent senders at the end. */
  private remember(sender: string, seq: number): void {
    this.lastSeq.delete(sender);
    this.lastSeq.set(sender, seq);
    if (this.lastSeq.size > MAX_TRACKED_SENDERS) {
      const oldest = this.lastSeq.keys().next().value;
      if (oldest !== undefined) this.lastSeq.delete(oldest);
    }
  }

  private drop(reason: DropReason, detail: Record<string, unknown>): void {
    this.dropped[reason]++;
    const now = this.now();
    const last = this.lastLog.get(reason);
    if (last && now - last.atMs < LOG_EVERY_MS) return;
    const since = last ? this.dropped[reason] - last.countAt : 1;
    this.lastLog.set(reason, { atMs: now, countAt: this.dropped[reason] });
    this.log({ level: 'warn', msg: 'load report dropped', reason, ...detail, droppedSinceLastLine: since });
  }
}

/**
 * Unlinks a socket file left by a gateway that died, so bind() can succeed; refuses to take the
 * path from a live one (a second gateway on the same run dir would otherwise silently steal
 * every report) and refuses to delete anything that is not a socket.
 */
function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket; remove it or use another --run-dir`);
  if (isListening(path)) {
    throw new Error(`another process is receiving load reports on ${path}; is a second gateway using the same --run-dir?`);
  }
  unlinkSync(path);
}

/** Sends an empty datagram: refused (ECONNREFUSED) means nobody is bound there any more. */
function isListening(path: string): boolean {
  const probe = new DgramSocket();
  const outcome: { err?: Error; called: boolean } = { called: false };
  try {
    probe.sendTo(Buffer.alloc(0), 0, 0, path, (err) => Object.assign(outcome, { err, called: true }));
  } catch (err) {
    Object.assign(outcome, { err, called: true });
  } finally {
    probe.close();
  }
  // No synchronous answer means the kernel queue was full: someone is bound and not keeping up.
  return !outcome.called || outcome.err === undefined;
}
