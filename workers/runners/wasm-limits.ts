// Limits a WebAssembly module cannot get past, in the worker's own process (wasm-runner.ts):
//
// - memory: a module's linear memory is not V8 heap, so piscina's resourceLimits do not bound
//   it; a module may declare up to 4 GiB and memory.grow its way there. withMemoryLimit()
//   rewrites the module's memory section so that its maximum is at most `memory_mb`: past it,
//   memory.grow returns -1, as the spec says it may, and the module's allocator fails inside
//   the module (a trap or an error exit), never the worker.
// - output: stdout and stderr are files in the worker's temp folder; capOutput() wraps WASI's
//   fd_write so that a module writing past the caps gets EFBIG instead of filling the disk.
const PAGE_BYTES = 64 * 1024;
const MEMORY_SECTION = 5;
/** WASI errno FBIG: "file too large". */
const WASI_EFBIG = 22;

/** The module with every memory's maximum at most `maxBytes`; throws naming the rule when it cannot be. */
export function withMemoryLimit(module: Uint8Array, maxBytes: number): Uint8Array {
  const maxPages = Math.floor(maxBytes / PAGE_BYTES);
  if (module.length < 8 || readU32LE(module, 0) !== 0x6d736100) throw new Error('the bytes are not a WebAssembly module (no \\0asm header)');
  const out: number[] = [...module.subarray(0, 8)];
  let at = 8;
  while (at < module.length) {
    const id = module[at]!;
    const [size, sizeEnd] = readLeb(module, at + 1);
    const end = sizeEnd + size;
    if (end > module.length) throw new Error(`section ${id} runs past the end of the module`);
    if (id !== MEMORY_SECTION) {
      out.push(...module.subarray(at, end));
    } else {
      const content = limitMemories(module.subarray(sizeEnd, end), maxPages);
      out.push(id, ...leb(content.length), ...content);
    }
    at = end;
  }
  return Uint8Array.from(out);
}

function limitMemories(section: Uint8Array, maxPages: number): number[] {
  let [count, at] = readLeb(section, 0);
  const out = leb(count);
  for (; count > 0; count--) {
    const flags = section[at++]!;
    if (flags & 0b100) throw new Error('64-bit memories are not supported');
    const [min, minEnd] = readLeb(section, at);
    at = minEnd;
    let max = maxPages;
    if (flags & 1) {
      const [declared, maxEnd] = readLeb(section, at);
      at = maxEnd;
      max = Math.min(declared, maxPages);
    }
    if (min > maxPages) {
      throw new Error(`the module needs ${Math.ceil((min * PAGE_BYTES) / 1048576)} MiB of memory at start, more than its memory_mb of ${Math.round((maxPages * PAGE_BYTES) / 1048576)}`);
    }
    out.push(flags | 1, ...leb(min), ...leb(max));
  }
  return out;
}

function readU32LE(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** An unsigned LEB128 u32 and the offset past it. */
function readLeb(b: Uint8Array, at: number): [number, number] {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= b.length) throw new Error('the module ends inside a number');
    const byte = b[at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, at];
  }
  throw new Error('the module has a number longer than 5 bytes');
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/**
 * Wraps WASI's fd_write so that writes to stdout (fd 1) past `stdoutBytes` and to stderr (fd 2)
 * past `stderrBytes` fail with EFBIG. `memory` is read when a write happens (the instance exists by then).
 */
export function capOutput(imports: WebAssembly.Imports, memory: () => WebAssembly.Memory, stdoutBytes: number, stderrBytes: number): WebAssembly.Imports {
  const wasi = imports.wasi_snapshot_preview1 as Record<string, (...args: number[]) => number>;
  const write = wasi.fd_write!;
  const caps = [0, stdoutBytes, stderrBytes];
  const written = [0, 0, 0];
  const fdWrite = (fd: number, iovs: number, iovsLen: number, nwritten: number): number => {
    if (fd === 1 || fd === 2) {
      const view = new DataView(memory().buffer);
      let bytes = 0;
      for (let i = 0; i < iovsLen; i++) bytes += view.getUint32(iovs + i * 8 + 4, true);
      if (written[fd]! + bytes > caps[fd]!) return WASI_EFBIG;
      written[fd] = written[fd]! + bytes;
    }
    return write(fd, iovs, iovsLen, nwritten);
  };
  return { ...imports, wasi_snapshot_preview1: { ...wasi, fd_write: fdWrite } };
}
