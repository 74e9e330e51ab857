// Structured log lines (one JSON object per line on stderr), shared by the gateway and its
// workers so that the gateway's log reads as one stream: workers inherit its stderr.
// LOG_LEVEL=debug|info|warn|error (default info).

export type LogFields = Record<string, unknown> & { level?: 'debug' | 'info' | 'warn' | 'error'; msg: string };
export type Log = (fields: LogFields) => void;

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

export function createLog(component: string, base: Record<string, unknown> = {}): Log {
  const min = LEVELS[(process.env.LOG_LEVEL as keyof typeof LEVELS) ?? 'info'] ?? LEVELS.info;
  return (fields) => {
    const level = fields.level ?? 'info';
    if (LEVELS[level] < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, component, ...base, ...fields })}\n`);
  };
}
