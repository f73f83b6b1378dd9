#!/usr/bin/env bash
# Installs the Debian packages athanor needs to build and test. Idempotent: apt-get runs only
# when a package is missing, so a second run costs a few dpkg queries.
# Usage: cmake/install_deps.sh [fuzz | plot]     (as root, or with sudo available)
#   fuzz: also clang 14 and its sanitizer/libFuzzer runtimes (cmake/run_fuzz.sh)
#   plot: also Debian's python3 and matplotlib, for bench/plot.py
set -euo pipefail
packages=(build-essential cmake pkg-config ccache
          libsqlite3-dev sqlite3 libsqlitecpp-dev libspdlog-dev libfmt-dev
          libpq-dev postgresql-15
          nlohmann-json3-dev libgtest-dev)
if [ "${1:-}" = "fuzz" ]; then packages+=(clang-14 libclang-rt-14-dev); fi
if [ "${1:-}" = "plot" ]; then packages+=(python3 python3-matplotlib); fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
