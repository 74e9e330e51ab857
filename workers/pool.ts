// Warm instances per function version. A call takes a slot on a ready instance with room
// (warm), or waits for one that is starting, or starts one (cold). A new version of a key
// retires the old version's instances: they finish what they run and exit. Idle instances
// are reaped after the idle TTL.
//
// Node hosts run many calls at once (like Workers isolates): one instance per version, with
// max_concurrency slots. Python hosts run one call at a time (like Lambda), and so does a node
// host running a WebAssembly module: up to PYTHON_MAX_INSTANCES instances of one slot each, and
// calls past that wait. Modules in threads (mode "thread") go to the WasmRunner instead.
//
// Instances live within a memory budget per worker (the sum of their memory_mb): starting one
// past it first stops the least recently used idle instances; if every instance is busy, the
// call is refused with FUNCTION_AT_CAPACITY rather than overcommitting the host. Spare
// sandboxes (spares.ts) are a fixed overhead outside the budget.
import type { Log } from '../src/protocol/log.js';
import type { FunctionSpec, SandboxMode } from '../src/protocol/messages.js';
import { cgiCall } from './cgi.js';
import { materialize } from './function-code.js';
import { Instance } from './instance.js';
import type { CallOutcome, CallOutput, CallRequest } from './call.js';
import type { ContainerRunner } from './runners/container-runner.js';
import type { Runner, SandboxProcess } from './runners/runner.js';
import type { BodyStream } from '../src/protocol/body-stream.js';
import { Spares } from './spares.js';
import type { WasmRunner } from './runners/wasm-runner.js';
import type { DirectLeases } from './direct-leases.js';

export const PYTHON_MAX_INSTANCES = 4;
/** A version whose code failed to load is answered from this cache for a while instead of respawning per call. */
const LOAD_FAILURE_TTL_MS = 5_000;

interface FunctionPool {
  readonly spec: FunctionSpec;
  readonly instances: Instance[];
  /** Calls accepted for this version on this worker (waiting or running). */
  inFlight: number;
  readonly waiters: Array<() => void>;
  loadFailure?: { message: string; untilMs: number };
}

export class InstancePool {
  private readonly pools = new Map<number, FunctionPool>();
  private readonly latestByKey = new Map<string, number>();
  /** Functions to keep min_warm instances of, by key: the gateway's latest WarmMessage. */
  private warm = new Map<string, FunctionSpec>();
  /** Per mode, and gVisor's containers apart from runc's (what a spare runs in is fixed at its start). */
  private readonly spares: Readonly<Record<SandboxMode | 'gvisor', Spares>>;
  private instanceSeq = 0;

  constructor(
    /** A runner per mode this worker can run; a mode without one is refused per call, with the reason. */
    private readonly runners: Readonly<{ process: Runner | string; container: ContainerRunner | string }>,
    private readonly codeDir: string,
    private readonly limits: { readonly idleTtlMs: number; readonly memoryBudgetMb: number; readonly startTimeoutMs: number },
    private readonly log: Log,
    private readonly wasm?: WasmRunner,
    /** Lends warm node instances to the gateway (the direct data path); absent for a worker started by hand. */
    private readonly direct?: DirectLeases,
  ) {
    const runner = (mode: SandboxMode): Runner | undefined => (typeof runners[mode] === 'string' ? undefined : runners[mode] as Runner);
    this.spares = {
      process: new Spares(runner('process'), log),
      container: new Spares(runner('container'), log, { lazy: true }),
      gvisor: new Spares(typeof runners.container === 'string' ? undefined : runners.container.gvisor, log, { lazy: true }),
    };
  }

  /**
   * `output` gets what the function prints during the call; without it, the worker logs it.
   * `bodyIn`: the request body, streamed (then `body` is empty). A streamed answer keeps its slot
   * on the instance, and counts against max_concurrency, until its stream has ended.
   */
  async invoke(spec: FunctionSpec, req: CallRequest, body: Buffer, output?: CallOutput, bodyIn?: BodyStream): Promise<{ outcome: CallOutcome; cold: boolean }> {
    const fp = this.poolFor(spec);
    const { maxConcurrency, timeoutMs } = spec.config;
    if (fp.loadFailure && fp.loadFailure.untilMs > Date.now()) {
      return { outcome: { ok: false, code: 'FUNCTION_ERROR', message: fp.loadFailure.message }, cold: false };
    }
    if (fp.inFlight >= maxConcurrency) {
      return { outcome: { ok: false, code: 'FUNCTION_AT_CAPACITY', message: `${spec.key} is at its max_concurrency of ${maxConcurrency} on this worker` }, cold: false };
    }
    fp.inFlight++;
    let streaming: Promise<void> | undefined;
    try {
      if (spec.config.mode === 'thread') {
        if (bodyIn) body = await wholeBody(bodyIn);
        if (!this.wasm) return { outcome: { ok: false, code: 'FUNCTION_UNAVAILABLE', message: 'this worker runs no WebAssembly' }, cold: false };
        return await this.wasm.invoke(spec, req, body);
      }
      const acquired = await this.acquire(fp, timeoutMs);
      if ('outcome' in acquired) return { outcome: acquired.outcome, cold: acquired.cold };
      const { instance, cold } = acquired;
      // Only node hosts read a body as it comes: a python host runs one call at a time and reads
      // it whole, a module reads its whole stdin at once (and its CGI environment has its length).
      // Waited for here, once the instance is there: a cold start overlaps the upload.
      if (bodyIn && spec.config.runtime !== 'node') {
        try {
          body = await wholeBody(bodyIn);
        } catch (err) {
          this.unclaim(instance);
          return { outcome: { ok: false, code: 'FUNCTION_ERROR', message: (err as Error).message }, cold };
        }
        bodyIn = undefined;
      }
      // A module in a sandbox gets what it would get in a thread: the CGI environment, the stdout cap.
      // A Lambda handler on a v2 route gets the HTTP API payload; v1 calls carry nothing more.
      const call = spec.config.runtime === 'wasm' ? { ...req, cgi: cgiCall(spec, req, body) }
        : spec.config.event === 'v2' ? { ...req, event: 'v2' as const } : req;
      try {
        const outcome = await instance.invoke(call, body, timeoutMs, output, bodyIn);
        streaming = outcome.ok ? outcome.stream?.finished : undefined;
        return { outcome, cold };
      } finally {
        if (streaming) void streaming.then(() => this.unclaim(instance));
        else this.unclaim(instance);
      }
    } finally {
      const release = (): void => {
        fp.inFlight--;
        fp.waiters.shift()?.();
      };
      if (streaming) void streaming.then(release);
      else release();
    }
  }

  /** A call through the worker has given its slot back: the slot may be lent to the gateway. */
  private unclaim(instance: Instance): void {
    instance.claims--;
    this.direct?.offer(instance);
  }

  /** Host pids of every sandbox this worker runs (for load sampling). */
  sandboxPids(): number[] {
    const pids: number[] = [];
    for (const fp of this.pools.values()) for (const i of fp.instances) if (!i.exited) pids.push(i.pid);
    return [...pids, ...Object.values(this.spares).flatMap((s) => s.pids())];
  }

  /** Keys with a ready, non-retired instance. */
  warmKeys(): string[] {
    const keys = new Set<string>();
    for (const fp of this.pools.values()) if (fp.instances.some((i) => i.isReady && !i.retired)) keys.add(fp.spec.key);
    return [...keys];
  }

  /** The functions to keep min_warm instances of from now on; starts what is missing. */
  keepWarm(specs: readonly FunctionSpec[]): void {
    this.warm = new Map(specs.map((s) => [s.key, s]));
    this.fillWarm();
  }

  /** Stops instances idle past the TTL (all but min_warm), forgets empty old versions, restarts missing warm ones. */
  reapIdle(nowMs: number): void {
    for (const [version, fp] of this.pools) {
      const keep = this.warm.get(fp.spec.key)?.version === version ? fp.spec.config.minWarm : 0;
      let surplus = fp.instances.filter((i) => !i.retired).length - keep;
      for (const i of fp.instances) {
        if (surplus > 0 && !i.retired && i.claims === 0 && i.backgroundWork === 0 && nowMs - i.lastUsedMs > this.limits.idleTtlMs) {
          i.stop();
          surplus--;
        }
      }
      const stale = this.latestByKey.get(fp.spec.key) !== version;
      if (fp.inFlight === 0 && fp.instances.length === 0 && (stale || !fp.loadFailure) && keep === 0) this.pools.delete(version);
    }
    this.fillWarm();
  }

  /** Starts instances of the functions the gateway wants warm, up to their min_warm. */
  private fillWarm(): void {
    for (const spec of this.warm.values()) {
      if (spec.config.mode === 'thread') continue; // no instance to keep: a module in a thread is compiled on first call
      if ((this.latestByKey.get(spec.key) ?? -1) > spec.version) continue; // a newer version already serves
      const fp = this.poolFor(spec);
      const target = Math.min(spec.config.minWarm, maxInstances(spec.config));
      for (let n = fp.instances.filter((i) => !i.retired).length; n < target; n++) {
        const started = this.start(fp);
        if ('outcome' in started) {
          this.log({ level: 'warn', msg: 'could not keep an instance warm (min_warm); retrying at the next idle check', key: spec.key,
            error: started.outcome.ok ? '' : started.outcome.message });
          break;
        }
        started.ready.catch((err: Error) => this.log({ level: 'warn', msg: 'a min_warm instance failed to start', key: spec.key, error: err.message }));
      }
    }
  }

  /** Stops every instance (SIGTERM, grace, SIGKILL); resolves once all have exited. */
  async shutdown(): Promise<void> {
    for (const s of Object.values(this.spares)) s.shutdown();
    void this.wasm?.close();
    const instances = [...this.pools.values()].flatMap((fp) => fp.instances);
    for (const i of instances) i.stop(true);
    await Promise.all(instances.map((i) => i.gone));
  }


  private poolFor(spec: FunctionSpec): FunctionPool {
    let fp = this.pools.get(spec.version);
    if (fp) return fp;
    fp = { spec, instances: [], inFlight: 0, waiters: [] };
    this.pools.set(spec.version, fp);
    const previous = this.latestByKey.get(spec.key);
    if (previous === undefined || previous < spec.version) {
      this.latestByKey.set(spec.key, spec.version);
      // The config or code changed: old instances drain and exit.
      const old = previous === undefined ? undefined : this.pools.get(previous);
      for (const i of old?.instances ?? []) i.retire();
      if (previous !== undefined) this.wasm?.forget(previous);
    }
    return fp;
  }

  private async acquire(fp: FunctionPool, timeoutMs: number): Promise<{ instance: Instance; cold: boolean } | { outcome: CallOutcome; cold: boolean }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = fp.instances.filter((i) => !i.retired);
      // A node instance lent whole to the gateway still takes a call that came through the worker
      // before the gateway heard of the lease (it sends none after): otherwise it would wait for a
      // slot that only the gateway gives back. max_concurrency can be passed by those few, once.
      const withRoom = live.find((i) => i.hasRoom) ?? live.find((i) => i.leased > 0 && i.isReady && !i.retired);
      if (withRoom) {
        withRoom.claims++;
        const wasReady = withRoom.isReady;
        const warm = await settled(withRoom.ready);
        if (warm.ok) return { instance: withRoom, cold: !wasReady };
        withRoom.claims--;
        continue; // it failed to start; loop starts another or reports the load failure
      }
      if (live.length < maxInstances(fp.spec.config)) {
        const started = await this.startMakingRoom(fp);
        if ('outcome' in started) return started;
        started.claims++;
        const ok = await settled(started.ready);
        if (ok.ok) return { instance: started, cold: true };
        started.claims--;
        const message = ok.error.message;
        if (message.startsWith('function failed to load')) {
          fp.loadFailure = { message, untilMs: Date.now() + LOAD_FAILURE_TTL_MS };
          return { outcome: { ok: false, code: 'FUNCTION_ERROR', message }, cold: true };
        }
        return { outcome: { ok: false, code: 'FUNCTION_UNAVAILABLE', message: `could not start ${fp.spec.key}: ${message}` }, cold: true };
      }
      const waitMs = deadline - Date.now();
      if (waitMs <= 0 || !(await this.waitForSlot(fp, waitMs))) {
        return { outcome: { ok: false, code: 'FUNCTION_TIMEOUT', message: `no instance of ${fp.spec.key} became free within its timeout_ms of ${timeoutMs} ms` }, cold: false };
      }
    }
  }

  /**
   * start(), and where the memory budget is held by instances lent to the gateway, asks it for
   * them back one by one, least recently used first (direct-leases.ts): one it runs no call on
   * comes back and is stopped, and the start is tried again.
   */
  private async startMakingRoom(fp: FunctionPool): Promise<Instance | { outcome: CallOutcome; cold: boolean }> {
    let started = this.start(fp);
    if (!this.direct) return started;
    const lent = [...this.pools.values()].flatMap((p) => p.instances).filter((i) => i.leased > 0 && i.claims === 0 && !i.retired)
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    for (const candidate of lent) {
      if (!('outcome' in started) || started.outcome.ok || started.outcome.code !== 'FUNCTION_AT_CAPACITY') return started;
      if (!(await this.direct.reclaim(candidate))) continue; // in use
      this.log({ level: 'info', msg: 'instance evicted to stay within the memory budget', instance: candidate.name, budgetMb: this.limits.memoryBudgetMb });
      candidate.stop();
      started = this.start(fp);
    }
    return started;
  }

  /**
   * Makes room for `memoryMb` more within the budget by stopping least recently used idle
   * instances. Returns false if instances in use hold too much for that. An instance lent to the
   * gateway counts as in use: only the gateway knows whether it is (startMakingRoom asks it).
   */
  private makeRoom(memoryMb: number): boolean {
    const live: Array<{ instance: Instance; memoryMb: number }> = [];
    for (const fp of this.pools.values()) {
      // A retired instance still holds its memory while it finishes calls; a killed one is going.
      for (const i of fp.instances) if (!i.exited && (!i.retired || i.inFlight > 0)) live.push({ instance: i, memoryMb: fp.spec.config.memoryMb });
    }
    let used = live.reduce((sum, l) => sum + l.memoryMb, 0);
    const idle = live.filter((l) => l.instance.claims === 0 && l.instance.leased === 0).sort((a, b) => a.instance.lastUsedMs - b.instance.lastUsedMs);
    const inUse = used - idle.reduce((sum, l) => sum + l.memoryMb, 0);
    if (inUse + memoryMb > this.limits.memoryBudgetMb) return false; // evicting every idle one would not do: evict none
    while (used + memoryMb > this.limits.memoryBudgetMb) {
      const victim = idle.shift()!;
      this.log({ level: 'info', msg: 'instance evicted to stay within the memory budget', instance: victim.instance.name, budgetMb: this.limits.memoryBudgetMb });
      victim.instance.stop();
      used -= victim.memoryMb;
    }
    return true;
  }

  private start(fp: FunctionPool): Instance | { outcome: CallOutcome; cold: boolean } {
    const name = `${fp.spec.key}#${fp.spec.version}.${++this.instanceSeq}`;
    let instance: Instance;
    const { config } = fp.spec;
    if (!this.makeRoom(config.memoryMb)) {
      return { outcome: { ok: false, code: 'FUNCTION_AT_CAPACITY', message:
        `this worker's memory budget of ${this.limits.memoryBudgetMb} MiB is held by instances in use; ${fp.spec.key} needs ${config.memoryMb} MiB` }, cold: false };
    }
    const mode = config.mode as SandboxMode; // modules in threads never get here (invoke)
    const runner = this.runners[mode];
    if (typeof runner === 'string') {
      return { outcome: { ok: false, code: 'FUNCTION_UNAVAILABLE', message: `${fp.spec.key} cannot run in mode "${config.mode}" on this worker: ${runner}` }, cold: true };
    }
    const spare = this.spares[mode === 'container' && config.isolation === 'gvisor' ? 'gvisor' : mode].take(fp.spec);
    let sandbox: SandboxProcess;
    try {
      sandbox = spare?.sandbox ?? runner.start(fp.spec, materialize(config, this.codeDir));
      const capacity = concurrent(config) ? config.maxConcurrency : 1;
      instance = new Instance(name, sandbox, capacity, this.limits.startTimeoutMs, this.log);
      if (spare) instance.load(spare.load, spare.files);
      if (this.direct) {
        const direct = this.direct;
        direct.track(instance, fp.spec);
        instance.ready.then(() => direct.offer(instance), () => {});
      }
      void sandbox.exited.then(() => {
        const at = fp.instances.indexOf(instance);
        if (at >= 0) fp.instances.splice(at, 1);
        fp.waiters.shift()?.();
      });
    } catch (err) {
      return { outcome: { ok: false, code: 'FUNCTION_UNAVAILABLE', message: `could not start ${fp.spec.key}: ${(err as Error).message}` }, cold: true };
    }
    fp.instances.push(instance);
    this.log({ level: 'info', msg: 'instance started', instance: name, ...(instance.pid > 0 ? { pid: instance.pid } : {}), via: sandbox.via, prestarted: spare !== undefined });
    return instance;
  }

  private waitForSlot(fp: FunctionPool, waitMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const at = fp.waiters.indexOf(wake);
        if (at >= 0) fp.waiters.splice(at, 1);
        resolve(false);
      }, waitMs);
      fp.waiters.push(wake);
    });
  }
}

/**
 * Instances of one version a worker runs at most: a node host, or a Go program (a goroutine per
 * call), runs many calls at once; python hosts, and node hosts running a WebAssembly module (a
 * synchronous run), one call each.
 */
function maxInstances(config: FunctionSpec['config']): number {
  return concurrent(config) ? 1 : Math.min(PYTHON_MAX_INSTANCES, config.maxConcurrency);
}

const concurrent = (config: FunctionSpec['config']): boolean => config.runtime === 'node' || config.runtime === 'go';

async function settled(p: Promise<void>): Promise<{ ok: true } | { ok: false; error: Error }> {
  try {
    await p;
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err as Error };
  }
}

/** A streamed request body, whole. */
function wholeBody(stream: BodyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.consume({
      chunk: (bytes) => chunks.push(bytes),
      end: (failure) => (failure ? reject(new Error(failure.message)) : resolve(Buffer.concat(chunks))),
    });
  });
}
