#!/usr/bin/env bash
# Builds the libFuzzer targets with Debian's clang 14 (ASan+UBSan+libFuzzer) into build-fuzz/
# and runs each for a bounded time, starting from the seed corpus in fuzz/corpus/<name>/.
# Fails on any crash, leak, sanitizer report or timeout of an input. New inputs go to
# build-fuzz/corpus/<name>/ (the repository's seeds are not modified).
# Usage: cmake/run_fuzz.sh [seconds per target (default 30)] [target ...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(url schema_json text reflect compiler)
"$root/cmake/install_deps.sh" fuzz
dir="$root/build-fuzz"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$dir" -DATHANOR_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DATHANOR_BUILD_BENCH=OFF -DATHANOR_BUILD_EXAMPLES=OFF -DATHANOR_INSTALL=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t"
  log="$dir/fuzz_$t.log"
  echo "fuzz_$t: ${seconds}s"
  if ! "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$dir/crash_$t-" "$dir/corpus/$t" "$root/fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz_$t: FAILED (artifact in $dir/crash_$t-*)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  total=$((total + runs))
  echo "fuzz_$t: $runs executions, no crash"
done
echo "fuzz: $total executions in all, no crash"
