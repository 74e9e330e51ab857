// Keeps the README's error table and src/errors.ts in step (fastify does the same).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, errorBody } from '../../src/errors.js';

function readmeTable(): Map<string, number> {
  const readme = fs.readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## Errors'));
  const rows = new Map<string, number>();
  for (const m of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
  return rows;
}

describe('error codes', () => {
  it('README lists exactly the codes in src/errors.ts, with the same statuses', () => {
    const documented = readmeTable();
    const defined = new Map(Object.entries(ERRORS).map(([code, spec]) => [code, spec.status]));
    expect(documented).toEqual(defined);
  });

  it('error bodies have the contract shape', () => {
    expect(JSON.parse(errorBody('ROUTE_NOT_FOUND', 'no function is mapped to GET:/nope'))).toEqual({
      statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: 'no function is mapped to GET:/nope',
    });
  });
});
