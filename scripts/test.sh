#!/usr/bin/env bash
# The one test command: prepare the machine for the real-engine tests, build the
# fixtures, then build and run every test, engine tests included.
#
# Usage: scripts/test.sh [TESTNAME-FILTER...]     (as root; extra args go to the test binaries)
#   IMGCRAFT_TEST_STATE  state dir for dockerd, the registry and env.sh (default /tmp/imgcraft-test-env)
#   IMGCRAFT_FIXTURES    where fixtures are built (default <repo>/target/fixtures)
#   IMGCRAFT_FUZZ_SECONDS  seconds per fuzz target (default 30; 0 skips the fuzz phase)
# dockerd and the registry are stopped at the end if this run started them.
set -euo pipefail

# setcap, getcap, dockerd and dpkg's helpers live in sbin, which a non-login PATH (CI) may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export IMGCRAFT_TEST_STATE=${IMGCRAFT_TEST_STATE:-/tmp/imgcraft-test-env}
IMGCRAFT_FIXTURES=$(realpath -m "${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}")  # tests need it absolute
export IMGCRAFT_FIXTURES
STATE=$IMGCRAFT_TEST_STATE
REGISTRY_ADDR=${IMGCRAFT_REGISTRY_ADDR:-127.0.0.1:5000}

# rustup installs into ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
command -v cargo >/dev/null || export PATH="${HOME:-/root}/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "error: cargo not found (install Rust with rustup)" >&2; exit 1; }

T_ALL=$SECONDS
phase() { # phase NAME COMMAND...: run it and print how long it took
  local name=$1 t0=$SECONDS
  shift
  printf '\n=== %s\n' "$name"
  "$@"
  printf '=== %s: %ds\n' "$name" $((SECONDS - t0))
}

# Note what is already running, so the trap stops only what this run starts.
dockerd_was_up=; registry_was_up=
curl -fsS -o /dev/null --max-time 5 --unix-socket "$STATE/docker.sock" http://docker/_ping 2>/dev/null && dockerd_was_up=1
curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/" 2>/dev/null && registry_was_up=1
stop_pidfile() { # stop_pidfile NAME FILE: SIGTERM the process, wait up to 30s for it to go
  local pid
  pid=$(cat "$2" 2>/dev/null) || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  echo "stopping $1 (pid $pid)"
  kill "$pid"
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  echo "warning: $1 (pid $pid) is still running" >&2
}
cleanup() {
  [[ -n $dockerd_was_up ]] || stop_pidfile dockerd "$STATE/docker.pid"
  [[ -n $registry_was_up ]] || stop_pidfile docker-registry "$STATE/registry.pid"
  return 0
}
trap cleanup EXIT

phase "setup test environment" bash scripts/setup-test-env.sh
phase "make fixtures" bash scripts/make-fixtures.sh "$IMGCRAFT_FIXTURES"
# shellcheck source=/dev/null  # written by setup-test-env.sh
. "$STATE/env.sh"
# Yocto scarthgap builds the recipe with Rust 1.75 (rust-version): what can be checked without that toolchain.
phase "msrv check" bash scripts/msrv-check.sh
phase "cargo build --release" cargo build --release
phase "cargo test" cargo test --release --all-features -- --test-threads=2 "$@"
# Every fuzz target for IMGCRAFT_FUZZ_SECONDS (default 30) each; IMGCRAFT_FUZZ_SECONDS=0 skips it.
phase "fuzz" bash scripts/fuzz.sh
printf '\n=== all phases: %ds\n' $((SECONDS - T_ALL))
