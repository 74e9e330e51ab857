#!/bin/sh
# Builds every native floor, native-bench/NAME.c -> native-bench/bin/NAME, with the system's
# plain `cc` and nothing else. Stops at the first program that does not compile, with the
# compiler's own message and a non-zero status (warnings are shown, and do not stop the build).
#
#   sh native-bench/build.sh        (from any directory)
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
cd "$dir"
command -v cc >/dev/null 2>&1 || { echo "native-bench/build.sh: no cc on PATH (install gcc or clang: apt-get install -y gcc)" >&2; exit 1; }
mkdir -p bin
for src in *.c; do
  [ -e "$src" ] || { echo "native-bench/build.sh: no .c files in $dir" >&2; exit 1; }
  name=${src%.c}
  cc -O2 -Wall -Wextra -o "bin/$name" "$src" || { echo "native-bench/build.sh: cc failed on native-bench/$src (its message is above)" >&2; exit 1; }
done
