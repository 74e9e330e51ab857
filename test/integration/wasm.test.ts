// WebAssembly functions: WASI modules, CGI style, in piscina worker threads (the default mode for
// wasm, "thread"), and in a process sandbox or a container when the route asks for one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import wabtInit from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, eventually, startGateway, type Gateway } from './harness.js';

let gw: Gateway;

/** The folders of wasm calls in threads (numbered, in TMPDIR/faas-wasm-XXXXXX): none once calls are over. */
function callFolders(): string[] {
  const tmp = os.tmpdir();
  return fs.readdirSync(tmp).filter((d) => d.startsWith('faas-wasm-')).flatMap((d) => {
    try {
      return fs.readdirSync(path.join(tmp, d)).filter((n) => /^\d+$/.test(n)).map((n) => path.join(tmp, d, n));
    } catch {
      return []; // gone meanwhile, or another user's
    }
  });
}

async function assemble(file: string): Promise<Buffer> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(file, fs.readFileSync(path.join('test/fixtures/wasm', file), 'utf8'));
  return Buffer.from(module.toBinary({}).buffer);
}

beforeAll(async () => {
  gw = await startGateway([], { workers: 1 });
});
afterAll(async () => {
  await gw?.stop();
});

describe('wasm', () => {
  it('runs a WASI module: body on stdin, CGI headers and body on stdout (inline, base64)', async () => {
    const code = (await assemble('echo.wat')).toString('base64');
    const first = await deploy(gw, 'POST:/wasm/echo', { runtime: 'wasm', code });
    expect(first.status).toBe(201);
    expect(first.headers.get('server-timing')).toContain('start;desc=cold');
    const res = await fetch(`${gw.http}/wasm/echo`, { method: 'POST', body: 'ping' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('server-timing')).toContain('start;desc=warm');
    expect(await res.text()).toBe('wasm got: ping');
  });

  it('runs a module given by path', async () => {
    const file = path.join(gw.dir, 'echo.wasm');
    fs.writeFileSync(file, await assemble('echo.wat'));
    await deploy(gw, 'POST:/wasm/file', { runtime: 'wasm', path: file });
    const res = await fetch(`${gw.http}/wasm/file`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect(res.status).toBe(201);
    expect(await res.text()).toBe(`wasm got: ${'x'.repeat(100_000)}`);
  });

  it('ends a spinning module at timeout_ms with 504, and keeps serving', async () => {
    const code = (await assemble('spin.wat')).toString('base64');
    const res = await deploy(gw, 'GET:/wasm/spin', { runtime: 'wasm', code, timeout_ms: 300 });
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('FUNCTION_TIMEOUT');
    const again = await fetch(`${gw.http}/wasm/echo`, { method: 'POST', body: 'still here' });
    expect(await again.text()).toBe('wasm got: still here');
    // Its files went with it, though its thread was stopped before its own cleanup.
    await eventually(async () => callFolders().length === 0, 2000);
  });

  it('holds a module that grows its memory to memory_mb, and the worker keeps serving', async () => {
    const code = (await assemble('memory-bomb.wat')).toString('base64');
    const res = await deploy(gw, 'GET:/wasm/bomb', { runtime: 'wasm', code, memory_mb: 32 });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pages=497'); // 1 + 16·31: the next 16 pages would pass 32 MiB = 512 pages
    const again = await fetch(`${gw.http}/wasm/echo`, { method: 'POST', body: 'still here' });
    expect(await again.text()).toBe('wasm got: still here');
  });

  it('refuses a module whose memory starts above memory_mb', async () => {
    const wabt = await wabtInit();
    const big = wabt.parseWat('big.wat', '(module (memory (export "memory") 1024) (func (export "_start")))');
    const res = await deploy(gw, 'GET:/wasm/big', { runtime: 'wasm', code: Buffer.from(big.toBinary({}).buffer).toString('base64'), memory_mb: 32 });
    expect(res.status).toBe(500);
    expect((await res.json()).message).toBe('function failed to load: the module needs 64 MiB of memory at start, more than its memory_mb of 32');
  });

  it('stops an output flood at the response limit: the module sees EFBIG', async () => {
    const code = (await assemble('output-flood.wat')).toString('base64');
    const res = await deploy(gw, 'GET:/wasm/flood', { runtime: 'wasm', code });
    expect(res.status).toBe(500);
    expect((await res.json()).message).toBe('the module exited with status 22'); // WASI errno FBIG
  });

  it('500 FUNCTION_ERROR for bytes that are not a module', async () => {
    const res = await deploy(gw, 'GET:/wasm/bad', { runtime: 'wasm', code: Buffer.from('not wasm').toString('base64') });
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.code).toBe('FUNCTION_ERROR');
    expect(body.message).toMatch(/^function failed to load: /);
  });
});

describe('wasm in a process sandbox and in a container ("mode": "process" / "container")', () => {
  it.each(['process', 'container'] as const)('%s: runs the module CGI style, and says how it was started', async (mode) => {
    const code = (await assemble('echo.wat')).toString('base64');
    const first = await deploy(gw, `POST:/wasm/${mode}/echo`, { runtime: 'wasm', mode, code });
    expect(first.status).toBe(201);
    const res = await fetch(`${gw.http}/wasm/${mode}/echo`, { method: 'POST', body: 'ping' });
    expect(res.status).toBe(201);
    expect(res.headers.get('server-timing')).toContain('start;desc=warm');
    expect(await res.text()).toBe('wasm got: ping');
    const started = gw.instanceLog(`POST:/wasm/${mode}/echo`).find((l) => l.msg === 'instance started');
    expect(started?.via).toBe(mode === 'process' ? 'bwrap' : 'runc');
  });

  it.each(['process', 'container'] as const)('%s: the same limits: memory_mb, output, timeout', async (mode) => {
    // 96 MiB: the node host itself needs some of it here. 1 + 16·95 pages; 16 more would pass 1536.
    const bomb = await deploy(gw, `GET:/wasm/${mode}/bomb`, { runtime: 'wasm', mode, code: (await assemble('memory-bomb.wat')).toString('base64'), memory_mb: 96 });
    expect(await bomb.text()).toBe('pages=1521');
    const flood = await deploy(gw, `GET:/wasm/${mode}/flood`, { runtime: 'wasm', mode, code: (await assemble('output-flood.wat')).toString('base64') });
    expect((await flood.json()).message).toBe('the module exited with status 22');
    const spin = await deploy(gw, `GET:/wasm/${mode}/spin`, { runtime: 'wasm', mode, code: (await assemble('spin.wat')).toString('base64'), timeout_ms: 300 });
    expect(spin.status).toBe(504);
  });
});
