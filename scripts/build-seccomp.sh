#!/bin/sh
# Builds the seccomp filter of the function sandboxes (workers/seccomp/filter.c, libseccomp)
# and writes it as a BPF program to dist/seccomp/filter.bpf, which the process runner hands to
# bwrap --seccomp, and the same rules as OCI JSON to
# dist/seccomp/filter.oci.json for container mode. Needs cc and libseccomp-dev (scripts/host-deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."
out=dist/seccomp
mkdir -p "$out"
if [ ! -f /usr/include/seccomp.h ]; then
  echo "build-seccomp: /usr/include/seccomp.h is missing: install the Debian package libseccomp-dev" >&2
  exit 1
fi
cc -O2 -Wall -Wextra -Werror -o "$out/filter" workers/seccomp/filter.c -lseccomp
"$out/filter" "$out/filter.bpf.tmp" "$out/filter.oci.json.tmp"
mv "$out/filter.bpf.tmp" "$out/filter.bpf"
mv "$out/filter.oci.json.tmp" "$out/filter.oci.json"
# seccomp-exec installs filter.bpf and execs a command: the unshare + setpriv sandbox's stand-in
# for bwrap --seccomp where bwrap is absent (workers/unshare-runner.ts). No libseccomp needed.
cc -O2 -Wall -Wextra -Werror -o "$out/seccomp-exec.tmp" workers/seccomp/exec.c
mv "$out/seccomp-exec.tmp" "$out/seccomp-exec"
