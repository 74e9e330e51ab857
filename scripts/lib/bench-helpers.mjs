// What the benchmark scripts share: parsing wrk's output, the median they report, quoting the
// command they print, the seeded random source that makes their arrivals repeatable, and
// reading their flags.

const UNIT_US = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/** Parses wrk 4.x output (run with --latency). Latencies in µs. Throws if a needed line is missing. */
export function parseWrk(text) {
  const num = (re, what) => {
    const m = re.exec(text);
    if (!m) throw new Error(`wrk output has no ${what} line:\n${text}`);
    return Number(m[1]);
  };
  const dist = text.indexOf('Latency Distribution');
  if (dist < 0) throw new Error(`wrk output has no "Latency Distribution" section (was --latency given?):\n${text}`);
  const tail = text.slice(dist);
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(tail);
    if (!m) throw new Error(`wrk output has no ${p}% latency line:\n${text}`);
    return Number(m[1]) * UNIT_US[m[2]];
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : { connect: 0, read: 0, write: 0, timeout: 0 };
  return {
    rps: num(/^Requests\/sec:\s+([\d.]+)\s*$/m, 'Requests/sec'),
    requests: num(/^\s*(\d+) requests in /m, '"N requests in"'),
    p50: pct(50),
    p75: pct(75),
    p90: pct(90),
    p99: pct(99),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors,
  };
}

/** Median of the finite values; NaN when there are none. */
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `a` as a POSIX shell word, for printing the exact command a table came from. */
export function shellQuote(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** A deterministic random source in [0, 1) (mulberry32): the same seed, the same sequence. */
export function seeded(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A bad command line: the scripts print its message and their usage, and exit non-zero. */
export class UsageError extends Error {}

/**
 * Walks a command line of `--flag value` and `--flag=value`: calls take(flag, value) once per
 * flag, where value() reads that flag's value (and throws UsageError when there is none).
 */
export function eachFlag(argv, take) {
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let inline;
    if (flag.startsWith('--') && flag.includes('=')) [flag, inline] = [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    take(flag, value);
  }
}

/**
 * A script's flags, read by parse(); on a bad command line, the way out: prints `script: message`
 * (and, for a UsageError, usage()) and exits 64 (EX_USAGE).
 */
export function parseFlagsOrExit(script, parse, usage) {
  try {
    return parse();
  } catch (err) {
    process.stderr.write(`${script}: ${err.message}\n${err instanceof UsageError ? usage() + '\n' : ''}`);
    process.exit(64);
  }
}

/** A flag's value as an integer from min to max; otherwise a UsageError naming the flag and the range. */
export function intFlag(flag, raw, min, max) {
  const n = Number(raw);
  if (!/^\d+$/.test(String(raw).trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

/** The port a server child (the gateway, bare-uws.mjs) prints on stdout as `listening http=PORT`; rejects if it exits first. */
export function listeningPort(child, what = 'the gateway') {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening http=(\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening`)));
  });
}
