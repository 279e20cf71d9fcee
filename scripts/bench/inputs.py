"""The input every row reads, built once and kept: the debootstrap rootfs, its tar and tar.zst, and the images written
once by the binary under test (the previous image of layers-previous, the layout the push rows push). Every step is
skipped when its output exists."""

import glob
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import settings
from console import command_text, die, say


def debian_mirror() -> str:
    """The mirror apt already uses, so the rootfs comes from wherever this machine is allowed to reach."""
    if settings.MIRROR:
        return settings.MIRROR
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if os.access(sources, os.R_OK):
        for line in sources.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "URIs:":
                return words[1]
        return ""
    return "http://deb.debian.org/debian"


def remove_partial_dir(folder: Path) -> None:
    """A half-built debootstrap target may still have /proc or /sys mounted inside it; never recurse into those."""
    if not os.path.lexists(folder):
        return
    say(f"removing leftover {folder}")
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout.splitlines()
    for mount in sorted((m for m in mounts if f"{folder}/" in m), reverse=True):
        say(f"unmounting {mount}")
        subprocess.run(["umount", "-l", mount], check=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=True)


def read_stamp(stamp: Path) -> str:
    try:
        return stamp.read_text().rstrip("\n")
    except OSError:
        return ""


def build_rootfs() -> None:
    rootfs, stamp = settings.ROOTFS_DIR, settings.BENCH_DIR / "rootfs.recipe"
    partial = Path(f"{rootfs}.partial")
    if rootfs.is_dir() and read_stamp(stamp) != settings.ROOTFS_RECIPE:
        say(f"cached rootfs was built by another recipe ({read_stamp(stamp) or 'unknown'}); rebuilding")
        remove_partial_dir(partial)
        rootfs.rename(partial)
        for path in (settings.ROOTFS_TAR, settings.TARBALL, settings.FILE_COUNT):
            path.unlink(missing_ok=True)
    if rootfs.is_dir():
        say(f"rootfs exists: {rootfs}")
        return
    if os.geteuid() != 0:
        die("debootstrap needs root; run as root or point IMGCRAFT_BENCH_DIR at a ready cache")
    mirror = debian_mirror()
    remove_partial_dir(partial)
    say(f"debootstrap --variant=minbase --include={settings.PACKAGES} {settings.SUITE} ({settings.ARCH}) from "
        f"{mirror} (a few minutes)")
    log = settings.BENCH_DIR / "debootstrap.log"
    with open(log, "wb") as out:
        done = subprocess.run(["debootstrap", "--variant=minbase", f"--arch={settings.ARCH}",
                               f"--include={settings.PACKAGES}", settings.SUITE, str(partial), mirror],
                              stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        die(f"debootstrap failed; see {log}")
    # The apt cache is not part of an image a Yocto build would produce.
    for deb in glob.glob(f"{partial}/var/cache/apt/archives/*.deb"):
        os.unlink(deb)
    stamp.write_text(settings.ROOTFS_RECIPE + "\n")
    partial.rename(rootfs)


def build_tarball() -> None:
    tar, tarball = settings.ROOTFS_TAR, settings.TARBALL
    if not tar.is_file():
        say(f"tarring {settings.ROOTFS_DIR} to {tar} (Yocto IMAGE_CMD:tar flags)")
        # Flags of Yocto's IMAGE_CMD:tar (meta/classes-recipe/image_types.bbclass) with the xattr feature on.
        subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--sort=name", "--format=posix",
                        "--pax-option=delete=atime,delete=ctime", "--numeric-owner", "-C", str(settings.ROOTFS_DIR),
                        "-cf", f"{tar}.partial", "."], check=True)
        os.rename(f"{tar}.partial", tar)
    if not tarball.is_file():
        say(f"compressing to {tarball} (zstd -3, Yocto's default tar.zst)")
        compress(tar, tarball)


def compress(tar: Path, tarball: Path) -> None:
    subprocess.run(["zstd", "-q", "-T0", "-3", "-f", str(tar), "-o", f"{tarball}.partial"], check=True)
    os.rename(f"{tarball}.partial", tarball)


def file_count() -> int:
    """The tar's entries, counted once: `tar -tf | wc -l`."""
    if not settings.FILE_COUNT.is_file():
        listing = subprocess.Popen(["tar", "-tf", str(settings.ROOTFS_TAR)], stdout=subprocess.PIPE)
        count = sum(block.count(b"\n") for block in iter(lambda: listing.stdout.read(1 << 20), b""))
        if listing.wait() != 0:
            die(f"tar -tf {settings.ROOTFS_TAR} failed")
        settings.FILE_COUNT.write_text(f"{count}\n")
    return int(settings.FILE_COUNT.read_text())


def tarball_recipe() -> str:
    """The tarball's size and mtime, as `stat -c '%s %Y'` prints them: a stamp of what an image was written from."""
    st = settings.TARBALL.stat()
    return f"{st.st_size} {int(st.st_mtime)}"


def build_previous_image(binary: Path) -> None:
    """The image a device already runs: the unchanged rootfs by package, written once by the binary under test (a stamp
    holds the binary's digest and the tarball's size and mtime; either changing rewrites it)."""
    image = settings.PREVIOUS_IMAGE
    stamp = Path(f"{image}.recipe")
    recipe = f"{hashlib.sha256(binary.read_bytes()).hexdigest()} {tarball_recipe()} gzip packages"
    if image.is_file() and read_stamp(stamp) == recipe:
        say(f"previous image exists: {image}")
        return
    image.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    command = [binary, settings.TARBALL, "--arch", settings.ARCH, "--compression", "gzip", "--layers", "packages",
               "--quiet"]
    say(f"writing the previous image (untimed, once): {command_text(command)} -o oci-archive:{image}")
    if subprocess.run([*map(str, command), "-o", f"oci-archive:{image}.partial"], stdout=sys.stderr).returncode:
        die(f"rootfs2image could not write {image}")
    os.rename(f"{image}.partial", image)
    stamp.write_text(recipe + "\n")


def build_push_layout(binary: Path, single_layer: list) -> None:
    """The image both push tools push: the large rootfs with one gzip layer, written once and kept while the tarball is
    unchanged."""
    layout, index = settings.PUSH_LAYOUT, settings.PUSH_LAYOUT / "index.json"
    if index.is_file() and settings.TARBALL.stat().st_mtime_ns <= index.stat().st_mtime_ns:
        say(f"push layout exists: {layout}")
        return
    subprocess.run(["rm", "-rf", str(layout), f"{layout}.partial"], check=True)
    command = [binary, settings.TARBALL, "--arch", settings.ARCH, "--compression", "gzip", *single_layer, "-q"]
    say(f"writing the image to push (untimed, once): {command_text(command)} -o {settings.PUSH_SOURCE}")
    if subprocess.run([*map(str, command), "-o", f"oci:{layout}.partial:latest"], stdout=sys.stderr).returncode:
        die(f"rootfs2image could not write {layout}")
    os.rename(f"{layout}.partial", layout)


def layout_manifest() -> dict:
    """The push layout's manifest, as the registry will serve it."""
    index = json.loads((settings.PUSH_LAYOUT / "index.json").read_text())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest":
            return json.loads(blob_path(descriptor["digest"]).read_bytes())
    die(f"{settings.PUSH_LAYOUT}/index.json names no image `latest`")


def blob_path(digest: str) -> Path:
    return settings.PUSH_LAYOUT / "blobs" / digest.replace(":", "/", 1)


def read_layout_blobs() -> None:
    """The layout's blob files (config and layers), read once before every push so that both tools read from the page
    cache."""
    manifest = layout_manifest()
    for descriptor in [manifest["config"], *manifest["layers"]]:
        with open(blob_path(descriptor["digest"]), "rb") as blob:
            while blob.read(1 << 20):
                pass
