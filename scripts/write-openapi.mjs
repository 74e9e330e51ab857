// Writes docs/openapi.json, the copy of the admin API's OpenAPI document that the gateway serves at
// /api/v1/openapi.json (src/http/openapi.ts), from the build: `npm run build && node scripts/write-openapi.mjs`.
// test/unit/management-api.test.ts fails while the copy is out of date.
import fs from 'node:fs';

const { OPENAPI } = await import('../dist/src/http/openapi.js');
fs.mkdirSync('docs', { recursive: true });
fs.writeFileSync('docs/openapi.json', `${JSON.stringify(OPENAPI, null, 2)}\n`);
console.log(`docs/openapi.json: ${Object.keys(OPENAPI.paths).length} paths`);
