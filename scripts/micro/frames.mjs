#!/usr/bin/env node
// What the gateway ⇄ worker framing costs per call: an invoke message, as WorkerConnection.invoke
// sends it once the connection knows the function's version (no `spec`), with a ~100 B and a
// 64 KiB request body. One round is encodeFrame (src/protocol/frames.ts, compiled: msgpackr
// envelope, body raw beside it) then FrameDecoder.push of the two buffers it returns, as the
// FrameWriter writes them; against JSON with the body base64 inside it (JSON.stringify +
// Buffer.from, then JSON.parse + Buffer.from(base64)). tinybench, median per round; absolute
// figures vary with the machine: compare rows.
//
//   node scripts/micro/frames.mjs
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Bench } from 'tinybench';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
if (!fs.existsSync(path.join(root, 'dist/src/protocol/frames.js'))) {
  console.error('dist/src/protocol/frames.js is missing: run npm run build first');
  process.exit(1);
}
const { encodeFrame, FrameDecoder } = await import(path.join(root, 'dist/src/protocol/frames.js'));

const BODIES = [['~100 B', randomBytes(100)], ['64 KiB', randomBytes(64 * 1024)]];
const messageFor = (body) => ({
  t: 1, // FrameType.Invoke, a const enum: inlined by tsc, so not exported at run time
  id: 4711,
  key: 'POST:/t7/fn-1234',
  version: 1234,
  requestId: randomUUID(),
  method: 'POST',
  path: '/t7/fn-1234',
  query: 'user=42&verbose=1',
  headers: ['host', 'localhost:8080', 'user-agent', 'curl/8.5.0', 'accept', '*/*',
    'content-type', 'application/octet-stream', 'content-length', String(body.length)],
});

/** One round with the project's codec; returns the decoded frame. */
const framesRound = (decoder, message, body) => {
  const [head, rest] = encodeFrame(message, body);
  decoder.push(head); // the header alone is not a frame yet
  const frames = decoder.push(rest);
  if (frames.length !== 1) throw new Error(`decoded ${frames.length} frames`);
  return frames[0];
};
/** One round with JSON, the body as a base64 field; returns the same shape. */
const jsonRound = (message, body) => {
  const wire = Buffer.from(JSON.stringify({ ...message, body: body.toString('base64') }), 'utf8');
  const { body: base64, ...decoded } = JSON.parse(wire.toString('utf8'));
  return { message: decoded, body: Buffer.from(base64, 'base64') };
};

const bench = new Bench({ time: 500, warmupTime: 100, throws: true });
const wireBytes = new Map();
for (const [size, body] of BODIES) {
  const message = messageFor(body);
  const decoder = new FrameDecoder();
  // Both codecs must give back exactly what was sent before they are timed.
  for (const frame of [framesRound(decoder, message, body), jsonRound(message, body)]) {
    if (!isDeepStrictEqual(frame.message, message) || !frame.body.equals(body)) throw new Error(`${size}: round trip changed the message`);
  }
  const [head, rest] = encodeFrame(message, body);
  wireBytes.set(`frames, ${size}`, head.length + rest.length);
  wireBytes.set(`JSON, ${size}`, Buffer.byteLength(JSON.stringify({ ...message, body: body.toString('base64') })));
  bench.add(`frames, ${size}`, () => framesRound(decoder, message, body));
  bench.add(`JSON, ${size}`, () => jsonRound(message, body));
}
await bench.run();

console.log(`frame codec, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; command: node scripts/micro/frames.mjs\n`);
console.log('| invoke message, body | codec | bytes on the wire | median per encode + decode | rounds/s |');
console.log('|---|---|---|---|---|');
for (const [size] of BODIES) {
  for (const [codec, label] of [['frames', 'encodeFrame + FrameDecoder (msgpackr envelope, raw body)'], ['JSON', 'JSON, body base64 in it']]) {
    const name = `${codec}, ${size}`;
    const { result } = bench.tasks.find((t) => t.name === name);
    const ms = result.latency?.p50 ?? result.p50;
    console.log(`| ${size} | ${label} | ${wireBytes.get(name).toLocaleString('en')} | ${(ms * 1000).toFixed(2)} µs | ${Math.round(1000 / ms).toLocaleString('en')} |`);
  }
}
console.log('\nMeasured: in-process encode then decode of one invoke message (no socket); the frame is fed to the decoder as the two buffers encodeFrame returns, so the decoder joins them (one copy of the body).');
