"""The push rows: one image of the bench rootfs pushed to a private docker-registry by `rootfs2image push` and by
`skopeo copy`, cold and warm (how, and why: run.py's docstring)."""

import subprocess

import inputs
import settings
from console import die, human, say
from measure import Bench, json_report
from registry import Registry

# The row each push row is compared with: the same push done by skopeo.
SKOPEO_COUNTERPART = {"push-cold": "skopeo-cold", "push-warm": "skopeo-warm"}


def is_push_row(name: str) -> bool:
    return name.startswith(("push-", "skopeo-"))


def prepare(bench: Bench) -> None:
    """Everything the push rows need (the layout, a started registry), or bench.push_why when they cannot run."""
    binary = bench.binary
    if binary.path is None:
        bench.push_why = f"no image to push: {binary.why}"
        return
    if not binary.help_text("push"):
        bench.push_why = f"`{binary.path}` has no push subcommand yet"
        return
    inputs.build_push_layout(binary.path, binary.single_layer)
    registry = Registry()
    registry.folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["rm", "-rf", str(registry.storage)], check=True)
    registry.log.write_bytes(b"")
    bench.registry = registry  # run.py stops it at exit, however the bench ends
    registry.start()


def ready(bench: Bench) -> None:
    """The last step of every setup: the layout in the page cache for both tools, and the log marked."""
    inputs.read_layout_blobs()
    bench.registry.mark_log()


def empty_registry(bench: Bench) -> None:
    """Setup of a cold row."""
    bench.registry.empty()
    ready(bench)


def first_push(bench: Bench, command: list) -> None:
    """Setup of a warm row: the same tool pushes the same image once, untimed, so the timed push is a second push."""
    say(f"untimed first push: {' '.join(map(str, command))}")
    log = bench.registry.folder / "first-push.log"
    with open(log, "wb") as out:
        if subprocess.run(list(map(str, command)), stdout=out, stderr=subprocess.STDOUT).returncode:
            die(f"the untimed first push failed; see {log}")
    ready(bench)


def note_rootfs2image_push(bench: Bench, row) -> None:
    """What the last run did: bytes sent from its --json report, requests from the registry."""
    if row.status != "ok":
        return
    log = settings.row_log(row.name)
    report = json_report(log)
    if report is None or report.get("bytes_sent") is None:
        row.note = f"no --json report in {log}; {bench.registry.requests()}"
        return
    row.sent = report["bytes_sent"]
    row.note = f"sent {human(row.sent)}; {bench.registry.requests()}"


def note_skopeo_push(bench: Bench, row) -> None:
    """What the last run did: requests from the registry, and whether the registry now holds the layout's layers as
    they are or recompressed ones."""
    if row.status != "ok":
        return
    requests = bench.registry.requests()
    pushed = bench.registry.pushed_layers()
    if pushed is None:
        layers = "the pushed manifest could not be read back"
    elif pushed == [layer["digest"] for layer in inputs.layout_manifest()["layers"]]:
        layers = "layers pushed as they are in the layout"
    else:
        layers = "layers recompressed (digests differ from the layout's)"
    row.note = f"{requests}; {layers}"


def push_row(bench: Bench, name: str, warm: bool) -> None:
    if bench.push_why:
        bench.skip(name, bench.push_why)
        return
    push = [bench.binary.path, "push", settings.PUSH_SOURCE, bench.registry.destination()]
    setup = (lambda: first_push(bench, push)) if warm else (lambda: empty_registry(bench))
    row = bench.measure(name, None, [push[0], "push", "--json", *push[2:]], setup=setup)
    note_rootfs2image_push(bench, row)


def skopeo_row(bench: Bench, name: str, warm: bool) -> None:
    if bench.push_why:
        bench.skip(name, bench.push_why)
        return
    copy = ["skopeo", "copy", "--dest-tls-verify=false", settings.PUSH_SOURCE, bench.registry.destination()]
    setup = (lambda: first_push(bench, copy)) if warm else (lambda: empty_registry(bench))
    row = bench.measure(name, None, copy, setup=setup)
    note_skopeo_push(bench, row)


ROWS = {
    "push-cold": lambda bench: push_row(bench, "push-cold", warm=False),
    "push-warm": lambda bench: push_row(bench, "push-warm", warm=True),
    "skopeo-cold": lambda bench: skopeo_row(bench, "skopeo-cold", warm=False),
    "skopeo-warm": lambda bench: skopeo_row(bench, "skopeo-warm", warm=True),
}
