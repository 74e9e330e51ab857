// The gateway's buffered log never blocks it on a reader that does not keep up: a child floods
// its stderr (a pipe nobody reads for a second) and stays responsive; lines past the buffer's
// cap are dropped and said to be, and once the pipe is read again the rest arrives whole.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

it('a full stderr pipe does not block the buffered log; what cannot be kept is dropped and counted', async () => {
  const child = spawn(process.execPath, [path.resolve('test/fixtures/log/flood.mjs'), '60000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.pause(); // nobody reads stderr for a while: the pipe fills at 64 KiB
  await new Promise((r) => setTimeout(r, 1000));
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stderr.resume();
  const code = await new Promise((r) => child.once('exit', r));
  expect(code).toBe(0);
  const { loopMs, lateMs } = JSON.parse(out) as { loopMs: number; lateMs: number };
  expect(loopMs).toBeLessThan(900); // not held up by the pipe (blocking writes would wait for the reader, 1 s)
  expect(lateMs).toBeLessThan(300);
  const lines = err.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number });
  const dropped = lines.find((l) => l.msg.startsWith('log lines dropped'))?.dropped ?? 0;
  const kept = lines.filter((l) => l.msg === 'line');
  expect(dropped).toBeGreaterThan(0); // 60,000 lines of ~230 bytes are more than the 4 Mi-char buffer
  expect(kept.length + dropped).toBe(60_000);
  // What was kept is in order and whole.
  expect(kept.every((l, i) => i === 0 || l.i! > kept[i - 1]!.i!)).toBe(true);
}, 20_000);
