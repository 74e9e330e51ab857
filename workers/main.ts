// Composition root of a worker: serve invocations on RUN_DIR/worker-ID.sock, run functions
// in sandboxes, report load to the gateway's RUN_DIR/metrics.sock every report period.
// Besides src/protocol, only the shared config parser is taken from src/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWorkerConfig } from '../src/config.js';
import { allowedCpus, parseCpuList } from '../src/host/cpus.js';
import { createLog, type Log } from '../src/protocol/log.js';
import { DirectLeases } from './direct-leases.js';
import { openCgroups } from './open-cgroups.js';
import { ContainerRunner } from './runners/container-runner.js';
import { InvokeServer } from './invoke-server.js';
import { InstancePool } from './pool.js';
import { DEFAULT_FILTER } from './runners/process-runner.js';
import { PythonZygote, zygoteUsable } from './runners/python-zygote.js';
import { createProcessRunner } from './runners/unshare-runner.js';
import { ProcReader } from './proc-stats.js';
import { Reporter } from './reporter.js';
import { WasmRunner } from './runners/wasm-runner.js';

const RUNTIME_SOURCES = fileURLToPath(new URL('../../workers/runtime/', import.meta.url));
const REAP_EVERY_MS = 10_000;
/** How long a stopping worker lets its instances stop by themselves (the gateway's grace is 5 s). */
const HARD_STOP_MS = 3_000;

export async function runWorker(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = loadWorkerConfig(argv, env);
  const log = createLog('worker', { worker: config.id });
  const socketPath = path.join(config.runDir, `worker-${config.id}.sock`);

  fs.mkdirSync(config.runDir, { recursive: true });
  const runtimeDir = installRuntimeHosts(config.runDir);
  const cgroups = openCgroups(config.id);
  if (typeof cgroups === 'string') log({ level: 'warn', msg: cgroups });
  else log({ msg: 'instance limits', cgroup: cgroups.kind, cpuQuotas: cgroups.cpuQuotas });
  const limits = typeof cgroups === 'string' ? undefined : cgroups;
  const zygote = zygoteUsable(limits) && config.sandbox !== 'unshare'
    ? new PythonZygote({ runtimeDir, stateDir: path.join(config.runDir, `zygote-${config.id}`), seccompFilter: DEFAULT_FILTER, cgroups: limits, log })
    : undefined;
  const runners = {
    process: attempt(() => {
      const { runner, notice } = createProcessRunner({ runtimeDir, cgroups: limits, zygote }, config.sandbox);
      if (notice) log({ level: 'warn', msg: notice });
      return runner;
    }),
    container: limits
      ? attempt(() => new ContainerRunner({ runtimeDir, stateDir: path.join(config.runDir, 'containers'), workerId: config.id, cgroups: limits }))
      : `container mode needs cgroup memory and pids limits the worker can apply (${cgroups as string})`,
  };
  for (const [mode, runner] of Object.entries(runners)) {
    if (typeof runner === 'string') log({ level: 'warn', msg: `mode ${mode} is not available on this worker; its calls get 503 FUNCTION_UNAVAILABLE`, why: runner });
  }
  const pool = new InstancePool(runners, path.join(config.runDir, 'code'),
    { idleTtlMs: config.idleTtlMs, memoryBudgetMb: config.memoryBudgetMb, startTimeoutMs: config.startTimeoutMs }, log, new WasmRunner(),
    directLeases(log));
  const server = new InvokeServer(pool, log);
  await server.listen(socketPath);

  const cores = ownCores();
  if (cores) log({ msg: 'pinned: the cpu part of the score is how busy these cores are', cores: cores.join(',') });
  const reporter = new Reporter({
    id: config.id,
    socketPath,
    gatewayMetricsPath: path.join(config.runDir, 'metrics.sock'),
    intervalMs: config.reportMs,
    reader: new ProcReader(),
    childPids: () => pool.sandboxPids(),
    warmKeys: () => pool.warmKeys(),
    cores,
    now: Date.now,
    log: (line) => log({ level: 'warn', msg: line }),
  });
  reporter.start();
  const reaper = setInterval(() => pool.reapIdle(Date.now()), REAP_EVERY_MS);
  reaper.unref();
  const socketWatch = setInterval(() => {
    server.keepSocketFile().catch((err: unknown) => log({ level: 'error', msg: 'could not listen on the socket again', socket: socketPath, error: String(err) }));
  }, config.reportMs);
  socketWatch.unref();
  log({ msg: 'worker ready', pid: process.pid, socket: socketPath });

  let stopping = false;
  const shutdown = (why: string): void => {
    if (stopping) return;
    stopping = true;
    log({ msg: 'worker stopping', why });
    reporter.stop();
    clearInterval(reaper);
    clearInterval(socketWatch);
    server.close();
    fs.rmSync(socketPath, { force: true });
    void pool.shutdown().then(() => zygote?.close()).then(() => limits?.close()).finally(() => process.exit(0));
    // The gateway SIGKILLs a worker 5 s after SIGTERM. Before that, whatever has not stopped (a
    // container whose runtime is slow to delete it, on a loaded host) is killed: the worker's own
    // children first (an OCI runtime still starting a container would make its cgroup folder again
    // after we removed it), then everything in its cgroups; then the folders are removed.
    setTimeout(() => {
      killChildren();
      void (limits?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    }, HARD_STOP_MS).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (env.FAAS_SUPERVISED === '1') {
    // The gateway holds the other end of stdin: when it dies, even by SIGKILL, this ends.
    process.stdin.on('end', () => shutdown('gateway gone'));
    process.stdin.on('error', () => shutdown('gateway gone'));
    process.stdin.resume();
  }
}

/**
 * The direct data path needs Node's IPC channel to the gateway (it passes the instances' sockets):
 * a worker the gateway spawned has one; a worker started by hand serves every call itself.
 */
function directLeases(log: Log): DirectLeases | undefined {
  const send = process.send?.bind(process);
  if (!send || !process.channel) return undefined;
  const leases = new DirectLeases((msg, socket) => {
    send(msg, socket, {}, (err: Error | null) => {
      if (err) log({ level: 'warn', msg: 'could not send to the gateway over IPC', what: msg.t, error: err.message });
    });
  }, log);
  process.on('message', (msg) => leases.receive(msg));
  process.channel.unref(); // the stream socket and stdin keep the worker alive, not this
  return leases;
}

/** SIGKILLs this process's children (runc, runsc, bwrap, the zygote): what a stopping worker has not stopped. */
function killChildren(): void {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) process.kill(Number(name), 'SIGKILL');
    } catch {
      /* gone, or not ours to kill */
    }
  }
}

/**
 * The CPUs this worker may run on, when they are fewer than the machine's online CPUs: it was
 * pinned (the gateway's --pin, or taskset by hand), and its sandboxes inherit the mask.
 */
function ownCores(): number[] | undefined {
  try {
    const allowed = allowedCpus();
    const online = parseCpuList(fs.readFileSync('/sys/devices/system/cpu/online', 'latin1'));
    return allowed && online && allowed.length < online.length ? allowed : undefined;
  } catch {
    return undefined;
  }
}

/** A runner, or why this worker cannot have one. */
function attempt<T>(make: () => T): T | string {
  try {
    return make();
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Copies the runtime hosts where the sandbox user can read them (the checkout may not be), with
 * the compiled WebAssembly task the node host runs modules with.
 */
function installRuntimeHosts(runDir: string): string {
  const dir = path.join(runDir, 'runtime');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const sources = [
    ...['node-host.mjs', 'node-calls.mjs', 'lazy-request.mjs', 'lazy-response.mjs', 'lambda-stream.mjs', 'python-host.py', 'python_lambda.py', 'python-zygote.py'].map((name) => path.join(RUNTIME_SOURCES, name)),
    ...['wasm-task.js', 'wasm-limits.js'].map((name) => fileURLToPath(new URL(`./runners/${name}`, import.meta.url))),
  ];
  for (const source of sources) {
    const name = path.basename(source);
    const tmp = path.join(dir, `.${name}.${process.pid}`);
    fs.copyFileSync(source, tmp);
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, path.join(dir, name));
  }
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n', { mode: 0o644 }); // the .js files are ES modules
  return dir;
}
