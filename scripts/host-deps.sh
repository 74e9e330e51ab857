#!/bin/sh
# Host packages the gateway needs beyond npm: bubblewrap (the process sandbox), a C compiler
# and libseccomp-dev (the sandbox's seccomp filter is built with them), runc (the OCI runtime
# of container mode), python3-pip and golang-go (the gateway installs requirements.txt and
# compiles go functions: src/build/) and the sqlite3
# command-line client (how operators edit routes). Installed with apt-get when run
# as root on Debian/Ubuntu; otherwise a message names the package to install.
# --test (npm test) adds runsc (gVisor, for "isolation": "gvisor": operators who want it install
# it themselves; without it such rows get a row error), podman (the suite runs container functions from image names with it),
# chromium (the dashboard test drives it headless), prometheus (promtool checks /metrics) and
# slowhttptest (the slowloris test), and for the several-node suite (issue 17) postgresql,
# redis-server, haproxy and iproute2 (ip netns).
# Operators who want image names need Docker or Podman themselves; the gateway runs without.
set -e
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
command -v sqlite3 >/dev/null 2>&1 || missing="$missing sqlite3"
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
[ -f /usr/include/seccomp.h ] || missing="$missing libseccomp-dev"
[ -x /usr/bin/python3 ] || missing="$missing python3"
# Builds (src/build/): pip for requirements.txt, Debian's Go for go functions.
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || missing="$missing python3-pip"
[ -x /usr/bin/go ] || missing="$missing golang-go"
if [ "${1:-}" = "--test" ]; then
  # The dependency tests build their own wheels, offline.
  /usr/bin/python3 -c 'import setuptools, wheel' >/dev/null 2>&1 || missing="$missing python3-setuptools python3-wheel"
  command -v runsc >/dev/null 2>&1 || missing="$missing runsc"
  command -v podman >/dev/null 2>&1 || missing="$missing podman"
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
  command -v slowhttptest >/dev/null 2>&1 || missing="$missing slowhttptest"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
  command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
  command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing="$missing iproute2"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "host-deps: installing$missing with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq $missing >/dev/null
else
  echo "host-deps: missing Debian packages:$missing" >&2
  echo "host-deps: install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
