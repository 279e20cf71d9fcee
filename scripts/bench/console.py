"""What the bench tells its user: progress on stderr, fatal errors, and byte counts in IEC units."""

import shlex
import sys
from typing import NoReturn


class Fatal(Exception):
    """The bench cannot go on; run.py prints the message as `error: ...` and exits 1."""


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def die(message: str) -> NoReturn:
    raise Fatal(message)


def command_text(command) -> str:
    return " ".join(shlex.quote(str(word)) for word in command)


def human(count: int) -> str:
    """`numfmt --to=iec-i --suffix=B --format=%.1f`: tenths rounded away from zero, as numfmt rounds by default."""
    units = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
    unit = 0
    while count >= 1024 ** (unit + 1) and unit < len(units) - 1:
        unit += 1
    tenths = -(-count * 10 // 1024**unit)
    if tenths >= 10240 and unit < len(units) - 1:
        unit += 1
        tenths = -(-count * 10 // 1024**unit)
    return f"{tenths // 10}.{tenths % 10}{units[unit]}B"
