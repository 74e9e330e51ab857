#!/bin/sh
# Builds the seccomp filter of the function sandboxes (workers/seccomp/filter.c, libseccomp)
# and writes it as a BPF program to dist/seccomp/filter.bpf, which the process runner hands to
# bwrap --seccomp. Needs cc and libseccomp-dev (scripts/host-deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."
out=dist/seccomp
mkdir -p "$out"
if [ ! -f /usr/include/seccomp.h ]; then
  echo "build-seccomp: /usr/include/seccomp.h is missing: install the Debian package libseccomp-dev" >&2
  exit 1
fi
cc -O2 -Wall -Wextra -Werror -o "$out/filter" workers/seccomp/filter.c -lseccomp
"$out/filter" "$out/filter.bpf.tmp"
mv "$out/filter.bpf.tmp" "$out/filter.bpf"
