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
import { nodeModuleExtension } from './function-code.js';
import type { HostLoad } from './instance-frames.js';
import { GENERIC_MEMORY_MB, type Runner, type SandboxProcess } from './runner.js';

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

/** `.mjs` and `.cjs` files are what they say; other node code (`.js`, inline) is told by its content. */
function nodeExtension(file: string | undefined, code: string): '.mjs' | '.cjs' {
  if (file?.endsWith('.mjs')) return '.mjs';
  if (file?.endsWith('.cjs')) return '.cjs';
  return nodeModuleExtension(code);
}

/** Node code deployed by `path` that a spare can take: one file, not too large to send in a frame. */
const NODE_FILE_MAX_BYTES = 1024 * 1024;

/**
 * The code of a node function deployed as a single file, or undefined (a folder, a large or
 * unreadable file: those start a sandbox of their own, with the path mounted read-only). Node
 * cannot fork a warm runtime as the python zygote does, so a spare taking the file's text is
 * what makes such a cold start fast; the function then runs a copy in its own /tmp.
 */
function nodeFileCode(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    return stat.isFile() && stat.size <= NODE_FILE_MAX_BYTES ? fs.readFileSync(file, 'utf8') : undefined;
  } catch {
    return undefined;
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

  /** A spare and the frame that makes it this function's, if the function can adopt one. */
  take(spec: FunctionSpec): { sandbox: SandboxProcess; load: HostLoad } | undefined {
    const { config } = spec;
    if (config.image !== undefined || !RUNTIMES.includes(config.runtime)) return undefined;
    const code = config.code ?? (config.runtime === 'node' ? nodeFileCode(config.path!) : undefined);
    if (code === undefined) return undefined;
    const shape = this.want(config.runtime, config.memoryMb);
    const sandbox = shape.ready.shift();
    setTimeout(() => this.refill(), REFILL_DELAY_MS).unref(); // replaces it, or starts this shape's first
    if (!sandbox) return undefined;
    const ext = config.runtime === 'python' ? '.py' : nodeExtension(config.path, code);
    return { sandbox, load: { t: 'load', code, ext, handler: config.handler ?? '', key: spec.key, memoryMb: config.memoryMb, env: config.env } };
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
