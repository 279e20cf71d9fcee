#!/usr/bin/env bash
# Fuzz every parser that reads what other people made, each for a bounded time, as CI does.
#
# Usage: scripts/fuzz.sh [TARGET...]          (default: every target in fuzz/fuzz_targets)
#   IMGCRAFT_FUZZ_SECONDS   seconds per target (default 30; 0 skips fuzzing, for local runs)
#   IMGCRAFT_FUZZ_CORPUS    corpus directory, one subdirectory per target (default <repo>/fuzz/corpus); seeded
#                           by scripts/make-fuzz-corpus.sh, and it keeps what the fuzzer finds for the next run
# Needs nightly Rust (installed with rustup when missing) and cargo-fuzz (installed from crates.io when missing).
# All targets are built once (`cargo fuzz build -O --debug-assertions`); each then runs with libFuzzer's limits:
# a small input must never take more than 1 GiB, nor more than 10 s. A crash, a panic or a limit breach stops that
# target: its input is kept in fuzz/artifacts/TARGET/, the reproducer command is printed, and the script exits 1
# after the remaining targets have run. Every finding becomes a regression test: copy the input to
# tests/data/fuzz/TARGET/ (tests/fuzz_regressions.rs replays them all).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SECONDS_PER_TARGET=${IMGCRAFT_FUZZ_SECONDS:-30}
CORPUS=$(realpath -m "${IMGCRAFT_FUZZ_CORPUS:-$REPO/fuzz/corpus}")
ARTIFACTS=$REPO/fuzz/artifacts
RSS_LIMIT_MB=1024
TIMEOUT_S=10

if [[ $SECONDS_PER_TARGET == 0 ]]; then
  echo "fuzzing skipped (IMGCRAFT_FUZZ_SECONDS=0)"
  exit 0
fi
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || { echo "error: IMGCRAFT_FUZZ_SECONDS must be a number of seconds" >&2; exit 1; }

# The longest input each target is given: enough for its seeds, small enough that every run stays quick.
declare -A MAX_LEN=(
  [tar_normalize]=65536 [decompress]=65536 [inspect_archive]=65536 [inspect_layout]=65536
  [pkgdata]=16384 [packages]=16384 [oci_documents]=8192 [docker_manifest_json]=4096
  [registry_auth]=2048 [reference]=512
)
if (($# > 0)); then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(find fuzz/fuzz_targets -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
fi
for target in "${TARGETS[@]}"; do
  [[ -f fuzz/fuzz_targets/$target.rs ]] || { echo "error: no fuzz target \`$target\` (fuzz/fuzz_targets)" >&2; exit 1; }
done

command -v cargo >/dev/null || export PATH="${HOME:-/root}/.cargo/bin:$PATH"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing nightly Rust (rustup toolchain install nightly --profile minimal)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

bash scripts/make-fuzz-corpus.sh "$CORPUS"
echo "building the fuzz targets (cargo +nightly fuzz build -O --debug-assertions)"
cargo +nightly fuzz build -O --debug-assertions
BUILT=$REPO/fuzz/target/x86_64-unknown-linux-gnu/release

# The harnesses write their scratch files under TMPDIR: one directory, removed at the end.
SCRATCH=$(mktemp -d -t imgcraft-fuzz.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
export TMPDIR=$SCRATCH

failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$target" "$ARTIFACTS/$target"
  log=$SCRATCH/$target.log
  printf '\n--- %s: %ss, max_len %s\n' "$target" "$SECONDS_PER_TARGET" "${MAX_LEN[$target]:-65536}"
  t0=$SECONDS
  if "$BUILT/$target" -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=$RSS_LIMIT_MB -timeout=$TIMEOUT_S \
    -max_len="${MAX_LEN[$target]:-65536}" -artifact_prefix="$ARTIFACTS/$target/" -print_final_stats=1 \
    "$CORPUS/$target" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "$target: no finding in $((SECONDS - t0))s (${runs:-?} inputs, corpus $(find "$CORPUS/$target" -type f | wc -l))"
  else
    cp "$log" "$ARTIFACTS/$target/last-run.log"
    # The panic message or the sanitizer's and libFuzzer's verdict; the whole log is kept beside the input.
    grep -E -A2 'panicked at|ERROR: libFuzzer|==[0-9]+==ERROR|^SUMMARY:' "$log" || tail -n 40 "$log"
    echo "  log: $ARTIFACTS/$target/last-run.log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "FINDING in $target: ${artifact:-no input was written (see the log above)}"
    if [[ -n $artifact ]]; then
      echo "  reproduce: cargo +nightly fuzz run -O --debug-assertions $target $artifact"
      echo "  keep it:   mkdir -p tests/data/fuzz/$target && cp $artifact tests/data/fuzz/$target/"
    fi
    failed+=("$target")
  fi
done

if ((${#failed[@]} > 0)); then
  echo "error: fuzzing found problems in: ${failed[*]} (inputs in $ARTIFACTS)" >&2
  exit 1
fi
echo "fuzzing: ${#TARGETS[@]} targets, no finding"
