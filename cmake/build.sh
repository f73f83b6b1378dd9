#!/usr/bin/env bash
# Configures and builds athanor. Usage: cmake/build.sh [--sanitize | --tsan]
# Build dirs: build/ (Release), build-asan/ (ASan+UBSan, Debug), build-tsan/ (TSan).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/cmake/install_deps.sh"
dir="$root/build"; extra=()
case "${1:-}" in
  --sanitize) dir="$root/build-asan"; extra=(-DATHANOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
  --tsan) dir="$root/build-tsan"; extra=(-DATHANOR_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
                                          -DATHANOR_BUILD_BENCH=OFF -DATHANOR_BUILD_EXAMPLES=OFF) ;;
  "") extra=(-DCMAKE_BUILD_TYPE=Release) ;;
  *) echo "usage: cmake/build.sh [--sanitize | --tsan]" >&2; exit 2 ;;
esac
cmake -S "$root" -B "$dir" "${extra[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
