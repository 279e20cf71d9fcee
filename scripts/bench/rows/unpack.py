"""The unpack rows: the bench image (by package, 52 gzip layers) into an OCI runtime bundle, by `rootfs2image unpack`
and by `umoci unpack`, what a user would otherwise run; both as root, both keeping owners."""

import shutil
import subprocess

import inputs
import settings
from console import say
from measure import Bench

# An OCI layout of the previous image (the unchanged rootfs by package), which umoci reads; made untimed.
LAYOUT = settings.BENCH_DIR / "unpack-layout"
BUNDLE = settings.OUT_DIR / "bundle"


def prepare_layout(bench: Bench) -> str:
    """Why the unpack rows cannot run, or "" once LAYOUT holds the previous image as tag 1."""
    binary = bench.binary
    if binary.path is None:
        return binary.why
    if not binary.help_text("unpack"):
        return f"`{binary.path}` has no unpack subcommand yet"
    inputs.build_previous_image(binary.path)
    shutil.rmtree(LAYOUT, ignore_errors=True)
    say(f"copying {settings.PREVIOUS_IMAGE} into the layout {LAYOUT} (untimed)")
    done = subprocess.run([str(binary.path), "copy", f"oci-archive:{settings.PREVIOUS_IMAGE}", f"oci:{LAYOUT}:1"],
                          capture_output=True, text=True)
    return "" if done.returncode == 0 else f"cannot copy the previous image into a layout: {done.stderr.strip()}"


def bundle_written() -> bool:
    """What every unpack row must leave: a config.json and the changed package's file in the rootfs."""
    return (BUNDLE / "config.json").is_file() and (BUNDLE / "rootfs/usr/share/vim").is_dir()


def unpack_rows(bench: Bench) -> None:
    why = prepare_layout(bench)
    if why:
        bench.skip("unpack", why)
        bench.skip("umoci-unpack", why)
        return
    ours = bench.measure("unpack", None, [bench.binary.path, "unpack", "--json", f"oci:{LAYOUT}:1", BUNDLE],
                         after=bundle_written)
    theirs = bench.measure("umoci-unpack", None, ["umoci", "unpack", "--image", f"{LAYOUT}:1", BUNDLE],
                           after=bundle_written)
    if ours.status == "ok" and theirs.status == "ok":
        ratio = round(ours.wall / theirs.wall, 2)
        ours.note = f"{ratio}x umoci unpack's wall time"
        ours.extra["vs_umoci_unpack"] = ratio
    shutil.rmtree(LAYOUT, ignore_errors=True)


ROWS = {"unpack": unpack_rows}
