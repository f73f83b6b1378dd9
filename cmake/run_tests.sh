#!/usr/bin/env bash
# Install dependencies, build, run every test. Usage: cmake/run_tests.sh [--sanitize | --tsan]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$("$root/cmake/build.sh" "$@" | tail -n 1)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
