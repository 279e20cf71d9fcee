"""Benchmark rootfs2image against the tools a Yocto build would otherwise use, on a large real rootfs.

Usage: scripts/bench.sh [--json] [--runs N] [ROW...]

  ROW        run only these rows (default: all); see `--help` for the names
  --json     print the results as JSON on stdout (progress still goes to stderr)
  --runs N   run each row N times and report the median wall time and the highest peak RSS (default 1)

Environment:
  IMGCRAFT_BENCH_DIR       cache and scratch directory (default /var/tmp/imgcraft-bench)
  IMGCRAFT_BENCH_MIRROR    Debian mirror for debootstrap (default: the `URIs:` of the host's apt sources)
  IMGCRAFT_BENCH_PACKAGES  packages debootstrap adds to minbase (default in settings.py; a change rebuilds the input)
  ROOTFS2IMAGE             binary to measure (default target/release/rootfs2image, built when missing or stale)
  IMGCRAFT_BENCH_CHANGED_PACKAGE  the package whose file layers-previous changes (default vim-runtime)

The rootfs (debootstrap of bookworm, ~800 MB installed) is built once and tarred the way Yocto's IMAGE_CMD:tar does,
then compressed like Yocto's default IMAGE_FSTYPES (tar.zst). Every step is skipped when its output exists.

Each row runs under `/usr/bin/time` for the peak RSS of the largest single process in the row (for a pipeline that is
the hungriest stage, not the sum) and the CPU seconds of all its processes (steadier than the wall time when other
work shares the cores); wall seconds come from the runner's clock around it, to the millisecond, because a warm push
takes a few hundredths of a second. The page cache is never dropped; the input is read once before the first row so
that every row starts warm. Outputs are deleted and flushed to disk between rows.

The push rows push one image of the same rootfs (an OCI layout with a gzip layer, written once by rootfs2image and
kept in the cache) to a docker-registry the bench starts on a free loopback port and stops at exit, once with
`rootfs2image push` and once with `skopeo copy`: cold (the registry's storage wiped and the registry restarted before
every run, untimed) and warm (the same image pushed again, untimed, right before the timed push, so every blob is
already there). Their wall time includes nothing but the client's run; the registry hashes and stores in parallel on
the same cores. They are compared with skopeo instead of umoci.

The rootfs2image rows write one layer (`--layers single`: the bench rootfs has a dpkg database, so the default would
split it). The layers rows split it by package ownership (`--layers packages`, read from that database in a first
pass that only decodes the tarball) and are compared with the single-layer row of the same compression (target: at
most 1.3x its wall time). packages-scan times that first pass alone: rootfs2image itself, run under strace, which
kills the process at the conversion's first read of the tar the pass decoded and kept, as soon as the pass is over. layers-previous times the
rebuild after one package changed (`--previous` of an image of the unchanged rootfs, written once, untimed, and
cached with a stamp): what a device must download (target: under 5% of the image's layer bytes), checked against
`rootfs2image diff` of the two images, and its wall time against a cold build of the changed rootfs made once before
the row (untimed by it): the rebuild takes the previous image's unchanged blobs (target: at most 0.35x the cold
build) and must write the cold build's manifest digest.

layers-partial-pull is what a podman with zstd:chunked partial pulls (the host's, Debian bookworm's 4.3) holding v1
fetches for v2: both images written untimed by package with `--compression zstd:chunked` (v2 from the tarball of
layers-previous, with `--previous` v1), pushed to the bench's docker-registry, v1 pulled into a podman storage of the
row's own with `enable_partial_images`; each run removes v2 and times its pull. The bytes are the blob responses in
the registry's access log (target: under 0.5% of the image's layer bytes), checked against `rootfs2image diff`'s
partial_download_bytes less the tar-splits, which podman 4.3 does not fetch.
To add a row: write a function of the Bench in the scripts/bench/rows/ module of its family that calls `bench.measure`
(or `bench.skip`), and add it to that module's ROWS (scripts/bench/README.md maps the files).
"""

import re
import signal
import subprocess
import sys

import binary
import inputs
import settings
import tools
from console import Fatal, command_text, say
from measure import Bench
from report import print_json, print_table
from rows import ROWS, layers, push


def usage() -> None:
    print(__doc__.strip())
    print(f"Rows: {' '.join(ROWS)}")


def parse(argv: list):
    """(json, runs, selected rows), or None after --help."""
    as_json, runs, selected = False, 1, []
    args = iter(argv)
    for arg in args:
        if arg == "--json":
            as_json = True
        elif arg == "--runs":
            count = next(args, "")
            if not re.fullmatch(r"[1-9][0-9]*", count):
                raise Fatal("--runs needs a positive count")
            runs = int(count)
        elif arg in ("-h", "--help"):
            usage()
            return None
        elif arg.startswith("-"):
            raise Fatal(f"unknown option `{arg}`; see --help")
        elif arg not in ROWS:
            raise Fatal(f"unknown row `{arg}`; rows: {' '.join(ROWS)}")
        else:
            selected.append(arg)
    return as_json, runs, selected or list(ROWS)


def bench(as_json: bool, selected: list, state: Bench) -> int:
    tools.need_tools(tools.ALWAYS)
    tools.ensure_containers_conf()
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    inputs.build_rootfs()
    inputs.build_tarball()
    file_count = inputs.file_count()
    pushing = any(push.is_push_row(row) for row in selected)
    if pushing:
        tools.need_tools(tools.PUSH)
    if "packages-scan" in selected:
        tools.need_tools(tools.PACKAGES_SCAN)
    if pushing or any(row.startswith(("rootfs2image-", "layers-")) or row in ("packages-scan", "unpack")
                      for row in selected):
        state.binary = binary.resolve()
    if pushing:
        push.prepare(state)
    warm = [settings.TARBALL]
    if "layers-previous" in selected:
        layers.prepare_previous(state)
        if not state.previous_why:
            warm += [settings.CHANGED_TARBALL, settings.PREVIOUS_IMAGE]

    say(f"warming the page cache with {' '.join(map(str, warm))}")
    for path in warm:
        with open(path, "rb") as data:
            while data.read(1 << 20):
                pass
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]

    for row in selected:
        ROWS[row](state)

    (print_json if as_json else print_table)(state, file_count, load)
    return 1 if any(row.status == "failed" for row in state.rows) else 0


def main(argv: list) -> int:
    def terminated(*_):
        sys.exit(143)

    signal.signal(signal.SIGTERM, terminated)
    state = None
    try:
        parsed = parse(argv)
        if parsed is None:
            return 0
        as_json, runs, selected = parsed
        state = Bench(runs)
        return bench(as_json, selected, state)
    except Fatal as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(f"error: `{command_text(error.cmd)}` exited with status {error.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if state is not None and state.registry is not None:
            state.registry.stop_at_exit()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
