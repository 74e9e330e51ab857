// Pre-started sandboxes, so that a cold start need not wait for a sandbox and a runtime to
// start (node cannot fork a warmed-up runtime, so spares stand in for a zygote). A spare is a
// generic sandbox of one runtime and one memory limit (its cgroup and node's heap are fixed at
// start), node's already past undici's and the ESM loader's first use; a cold function with
// inline code of that runtime and memory_mb adopts one: its code and env arrive in a `load`
// frame. Each spare serves one function only, for its whole life, so nothing of one function is
// ever visible to another.
//
// Python code deployed by `path` is left to the python zygote (python-zygote.ts), which mounts it
// read-only as a sandbox of its own does; node code deployed as one file is sent like inline code.
//
// Which spares: one per runtime at the default memory_mb from the start, and one per runtime
// and memory_mb that a cold start asked for and found none of, for the MAX_EXTRA_SHAPES most
// recently asked (a shape not asked for again is dropped when a newer one comes).
import fs from 'node:fs';
import type { Log } from '../src/protocol/log.js';
import type { FunctionSpec, Runtime } from '../src/protocol/messages.js';
import path from 'node:path';
import { NODE_DIR_ENTRIES, nodeModuleExtension } from './function-code.js';
import type { HostLoad } from '../src/protocol/instance-frames.js';
import { GENERIC_MEMORY_MB, type Runner, type SandboxProcess } from './runners/runner.js';

const RUNTIMES: readonly Runtime[] = ['node', 'python'];
/** Shapes (runtime, memory_mb) kept besides the default ones. */
const MAX_EXTRA_SHAPES = 2;
/**
 * Not at once: starting the next spare (a runtime's start is tens of ms of CPU) would compete
 * with the cold call the last one is serving.
 */
const REFILL_DELAY_MS = 250;

interface Shape {
  readonly runtime: Runtime;
  readonly memoryMb: number;
  /** Zero or one pre-started sandbox. */
  readonly ready: SandboxProcess[];
}

const shapeKey = (runtime: Runtime, memoryMb: number): string => `${runtime}:${memoryMb}`;

/** A function's code as a spare takes it: files (relative paths) and their bytes, and the entry. */
interface SpareCode {
  readonly files: Array<{ path: string; bytes: number }>;
  readonly entry: string;
  readonly body: Buffer;
}

/** Node code deployed by `path` that a spare can take: small enough to send in one frame. */
const NODE_PATH_MAX_BYTES = 4 * 1024 * 1024;
const NODE_PATH_MAX_FILES = 1000;

function inlineCode(runtime: Runtime, code: string): SpareCode {
  const name = runtime === 'python' ? 'main.py' : `index${nodeModuleExtension(code)}`;
  const body = Buffer.from(code);
  return { files: [{ path: name, bytes: body.length }], entry: name, body };
}

/**
 * The files of a node function deployed by `path` (a file, or a folder with its index), or
 * undefined when there are too many or too large (those start a sandbox of their own, with the
 * path mounted read-only). Node cannot fork a warm runtime as the python zygote does, so a spare
 * taking a copy is what makes such a cold start fast; the function runs the copy in its own /tmp.
 * Symbolic links are not followed: in a sandbox of its own they would point outside it too.
 */
function nodePathCode(root: string): SpareCode | undefined {
  const files: Array<{ path: string; bytes: number }> = [];
  const chunks: Buffer[] = [];
  let total = 0;
  const add = (file: string, rel: string): boolean => {
    const bytes = fs.readFileSync(file);
    total += bytes.length;
    if (total > NODE_PATH_MAX_BYTES || files.length >= NODE_PATH_MAX_FILES) return false;
    files.push({ path: rel, bytes: bytes.length });
    chunks.push(bytes);
    return true;
  };
  const walk = (dir: string, prefix: string): boolean => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory() ? !walk(path.join(dir, e.name), rel) : e.isFile() && !add(path.join(dir, e.name), rel)) return false;
    }
    return true;
  };
  try {
    const stat = fs.statSync(root);
    if (stat.isFile()) {
      const name = path.basename(root);
      const text = fs.readFileSync(root, 'utf8');
      // `.mjs` and `.cjs` are what they say; `.js` is told by its content, as inline code is.
      const entry = /\.[mc]js$/.test(name) ? name : `index${nodeModuleExtension(text)}`;
      if (!add(root, entry)) return undefined;
      return { files, entry, body: Buffer.concat(chunks) };
    }
    const entry = NODE_DIR_ENTRIES.find((name) => fs.existsSync(path.join(root, name)));
    if (!entry || !walk(root, '')) return undefined;
    return { files, entry, body: Buffer.concat(chunks) };
  } catch {
    return undefined; // unreadable: its own sandbox will say why
  }
}

export class Spares {
  /** Default shapes first, then extra ones from least to most recently asked. */
  private readonly shapes = new Map<string, Shape>();
  private stopped = false;

  /**
   * No runner (no such sandbox on this host): no spares. `lazy`: none until the first cold
   * start asks for one (container spares, on a worker that may never run a container).
   */
  constructor(private readonly runner: Runner | undefined, private readonly log: Log, opts: { lazy?: boolean } = {}) {
    for (const runtime of RUNTIMES) this.shapes.set(shapeKey(runtime, GENERIC_MEMORY_MB), { runtime, memoryMb: GENERIC_MEMORY_MB, ready: [] });
    if (!opts.lazy) this.refill();
  }

  /** A spare and the frame (and files) that make it this function's, if the function can adopt one. */
  take(spec: FunctionSpec): { sandbox: SandboxProcess; load: HostLoad; files: Buffer } | undefined {
    const { config } = spec;
    // A spare has no CPU quota: a function with `cpu` starts in a cgroup made for it.
    // Nor does it have what the gateway built for a function (node_modules, python packages).
    if (config.image !== undefined || config.cpu !== undefined || config.built !== undefined || !RUNTIMES.includes(config.runtime)) return undefined;
    const code = config.code !== undefined ? inlineCode(config.runtime, config.code)
      : config.runtime === 'node' ? nodePathCode(config.path!) : undefined;
    if (code === undefined) return undefined;
    const shape = this.want(config.runtime, config.memoryMb);
    const sandbox = shape.ready.shift();
    setTimeout(() => this.refill(), REFILL_DELAY_MS).unref(); // replaces it, or starts this shape's first
    if (!sandbox) return undefined;
    const load: HostLoad = { t: 'load', files: code.files, entry: code.entry, handler: config.handler ?? '', key: spec.key, memoryMb: config.memoryMb, env: config.env };
    return { sandbox, load, files: code.body };
  }

  pids(): number[] {
    return [...this.shapes.values()].flatMap((s) => s.ready.map((sandbox) => sandbox.pid));
  }

  shutdown(): void {
    this.stopped = true;
    for (const shape of this.shapes.values()) for (const s of shape.ready.splice(0)) s.kill();
  }

  /** The shape, now the most recently asked; a new extra shape pushes out the oldest. */
  private want(runtime: Runtime, memoryMb: number): Shape {
    const key = shapeKey(runtime, memoryMb);
    let shape = this.shapes.get(key);
    if (memoryMb === GENERIC_MEMORY_MB) return shape!;
    if (shape) this.shapes.delete(key);
    else shape = { runtime, memoryMb, ready: [] };
    this.shapes.set(key, shape);
    const extras = [...this.shapes.values()].filter((s) => s.memoryMb !== GENERIC_MEMORY_MB);
    for (const old of extras.slice(0, Math.max(0, extras.length - MAX_EXTRA_SHAPES))) {
      this.shapes.delete(shapeKey(old.runtime, old.memoryMb));
      for (const s of old.ready.splice(0)) s.kill();
    }
    return shape;
  }

  private refill(): void {
    for (const shape of this.shapes.values()) {
      if (this.stopped || !this.runner?.startGeneric || shape.ready.length > 0) continue;
      let sandbox: SandboxProcess;
      try {
        sandbox = this.runner.startGeneric(shape.runtime, shape.memoryMb);
      } catch (err) {
        this.log({ level: 'warn', msg: `could not pre-start a ${shape.runtime} sandbox; its cold starts will start their own`, error: (err as Error).message });
        return;
      }
      shape.ready.push(sandbox);
      void sandbox.exited.then(() => {
        const at = shape.ready.indexOf(sandbox);
        if (at >= 0) shape.ready.splice(at, 1);
      });
    }
  }
}
