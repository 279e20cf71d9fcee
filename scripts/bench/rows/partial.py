"""The partial-pull row (issue 14): what a podman with zstd:chunked partial pulls, holding v1 of the bench rootfs by
package, fetches for v2 (the tarball of layers-previous: one file of one package changed), counted in the access log of
a docker-registry on loopback, and checked against `rootfs2image diff`'s partial_download_bytes. Untimed, once per
bench: both images written (`--layers packages --compression zstd:chunked`, v2 with `--previous` v1), pushed, and v1
pulled into a podman storage of the row's own (`enable_partial_images`, no hard links). Each run removes v2 from that
storage, then times `podman pull` of v2."""

import json
import os
import subprocess
import sys

import changed_tarball
import settings
import tools
from console import die, human, say
from measure import Bench
from registry import Registry

ROW = "layers-partial-pull"
REPO = "bench/partial"
STORE = settings.BENCH_DIR / "partial-podman"
TAR_SPLIT = "io.github.containers.zstd-chunked.tarsplit-position"


def storage_env() -> dict:
    return dict(os.environ, CONTAINERS_STORAGE_CONF=str(STORE / "storage.conf"))


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=storage_env(), stdout=sys.stderr, stderr=sys.stderr, check=check)


def layout(version: str):
    return settings.BENCH_DIR / f"partial-{version}"


def image(bench: Bench, version: str) -> str:
    return f"{bench.registry.addr}/{REPO}:{version}"


def prepare(bench: Bench) -> str:
    """Both images written and pushed, and v1 pulled; or why the row cannot run."""
    binary = bench.binary
    if binary.layers_why:
        return binary.layers_why
    if "zstd:chunked" not in binary.help_text():
        return f"`{binary.path}` has no --compression zstd:chunked yet"
    tools.need_tools(tools.PUSH)
    changed_tarball.build()
    subprocess.run(["rm", "-rf", str(layout("v1")), str(layout("v2"))], check=True)
    for version, tarball, extra in [("v1", settings.TARBALL, []),
                                    ("v2", settings.CHANGED_TARBALL, ["--previous", f"oci:{layout('v1')}:v1"])]:
        command = [str(binary.path), str(tarball), "--arch", settings.ARCH, "--layers", "packages", "--compression",
                   "zstd:chunked", *extra, "-q", "-o", f"oci:{layout(version)}:{version}"]
        say(f"writing {version} (untimed, once): {' '.join(command)}")
        subprocess.run(command, check=True, stdout=sys.stderr)
    if bench.registry is None:
        bench.registry = Registry()  # run.py stops it at exit, however the bench ends
        bench.registry.folder.mkdir(parents=True, exist_ok=True)
        bench.registry.start()
    for version in ("v1", "v2"):
        subprocess.run([str(binary.path), "push", f"oci:{layout(version)}:{version}", f"docker://{image(bench, version)}"],
                       check=True, stdout=sys.stderr)
    if (STORE / "storage.conf").is_file():
        podman("system", "reset", "--force", check=False)
    subprocess.run(["rm", "-rf", str(STORE)], check=True)
    STORE.mkdir(parents=True)
    (STORE / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{STORE}/graph"\nrunroot = "{STORE}/run"\n\n[storage.options]\n'
        'pull_options = {enable_partial_images = "true", use_hard_links = "false"}\n')
    say(f"pulling v1 with partial pulls (untimed, once) into {STORE}")
    podman("pull", "-q", "--tls-verify=false", image(bench, "v1"))
    return ""


def check(bench: Bench, diff: dict, manifest: dict, figures: dict) -> bool:
    """After each run: the blob bytes the registry sent for v2, against diff's prediction for a client that does not
    fetch the tar-split (bookworm's podman 4.3; 5.x fetches it too)."""
    fetched, requests = bench.registry.blob_bytes()
    config = manifest["config"]["size"]
    tar_splits = {layer["digest"]: int(layer.get("annotations", {}).get(TAR_SPLIT, "0:0:0").split(":")[1])
                  for layer in manifest["layers"]}
    predicted = config + sum(layer["partial_bytes"] - tar_splits.get(layer["digest"], 0)
                             for layer in diff["new_layers"])
    total = diff["total_bytes"]
    figures.update(fetched_bytes=fetched, requests=requests, predicted_bytes=predicted, image_layer_bytes=total,
                   partial_download_bytes=diff["partial_download_bytes"], download_bytes=diff["download_bytes"],
                   download_percent=round(100 * fetched / total, 3),
                   changed=settings.CHANGED_PATH.read_text().rstrip("\n"))
    tolerance = 4096 + predicted // 50
    if abs(fetched - predicted) > tolerance:
        say(f"{ROW}: podman fetched {fetched} bytes, diff predicted {predicted} (± {tolerance})")
        return False
    return True


def partial_pull(bench: Bench) -> None:
    if bench.binary is None or bench.binary.path is None:
        bench.skip(ROW, bench.binary.why if bench.binary else "no binary")
        return
    why = prepare(bench)
    if why:
        bench.skip(ROW, why)
        return
    done = subprocess.run([str(bench.binary.path), "diff", "--json", f"oci:{layout('v1')}:v1",
                           f"oci:{layout('v2')}:v2"], check=True, capture_output=True, text=True)
    diff = json.loads(done.stdout)
    index = json.loads((layout("v2") / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout("v2") / "blobs" / digest.replace(":", "/", 1)).read_bytes())
    figures = {}

    def setup() -> None:
        podman("rmi", "--force", "--ignore", image(bench, "v2"))
        bench.registry.mark_log()

    row = bench.measure(ROW, None, ["env", f"CONTAINERS_STORAGE_CONF={STORE / 'storage.conf'}", "podman", "pull", "-q",
                                    "--tls-verify=false", image(bench, "v2")],
                        setup=setup, after=lambda: check(bench, diff, manifest, figures))
    if row.status != "ok":
        return
    row.note = (f"podman 4.3 fetched {human(figures['fetched_bytes'])} in {figures['requests']} requests = "
                f"{figures['download_percent']}% of {human(figures['image_layer_bytes'])} (whole layers: "
                f"{human(figures['download_bytes'])}); diff agrees")
    row.extra.update(figures)


ROWS = {ROW: partial_pull}
