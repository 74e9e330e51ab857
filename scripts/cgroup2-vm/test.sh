#!/bin/sh
# npm run test:cgroup2 (the last step of npm test): runs the suites below with vitest inside the
# pure cgroup v2 guest (README.md beside this file), so the sandbox's limits are proven on a
# systemd-like cgroup v2 host too, not only on the hybrid (v1 memory/pids) build machines.
# Needs `npm run build` done (npm test does it first). FAAS_SKIP_CGROUP2_VM=1 skips, loudly.
# Extra arguments go to vitest (e.g. -t 'memory').
set -eu

# The suites that run in the guest: this list, and nowhere else.
# cgroup-host.test.ts holds the promises the host's cgroups keep (memory, pids, cpu, kill, containers,
# gVisor, the zygote, a SIGKILLed gateway) in one gateway: the whole of limits.test.ts and
# lifecycle.test.ts took 4.5 minutes here under emulation.
SUITES="
  test/integration/cgroup-host.test.ts
"

cd "$(dirname "$0")/../.."
if [ "${FAAS_SKIP_CGROUP2_VM:-}" = 1 ]; then
  echo "################################################################################" >&2
  echo "## SKIPPED: the pure cgroup v2 suites (FAAS_SKIP_CGROUP2_VM=1):" >&2
  for s in $SUITES; do echo "##   $s" >&2; done
  echo "## The sandbox's limits were NOT checked on a pure cgroup v2 host." >&2
  echo "################################################################################" >&2
  exit 0
fi
[ -f dist/seccomp/filter.bpf ] || { echo "cgroup2-vm: no build in dist/: run npm run build first" >&2; exit 1; }
sh scripts/cgroup2-vm/setup.sh
echo "cgroup2-vm: running in the pure cgroup v2 guest:" $SUITES >&2
start=$(date +%s)
rc=0
# shellcheck disable=SC2086
# A new instance may take a minute to start under emulation (gVisor's; 10 s is the default).
sh scripts/cgroup2-vm/run.sh env FAAS_START_TIMEOUT_MS=120000 node_modules/.bin/vitest run $SUITES "$@" || rc=$?
echo "cgroup2-vm: guest run took $(($(date +%s) - start)) s (boot included), exit status $rc" >&2
exit $rc
