#!/usr/bin/env node
// What storing async calls costs the gateway's event loop (src/routes/invocation-store.ts,
// compiled): commits of 1, 10, 100 and 1000 accepted calls (1 KiB bodies) into a real file in the
// temp folder, with synchronous=FULL (what the gateway uses: the WAL is fsynced at each commit)
// and, for comparison, NORMAL (no fsync at commit: a process crash loses nothing, a power cut the
// last commits). Median per commit and per call over --rounds commits of each size.
//
//   node scripts/micro/async-insert.mjs [--rounds N]
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const built = path.join(root, 'dist/src/routes/invocation-store.js');
if (!fs.existsSync(built)) {
  console.error(`${built} is missing: run npm run build first`);
  process.exit(1);
}
const { InvocationStore } = await import(built);
const roundsAt = process.argv.indexOf('--rounds');
const ROUNDS = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 30;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-async-insert-'));
const body = Buffer.alloc(1024, 120);

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const call = () => ({ id: randomBytes(16).toString('base64url'), route: 'POST:/job', requestId: randomBytes(8).toString('hex'), method: 'POST',
  path: '/job', query: '', headers: ['content-type', 'text/plain', 'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'],
  body, clientIp: '127.0.0.1', callbackUrl: undefined, created: Date.now() });

const rows = [];
try {
  for (const sync of ['FULL', 'NORMAL']) {
    const file = path.join(dir, `q-${sync}.db`);
    const store = InvocationStore.open(file);
    // The store sets FULL; the comparison changes it on the same connection.
    if (sync !== 'FULL') store.db.pragma(`synchronous = ${sync}`);
    for (const batch of [1, 10, 100, 1000]) {
      const times = [];
      for (let r = 0; r < ROUNDS; r++) {
        const changes = Array.from({ length: batch }, () => ({ kind: 'insert', row: call() }));
        const t0 = process.hrtime.bigint();
        store.commit(changes, [], Date.now());
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const ms = median(times);
      rows.push(`| ${sync} | ${batch} | ${ms.toFixed(3)} | ${((ms * 1000) / batch).toFixed(1)} |`);
    }
    store.close();
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}; median of ${ROUNDS} commits; the temp folder's file system (${os.tmpdir()})`);
console.log(`command: node scripts/micro/async-insert.mjs --rounds ${ROUNDS}\n`);
console.log('| synchronous | calls per commit | ms per commit | µs per call |');
console.log('|---|---|---|---|');
for (const r of rows) console.log(r);
