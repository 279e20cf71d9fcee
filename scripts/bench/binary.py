"""The binary under test: `$ROOTFS2IMAGE`, or target/release/rootfs2image built when missing or older than its sources.
"""

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import settings
from console import say


@dataclass
class Binary:
    """`path` is None when there is no binary worth measuring, and `why` says why; `layers_why` is why the layers rows
    cannot run (no binary, or one without --layers)."""

    path: Path = None
    why: str = ""
    layers_why: str = ""
    single_layer: list = field(default_factory=list)  # the options that make one layer

    def help_text(self, *subcommand: str) -> str:
        """The binary's --help (of a subcommand), or "" when it fails."""
        done = subprocess.run([str(self.path), *subcommand, "--help"], capture_output=True, text=True, errors="replace")
        return done.stdout if done.returncode == 0 else ""


def newer_sources(binary: Path) -> bool:
    """Whether a source changed since the binary was built (a folder counts too: a removed file changes only it)."""
    built = binary.stat().st_mtime
    roots = [settings.REPO_ROOT / "src", settings.REPO_ROOT / "Cargo.toml", settings.REPO_ROOT / "Cargo.lock"]
    for root in roots:
        if root.exists() and root.stat().st_mtime > built:
            return True
        for folder, folders, files in os.walk(root):
            if any(os.stat(os.path.join(folder, name)).st_mtime > built for name in folders + files):
                return True
    return False


def resolve() -> Binary:
    path = Path(settings.ROOTFS2IMAGE or settings.REPO_ROOT / "target/release/rootfs2image")
    if not settings.ROOTFS2IMAGE and (not os.access(path, os.X_OK) or newer_sources(path)):
        say("cargo build --release --bin rootfs2image")
        built = subprocess.run(["cargo", "build", "--release", "--bin", "rootfs2image"], cwd=settings.REPO_ROOT,
                               stdout=sys.stderr)
        if built.returncode != 0:
            say("build failed; measuring the previous binary, if any, which may be stale")
    binary = Binary(path)
    if not os.access(path, os.X_OK):
        binary.path, binary.why = None, f"no binary at `{path}`"
    elif "--compression" not in binary.help_text():
        # The CLI is still being written; a stub would "succeed" in no time and spoil the table.
        binary.path, binary.why = None, f"`{path} --help` has no --compression yet"
    binary.layers_why = binary.why
    if binary.path is not None:
        if "--layers" in binary.help_text():
            # Without it a rootfs with a package database is split by package.
            binary.single_layer = ["--layers", "single"]
        else:
            binary.layers_why = f"`{path} --help` has no --layers yet"
    return binary

