#!/usr/bin/env bash
# Configures and builds athanor. Usage: cmake/build.sh [--sanitize]  (build dir: build/ or build-asan/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/cmake/install_deps.sh"
dir="$root/build"; extra=()
if [ "${1:-}" = "--sanitize" ]; then
  dir="$root/build-asan"; extra=(-DATHANOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  extra=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S "$root" -B "$dir" "${extra[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
