// A running container as the pool sees any sandbox (runner.ts's SandboxProcess), for
// container-runner.ts: removing the container is how it is killed, and what it left (its
// runtime's state, its bundle folder) goes once it has exited.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { ChannelSocket } from '../channel-socket.js';
import { exitOf, type CgroupUsage, type SandboxExit, type SandboxProcess } from './runner.js';

/**
 * The SandboxProcess of a container whose runtime or engine runs in `child` (in the foreground):
 * killing it is removing the container (killing `child` would leave the container running);
 * when it has exited, the limit it hit is read (where there is a count to read), the container
 * removed, once, and its bundle folder with it.
 */
export function containerSandbox(child: ChildProcess, via: string, listener: ChannelSocket, bundle: string,
  how: { remove: () => Promise<void>; terminate: () => Promise<void>; limitHit?: () => string | undefined; usage?: () => CgroupUsage | undefined }): SandboxProcess {
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> => (removed ??= how.remove());
  const exited = exitOf(child, (code, signal) => {
    const limit = how.limitHit?.();
    listener.close();
    return remove().catch(() => {}).then((): SandboxExit => {
      fs.rmSync(bundle, { recursive: true, force: true });
      return { code, signal, ...(limit ? { limit } : {}) };
    });
  });
  return {
    pid: child.pid ?? -1,
    via,
    channel: listener.channel,
    output: [child.stdout as Readable, child.stderr as Readable],
    terminate: () => void how.terminate(),
    kill: () => void remove(),
    exited,
    ...(how.usage && { usage: how.usage }),
  };
}

/** Runs a command of the OCI runtime or engine to its end; its failure is not ours to report. */
export function run(command: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}
