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

export function createLog(component: string, base: Record<string, unknown> = {}, opts: { buffered?: boolean } = {}): Logger {
  const level = process.env.LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  }
  const dest = opts.buffered ? new LineBuffer(2) : pino.destination({ dest: 2, sync: true });
  if (dest instanceof LineBuffer) process.on('exit', () => dest.flush()); // process.exit() and the end of the event loop alike
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

/** Lines held and written together: one write per BUFFER_CHARS, or FLUSH_MS after the first line. */
class LineBuffer {
  private lines: string[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly fd: number) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BUFFER_CHARS) this.flush();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), FLUSH_MS).unref();
    return true;
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.chars = 0;
    writeAll(this.fd, bytes);
  }
}

/** Writes all of `bytes`, waiting out a full pipe (EAGAIN) for up to a second; a log that cannot be written is dropped. */
function writeAll(fd: number, bytes: Buffer): void {
  let off = 0;
  for (let waited = 0; off < bytes.length;) {
    try {
      off += fs.writeSync(fd, bytes, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || waited >= 1000) return;
      Atomics.wait(PAUSE, 0, 0, 10);
      waited += 10;
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));
