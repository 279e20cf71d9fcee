#!/usr/bin/env bash
# Benchmark rootfs2image against the tools a Yocto build would otherwise use, on a large real rootfs.
#
# Usage: scripts/bench.sh [--json] [--runs N] [ROW...]    (`--help` tells the method, the environment and the rows)
#
# The bench is a Python 3 program (standard library only) in scripts/bench/; this is its entry point.
set -euo pipefail

if ! command -v python3 >/dev/null 2>&1; then
	[[ $EUID -eq 0 ]] || { echo 'error: `python3` is missing; install the Debian package `python3`' >&2; exit 1; }
	echo '==> installing python3 (for `python3`)' >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 >&2
fi
exec python3 -B "$(dirname "${BASH_SOURCE[0]}")/bench/run.py" "$@"
