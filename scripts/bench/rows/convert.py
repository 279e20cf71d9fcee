"""The rootfs2image rows: the large rootfs to an oci-archive with one layer, gzip and zstd.

They write one layer (`--layers single`: the bench rootfs has a dpkg database, so the default would split it)."""

import settings
from measure import Bench, json_report


def note_layer_count(bench: Bench, row) -> None:
    """The layers in the --json report of a rootfs2image row's last run (its log), for the note and the JSON."""
    if row.status != "ok":
        return
    log = settings.row_log(row.name)
    report = json_report(log)
    if report is None:
        row.note = f"no --json report in {log}"
        return
    count = len(report.get("layers") or [])
    row.note = f"{count} layer{'' if count == 1 else 's'}"
    row.extra["layers"] = count


def rootfs2image_row(bench: Bench, name: str, compression: str, *layering: str) -> None:
    binary = bench.binary
    if binary.path is None:
        bench.skip(name, binary.why)
        return
    image = settings.OUT_DIR / "image.tar"
    row = bench.measure(name, image, [binary.path, settings.TARBALL, "--arch", settings.ARCH, "--compression",
                                      compression, *layering, "-o", f"oci-archive:{image}", "--json"])
    note_layer_count(bench, row)


ROWS = {
    "rootfs2image-gzip": lambda bench: rootfs2image_row(bench, "rootfs2image-gzip", "gzip", *bench.binary.single_layer),
    "rootfs2image-zstd": lambda bench: rootfs2image_row(bench, "rootfs2image-zstd", "zstd", *bench.binary.single_layer),
}
