"""The input of layers-previous: the cached tar with bytes appended to one file of $IMGCRAFT_BENCH_CHANGED_PACKAGE.

The file is the first regular file the package's dpkg .list names that has no other hardlink and is reached through no
symlink; everything else stays byte for byte as it was: the member's header gets the new size and checksum, its data
the bytes; its mtime and pax records stay, so no other entry changes. A rewrite of the tar stream, not a copy of the
rootfs tree re-tarred: one sequential copy. What was changed goes to rootfs-changed.path.
"""

import glob
import os
import shutil
import tarfile
from pathlib import Path

import inputs
import settings
from console import die, say

APPENDED = b"\n# changed by scripts/bench.sh (row layers-previous)\n"


def build() -> None:
    tarball, stamp = settings.CHANGED_TARBALL, settings.BENCH_DIR / "rootfs-changed.recipe"
    st = settings.ROOTFS_TAR.stat()
    recipe = f"{settings.CHANGED_PACKAGE} {st.st_size} {int(st.st_mtime)} v1"
    if tarball.is_file() and inputs.read_stamp(stamp) == recipe:
        say(f"changed rootfs exists: {tarball} ({inputs.read_stamp(settings.CHANGED_PATH)})")
        return
    tarball.unlink(missing_ok=True)
    stamp.unlink(missing_ok=True)
    partial = Path(f"{settings.CHANGED_TAR}.partial")
    say(f"writing {settings.CHANGED_TAR}: {settings.ROOTFS_TAR} with one file of {settings.CHANGED_PACKAGE} changed")
    chosen = changed_file(settings.ROOTFS_DIR, settings.CHANGED_PACKAGE)
    rewrite(settings.ROOTFS_TAR, partial, chosen)
    settings.CHANGED_PATH.write_text(f"{settings.CHANGED_PACKAGE}: {chosen} (+{len(APPENDED)} bytes)\n")
    say(f"compressing to {tarball} (zstd -3, as the unchanged one)")
    inputs.compress(partial, tarball)
    partial.unlink()
    stamp.write_text(recipe + "\n")


def changed_file(root: Path, package: str) -> str:
    """The path (as the .list writes it, from /) of the file to change."""
    root = os.path.realpath(root)
    info = f"{root}/var/lib/dpkg/info"
    lists = sorted(glob.glob(f"{info}/{package}.list") + glob.glob(f"{info}/{package}:*.list"))
    if not lists:
        die(f"{package}: no dpkg .list in {info}")
    with open(lists[0], encoding="utf-8", errors="surrogateescape") as listing:
        for line in listing:
            path = root + line.rstrip("\n")
            if os.path.realpath(path) == path and os.path.isfile(path):
                st = os.lstat(path)
                if st.st_nlink == 1 and st.st_size > 0:
                    return line.rstrip("\n")
    die(f"{package}: no regular file in {lists[0]}")


def find(tarball: Path, chosen: str):
    names = ("." + chosen, chosen.lstrip("/"))
    with tarfile.open(tarball, "r:") as tar:
        for member in tar:
            if member.name in names:
                return member
    return None


def rewrite(src: Path, dst: Path, chosen: str) -> None:
    member = find(src, chosen)
    # A size in a pax record (files over 8 GiB) would need rewriting that record too.
    if member is None or not member.isreg() or "size" in member.pax_headers:
        die(f"{chosen}: not a plain regular file in {src}")
    size = member.size + len(APPENDED)
    with open(src, "rb") as inp, open(dst, "wb") as out:
        # The member's own ustar header is the block right before its data (pax records, if any, come before it).
        remaining = member.offset_data - 512
        while remaining:
            chunk = inp.read(min(remaining, 1 << 20))
            out.write(chunk)
            remaining -= len(chunk)
        header = bytearray(inp.read(512))
        header[124:136] = b"%011o\0" % size
        # POSIX ustar: the checksum is summed with its own field as spaces; GNU tar writes six digits, NUL, space.
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
        out.write(header)
        data = inp.read(member.size) + APPENDED
        out.write(data + b"\0" * (-len(data) % 512))
        inp.seek(member.offset_data + member.size + (-member.size % 512))
        shutil.copyfileobj(inp, out, 1 << 20)
    check = find(dst, chosen)
    if check is None or check.size != size:
        die(f"{dst}: the rewritten {chosen} does not read back")
