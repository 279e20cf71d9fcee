"""Everything the bench reads from its environment, resolved once: the cache paths, the input's recipe, the targets."""

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(os.environ.get("IMGCRAFT_BENCH_DIR") or "/var/tmp/imgcraft-bench")
PACKAGES = (
    os.environ.get("IMGCRAFT_BENCH_PACKAGES")
    or "python3,gcc,systemd,g++,perl,libpython3.11-dev,git,cmake,vim,python3-numpy"
)
MIRROR = os.environ.get("IMGCRAFT_BENCH_MIRROR") or ""
ROOTFS2IMAGE = os.environ.get("ROOTFS2IMAGE") or ""
# What rootfs2image learns about the layer blobs it writes (IMGCRAFT_CACHE_DIR) stays with the bench's files: the
# previous image is built by the bench, so layers-previous measures a machine rebuilding what it built before.
os.environ.setdefault("IMGCRAFT_CACHE_DIR", str(BENCH_DIR / "cache"))
CHANGED_PACKAGE = os.environ.get("IMGCRAFT_BENCH_CHANGED_PACKAGE") or "vim-runtime"
ARCH = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
SUITE = "bookworm"
CORES = len(os.sched_getaffinity(0))  # what `nproc` says

ROOTFS_DIR = BENCH_DIR / "rootfs"
ROOTFS_TAR = BENCH_DIR / "rootfs.tar"
TARBALL = BENCH_DIR / "rootfs.tar.zst"
FILE_COUNT = BENCH_DIR / "file-count"
OUT_DIR = BENCH_DIR / "out"
PODMAN_REF = "localhost/imgcraft-bench:latest"
PUSH_LAYOUT = BENCH_DIR / "push-layout"
PUSH_SOURCE = f"oci:{PUSH_LAYOUT}:latest"
REGISTRY_DIR = BENCH_DIR / "registry"
PUSH_REPO = "bench/app"
PUSH_TAG = "1"
CHANGED_TAR = BENCH_DIR / "rootfs-changed.tar"
CHANGED_TARBALL = BENCH_DIR / "rootfs-changed.tar.zst"
CHANGED_PATH = BENCH_DIR / "rootfs-changed.path"
PREVIOUS_IMAGE = BENCH_DIR / "layers-v1.oci.tar"

# What the cached input was built from; a different recipe throws the whole cache away.
ROOTFS_RECIPE = f"debootstrap --variant=minbase --arch={ARCH} --include={PACKAGES} {SUITE}"

# Targets from the issue: wall time relative to the umoci pipeline, and peak memory (MB = 10^6 bytes).
TARGET_GZIP_RATIO = 0.5
TARGET_ZSTD_RATIO = 0.2
TARGET_PEAK_BYTES = 100_000_000
# Targets of issue 6: layering by package against one layer, and what a device downloads after one package changed.
TARGET_LAYERS_RATIO = 1.3
TARGET_DOWNLOAD_PERCENT = 5
# layers-previous: the most a --previous rebuild with one file changed may take of a cold build's wall time (issue 14).
TARGET_REBUILD_RATIO = 0.35
# Issue 14: what a podman with zstd:chunked partial pulls holding v1 fetches for v2.
TARGET_PARTIAL_PERCENT = 0.5


def row_log(name: str) -> Path:
    """Where a row's last run wrote its standard output and error."""
    return BENCH_DIR / f"row.{name}.log"
