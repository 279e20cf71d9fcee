"""The issues' targets for each row (wall time against umoci's or the single-layer row's, peak memory, bytes a device
downloads), and whether a row met its target."""

from dataclasses import dataclass
from typing import Optional

import settings
from measure import Bench, Row


@dataclass
class Target:
    kind: str  # umoci: wall against umoci's and peak memory; single: wall against `baseline`; download: bytes
    ratio: Optional[float] = None
    baseline: str = ""  # the single-layer row of the same compression
    percent: float = settings.TARGET_DOWNLOAD_PERCENT  # download: the most of the image a device may fetch
    cold_ratio: Optional[float] = None  # download: also the most wall time against a cold build of the same input

    def text(self) -> str:
        if self.kind == "umoci":
            return f"<= {self.ratio}x umoci, peak < {settings.TARGET_PEAK_BYTES // 1_000_000} MB"
        if self.kind == "single":
            return f"<= {self.ratio}x {self.baseline}"
        cold = f", <= {self.cold_ratio}x cold" if self.cold_ratio is not None else ""
        return f"download < {self.percent}% of the image{cold}"


TARGETS = {
    "rootfs2image-gzip": Target("umoci", settings.TARGET_GZIP_RATIO),
    "rootfs2image-zstd": Target("umoci", settings.TARGET_ZSTD_RATIO),
    "layers-packages": Target("single", settings.TARGET_LAYERS_RATIO, "rootfs2image-gzip"),
    "layers-packages-zstd": Target("single", settings.TARGET_LAYERS_RATIO, "rootfs2image-zstd"),
    "layers-previous": Target("download", cold_ratio=settings.TARGET_REBUILD_RATIO),
    "layers-partial-pull": Target("download", percent=settings.TARGET_PARTIAL_PERCENT),
}


def target_text(row: Row) -> str:
    target = TARGETS.get(row.name)
    return target.text() if target else ""


def ratio(a: float, b: float) -> str:
    """a / b to three decimals, or "-" when b is not positive."""
    return f"{a / b:.3f}" if b > 0 else "-"


def verdict(bench: Bench, row: Row) -> str:
    """met, missed, "?" when a figure is missing, or "" when the row has no target."""
    target = TARGETS.get(row.name)
    if target is None:
        return ""
    if row.status != "ok":
        return "?"
    if target.kind == "umoci":
        umoci = bench.ok_wall("umoci")
        if umoci is None:
            return "?"
        return "met" if row.wall <= target.ratio * umoci and row.rss_kib * 1024 < settings.TARGET_PEAK_BYTES \
            else "missed"
    if target.kind == "single":
        baseline = bench.ok_wall(target.baseline)
        if baseline is None:
            return "?"
        return "met" if row.wall <= target.ratio * baseline else "missed"
    percent = row.extra.get("download_percent")
    cold = row.extra.get("cold_wall_seconds")
    if percent is None or (target.cold_ratio is not None and not cold):
        return "?"
    faster = target.cold_ratio is None or row.wall <= target.cold_ratio * cold
    return "met" if percent < target.percent and faster else "missed"


def single_layer_ratio(bench: Bench, row: Row, cpu: bool = False) -> str:
    """The row's wall (or CPU) time over its single-layer row's, when it has one and both ran; else ""."""
    target = TARGETS.get(row.name)
    if target is None or not target.baseline or row.status != "ok":
        return ""
    baseline = bench.row(target.baseline)
    if baseline is None or baseline.status != "ok":
        return ""
    return ratio(row.cpu, baseline.cpu) if cpu else ratio(row.wall, baseline.wall)
