#!/usr/bin/env bash
# Checks, without that toolchain, that imgcraft still builds with its rust-version (1.75: Yocto scarthgap's Rust and
# cargo, which build the imgcraft recipe). It proves what cargo and clippy can see from a newer toolchain:
#  - the MSRV-aware resolver is on (.cargo/config.toml), so `cargo update` picks dependencies for 1.75;
#  - Cargo.lock is lock file version 3 or older (cargo 1.75 cannot read 4), and Cargo.toml's edition is 2021 or older;
#  - scripts/msrv-deps.py: every crate of Cargo.lock is edition 2021 or older (Yocto vendors all of them, and cargo
#    1.75 cannot parse an edition 2024 manifest); every crate built for the Linux targets, as a normal or build
#    dependency, plus imgcraft's own dev-dependencies, declares a rust-version no newer or is in
#    scripts/msrv-undeclared.txt with why;
#  - clippy's incompatible_msrv (in tests too, see clippy.toml): no std function, method or type newer than 1.75.
# What it cannot prove (only building with rustc 1.75 can): language features newer than 1.75 that edition 2021
# accepts (exclusive range patterns, inline const, trait upcasting, ...), std trait impls added later, dependencies
# whose code needs more than the rust-version they declare, and manifest keys cargo 1.75 cannot parse.
#
# Usage: scripts/msrv-check.sh       (exit 1 with one line per problem)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=0
problem() { # problem TEXT: one line, counted
  echo "msrv-check: $*" >&2
  failures=$((failures + 1))
}

msrv=$(sed -n 's/^rust-version *= *"\([0-9.]*\)"/\1/p' Cargo.toml | head -n 1)
[[ -n $msrv ]] || { echo "msrv-check: Cargo.toml declares no rust-version" >&2; exit 1; }
echo "msrv-check: against rust-version $msrv"

grep -Eq '^incompatible-rust-versions *= *"fallback"' .cargo/config.toml 2>/dev/null ||
  problem ".cargo/config.toml does not set [resolver] incompatible-rust-versions = \"fallback\": cargo update would pick dependencies newer than Rust $msrv"

# Version 1 and 2 lock files have no `version` line.
lock_version=$(sed -n 's/^version *= *\([0-9]*\)$/\1/p' Cargo.lock | head -n 1)
if [[ -n $lock_version ]] && ((lock_version > 3)); then
  problem "Cargo.lock is lock file version $lock_version, cargo $msrv reads 3 at most (cargo writes 3 for a rust-version below 1.78 when it makes the file anew)"
fi

edition=$(sed -n 's/^edition *= *"\([0-9]*\)"/\1/p' Cargo.toml | head -n 1)
if ((edition > 2021)); then
  problem "Cargo.toml has edition $edition, Rust $msrv knows 2021 at most"
fi

python3 scripts/msrv-deps.py "$msrv" || failures=$((failures + 1))

echo "msrv-check: cargo clippy --all-targets --all-features --locked -- -D warnings -W clippy::incompatible_msrv"
cargo clippy --all-targets --all-features --locked --quiet -- -D warnings -W clippy::incompatible_msrv ||
  problem "clippy fails (above): an API newer than Rust $msrv, or another warning"

if ((failures > 0)); then
  echo "msrv-check: $failures check(s) failed" >&2
  exit 1
fi
echo "msrv-check: clean for Rust $msrv"
