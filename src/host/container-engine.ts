// A Docker or Podman engine on this host, for container functions whose `image` is an image
// name rather than a root file system folder. Docker counts only when its daemon answers (the
// client alone is common: CI machines, this project's own); Podman needs no daemon. Found once
// per process: the gateway asks when it checks a row, a worker when it starts a container.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface ContainerEngine {
  readonly name: 'docker' | 'podman';
  readonly path: string;
}

let found: ContainerEngine | null | undefined;

export function findContainerEngine(): ContainerEngine | undefined {
  if (found === undefined) found = probe() ?? null;
  return found ?? undefined;
}

function probe(): ContainerEngine | undefined {
  const dirs = ['/usr/local/bin', '/usr/bin', '/bin'];
  const docker = dirs.map((d) => `${d}/docker`).find((p) => fs.existsSync(p));
  if (docker && spawnSync(docker, ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5000 }).status === 0) {
    return { name: 'docker', path: docker };
  }
  const podman = dirs.map((d) => `${d}/podman`).find((p) => fs.existsSync(p));
  return podman ? { name: 'podman', path: podman } : undefined;
}

const SBIN_DIRS = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];

/** The OCI runtime of container mode (Debian package runc), or undefined: container mode then refuses to start instances. */
export function findOciRuntime(): string | undefined {
  return SBIN_DIRS.map((d) => `${d}/runc`).find((p) => fs.existsSync(p));
}

/** gVisor's runsc (Debian package runsc), or undefined: functions with "isolation": "gvisor" are then refused. */
export function findRunsc(): string | undefined {
  return SBIN_DIRS.map((d) => `${d}/runsc`).find((p) => fs.existsSync(p));
}

/** An image name as Docker and Podman take it: registry/path:tag or @digest, no spaces. */
export const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;
