// The rules of route-key.ts and function-config.ts, compiled to the body of a SQLite trigger:
// one `SELECT CASE WHEN broken THEN RAISE(ABORT, message) … END`, whose branches are tried in
// order, so the operator's INSERT or UPDATE fails with the first broken rule, in the words the
// gateway itself uses, and later rules may assume earlier ones hold (json_valid before json_type).
// One statement rather than one per rule: each trigger statement costs a few µs per row.
//
// Limits of SQL against the TypeScript side: RAISE takes a literal on SQLite before 3.48, so
// the message cannot quote the bad value (or name an unknown field); and the JSON checks use
// json_type, which sees 5000.0 as 'real' (accepted when integral, as JSON.parse does).
// Everything here must run on SQLite 3.40 (Debian 12's sqlite3 CLI): json1, GLOB, instr.
import {
  ASYNC_FIELDS, AUTHS, CORS_FIELDS, CORS_MAX_AGE, CPU_CORES, EVENTS, FIELDS, HANDLER_MAX_CHARS, INTEGER_FIELDS, ISOLATIONS, MODES, RATE_LIMIT_FIELDS, RULES,
  RUNTIMES, TOKEN_CHARS,
} from './function-config.js';
import { FORBIDDEN_PATH_CODE_POINTS, KEY_RULE, MAX_PATH_CHARS, METHODS, PATH_RULES } from './route-key.js';

/** Statements for a trigger body on functions, reading NEW.k and NEW.v. */
export function checksSql(): string {
  const cases = [...keyChecks(), ...configChecks()]
    .map(([condition, message]) => `WHEN ${condition} THEN RAISE(ABORT, ${sqlString(message)})`);
  return `SELECT CASE\n        ${cases.join('\n        ')}\n      END;`;
}

type Check = readonly [condition: string, message: string];

function keyChecks(): Check[] {
  const colon = "instr(NEW.k, ':')";
  const path = `substr(NEW.k, ${colon} + 1)`;
  // char(0) would cut the pattern short; a NUL cannot reach a key through SQL text anyway.
  const forbidden = `'*[' || char(${FORBIDDEN_PATH_CODE_POINTS.filter((c) => c > 0).join(', ')}) || ']*'`;
  return [
    [`typeof(NEW.k) <> 'text' OR NOT ${anyOf(`substr(NEW.k, 1, ${colon} - 1)`, METHODS)}`, `functions.k must be ${KEY_RULE}`],
    [`NOT ${path} GLOB '/*'`, `functions.k path ${PATH_RULES.slash}`],
    [`length(${path}) > ${MAX_PATH_CHARS}`, `functions.k path ${PATH_RULES.length}`],
    [`instr(${path}, '?') > 0`, `functions.k path ${PATH_RULES.query}`],
    [`instr(${path}, '#') > 0`, `functions.k path ${PATH_RULES.fragment}`],
    [`${path} GLOB ${forbidden}`, `functions.k path ${PATH_RULES.chars}`],
  ];
}

function configChecks(): Check[] {
  const integers = Object.entries(INTEGER_FIELDS).map(([field, { min, max }]): Check => [
    `${present(field)} AND NOT (${isInteger(`$.${field}`)} AND ${value(field)} BETWEEN ${min} AND ${max})`,
    `v.${field} ${RULES.integer(min, max)}`,
  ]);
  const envEntries = "json_each(NEW.v, '$.env')";
  const rateLimit = "json_each(NEW.v, '$.rate_limit')";
  return [
    ["typeof(NEW.v) <> 'text' OR NOT json_valid(NEW.v)", `v ${RULES.json}`],
    ["json_type(NEW.v) <> 'object'", `v ${RULES.object}`],
    [`EXISTS (SELECT 1 FROM json_each(NEW.v) WHERE NOT ${anyOf('key', FIELDS)})`, `v has a field that ${RULES.unknown} (check the spelling); ${RULES.allowed}`],
    [`NOT ${present('runtime')}`, `v.runtime is required and ${RULES.runtime}`],
    [`NOT (${isText('runtime')} AND ${anyOf(value('runtime'), RUNTIMES)})`, `v.runtime ${RULES.runtime}`],
    [`${present('mode')} AND NOT (${isText('mode')} AND ${anyOf(value('mode'), MODES)})`, `v.mode ${RULES.mode}`],
    [`NOT ${present('code')} AND NOT ${present('path')}`, `v ${RULES.source}; it has neither`],
    [`${present('code')} AND ${present('path')}`, `v ${RULES.source}; it has both`],
    [`${present('code')} AND NOT (${isText('code')} AND length(${value('code')}) > 0)`, `v.code ${RULES.code}`],
    [`${present('path')} AND NOT (${isText('path')} AND ${value('path')} GLOB '/*')`, `v.path ${RULES.path}`],
    [`${present('image')} AND NOT (${isText('image')} AND (${value('image')} GLOB '/*'
        OR (${value('image')} GLOB '[A-Za-z0-9]*' AND NOT ${value('image')} GLOB '*[^A-Za-z0-9._/:@-]*' AND length(${value('image')}) <= 255)))`, `v.image ${RULES.image}`],
    [`${present('image')} AND NOT (${isText('mode')} AND ${value('mode')} = 'container')`, `v.image ${RULES.imageMode}`],
    [`${present('isolation')} AND NOT (${isText('isolation')} AND ${anyOf(value('isolation'), ISOLATIONS)})`, `v.isolation ${RULES.isolation}`],
    [`${present('isolation')} AND NOT (${isText('mode')} AND ${value('mode')} = 'container')`, `v.isolation ${RULES.isolationMode}`],
    [`${present('cpu')} AND NOT (${hasType('$.cpu', 'integer', 'real')} AND ${value('cpu')} BETWEEN ${CPU_CORES.min} AND ${CPU_CORES.max})`, `v.cpu ${RULES.cpu}`],
    [`${value('mode')} = 'thread' AND ${value('runtime')} <> 'wasm'`, `v.mode ${RULES.threadMode}`],
    [`${present('handler')} AND NOT (${isText('handler')} AND ${value('handler')} GLOB '[A-Za-z_$]*'
        AND NOT ${value('handler')} GLOB '*[^A-Za-z0-9_$]*' AND length(${value('handler')}) <= ${HANDLER_MAX_CHARS})`, `v.handler ${RULES.handler}`],
    ...integers,
    [`${present('env')} AND json_type(NEW.v, '$.env') <> 'object'`, `v.env ${RULES.env}`],
    [`EXISTS (SELECT 1 FROM ${envEntries} WHERE NOT (key GLOB '[A-Za-z_]*' AND NOT key GLOB '*[^A-Za-z0-9_]*'))`, `v.env has an invalid name: ${RULES.envName}`],
    [`EXISTS (SELECT 1 FROM ${envEntries} WHERE type <> 'text')`, `v.env ${RULES.env}`],
    [`${present('auth')} AND NOT (${isText('auth')} AND ${anyOf(value('auth'), AUTHS)})`, `v.auth ${RULES.auth}`],
    [`${present('rate_limit')} AND (json_type(NEW.v, '$.rate_limit') <> 'object'
        OR EXISTS (SELECT 1 FROM ${rateLimit} WHERE NOT ${anyOf('key', RATE_LIMIT_FIELDS)}))`, `v.rate_limit ${RULES.rateLimit}`],
    [`${present('rate_limit')} AND NOT (${hasType('$.rate_limit.rps', 'integer', 'real')} AND ${value('rate_limit.rps')} > 0)`, `v.rate_limit.rps ${RULES.rps}`],
    [`${present('rate_limit')} AND NOT (${isInteger('$.rate_limit.burst')} AND ${value('rate_limit.burst')} >= 1)`, `v.rate_limit.burst ${RULES.burst}`],
    [`${present('event')} AND NOT (${isText('event')} AND ${anyOf(value('event'), EVENTS)})`, `v.event ${RULES.event}`],
    ...corsChecks(),
    ...asyncChecks(),
  ];
}

/** `async`: an object of known fields, each an integer in its range. */
function asyncChecks(): Check[] {
  return [
    [`${present('async')} AND (json_type(NEW.v, '$.async') <> 'object'
        OR EXISTS (SELECT 1 FROM json_each(NEW.v, '$.async') WHERE NOT ${anyOf('key', Object.keys(ASYNC_FIELDS))}))`, `v.async ${RULES.async}`],
    ...Object.entries(ASYNC_FIELDS).map(([field, { min, max }]): Check => [
      `${present(`async.${field}`)} AND NOT (${isInteger(`$.async.${field}`)} AND ${value(`async.${field}`)} BETWEEN ${min} AND ${max})`,
      `v.async.${field} ${RULES.integer(min, max)}`,
    ]),
  ];
}

/**
 * `cors`. An origin is checked by its characters (scheme letters, then "://", then a host and
 * port of letters, digits and . : [ ] -, so no path): "https://a:b" passes here and is refused
 * by the gateway (GET /routes), which checks the whole shape.
 */
function corsChecks(): Check[] {
  const list = (field: string): string => `json_each(NEW.v, '$.cors.${field}')`;
  const isList = (field: string, nonEmpty: boolean): string =>
    `json_type(NEW.v, '$.cors.${field}') = 'array'${nonEmpty ? ` AND json_array_length(NEW.v, '$.cors.${field}') > 0` : ''}`;
  const scheme = "substr(value, 1, instr(value, '://') - 1)";
  const rest = "substr(value, instr(value, '://') + 3)";
  // A GLOB class takes "]" first and "-" last as themselves.
  const origin = `(value = '*' OR (value GLOB '[A-Za-z]*://?*' AND NOT ${scheme} GLOB '*[^A-Za-z0-9+.-]*' AND NOT ${rest} GLOB '*[^]A-Za-z0-9.:[-]*'))`;
  return [
    [`${present('cors')} AND (json_type(NEW.v, '$.cors') <> 'object'
        OR EXISTS (SELECT 1 FROM json_each(NEW.v, '$.cors') WHERE NOT ${anyOf('key', CORS_FIELDS)}))`, `v.cors ${RULES.cors}`],
    [`${present('cors')} AND NOT ${present('cors.origins')}`, `v.cors.origins is required and ${RULES.corsOrigins}`],
    [`${present('cors.origins')} AND NOT (${isList('origins', true)}
        AND NOT EXISTS (SELECT 1 FROM ${list('origins')} WHERE NOT (type = 'text' AND ${origin})))`, `v.cors.origins ${RULES.corsOrigins}`],
    [`${present('cors.methods')} AND NOT (${isList('methods', true)}
        AND NOT EXISTS (SELECT 1 FROM ${list('methods')} WHERE NOT (type = 'text' AND ${anyOf('value', METHODS)})))`, `v.cors.methods ${RULES.corsMethods}`],
    [`${present('cors.headers')} AND NOT (${isList('headers', false)} AND NOT EXISTS (SELECT 1 FROM ${list('headers')}
        WHERE NOT (type = 'text' AND length(value) > 0 AND NOT value GLOB ${sqlString(`*[^${TOKEN_CHARS}]*`)})))`, `v.cors.headers ${RULES.corsHeaders}`],
    [`${present('cors.max_age')} AND NOT (${isInteger('$.cors.max_age')} AND ${value('cors.max_age')} BETWEEN ${CORS_MAX_AGE.min} AND ${CORS_MAX_AGE.max})`,
      `v.cors.max_age ${RULES.integer(CORS_MAX_AGE.min, CORS_MAX_AGE.max)}`],
    [`${present('cors.credentials')} AND NOT ${hasType('$.cors.credentials', 'true', 'false')}`, `v.cors.credentials ${RULES.corsCredentials}`],
    [`json_type(NEW.v, '$.cors.credentials') = 'true' AND EXISTS (SELECT 1 FROM ${list('origins')} WHERE value = '*')`,
      `v.cors.credentials ${RULES.corsCredentialsAny}`],
  ];
}

/** Set to something other than JSON null (null means "use the default", as in function-config.ts). */
const present = (field: string): string => `coalesce(json_type(NEW.v, '$.${field}'), 'null') <> 'null'`;
const value = (field: string): string => `json_extract(NEW.v, '$.${field}')`;
const hasType = (path: string, ...types: string[]): string => anyOf(`coalesce(json_type(NEW.v, '${path}'), '')`, types);
const isText = (field: string): string => hasType(`$.${field}`, 'text');
const isInteger = (path: string): string =>
  `${hasType(path, 'integer', 'real')} AND json_extract(NEW.v, '${path}') = CAST(json_extract(NEW.v, '${path}') AS INTEGER)`;

/**
 * `(x = 'a' OR x = 'b')`, not `x IN ('a', 'b')`: inside a trigger SQLite builds an ephemeral
 * table for an IN list on every row, in a temp file unless temp_store=MEMORY (4x slower inserts).
 */
const anyOf = (expr: string, values: readonly string[]): string => `(${values.map((v) => `${expr} = ${sqlString(v)}`).join(' OR ')})`;

/** A SQL string literal. */
export function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
