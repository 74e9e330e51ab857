// Structured log lines (pino: one JSON object per line on stderr), shared by the gateway and its
// workers so that the gateway's log reads as one stream: supervised workers inherit its stderr.
// Every line has time (ISO), level, component and msg. LOG_LEVEL=debug|info|warn|error
// (default info); any other value is refused at start.
//
// The gateway's log is buffered (`buffered`): lines are written BUFFER_CHARS at a time, or
// FLUSH_MS after the first of fewer, so an access log line per call costs no write of its own,
// and what is left is written when the process exits (a SIGKILL loses at most FLUSH_MS of it).
// The buffer is ours, not pino's sonic-boom: sonic-boom measures the byte length of its whole
// pending string on every write, ~7 µs a line at 4 KiB. Workers write synchronously: their lines
// are few and must not be lost to a SIGKILL.
import fs from 'node:fs';
import pino from 'pino';

export type LogFields = Record<string, unknown> & { level?: 'debug' | 'info' | 'warn' | 'error'; msg: string };
export type Log = (fields: LogFields) => void;
/** A Log that can also write a line already in its format (one JSON object, newline-terminated). */
export type Logger = Log & { readonly write: (line: string) => void; readonly enabled: (level: LogFields['level']) => boolean };

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const BUFFER_CHARS = 16_384;
const FLUSH_MS = 100;
const MAX_PENDING_CHARS = 4 * 1024 * 1024;

export function createLog(component: string, base: Record<string, unknown> = {}, opts: { buffered?: boolean } = {}): Logger {
  const level = process.env.LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  }
  const dest = opts.buffered ? new LineBuffer(2) : pino.destination({ dest: 2, sync: true });
  if (dest instanceof LineBuffer) process.on('exit', () => dest.flush(true)); // process.exit() and the end of the event loop alike
  const logger = pino({
    level,
    base: { component, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, dest);
  const log: Log = (fields) => {
    const { level: at = 'info', ...rest } = fields;
    logger[at](rest);
  };
  return Object.assign(log, {
    write: (line: string) => dest.write(line),
    enabled: (at: LogFields['level']) => logger.isLevelEnabled(at ?? 'info'),
  });
}

/**
 * Lines held and written together: one write per BUFFER_CHARS, or FLUSH_MS after the first line.
 * A reader that does not keep up (a full pipe) never blocks the gateway: what could not be
 * written waits for the next try, and past MAX_PENDING_CHARS new lines are dropped and counted
 * (said in the log once it flows again) — serving comes before logging, as with nginx's buffers.
 */
class LineBuffer {
  private lines: string[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes a full pipe did not take yet. */
  private stuck: Buffer | undefined;
  private dropped = 0;

  constructor(private readonly fd: number) {}

  write(line: string): boolean {
    if (this.chars >= MAX_PENDING_CHARS) {
      this.dropped++;
      return false;
    }
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BUFFER_CHARS && this.stuck === undefined) this.flush();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), FLUSH_MS).unref();
    return true;
  }

  /** Writes what it can now; the rest is tried again FLUSH_MS later (or at exit, `final`). */
  flush(final = false): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stuck !== undefined && !this.drain(this.stuck, final)) return this.retry();
    if (this.dropped > 0) {
      this.lines.push(`{"level":"warn","time":"${new Date().toISOString()}","msg":"log lines dropped: stderr was not being read fast enough","dropped":${this.dropped}}\n`);
      this.dropped = 0;
    }
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.chars = 0;
    if (!this.drain(bytes, final)) this.retry();
  }

  /** True when all of `bytes` is written; otherwise what is left is kept in `stuck`. */
  private drain(bytes: Buffer, final: boolean): boolean {
    let off = 0;
    for (let waited = 0; off < bytes.length;) {
      try {
        off += fs.writeSync(this.fd, bytes, off);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN') break; // stderr closed: nothing more can be done with this
        if (!final || waited >= 1000) {
          this.stuck = bytes.subarray(off);
          return false;
        }
        Atomics.wait(PAUSE, 0, 0, 10); // only while exiting: the last lines are worth a short wait
        waited += 10;
      }
    }
    this.stuck = undefined;
    return true;
  }

  private retry(): void {
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));
