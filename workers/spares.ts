// Pre-started sandboxes, so that a cold start need not wait for a sandbox and a runtime to
// start (node cannot fork a warmed-up runtime, so spares stand in for a zygote). The pool keeps
// SPARES_PER_RUNTIME generic sandboxes of each runtime running (node's already past undici's
// and the ESM loader's first use); a cold function with inline code and the default memory_mb
// adopts one: its code and env arrive in a `load` frame. Each spare serves one function only,
// for its whole life, so nothing of one function is ever visible to another.
import type { Log } from '../src/protocol/log.js';
import type { FunctionSpec, Runtime } from '../src/protocol/messages.js';
import { nodeModuleExtension } from './function-code.js';
import type { HostLoad } from './instance-frames.js';
import { GENERIC_MEMORY_MB, type Runner, type SandboxProcess } from './runner.js';

export const SPARES_PER_RUNTIME = 1;
const RUNTIMES: readonly Runtime[] = ['node', 'python'];
/**
 * Not at once: starting the next spare (a runtime's start is tens of ms of CPU) would compete
 * with the cold call the last one is serving.
 */
const REFILL_DELAY_MS = 250;

export class Spares {
  private readonly byRuntime = new Map<Runtime, SandboxProcess[]>(RUNTIMES.map((r) => [r, []]));
  private stopped = false;
  private started = false;

  /**
   * No runner (no such sandbox on this host): no spares. `lazy`: none until the first cold
   * start asks for one (container spares, on a worker that may never run a container).
   */
  constructor(private readonly runner: Runner | undefined, private readonly log: Log, opts: { lazy?: boolean } = {}) {
    if (!opts.lazy) this.refill();
  }

  /** A spare and the frame that makes it this function's, if the function can adopt one. */
  take(spec: FunctionSpec): { sandbox: SandboxProcess; load: HostLoad } | undefined {
    const { config } = spec;
    if (config.code === undefined || config.memoryMb !== GENERIC_MEMORY_MB) return undefined;
    const sandbox = this.byRuntime.get(config.runtime)?.shift();
    if (!this.started || sandbox) setTimeout(() => this.refill(), REFILL_DELAY_MS).unref();
    if (!sandbox) return undefined;
    const ext = config.runtime === 'python' ? '.py' : nodeModuleExtension(config.code);
    return { sandbox, load: { t: 'load', code: config.code, ext, handler: config.handler ?? '', key: spec.key, memoryMb: config.memoryMb, env: config.env } };
  }

  pids(): number[] {
    return [...this.byRuntime.values()].flatMap((list) => list.map((s) => s.pid));
  }

  shutdown(): void {
    this.stopped = true;
    for (const list of this.byRuntime.values()) for (const s of list.splice(0)) s.kill();
  }

  private refill(): void {
    this.started = true;
    for (const [runtime, list] of this.byRuntime) {
      while (!this.stopped && this.runner?.startGeneric && list.length < SPARES_PER_RUNTIME) {
        let sandbox: SandboxProcess;
        try {
          sandbox = this.runner.startGeneric(runtime);
        } catch (err) {
          this.log({ level: 'warn', msg: `could not pre-start a ${runtime} sandbox; its cold starts will start their own`, error: (err as Error).message });
          return;
        }
        list.push(sandbox);
        void sandbox.exited.then(() => {
          const at = list.indexOf(sandbox);
          if (at >= 0) list.splice(at, 1);
        });
      }
    }
  }
}
