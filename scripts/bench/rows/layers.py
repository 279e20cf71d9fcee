"""The layers rows: the rootfs split by package ownership, the first pass that finds it (packages-scan), and the rebuild
after one package changed (layers-previous), checked against `rootfs2image diff` (the method: run.py's docstring)."""

import json
import math
import subprocess
import statistics
import time

import changed_tarball
import inputs
import settings
from console import human, say
from measure import Bench, median, json_report
from rows.convert import rootfs2image_row


def layers_row(bench: Bench, name: str, compression: str) -> None:
    if bench.binary.layers_why:
        bench.skip(name, bench.binary.layers_why)
        return
    rootfs2image_row(bench, name, compression, "--layers", "packages")


# rootfs2image's own first pass, and nothing else: the run is the pass that reads the package database (plus the
# start-up), ended where the conversion proper would begin. The run fails unless it ended there (checked by
# first_pass_ended, after the run).
# The first pass keeps the tar it decodes in a temporary file (.rootfs2image-decoded-*) for the conversion to read:
# strace names the file of every pread64 (-y), and the process is killed at the first read of that file.
FIRST_PASS_ONLY = """
bin=$1 tarball=$2 arch=$3 out=$4
rm -f "$out/trace.fifo" "$out/first-read"; mkfifo "$out/trace.fifo"
strace --seccomp-bpf -f -qq -y -e trace=pread64 -o "$out/trace.fifo" \\
	"$bin" "$tarball" --arch "$arch" --layers packages -o "oci-archive:$out/image.tar" --quiet 2>"$out/stderr" &
tracer=$!
{ grep -m1 rootfs2image-decoded > "$out/first-read"; pkill -KILL -P "$tracer"; cat > /dev/null; } < "$out/trace.fifo"
wait "$tracer"
rm -f "$out/trace.fifo"
if ! [ -s "$out/first-read" ]; then
	echo "rootfs2image never read back the tar its first pass decoded: no first pass to stop after"
	exit 1
fi
"""


def first_pass_ended() -> bool:
    out = settings.OUT_DIR
    if "rootfs2image-decoded" in (out / "first-read").read_text(errors="replace"):
        return True
    with open(settings.row_log("packages-scan"), "a") as log:
        print(f"rootfs2image ended before reading back what its first pass decoded from `{settings.TARBALL}`",
              file=log)
    return False


def time_stock_scan() -> float:
    """The same pass with stock tools (decode, read every tar header, skip the data)."""
    start = time.monotonic()
    decode = subprocess.Popen(["zstd", "-dc", str(settings.TARBALL)], stdout=subprocess.PIPE)
    listing = subprocess.run(["tar", "-tf", "-"], stdin=decode.stdout, stdout=subprocess.DEVNULL)
    decode.stdout.close()
    if decode.wait() != 0 or listing.returncode != 0:
        return None
    return float(f"{time.monotonic() - start:.3f}")


def packages_scan(bench: Bench) -> None:
    if bench.binary.layers_why:
        bench.skip("packages-scan", bench.binary.layers_why)
        return
    stock = []

    def after() -> bool:
        if not first_pass_ended():
            return False
        stock.append(time_stock_scan())
        return stock[-1] is not None

    row = bench.measure("packages-scan", None, ["bash", "-c", FIRST_PASS_ONLY, "packages-scan", bench.binary.path,
                                                settings.TARBALL, settings.ARCH, settings.OUT_DIR], after=after,
                        shown=f"strace ... {bench.binary.path} {settings.TARBALL} --layers packages (first pass only)")
    if row.status != "ok":
        return
    row.note = f"rootfs2image's own pass; zstd -dc | tar -tf -: {median(stock):.3f} s"
    row.extra["stock_scan_wall_seconds"] = median(stock)


def prepare_previous(bench: Bench) -> None:
    """The changed tarball and the previous image, or bench.previous_why when layers-previous cannot run."""
    binary = bench.binary
    if binary.layers_why:
        bench.previous_why = binary.layers_why
        return
    if not binary.help_text("diff"):
        bench.previous_why = f"`{binary.path}` has no diff subcommand yet"
        return
    changed_tarball.build()
    inputs.build_previous_image(binary.path)


def compact(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def check_previous_rebuild(bench: Bench, figures: dict) -> bool:
    """After each run of layers-previous: its --json report and `rootfs2image diff` of the two images must agree. Fills
    `figures` for the note."""
    log = settings.row_log("layers-previous")
    diff = settings.BENCH_DIR / "diff.layers-previous.json"
    report = json_report(log)
    if report is None or report.get("reused_layers") is None:
        say(f"layers-previous: no --json report with reused_layers in {log}")
        return False
    layers = report.get("layers") or []
    ours = {"layers": len(layers), "reused_layers": report["reused_layers"], "new_layers": report.get("new_layers"),
            "download_bytes": report.get("download_bytes"), "image_layer_bytes": sum(layer["size"] for layer in layers)}
    image = settings.OUT_DIR / "image.tar"
    say(f"checking with: rootfs2image diff oci-archive:{settings.PREVIOUS_IMAGE} oci-archive:{image} --json")
    with open(diff, "wb") as out, open(log, "ab") as errors:
        done = subprocess.run([str(bench.binary.path), "diff", f"oci-archive:{settings.PREVIOUS_IMAGE}",
                               f"oci-archive:{image}", "--json"], stdout=out, stderr=errors)
    said = json_report(diff) if done.returncode == 0 else None
    if said is None:
        say(f"layers-previous: rootfs2image diff failed; see {diff} and {log}")
        return False
    shared, new = said.get("shared_layers") or [], said.get("new_layers") or []
    theirs = {"layers": len(shared) + len(new), "reused_layers": len(shared), "new_layers": len(new),
              "download_bytes": said.get("download_bytes"), "image_layer_bytes": said.get("total_bytes")}
    if ours != theirs:
        say(f"layers-previous: the --json report says {compact(ours)}, rootfs2image diff says {compact(theirs)}")
        with open(log, "a") as out:
            print(f"mismatch: --json report {compact(ours)}, rootfs2image diff {compact(theirs)}", file=out)
        return False
    figures.clear()
    figures.update(ours, blobs_taken=report.get("blobs_taken", 0), blobs_known=report.get("blobs_known", 0),
                   layers_recognised=report.get("layers_recognised", 0),
                   manifest_digest=report.get("manifest_digest"))
    return True


def cold_rebuild(bench: Bench) -> dict:
    """The changed tarball converted without --previous, as many times as the row runs, untimed by the row: the median
    wall time a rebuild is compared with, and the manifest digest it must reproduce (taking previous blobs never
    changes the output)."""
    image = settings.BENCH_DIR / "cold-rebuild.tar"
    walls, digests = [], set()
    for run in range(1, bench.runs + 1):
        say(f"cold build {run}/{bench.runs} of {settings.CHANGED_TARBALL} (what layers-previous must reproduce)")
        start = time.monotonic()
        done = subprocess.run([str(bench.binary.path), str(settings.CHANGED_TARBALL), "--arch", settings.ARCH,
                               "--compression", "gzip", "--layers", "packages", "-o", f"oci-archive:{image}", "--json"],
                              capture_output=True, text=True)
        walls.append(time.monotonic() - start)
        image.unlink(missing_ok=True)
        if done.returncode != 0:
            return {}
        digests.add(json.loads(done.stdout)["manifest_digest"])
    if len(digests) != 1:
        say(f"cold builds of {settings.CHANGED_TARBALL} wrote different images: {sorted(digests)}")
        return {}
    return {"cold_wall_seconds": float(f"{statistics.median(walls):.3f}"), "cold_manifest_digest": digests.pop()}


def layers_previous(bench: Bench) -> None:
    if bench.previous_why:
        bench.skip("layers-previous", bench.previous_why)
        return
    cold = cold_rebuild(bench)
    if not cold:
        bench.skip("layers-previous", f"the cold build of {settings.CHANGED_TARBALL} failed")
        return
    image, figures = settings.OUT_DIR / "image.tar", {}

    def after() -> bool:
        if not check_previous_rebuild(bench, figures):
            return False
        if figures["manifest_digest"] != cold["cold_manifest_digest"]:
            say(f"layers-previous wrote {figures['manifest_digest']}, a cold build {cold['cold_manifest_digest']}")
            return False
        return True

    row = bench.measure("layers-previous", image,
                        [bench.binary.path, settings.CHANGED_TARBALL, "--arch", settings.ARCH, "--compression", "gzip",
                         "--layers", "packages", "--previous", f"oci-archive:{settings.PREVIOUS_IMAGE}",
                         "-o", f"oci-archive:{image}", "--json"],
                        after=after)
    if row.status != "ok":
        return
    download, total = figures["download_bytes"], figures["image_layer_bytes"]
    # Rounded to hundredths, halves away from zero (as jq's round did), and whole numbers printed without ".0".
    percent = math.floor(download * 10000 / total + 0.5) / 100
    percent = int(percent) if percent == int(percent) else percent
    ratio = round(row.wall / cold["cold_wall_seconds"], 2)
    figures.update(download_percent=percent, diff_agrees=True, same_as_cold=True, vs_cold=ratio,
                   changed=settings.CHANGED_PATH.read_text().rstrip("\n"), **cold)
    row.note = (f"reused {figures['reused_layers']}, new {figures['new_layers']} of {figures['layers']} layers, "
                f"{figures['blobs_taken']} blobs taken ({figures['blobs_known']} known to this machine), "
                f"{figures['layers_recognised']} layers recognised by their outline; "
                f"download {human(download)} = {percent}% of {human(total)}; "
                f"diff agrees; {ratio}x a cold build ({cold['cold_wall_seconds']} s), same digest")
    row.extra.update(figures)


ROWS = {
    "layers-packages": lambda bench: layers_row(bench, "layers-packages", "gzip"),
    "layers-packages-zstd": lambda bench: layers_row(bench, "layers-packages-zstd", "zstd"),
    "packages-scan": packages_scan,
    "layers-previous": layers_previous,
}
