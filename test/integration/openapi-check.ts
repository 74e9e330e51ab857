// Checks real answers against the OpenAPI document (src/http/openapi.ts): the status must be one
// the operation documents, and the body must match that response's schema. A validator for the
// part of JSON Schema 2020-12 the document uses — type (one or a list), enum, const, properties,
// required, additionalProperties, items, minItems, anyOf, $ref, minimum, maximum,
// exclusiveMinimum, minLength, pattern — written out here rather than a dependency; a keyword it
// does not know fails the check, so the document cannot quietly outgrow it.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
type Schema = Record<string, unknown>;

const KNOWN = new Set(['type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'anyOf', '$ref',
  'minimum', 'maximum', 'exclusiveMinimum', 'minLength', 'pattern', 'description', 'default']);

/** Where the value breaks the schema, one line each ("$.config.runtime: ..."); empty when it matches. */
export function validate(doc: Doc, schema: Schema, value: unknown, at = '$'): string[] {
  const problems: string[] = [];
  for (const keyword of Object.keys(schema)) if (!KNOWN.has(keyword)) problems.push(`${at}: the checker does not know the keyword ${keyword}`);
  if (typeof schema.$ref === 'string') return [...problems, ...validate(doc, resolve(doc, schema.$ref), value, at)];
  if (schema.anyOf !== undefined) {
    const branches = (schema.anyOf as Schema[]).map((s) => validate(doc, s, value, at));
    if (branches.every((b) => b.length > 0)) problems.push(`${at}: matches none of anyOf (${branches.map((b) => b[0]).join(' | ')})`);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type as string[] : [schema.type as string];
    if (!types.some((t) => isType(value, t))) return [...problems, `${at}: expected ${types.join(' or ')}, got ${JSON.stringify(value)?.slice(0, 60)}`];
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => e === value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if ('const' in schema && schema.const !== value) problems.push(`${at}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${at}: ${value} > maximum ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) problems.push(`${at}: ${value} <= exclusiveMinimum ${schema.exclusiveMinimum}`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) problems.push(`${at}: shorter than ${schema.minLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) problems.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) problems.push(`${at}: fewer than ${schema.minItems} items`);
    if (schema.items !== undefined) value.forEach((item, i) => problems.push(...validate(doc, schema.items as Schema, item, `${at}[${i}]`)));
  }
  if (isType(value, 'object')) {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const name of (schema.required ?? []) as string[]) if (!(name in object)) problems.push(`${at}: ${name} is required`);
    for (const [name, field] of Object.entries(object)) {
      if (properties[name] !== undefined) problems.push(...validate(doc, properties[name]!, field, `${at}.${name}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: ${name} is not in the schema`);
      else if (typeof schema.additionalProperties === 'object') problems.push(...validate(doc, schema.additionalProperties as Schema, field, `${at}.${name}`));
    }
  }
  return problems;
}

function isType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null': return value === null;
    case 'boolean': return typeof value === 'boolean';
    case 'integer': return Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'string': return typeof value === 'string';
    case 'array': return Array.isArray(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
    default: throw new Error(`unknown type ${type}`);
  }
}

/** `#/components/…` within the document. */
export function resolve(doc: Doc, pointer: string): Schema {
  if (!pointer.startsWith('#/')) throw new Error(`only local $refs are used: ${pointer}`);
  let node = doc;
  for (const part of pointer.slice(2).split('/')) {
    node = node?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
    if (node === undefined) throw new Error(`$ref ${pointer} points at nothing`);
  }
  return node as Schema;
}

/** Every operation of the document, as "METHOD /path". */
export function operations(doc: Doc): string[] {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of ['get', 'put', 'post', 'patch', 'delete']) if (item[method]) ops.push(`${method.toUpperCase()} ${path}`);
  }
  return ops;
}

/**
 * Problems with one answer to `operation` ("PUT /functions/{key}"): a status the operation does not
 * document, a content type or body that does not match its schema.
 */
export function checkAnswer(doc: Doc, operation: string, status: number, contentType: string | null, body: unknown): string[] {
  const [method, path] = operation.split(' ') as [string, string];
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) return [`${operation} is not in the document`];
  let response = op.responses[String(status)];
  if (!response) return [`${operation} does not document status ${status} (it has ${Object.keys(op.responses).join(', ')})`];
  if (response.$ref) response = resolve(doc, response.$ref);
  const type = (contentType ?? '').split(';')[0]!.trim();
  const media = response.content?.[type];
  if (!media) return [`${operation} ${status}: content-type ${type} is not documented (${Object.keys(response.content ?? {}).join(', ')})`];
  return validate(doc, media.schema, body).map((p) => `${operation} ${status}: ${p}`);
}

/** Keywords anywhere in the document's schemas that the checker does not know, and $refs that point at nothing. */
export function unknownKeywords(doc: Doc): string[] {
  const problems: string[] = [];
  const walk = (schema: unknown, at: string): void => {
    if (typeof schema !== 'object' || schema === null) return;
    const s = schema as Schema;
    for (const keyword of Object.keys(s)) if (!KNOWN.has(keyword)) problems.push(`${at}: ${keyword}`);
    if (typeof s.$ref === 'string') {
      try {
        resolve(doc, s.$ref);
      } catch (err) {
        problems.push(`${at}: ${(err as Error).message}`);
      }
    }
    for (const [name, sub] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) walk(sub, `${at}.${name}`);
    if (typeof s.items === 'object') walk(s.items, `${at}[]`);
    if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}{}`);
    for (const [i, sub] of ((s.anyOf ?? []) as unknown[]).entries()) walk(sub, `${at}|${i}`);
  };
  for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, unknown>)) walk(schema, name);
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Doc>>)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue;
      for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, Doc>)) {
        const r = response.$ref ? resolve(doc, response.$ref) as Doc : response;
        for (const media of Object.values((r.content ?? {}) as Record<string, Doc>)) walk(media.schema, `${method} ${path} ${status}`);
      }
      for (const media of Object.values((op.requestBody?.content ?? {}) as Record<string, Doc>)) walk(media.schema, `${method} ${path} body`);
    }
  }
  return problems;
}
