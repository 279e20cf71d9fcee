"""What a Yocto build would otherwise run, to compare with: the umoci pipeline, podman import, and the raw floor."""

import subprocess

import settings
from measure import Bench

# What meta-virtualization's IMAGE_CMD:oci (classes/image-oci-umoci.inc) runs with its defaults: a fresh layout, an
# unpacked empty bundle, the rootfs copied in, repack, config, then a tar of the layout (OCI_IMAGE_TAR_OUTPUT = "true").
# Differences, each in umoci's favour or neutral: the rootfs is extracted from the tarball instead of `cp -r` from
# IMAGE_ROOTFS; `unpack` runs without `--rootless` because we are real root here, not under pseudo, so ownership
# survives; the second, redundant `-dir.tar` copy of the layout is not made; the final `rm -rf` of the bundle is left
# to the untimed cleanup, because its cost depends on the filesystem (on ext4 mounted with `discard` it alone can take
# as long as the repack) and a slow baseline would flatter the ratios.
# A shell script, as the class runs it: the timed process tree is the tools and one bash, nothing of ours.
UMOCI_PIPELINE = """
set -euo pipefail
tarball=$1 out=$2 arch=$3 layout=$2/layout bundle=$2/bundle
umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$bundle"
tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$tarball" -C "$bundle/rootfs"
umoci repack --image "$layout:latest" "$bundle"
umoci config --image "$layout:latest" --architecture "$arch"
umoci config --image "$layout:latest" --config.entrypoint sh
(cd "$layout" && tar -cf "$out/image.tar" .)
"""


def umoci(bench: Bench) -> None:
    bench.measure("umoci", settings.OUT_DIR / "image.tar",
                  ["bash", "-c", UMOCI_PIPELINE, "umoci", settings.TARBALL, settings.OUT_DIR, settings.ARCH],
                  shown=f"umoci init, new, unpack; tar -x {settings.TARBALL}; umoci repack, config; tar of the layout")


def remove_podman_image() -> None:
    subprocess.run(["podman", "rmi", "--force", settings.PODMAN_REF], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def podman_import(bench: Bench) -> None:
    # podman decompresses zstd itself; its output is an image in containers-storage, removed around every run.
    bench.measure("podman-import", None, ["podman", "import", "--quiet", settings.TARBALL, settings.PODMAN_REF],
                  cleanup=remove_podman_image)


def floor(bench: Bench) -> None:
    # The floor: decompress, recompress with every core, hash, with stock tools. A reference rather than a hard bound:
    # pigz uses the system zlib, and a faster deflate (libdeflate, as rootfs2image links) can beat it.
    bench.measure("floor", None, ["bash", "-c", 'set -o pipefail; zstd -dc "$1" | pigz -p"$(nproc)" | sha256sum',
                                  "floor", settings.TARBALL])


ROWS = {"umoci": umoci, "podman-import": podman_import, "floor": floor}
