#!/usr/bin/env bash
# The main job: install dependencies, build, run the tutorial demo with echo on.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/cmake/build.sh" >/dev/null
"$root/build/examples/athanor-tutorial"
if [ -x "$root/build/bench/athanor-bench" ]; then
  "$root/build/bench/athanor-bench" --db file
fi
