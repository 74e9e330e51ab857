// The rules of route-key.ts and function-config.ts, compiled to SQL for the functions table's
// triggers in both places an operator writes rows: SQLite (one node, schema.ts) and PostgreSQL
// (several nodes, src/cluster/pg-schema.ts). One list of [condition, message], written against a
// small Dialect, so the two databases refuse the same rows in the same words as the gateway
// itself (test/unit/pg-schema.test.ts runs one corpus through both and compares).
//
// SQLite: one `SELECT CASE WHEN broken THEN RAISE(ABORT, message) … END`, whose branches are tried
// in order, so the INSERT or UPDATE fails with the first broken rule, and later rules may assume
// earlier ones hold (json_valid before json_type). One statement rather than one per rule: each
// trigger statement costs a few µs per row. PostgreSQL: the same order as IF … ELSIF … RAISE in a
// PL/pgSQL trigger function, over helper functions that give jsonb SQLite's JSON vocabulary.
//
// Limits of SQL against the TypeScript side: RAISE takes a literal on SQLite before 3.48, so
// the message cannot quote the bad value (or name an unknown field); and the JSON checks see
// 5000.0 as 'real' (accepted when integral, as JSON.parse does).
// Everything here must run on SQLite 3.40 (Debian 12's sqlite3 CLI): json1, GLOB, instr.
import {
  ASYNC_FIELDS, AUTHS, CORS_FIELDS, CORS_MAX_AGE, CPU_CORES, DEPENDENCIES_FIELDS, DEPENDENCY_RUNTIMES, EVENTS, FIELDS, HANDLER_MAX_CHARS, INTEGER_FIELDS, ISOLATIONS, MODES, RATE_LIMIT_FIELDS, RULES,
  RUNTIMES, TOKEN_CHARS,
} from './function-config.js';
import { FORBIDDEN_PATH_CODE_POINTS, KEY_RULE, MAX_PATH_CHARS, METHODS, PATH_RULES } from './route-key.js';

/** What differs between SQLite and PostgreSQL in the checks; every JSON path is SQLite's ('$.a.b'). */
interface Dialect {
  /** The value is missing or not a string (NEW.k). */
  notText(expr: string): string;
  /** 1-based position of `needle` in `expr`, 0 when absent. */
  instr(expr: string, needle: string): string;
  /** The first `length` characters of `expr`; empty when `length` < 1 (PostgreSQL's substr refuses a negative length). */
  head(expr: string, length: string): string;
  /** `expr` matches the GLOB pattern (*, ?, [...], [^...]; no escapes). */
  glob(expr: string, pattern: string): string;
  /** NEW.v is a string holding valid JSON. */
  jsonValid: string;
  /** SQLite's json_type of NEW.v at `path`: null, true, false, integer, real, text, array, object; SQL NULL when absent. */
  type(path: string): string;
  /** The string at `path` (text), for text comparisons. */
  text(path: string): string;
  /** The number at `path`, for numeric comparisons. */
  num(path: string): string;
  /** A row source with columns key, value (a string's text) and type (json_type's words), over the object or array at `path`. */
  each(path: string): string;
  arrayLength(path: string): string;
  /** The number at `path` has no fraction (it is known to be a number). */
  integral(path: string): string;
  string(text: string): string;
}

const SQLITE: Dialect = {
  notText: (e) => `typeof(${e}) <> 'text'`,
  instr: (e, n) => `instr(${e}, ${n})`,
  head: (e, length) => `substr(${e}, 1, ${length})`,
  glob: (e, pattern) => `${e} GLOB ${sqliteString(pattern)}`,
  jsonValid: "typeof(NEW.v) = 'text' AND json_valid(NEW.v)",
  type: (path) => (path === '$' ? 'json_type(NEW.v)' : `json_type(NEW.v, '${path}')`),
  text: (path) => `json_extract(NEW.v, '${path}')`,
  num: (path) => `json_extract(NEW.v, '${path}')`,
  each: (path) => (path === '$' ? 'json_each(NEW.v)' : `json_each(NEW.v, '${path}')`),
  arrayLength: (path) => `json_array_length(NEW.v, '${path}')`,
  integral: (path) => `json_extract(NEW.v, '${path}') = CAST(json_extract(NEW.v, '${path}') AS INTEGER)`,
  string: sqliteString,
};

/** The helper functions PG_HELPERS_SQL creates, over NEW.v as text. */
const POSTGRES: Dialect = {
  notText: (e) => `${e} IS NULL`,
  instr: (e, n) => `strpos(${e}, ${n})`,
  head: (e, length) => `substr(${e}, 1, greatest(${length}, 0))`,
  glob: (e, pattern) => `${e} ~ ${pgString(globToRegex(pattern))}`,
  jsonValid: 'faas_json_valid(NEW.v)',
  type: (path) => `faas_json_type(NEW.v, '${path}')`,
  text: (path) => `faas_json_text(NEW.v, '${path}')`,
  num: (path) => `faas_json_num(NEW.v, '${path}')`,
  each: (path) => `faas_json_each(NEW.v, '${path}')`,
  arrayLength: (path) => `faas_json_array_length(NEW.v, '${path}')`,
  integral: (path) => `faas_json_num(NEW.v, '${path}') = trunc(faas_json_num(NEW.v, '${path}'))`,
  string: pgString,
};

/** Statements for a SQLite trigger body on functions, reading NEW.k and NEW.v. */
export function checksSql(): string {
  const cases = checks(SQLITE).map(([condition, message]) => `WHEN ${condition} THEN RAISE(ABORT, ${sqliteString(message)})`);
  return `SELECT CASE\n        ${cases.join('\n        ')}\n      END;`;
}

/** The body of a PL/pgSQL trigger function on functions: the same rules in the same order, as check_violation errors. */
export function checksPlpgsql(): string {
  const branches = checks(POSTGRES).map(([condition, message], i) =>
    `${i === 0 ? 'IF' : 'ELSIF'} ${condition} THEN\n    RAISE EXCEPTION USING ERRCODE = 'check_violation', MESSAGE = ${pgString(message)};`);
  return `${branches.join('\n  ')}\n  END IF;`;
}

type Check = readonly [condition: string, message: string];

function checks(d: Dialect): Check[] {
  return [...keyChecks(d), ...configChecks(d)];
}

function keyChecks(d: Dialect): Check[] {
  const colon = d.instr('NEW.k', "':'");
  const path = `substr(NEW.k, ${colon} + 1)`;
  const forbidden = `*[${String.fromCodePoint(...FORBIDDEN_PATH_CODE_POINTS.filter((c) => c > 0))}]*`;
  return [
    [`${d.notText('NEW.k')} OR NOT ${anyOf(d, d.head('NEW.k', `${colon} - 1`), METHODS)}`, `functions.k must be ${KEY_RULE}`],
    [`NOT ${d.glob(path, '/*')}`, `functions.k path ${PATH_RULES.slash}`],
    [`length(${path}) > ${MAX_PATH_CHARS}`, `functions.k path ${PATH_RULES.length}`],
    [`${d.instr(path, "'?'")} > 0`, `functions.k path ${PATH_RULES.query}`],
    [`${d.instr(path, "'#'")} > 0`, `functions.k path ${PATH_RULES.fragment}`],
    [d.glob(path, forbidden), `functions.k path ${PATH_RULES.chars}`],
  ];
}

function configChecks(d: Dialect): Check[] {
  const present = (field: string): string => `coalesce(${d.type(`$.${field}`)}, 'null') <> 'null'`;
  const hasType = (path: string, ...types: string[]): string => anyOf(d, `coalesce(${d.type(path)}, '')`, types);
  const isText = (field: string): string => hasType(`$.${field}`, 'text');
  const isInteger = (path: string): string => `${hasType(path, 'integer', 'real')} AND ${d.integral(path)}`;
  const text = (field: string): string => d.text(`$.${field}`);
  const num = (field: string): string => d.num(`$.${field}`);
  const integers = Object.entries(INTEGER_FIELDS).map(([field, { min, max }]): Check => [
    `${present(field)} AND NOT (${isInteger(`$.${field}`)} AND ${num(field)} BETWEEN ${min} AND ${max})`,
    `v.${field} ${RULES.integer(min, max)}`,
  ]);
  const envEntries = d.each('$.env');
  const rateLimit = d.each('$.rate_limit');
  const image = text('image');
  const handler = text('handler');
  return [
    [`NOT (${d.jsonValid})`, `v ${RULES.json}`],
    [`${d.type('$')} <> 'object'`, `v ${RULES.object}`],
    [`EXISTS (SELECT 1 FROM ${d.each('$')} WHERE NOT ${anyOf(d, 'key', FIELDS)})`, `v has a field that ${RULES.unknown} (check the spelling); ${RULES.allowed}`],
    [`NOT ${present('runtime')}`, `v.runtime is required and ${RULES.runtime}`],
    [`NOT (${isText('runtime')} AND ${anyOf(d, text('runtime'), RUNTIMES)})`, `v.runtime ${RULES.runtime}`],
    [`${present('mode')} AND NOT (${isText('mode')} AND ${anyOf(d, text('mode'), MODES)})`, `v.mode ${RULES.mode}`],
    [`NOT ${present('code')} AND NOT ${present('path')}`, `v ${RULES.source}; it has neither`],
    [`${present('code')} AND ${present('path')}`, `v ${RULES.source}; it has both`],
    [`${present('code')} AND NOT (${isText('code')} AND length(${text('code')}) > 0)`, `v.code ${RULES.code}`],
    [`${present('path')} AND NOT (${isText('path')} AND ${d.glob(text('path'), '/*')})`, `v.path ${RULES.path}`],
    [`${present('image')} AND NOT (${isText('image')} AND (${d.glob(image, '/*')}
        OR (${d.glob(image, '[A-Za-z0-9]*')} AND NOT ${d.glob(image, '*[^A-Za-z0-9._/:@-]*')} AND length(${image}) <= 255)))`, `v.image ${RULES.image}`],
    [`${present('image')} AND NOT (${isText('mode')} AND ${text('mode')} = 'container')`, `v.image ${RULES.imageMode}`],
    [`${present('isolation')} AND NOT (${isText('isolation')} AND ${anyOf(d, text('isolation'), ISOLATIONS)})`, `v.isolation ${RULES.isolation}`],
    [`${present('isolation')} AND NOT (${isText('mode')} AND ${text('mode')} = 'container')`, `v.isolation ${RULES.isolationMode}`],
    [`${present('cpu')} AND NOT (${hasType('$.cpu', 'integer', 'real')} AND ${num('cpu')} BETWEEN ${CPU_CORES.min} AND ${CPU_CORES.max})`, `v.cpu ${RULES.cpu}`],
    [`${text('mode')} = 'thread' AND ${text('runtime')} <> 'wasm'`, `v.mode ${RULES.threadMode}`],
    [`${present('handler')} AND NOT (${isText('handler')} AND ${d.glob(handler, '[A-Za-z_$]*')}
        AND NOT ${d.glob(handler, '*[^A-Za-z0-9_$]*')} AND length(${handler}) <= ${HANDLER_MAX_CHARS})`, `v.handler ${RULES.handler}`],
    [`${present('handler')} AND ${text('runtime')} = 'go' AND NOT (${d.glob(handler, '[A-Z]*')} AND NOT ${d.glob(handler, '*[^A-Za-z0-9_]*')})`,
      `v.handler ${RULES.goHandler}`],
    ...integers,
    [`${present('env')} AND ${d.type('$.env')} <> 'object'`, `v.env ${RULES.env}`],
    [`EXISTS (SELECT 1 FROM ${envEntries} WHERE NOT (${d.glob('key', '[A-Za-z_]*')} AND NOT ${d.glob('key', '*[^A-Za-z0-9_]*')}))`, `v.env has an invalid name: ${RULES.envName}`],
    [`EXISTS (SELECT 1 FROM ${envEntries} WHERE type <> 'text')`, `v.env ${RULES.env}`],
    [`${present('auth')} AND NOT (${isText('auth')} AND ${anyOf(d, text('auth'), AUTHS)})`, `v.auth ${RULES.auth}`],
    [`${present('rate_limit')} AND (${d.type('$.rate_limit')} <> 'object'
        OR EXISTS (SELECT 1 FROM ${rateLimit} WHERE NOT ${anyOf(d, 'key', RATE_LIMIT_FIELDS)}))`, `v.rate_limit ${RULES.rateLimit}`],
    [`${present('rate_limit')} AND NOT (${hasType('$.rate_limit.rps', 'integer', 'real')} AND ${num('rate_limit.rps')} > 0)`, `v.rate_limit.rps ${RULES.rps}`],
    [`${present('rate_limit')} AND NOT (${isInteger('$.rate_limit.burst')} AND ${num('rate_limit.burst')} >= 1)`, `v.rate_limit.burst ${RULES.burst}`],
    [`${present('event')} AND NOT (${isText('event')} AND ${anyOf(d, text('event'), EVENTS)})`, `v.event ${RULES.event}`],
    ...corsChecks(d, present, isInteger, hasType),
    ...asyncChecks(d, present, isInteger),
    [`${present('dependencies')} AND (${d.type('$.dependencies')} <> 'object'
        OR EXISTS (SELECT 1 FROM ${d.each('$.dependencies')} WHERE NOT ${anyOf(d, 'key', DEPENDENCIES_FIELDS)}))`, `v.dependencies ${RULES.dependencies}`],
    [`${present('dependencies.scripts')} AND NOT ${hasType('$.dependencies.scripts', 'true', 'false')}`, `v.dependencies.scripts ${RULES.dependenciesScripts}`],
    [`${present('dependencies')} AND NOT ${anyOf(d, text('runtime'), DEPENDENCY_RUNTIMES)}`, `v.dependencies ${RULES.dependenciesRuntime}`],
  ];
}

type Field = (field: string) => string;
type TypeCheck = (path: string, ...types: string[]) => string;

/** `async`: an object of known fields, each an integer in its range. */
function asyncChecks(d: Dialect, present: Field, isInteger: Field): Check[] {
  return [
    [`${present('async')} AND (${d.type('$.async')} <> 'object'
        OR EXISTS (SELECT 1 FROM ${d.each('$.async')} WHERE NOT ${anyOf(d, 'key', Object.keys(ASYNC_FIELDS))}))`, `v.async ${RULES.async}`],
    ...Object.entries(ASYNC_FIELDS).map(([field, { min, max }]): Check => [
      `${present(`async.${field}`)} AND NOT (${isInteger(`$.async.${field}`)} AND ${d.num(`$.async.${field}`)} BETWEEN ${min} AND ${max})`,
      `v.async.${field} ${RULES.integer(min, max)}`,
    ]),
  ];
}

/**
 * `cors`. An origin is checked by its characters (scheme letters, then "://", then a host and
 * port of letters, digits and . : [ ] -, so no path): "https://a:b" passes here and is refused
 * by the gateway (GET /routes), which checks the whole shape.
 */
function corsChecks(d: Dialect, present: Field, isInteger: Field, hasType: TypeCheck): Check[] {
  const list = (field: string): string => d.each(`$.cors.${field}`);
  const isList = (field: string, nonEmpty: boolean): string =>
    `${d.type(`$.cors.${field}`)} = 'array'${nonEmpty ? ` AND ${d.arrayLength(`$.cors.${field}`)} > 0` : ''}`;
  const scheme = d.head('value', `${d.instr('value', "'://'")} - 1`);
  const rest = `substr(value, ${d.instr('value', "'://'")} + 3)`;
  // A GLOB class takes "]" first and "-" last as themselves.
  const origin = `(value = '*' OR (${d.glob('value', '[A-Za-z]*://?*')} AND NOT ${d.glob(scheme, '*[^A-Za-z0-9+.-]*')} AND NOT ${d.glob(rest, '*[^]A-Za-z0-9.:[-]*')}))`;
  return [
    [`${present('cors')} AND (${d.type('$.cors')} <> 'object'
        OR EXISTS (SELECT 1 FROM ${d.each('$.cors')} WHERE NOT ${anyOf(d, 'key', CORS_FIELDS)}))`, `v.cors ${RULES.cors}`],
    [`${present('cors')} AND NOT ${present('cors.origins')}`, `v.cors.origins is required and ${RULES.corsOrigins}`],
    [`${present('cors.origins')} AND NOT (${isList('origins', true)}
        AND NOT EXISTS (SELECT 1 FROM ${list('origins')} WHERE NOT (type = 'text' AND ${origin})))`, `v.cors.origins ${RULES.corsOrigins}`],
    [`${present('cors.methods')} AND NOT (${isList('methods', true)}
        AND NOT EXISTS (SELECT 1 FROM ${list('methods')} WHERE NOT (type = 'text' AND ${anyOf(d, 'value', METHODS)})))`, `v.cors.methods ${RULES.corsMethods}`],
    [`${present('cors.headers')} AND NOT (${isList('headers', false)} AND NOT EXISTS (SELECT 1 FROM ${list('headers')}
        WHERE NOT (type = 'text' AND length(value) > 0 AND NOT ${d.glob('value', `*[^${TOKEN_CHARS}]*`)})))`, `v.cors.headers ${RULES.corsHeaders}`],
    [`${present('cors.max_age')} AND NOT (${isInteger('$.cors.max_age')} AND ${d.num('$.cors.max_age')} BETWEEN ${CORS_MAX_AGE.min} AND ${CORS_MAX_AGE.max})`,
      `v.cors.max_age ${RULES.integer(CORS_MAX_AGE.min, CORS_MAX_AGE.max)}`],
    [`${present('cors.credentials')} AND NOT ${hasType('$.cors.credentials', 'true', 'false')}`, `v.cors.credentials ${RULES.corsCredentials}`],
    [`${d.type('$.cors.credentials')} = 'true' AND EXISTS (SELECT 1 FROM ${list('origins')} WHERE value = '*')`,
      `v.cors.credentials ${RULES.corsCredentialsAny}`],
  ];
}

/**
 * `(x = 'a' OR x = 'b')`, not `x IN ('a', 'b')`: inside a trigger SQLite builds an ephemeral
 * table for an IN list on every row, in a temp file unless temp_store=MEMORY (4x slower inserts).
 */
const anyOf = (d: Dialect, expr: string, values: readonly string[]): string => `(${values.map((v) => `${expr} = ${d.string(v)}`).join(' OR ')})`;

/** A SQLite string literal; control characters as char(n), so the SQL text stays printable. */
export function sqliteString(text: string): string {
  const parts = text.split(/([\x01-\x1f\x7f])/).map((part, i) => (i % 2 === 1 ? `char(${part.codePointAt(0)})` : `'${part.replaceAll("'", "''")}'`));
  return parts.length === 1 ? parts[0]! : `(${parts.filter((p) => p !== "''").join(' || ')})`;
}

/** A PostgreSQL string literal (standard_conforming_strings: a backslash is itself). */
export function pgString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * A GLOB pattern as an anchored PostgreSQL regular expression (ARE): * and ? as .* and ., a class
 * as a class (GLOB's [^ is ARE's [^), everything else literal. Inside a class ARE treats \ and [
 * specially, so they are escaped; characters outside printable ASCII become \uXXXX.
 */
export function globToRegex(glob: string): string {
  let out = '^';
  const escape = (ch: string): string => {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code > 0x7e) return `\\u${code.toString(16).padStart(4, '0')}`;
    return ch;
  };
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else if (ch === '[') {
      let j = i + 1;
      let cls = '[';
      if (glob[j] === '^') { cls += '^'; j++; }
      if (glob[j] === ']') { cls += '\\]'; j++; }
      for (; j < glob.length && glob[j] !== ']'; j++) {
        const c = glob[j]!;
        cls += c === '\\' || c === '[' ? `\\${c}` : escape(c);
      }
      if (j >= glob.length) throw new Error(`unterminated class in GLOB pattern ${JSON.stringify(glob)}`);
      out += `${cls}]`;
      i = j;
    } else out += /[.^$|()+{}\\\]]/.test(ch) ? `\\${ch}` : escape(ch);
  }
  return `${out}$`;
}
