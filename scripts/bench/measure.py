"""Timing a row: every run under /usr/bin/time in an empty output directory, and the figures a row reports (the
method, and why: run.py's docstring)."""

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import settings
from console import command_text, say


@dataclass
class Row:
    """One line of the report. `None` is a figure the row does not have (skipped, or no output)."""

    name: str
    status: str  # ok, failed, or n/a (skipped: `note` says why)
    wall: Optional[float] = None  # median of `walls`
    walls: list = field(default_factory=list)
    cpu: Optional[float] = None  # median of `cpus`: user + system of every process of the row
    cpus: list = field(default_factory=list)
    rss_kib: Optional[int] = None  # the highest peak RSS of any run
    size: Optional[int] = None  # bytes of the row's output file
    note: str = ""
    sent: Optional[int] = None  # bytes a push row sent, from its --json report
    extra: dict = field(default_factory=dict)  # more fields for the JSON report (and for the verdict)


def median(values: list) -> float:
    """The middle value; of an even count, the lower of the two middle ones."""
    ordered = sorted(values)
    return ordered[(len(ordered) + 1) // 2 - 1]


def timed(command: list, log) -> int:
    """Run the command in a process group of its own, so that when the bench is interrupted or terminated every process
    of the row ends with it (/usr/bin/time passes no signal on to the command)."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               process_group=0)
    try:
        return process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise


def reset_out_dir() -> None:
    shutil.rmtree(settings.OUT_DIR, ignore_errors=True)
    settings.OUT_DIR.mkdir(parents=True)


def nothing() -> bool:
    return True


@dataclass
class Bench:
    """The rows measured so far, and what the rows share: the run count, the binary, the registry."""

    runs: int
    rows: list = field(default_factory=list)
    binary: object = None  # binary.Binary, once resolved
    registry: object = None  # registry.Registry, while the push rows run
    push_why: str = ""  # why the push rows cannot run, or ""
    previous_why: str = ""  # why layers-previous cannot run, or ""

    def row(self, name: str) -> Optional[Row]:
        return next((row for row in self.rows if row.name == name), None)

    def ok_wall(self, name: str) -> Optional[float]:
        """The row's median wall time, or None when it did not run or failed."""
        row = self.row(name)
        return row.wall if row is not None and row.status == "ok" else None

    def skip(self, name: str, why: str) -> Row:
        """Show the row as n/a instead of leaving it out."""
        say(f"row {name}: skipped ({why})")
        row = Row(name, "n/a", note=why)
        self.rows.append(row)
        return row

    def measure(self, name: str, output: Optional[Path], command: list, setup: Callable = nothing,
                cleanup: Callable = nothing, after: Callable[[], bool] = nothing, shown: str = "") -> Row:
        """Run `command` `runs` times and record the median wall and CPU time, the highest peak RSS and the size of
        `output`. `setup` runs, untimed, right before each run; `cleanup` before the setup and after each run; `after`,
        untimed, after each run that succeeded, while its output is still there: the row fails when it returns false
        (it checks what the run wrote). A failed run ends the row. `shown` stands for the command in the progress line.
        """
        timing = settings.BENCH_DIR / f"time.{name}"
        log = settings.row_log(name)
        row = Row(name, "ok")
        peak = 0
        for run in range(1, self.runs + 1):
            reset_out_dir()
            cleanup()
            setup()
            os.sync()
            say(f"row {name}, run {run}/{self.runs}: {shown or command_text(command)}")
            with open(log, "wb") as out:
                start = time.monotonic()
                status = timed(["/usr/bin/time", "-f", "%M %U %S", "-o", str(timing), *map(str, command)], out)
                end = time.monotonic()
            if status != 0:
                row.status = "failed"
                say(f"row {name} failed; its output is in {log}")
            # A command that failed or was killed gets a line about it first; the figures are always the last line.
            rss, user, system = timing.read_text().splitlines()[-1].split()
            row.walls.append(float(f"{end - start:.3f}"))
            row.cpus.append(float(f"{float(user) + float(system):.2f}"))
            peak = max(peak, int(rss))
            if row.status == "ok" and output is not None:
                if output.is_file():
                    row.size = output.stat().st_size
                else:
                    row.status = "failed"
                    say(f"row {name} exited 0 but wrote no `{output}`")
            if row.status == "ok" and not after():
                row.status = "failed"
                say(f"row {name}: the check after run {run} failed")
            reset_out_dir()
            cleanup()
            os.sync()
            if row.status != "ok":
                break
        row.wall, row.cpu, row.rss_kib = median(row.walls), median(row.cpus), peak
        self.rows.append(row)
        return row


def json_report(log: Path) -> Optional[dict]:
    """The last JSON value a row's log holds (rootfs2image's --json report), or None when the log is anything else."""
    try:
        text = log.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    decoder, position, value = json.JSONDecoder(), 0, None
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return value if isinstance(value, dict) else None
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            return None
