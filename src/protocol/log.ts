// Structured log lines (pino: one JSON object per line on stderr), shared by the gateway and its
// workers so that the gateway's log reads as one stream: supervised workers inherit its stderr.
// Every line has time (ISO), level, component and msg. LOG_LEVEL=debug|info|warn|error
// (default info); any other value is refused at start.
//
// The gateway writes asynchronously (`buffered`: lines written while a write is in flight go
// out together, so an access log line per call costs no syscall of its own under load); pino
// flushes what is left when the process exits. Workers write synchronously: their lines are
// few and must not be lost to a SIGKILL.
import pino from 'pino';

export type LogFields = Record<string, unknown> & { level?: 'debug' | 'info' | 'warn' | 'error'; msg: string };
export type Log = (fields: LogFields) => void;

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export function createLog(component: string, base: Record<string, unknown> = {}, opts: { buffered?: boolean } = {}): Log {
  const level = process.env.LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new Error(`LOG_LEVEL must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(level)})`);
  }
  const logger = pino({
    level,
    base: { component, ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, pino.destination({ dest: 2, sync: !opts.buffered }));
  return (fields) => {
    const { level: at = 'info', ...rest } = fields;
    logger[at](rest);
  };
}
