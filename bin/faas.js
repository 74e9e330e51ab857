#!/usr/bin/env node
// The `faas` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (npm start and npm test do it for you).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('faas: dist/ is missing; run `npm run build` first (npm start does it)\n');
  process.exit(1);
}
await import(entry.href);
