#!/bin/sh
# Usage: sh scripts/cgroup2-vm/run.sh CMD [ARGS...]
# Runs CMD ARGS as root in the pure cgroup v2 test guest (README.md beside this file), in the
# host's current directory, streams its output (stdout and stderr together) and exits with its
# status, or 125 if the guest gave none (crash, boot failure, timeout).
# The guest sees the host's files read-only under a throw-away overlay: nothing it writes
# reaches the host. Run setup.sh first (test.sh does).
# Env: FAAS_VM_MEM (guest RAM, default 2G), FAAS_VM_TIMEOUT (seconds, default 900),
#      FAAS_VM_CACHE (as setup.sh), FAAS_VM_DEBUG=1 (kernel messages and init's timestamps).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${FAAS_VM_CACHE:-/var/tmp/faas-cgroup2-vm}
TIMEOUT=${FAAS_VM_TIMEOUT:-900}
say() { echo "cgroup2-vm: $*" >&2; }
[ $# -gt 0 ] || { say "usage: sh scripts/cgroup2-vm/run.sh CMD [ARGS...]"; exit 125; }
# The uncompressed kernel boots ~2.5 s faster under TCG (setup.sh); the bzImage is the fallback.
KERNEL=$CACHE/vmlinux; [ -s "$KERNEL" ] || KERNEL=$CACHE/vmlinuz
if [ ! -s "$KERNEL" ] || [ ! -s "$CACHE/initramfs.cpio.gz" ] || ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  say "the guest is not set up (no QEMU, or no kernel/initramfs in $CACHE): run sh scripts/cgroup2-vm/setup.sh"
  exit 125
fi

# The io share: the command (written here) and its exit status (written by the guest's init).
IO=$(mktemp -d "${TMPDIR:-/tmp}/faas-cgroup2-vm-io.XXXXXX")
trap 'rm -rf "$IO"' EXIT
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }   # shell-quote one word
# The guest starts with an empty environment (init sets HOME, TERM, FAAS_CGROUP2_VM=1). PATH
# leads with the host's node's directory so the guest runs the same node (nvm installs included).
gpath=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
node=$(command -v node 2>/dev/null || true)
[ -z "$node" ] || gpath=$(dirname "$node"):$gpath
{
  echo "export PATH=$(q "$gpath") LANG=$(q "${LANG:-C.UTF-8}")"
  [ -z "${CI:-}" ] || echo "export CI=$(q "$CI")"
  # The guest's output goes through a pipe (plain logs); keep colours when a person watches.
  [ ! -t 1 ] || echo "export FORCE_COLOR=1"
  echo "cd $(q "$PWD") || exit 125"
  printf 'exec'; for a in "$@"; do printf ' %s' "$(q "$a")"; done; echo
} > "$IO/cmd"

# TCG, not KVM: /dev/kvm on our machines is nested PVM, where a Debian kernel dies with
# "emulation failure" (README.md). -cpu max gives the guest every feature TCG emulates.
append="console=ttyS0 panic=-1"
if [ -n "${FAAS_VM_DEBUG:-}" ]; then append="$append ignore_loglevel faasvm.debug"; else append="$append quiet loglevel=1"; fi
# Started in the background so that Ctrl-C / a kill reaches QEMU (timeout runs it in its own
# process group, out of reach of the terminal's signals).
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m "${FAAS_VM_MEM:-2G}" \
  -nodefaults -no-user-config -display none -vga none -no-reboot -monitor none \
  -serial stdio \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$KERNEL" -initrd "$CACHE/initramfs.cpio.gz" -append "$append" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
  -fsdev local,id=io,path="$IO",security_model=none \
  -device virtio-9p-pci,fsdev=io,mount_tag=io \
  < /dev/null &
qpid=$!
trap 'kill -TERM $qpid 2>/dev/null; wait $qpid; exit 130' INT
trap 'kill -TERM $qpid 2>/dev/null; wait $qpid; exit 143' TERM
qrc=0; wait $qpid || qrc=$?
trap - INT TERM
rc=$(cat "$IO/rc" 2>/dev/null || true)
if [ -z "$rc" ]; then
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then say "timed out after ${TIMEOUT}s (FAAS_VM_TIMEOUT)"
  else say "the guest gave no exit status (qemu exit status $qrc; FAAS_VM_DEBUG=1 shows the boot)"; fi
  exit 125
fi
exit "$rc"
