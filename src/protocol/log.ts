// Structured log lines (pino: one JSON object per line on stderr), shared by the gateway and its
// workers so that the gateway's log reads as one stream: supervised workers inherit its stderr.
// Every line has time (ISO), level, component and msg. LOG_LEVEL=debug|info|warn|error
// (default info); any other value is refused at start.
//
// The gateway's log is buffered (`buffered`): lines are written 4 KiB at a time, or every
// FLUSH_MS when fewer come, so an access log line per call costs no write of its own; pino
// flushes what is left when the process exits. Workers write synchronously: their lines are
// few and must not be lost to a SIGKILL. A gateway killed with SIGKILL loses at most FLUSH_MS
// of its log.
import pino from 'pino';

export type LogFields = Record<string, unknown> & { level?: 'debug' | 'info' | 'warn' | 'error'; msg: string };
export type Log = (fields: LogFields) => void;
/** A Log that can also write a line already in its format (one JSON object, newline-terminated). */
export type Logger = Log & { readonly write: (line: string) => void; readonly enabled: (level: LogFields['level']) => boolean };

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const BUFFER_BYTES = 4096;
const FLUSH_MS = 100;

export function createLog(component: string, base: Record<string, unknown> = {}, opts: { buffered?: boolean } = {}): Logger {
  const level = process.env.LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  }
  const dest = pino.destination(opts.buffered ? { dest: 2, sync: false, minLength: BUFFER_BYTES } : { dest: 2, sync: true });
  if (opts.buffered) {
    setInterval(() => dest.flush(), FLUSH_MS).unref();
    process.on('exit', () => dest.flushSync()); // process.exit() and the end of the event loop alike
  }
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
