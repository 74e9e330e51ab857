// A route key is the `k` column of the functions table: 'METHOD:/path' (CONTRACT §2), matched
// exactly against the request's method and path (the query string is never part of it, §4).
//
// The rules live here once; schema.ts turns the same constants into the SQL triggers, so what the
// operator's INSERT is refused for and what the gateway skips stay in step.

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type Method = (typeof METHODS)[number];

export const MAX_PATH_CHARS = 2048;

/**
 * Code points a path must not contain besides '?' and '#': ASCII controls, space, DEL, the C1
 * controls, and the Unicode spaces. A key holding one of them could never equal a request path.
 */
export const FORBIDDEN_PATH_CODE_POINTS: readonly number[] = [
  ...range(0x00, 0x20), 0x7f, ...range(0x80, 0x9f), 0xa0, 0x1680, ...range(0x2000, 0x200a),
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff,
];

export const KEY_RULE = `'METHOD:/path' with METHOD in upper case, one of ${METHODS.join(', ')}`;
export const PATH_RULES = {
  slash: 'must start with "/"',
  length: `must be at most ${MAX_PATH_CHARS} characters`,
  query: 'must not contain "?": the query string is not part of the key',
  fragment: 'must not contain "#"',
  chars: 'must not contain whitespace or control characters',
} as const;

export type RouteKeyResult =
  | { readonly ok: true; readonly method: Method; readonly path: string }
  | { readonly ok: false; readonly error: string };

const METHOD_SET: ReadonlySet<string> = new Set(METHODS);
const FORBIDDEN = new RegExp(`[${FORBIDDEN_PATH_CODE_POINTS.map((c) => `\\u{${c.toString(16)}}`).join('')}]`, 'u');

export function parseRouteKey(k: string): RouteKeyResult {
  const colon = k.indexOf(':');
  const method = colon < 0 ? '' : k.slice(0, colon);
  if (!METHOD_SET.has(method)) return fail(`functions.k must be ${KEY_RULE}`, k);
  const path = k.slice(colon + 1);
  const broken = pathProblem(path);
  if (broken !== undefined) return fail(`functions.k path ${broken}`, k);
  return { ok: true, method: method as Method, path };
}

function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return PATH_RULES.slash;
  // Counted in code points, as SQLite's length() counts characters.
  if (path.length > MAX_PATH_CHARS && [...path].length > MAX_PATH_CHARS) return PATH_RULES.length;
  if (path.includes('?')) return PATH_RULES.query;
  if (path.includes('#')) return PATH_RULES.fragment;
  if (FORBIDDEN.test(path)) return PATH_RULES.chars;
  return undefined;
}

function fail(message: string, k: string): RouteKeyResult {
  return { ok: false, error: `${message} (got ${quote(k)})` };
}

/** JSON-quotes a value for an error message, cut to a readable length. */
export function quote(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
