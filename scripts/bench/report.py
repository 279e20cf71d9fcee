"""The report: a table for a person, or JSON for a program (the same figures, with every run's)."""

import json

import inputs
import settings
from console import human
from measure import Bench, Row
from rows.push import SKOPEO_COUNTERPART, is_push_row
from targets import TARGETS, ratio, single_layer_ratio, target_text, verdict

COLUMNS = "{:<20} {:>9} {:>8} {:>10} {:>9} {:>12}  {:<32} {}"


def table_line(bench: Bench, row: Row, umoci) -> str:
    target = TARGETS.get(row.name)
    text = target_text(row)
    if row.status == "n/a":
        return COLUMNS.format(row.name, "n/a", "n/a", "n/a", "n/a", "n/a", text, row.note)
    said = verdict(bench, row)
    single = single_layer_ratio(bench, row)
    if single:
        said += f", {single}x {target.baseline} (cpu {single_layer_ratio(bench, row, cpu=True)}x)"
    if row.note:
        said += ("; " if said else "") + row.note
    wall, cpu, rss = f"{row.wall:.3f}", f"{row.cpu:.2f}", f"{row.rss_kib / 1024:.1f}"
    versus = ratio(row.wall, umoci) if umoci is not None and not is_push_row(row.name) else "-"
    size = human(row.size) if row.size is not None else "-"
    if row.status == "failed":
        wall = cpu = rss = versus = "-"
        said = f"failed, see {settings.row_log(row.name)}"
    return COLUMNS.format(row.name, wall, cpu, rss, versus, size, text, said)


def print_table(bench: Bench, file_count: int, load: str) -> None:
    umoci = bench.ok_wall("umoci")
    print(f"\nInput: {settings.TARBALL} ({human(settings.TARBALL.stat().st_size)}, {file_count} tar entries); "
          f"tar {human(settings.ROOTFS_TAR.stat().st_size)}")
    print(f"Machine: {settings.CORES} cores; load average before the first row {load} (other work skews the figures)")
    print(f"Runs per row: {bench.runs} (wall, cpu: median; peak: highest)\n")
    print(COLUMNS.format("row", "wall s", "cpu s", "peak MiB", "x umoci", "output", "target", "verdict or note"))
    for row in bench.rows:
        print(table_line(bench, row, umoci))
    print("\ncpu s: user + system of all the row's processes; peak MiB: largest single process of the row;")
    print("output: the oci-archive the row wrote")
    print(f"floor: zstd -dc | pigz -p{settings.CORES} | sha256sum, decompress + gzip + hash with stock tools and the "
          "system zlib")
    print_layers_legend(bench)
    print_push_table(bench)


def print_layers_legend(bench: Bench) -> None:
    """What the layers rows measure, for those that ran."""
    ran = [row.name for row in bench.rows]
    if any(name.startswith("layers-packages") for name in ran):
        print("layers-packages*: --layers packages (dpkg database read in a first pass); rootfs2image-*: --layers "
              "single;")
        print('  "Nx rootfs2image-*": wall (and cpu) over the single-layer row of the same compression')
    if "packages-scan" in ran:
        print("packages-scan: that first pass alone, rootfs2image killed at its first read of the tar the pass decoded "
              "and kept")
    if "layers-previous" in ran:
        print(f"layers-previous: {settings.CHANGED_TARBALL.name} with one file of {settings.CHANGED_PACKAGE} changed, "
              f"--previous {settings.PREVIOUS_IMAGE.name};")
        print("  download: bytes of the layers the previous image lacks over all layer bytes, as rootfs2image diff "
              "says")


def print_push_table(bench: Bench) -> None:
    """The push rows side by side with skopeo's, when any ran."""
    if not any(is_push_row(row.name) and row.status != "n/a" for row in bench.rows):
        return
    manifest = inputs.layout_manifest()
    blobs = len(manifest["layers"]) + 1
    size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    print(f"\nPush of {settings.PUSH_SOURCE} ({blobs} blobs, {human(size)}) to docker-registry on "
          f"{bench.registry.addr} (plain HTTP)\n")
    line = "{:<6} {:>16} {:>10} {:>9} {:>18}"
    print(line.format("push", "rootfs2image s", "skopeo s", "x skopeo", "rootfs2image sent"))
    for kind in ("cold", "warm"):
        ours, theirs = bench.ok_wall(f"push-{kind}"), bench.ok_wall(f"skopeo-{kind}")
        ours_row = bench.row(f"push-{kind}")
        sent = human(ours_row.sent) if ours_row is not None and ours_row.sent is not None else "-"
        versus = ratio(ours, theirs) if ours is not None and theirs is not None else "-"
        print(line.format(kind, "-" if ours is None else f"{ours:.3f}", "-" if theirs is None else f"{theirs:.3f}",
                          versus, sent))
    print("\ncold: the registry emptied and restarted before every run; warm: the same tool pushed the same image just")
    print("before, untimed, so every blob is already there. Wall time is the client's; the registry runs on the same "
          "cores.")


def number(text: str):
    """A figure printed to three decimals, back to a number ("-" and "" are none)."""
    return None if text in ("-", "") else float(text)


def json_row(bench: Bench, row: Row) -> dict:
    umoci = None if is_push_row(row.name) else bench.ok_wall("umoci")
    skopeo = bench.ok_wall(SKOPEO_COUNTERPART.get(row.name, ""))
    target = TARGETS.get(row.name)
    if target is None:
        goal = None
    elif target.kind == "umoci":
        goal = {"max_ratio_to_umoci": target.ratio, "max_peak_bytes": settings.TARGET_PEAK_BYTES}
    elif target.kind == "single":
        goal = {"max_ratio_to_single_layer": target.ratio, "single_layer_row": target.baseline}
    else:
        goal = {"max_download_percent": target.percent}
    if goal is not None:
        goal["verdict"] = verdict(bench, row)
    single = single_layer_ratio(bench, row)
    return {
        "name": row.name,
        "status": row.status,
        "wall_seconds": row.wall,
        "wall_seconds_of_each_run": row.walls,
        "cpu_seconds": row.cpu,
        "cpu_seconds_of_each_run": row.cpus,
        "peak_rss_kib": row.rss_kib,
        "output_bytes": row.size,
        "ratio_to_umoci": row.wall / umoci if row.wall is not None and umoci else None,
        "ratio_to_skopeo": row.wall / skopeo if row.wall is not None and skopeo else None,
        "ratio_to_single_layer": {"row": target.baseline, "ratio": number(single),
                                  "cpu_ratio": number(single_layer_ratio(bench, row, cpu=True))} if single else None,
        "bytes_sent": row.sent,
        "target": goal,
        "note": row.note or None,
        **row.extra,
    }


def print_json(bench: Bench, file_count: int, load: str) -> None:
    registry = bench.registry.addr if bench.registry is not None else ""
    report = {
        "input": {"path": str(settings.TARBALL), "bytes": settings.TARBALL.stat().st_size,
                  "tar_bytes": settings.ROOTFS_TAR.stat().st_size, "tar_entries": file_count},
        "machine": {"cores": settings.CORES, "load_average_1m": float(load)},
        "runs_per_row": bench.runs,
        "push": {"source": settings.PUSH_SOURCE, "registry": registry} if registry else None,
        "rows": [json_row(bench, row) for row in bench.rows],
    }
    print(json.dumps(report, indent=2))
