// What gVisor's runsc (Debian package runsc, 0.0~20221219) needs that runc does not, measured
// here; container-runner.ts runs the same bundle with either.
import os from 'node:os';

/**
 * runsc's flags before every command, besides --root. ptrace: this runsc has only the ptrace and
 * kvm platforms ("unknown platform: systrap"), and kvm hangs on our hosts (nested
 * virtualisation). --network=none: no network stack but loopback, as runc's empty network
 * namespace. --host-uds=open: gVisor refuses host Unix sockets by default, and the runtime
 * host connects to the worker's socket bound in at /run/faas; `open` allows connecting to one,
 * not creating one. --oci-seccomp: runsc ignores linux.seccomp without it (Seccomp: 0 inside).
 */
export const GVISOR_FLAGS = ['--platform=ptrace', '--network=none', '--host-uds=open', '--oci-seccomp'];
/**
 * pids.max of a gVisor container's cgroup: it counts host tasks, not the function's, i.e. gVisor's
 * own threads (~50) and, on the ptrace platform, a stub of ~10 threads per process the function
 * runs (measured: 61 with one process, 364 with 30, 681 with 60). Reaching it ends the whole
 * sandbox (its kernel panics: "error initializing first thread"), so it stops a fork bomb by
 * ending that instance: gVisor enforces no process limit of its own (not RLIMIT_NPROC either).
 */
export const GVISOR_PIDS_MAX = 512;

export interface SeccompProfile {
  readonly syscalls?: ReadonlyArray<{ readonly errnoRet?: number }>;
}

/**
 * The seccomp rules for runsc. It applies them in its own kernel (--oci-seccomp) but ignores
 * errnoRet: every refused call fails with EPERM (a refused socket too, where runc says EACCES).
 * So the rule that answers clone3 with ENOSYS, for glibc to fall back to clone (whose flags a
 * filter can read), would fail every thread creation instead; gVisor has no clone3 anyway (ENOSYS
 * without a rule), and checks clone's flags against the other rules.
 */
export function gvisorSeccomp(profile: SeccompProfile): unknown {
  return { ...profile, syscalls: (profile.syscalls ?? []).filter((rule) => rule.errnoRet !== os.constants.errno.ENOSYS) };
}
