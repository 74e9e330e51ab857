#!/bin/sh
# Prepares the pure cgroup v2 test guest (scripts/cgroup2-vm/README.md): QEMU on the host, and in
# the cache dir ${FAAS_VM_CACHE:-/var/tmp/faas-cgroup2-vm} Debian's kernel (uncompressed vmlinux)
# and an initramfs (static busybox + the virtio/9p/overlay modules + ./init).
# Idempotent and cheap when done: it only rebuilds the initramfs when init changed.
# The host's own /boot, /lib/modules and /sys/fs/cgroup are never touched: the kernel package is
# fetched with `apt-get download` and unpacked into a temp dir, not installed.
# As root it apt-get installs what is missing; otherwise it names what is missing and exits 1.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${FAAS_VM_CACHE:-/var/tmp/faas-cgroup2-vm}
# The modules the guest needs to mount its root (host's / over virtio-9p, tmpfs overlay on top);
# Debian builds them as modules, modprobe adds their dependencies (netfs, fscache, virtio_ring...).
MODULES="virtio_pci 9pnet_virtio 9p overlay"
is_root() { [ "$(id -u)" = 0 ]; }
say() { echo "cgroup2-vm setup: $*" >&2; }

kernel_ready() { { [ -s "$CACHE/vmlinux" ] || [ -s "$CACHE/vmlinuz" ]; } && [ -s "$CACHE/mods/list" ] && [ -x "$CACHE/busybox" ]; }
# The initramfs is stamped with what went into it, so editing init rebuilds it (and only it).
want_sum() { cat "$HERE/init" "$CACHE/mods/list" "$CACHE/busybox" | sha256sum | cut -d' ' -f1; }
initramfs_ready() { kernel_ready && [ -s "$CACHE/initramfs.cpio.gz" ] && [ "$(cat "$CACHE/initramfs.sum" 2>/dev/null)" = "$(want_sum)" ]; }

# 1. Host packages. kmod (modprobe/depmod) and xz-utils are only needed to build the cache;
#    slim images (debian:bookworm) lack them.
pkgs=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || pkgs="$pkgs qemu-system-x86"
if ! kernel_ready; then
  command -v modprobe >/dev/null 2>&1 || [ -x /usr/sbin/modprobe ] || pkgs="$pkgs kmod"
  command -v xz >/dev/null 2>&1 || pkgs="$pkgs xz-utils"
fi
if [ -n "$pkgs" ]; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    say "installing$pkgs with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $pkgs >/dev/null
  else
    say "missing Debian packages:$pkgs"
    say "install them with: sudo apt-get install -y --no-install-recommends$pkgs"
    say "(or run: sudo sh scripts/cgroup2-vm/setup.sh)"
    exit 1
  fi
fi
initramfs_ready && exit 0

# 2. The cache. Building it needs no root, only a writable cache dir and the apt package lists.
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  what="kernel and initramfs"; kernel_ready && what="an initramfs rebuilt from scripts/cgroup2-vm/init"
  say "the guest is not set up: $CACHE needs $what, and is not writable by $(id -un)"
  say "run: sudo sh scripts/cgroup2-vm/setup.sh   (or set FAAS_VM_CACHE to a directory of yours)"
  exit 1
fi
# One builder at a time (several engineers / CI jobs may start `npm test` together); the others
# wait, then find it done.
if command -v flock >/dev/null 2>&1 && [ -z "${FAAS_VM_SETUP_LOCKED:-}" ]; then
  FAAS_VM_SETUP_LOCKED=1 exec flock "$CACHE/.lock" sh "$0" "$@"
fi
initramfs_ready && exit 0
PATH=$PATH:/usr/sbin:/sbin
W=$(mktemp -d "${TMPDIR:-/tmp}/faas-cgroup2-vm.XXXXXX")
trap 'rm -rf "$W"' EXIT

if ! kernel_ready; then
  # linux-image-amd64 is the meta package; its dependency is the versioned kernel. Not the cloud
  # flavour: linux-image-cloud-amd64 is built without 9p.
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [ -z "$kpkg" ] && is_root; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  fi
  [ -n "$kpkg" ] || { say "apt knows no linux-image-amd64 (run apt-get update as root)"; exit 1; }
  say "downloading $kpkg and busybox-static (apt-get download; nothing is installed)"
  is_root && chown _apt "$W" 2>/dev/null || true   # apt downloads as _apt when run as root
  (cd "$W" && apt-get -o DPkg::Lock::Timeout=300 download -qq "$kpkg" busybox-static)
  dpkg-deb -x "$W/$kpkg"_*.deb "$W/k"
  dpkg-deb -x "$W"/busybox-static_*.deb "$W/bb"
  kver=$(ls "$W/k/lib/modules")
  mkdir -p "$W/out/mods"
  # The bzImage boots through the real-mode setup + decompressor, ~2.5 s under TCG; the
  # uncompressed ELF boots directly (PVH entry). Debian's payload is xz: find its magic and
  # unpack it; if that fails keep the bzImage, which also boots, only slower.
  vmlinuz=$W/k/boot/vmlinuz-$kver
  off=$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$vmlinuz" | head -1 | cut -d: -f1)
  if [ -n "$off" ] && tail -c +"$((off + 1))" "$vmlinuz" | xz -dc --single-stream > "$W/out/vmlinux" 2>/dev/null &&
     [ "$(head -c 4 "$W/out/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    :
  else
    rm -f "$W/out/vmlinux"; cp "$vmlinuz" "$W/out/vmlinuz"
  fi
  # Modules with their dependencies, in load order (modprobe --show-depends prints insmod lines).
  depmod -b "$W/k" "$kver"
  for m in $MODULES; do
    modprobe -d "$W/k" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
  done | awk '!seen[$0]++' | while read -r ko; do
    name=$(basename "$ko"); name=${name%%.ko*}
    case $ko in
      *.ko.xz) xz -dc "$ko" > "$W/out/mods/$name.ko" ;;   # busybox insmod loads plain .ko only
      *.ko.zst) zstd -dcq "$ko" > "$W/out/mods/$name.ko" ;;
      *) cp "$ko" "$W/out/mods/$name.ko" ;;
    esac
    echo "$name" >> "$W/out/mods/list"
  done
  [ -s "$W/out/mods/list" ] || { say "no modules found for: $MODULES"; exit 1; }
  cp "$W/bb/bin/busybox" "$W/out/busybox"
  echo "$kpkg $kver" > "$W/out/kernel.pkg"
  rm -rf "$CACHE/mods" "$CACHE/vmlinux" "$CACHE/vmlinuz"
  mv "$W/out"/* "$CACHE/"
fi

# 3. The initramfs: busybox, the modules, our init. No device nodes: init mounts devtmpfs.
R=$W/initramfs
mkdir -p "$R/bin" "$R/mods" "$R/proc" "$R/sys" "$R/dev" "$R/tmp"
cp "$CACHE/busybox" "$R/bin/busybox"
cp "$CACHE/mods"/*.ko "$CACHE/mods/list" "$R/mods/"
cp "$HERE/init" "$R/init"; chmod 755 "$R/init"
(cd "$R" && find . | "$CACHE/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$W/initramfs.cpio.gz"
mv "$W/initramfs.cpio.gz" "$CACHE/initramfs.cpio.gz"
want_sum > "$CACHE/initramfs.sum"
say "ready in $CACHE: $(cat "$CACHE/kernel.pkg"), modules: $(tr '\n' ' ' < "$CACHE/mods/list")"
