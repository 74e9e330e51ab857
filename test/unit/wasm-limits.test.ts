import wabtInit from 'wabt';
import { describe, expect, it } from 'vitest';
import { withMemoryLimit } from '../../workers/runners/wasm-limits.js';

const MiB = 1024 * 1024;

async function wasm(wat: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  return new Uint8Array(wabt.parseWat('t.wat', wat).toBinary({}).buffer);
}

/** The limits of the module's exported memory after instantiation: what a module really gets. */
function memoryOf(bytes: Uint8Array): { pages: number; grownTo: number } {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  const memory = instance.exports.memory as { buffer: ArrayBuffer; grow(n: number): number };
  const pages = memory.buffer.byteLength / 65536;
  for (;;) {
    try {
      memory.grow(64);
    } catch {
      return { pages, grownTo: memory.buffer.byteLength / 65536 };
    }
  }
}

describe('withMemoryLimit', () => {
  it('gives a memory without a maximum one at the limit (16 pages per MiB)', async () => {
    const limited = withMemoryLimit(await wasm('(module (memory (export "memory") 2) (data (i32.const 0) "x"))'), 8 * MiB);
    expect(memoryOf(limited)).toEqual({ pages: 2, grownTo: 2 + 64 * Math.floor((128 - 2) / 64) });
  });

  it('keeps a lower declared maximum, and lowers a higher one', async () => {
    expect(memoryOf(withMemoryLimit(await wasm('(module (memory (export "memory") 1 3))'), 8 * MiB)).grownTo).toBe(1);
    const big = withMemoryLimit(await wasm('(module (memory (export "memory") 1 65536))'), 4 * MiB);
    expect(memoryOf(big).grownTo).toBe(1); // 1 + 64 > 64 pages: the first grow is refused
  });

  it('leaves the other sections as they were', async () => {
    const original = await wasm('(module (func (export "f") (result i32) (i32.const 42)) (memory (export "memory") 1))');
    const limited = withMemoryLimit(original, 16 * MiB);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(limited));
    expect((instance.exports.f as () => number)()).toBe(42);
    expect(withMemoryLimit(await wasm('(module (func (export "f")))'), MiB)).toEqual(await wasm('(module (func (export "f")))'));
  });

  it('refuses what it cannot limit, saying why', async () => {
    await expect(async () => withMemoryLimit(await wasm('(module (memory 1024))'), 32 * MiB))
      .rejects.toThrow('the module needs 64 MiB of memory at start, more than its memory_mb of 32');
    expect(() => withMemoryLimit(new TextEncoder().encode('not wasm'), MiB)).toThrow('the bytes are not a WebAssembly module');
    expect(() => withMemoryLimit(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 9, 1]), MiB)).toThrow('section 5 runs past the end of the module');
  });
});
