#!/usr/bin/env python3
"""The dependency half of scripts/msrv-check.sh: reads `cargo metadata --locked` and prints one line per crate of
Cargo.lock that the crate's rust-version (Yocto scarthgap's cargo and rustc 1.75) could not use.

- Every crate of Cargo.lock, whatever platform it is for, must be edition 2021 or older: Yocto fetches and vendors all
  of them (imgcraft-crates.inc), and cargo 1.75 fails on a vendored manifest it cannot parse, used or not.
- Every crate built for a Linux target of tests/oe-core/platforms.txt, as a normal or build dependency (and the
  crate's own dev-dependencies, so that `cargo test` resolves too), must declare a rust-version no newer than the
  crate's, or be listed in scripts/msrv-undeclared.txt as `NAME@VERSION  why it builds`; the build script of one that
  declares none must not use the `cargo::` syntax of cargo 1.77.

Usage: scripts/msrv-deps.py RUST_VERSION      exit 1 when there is a problem
"""
import json
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
ALLOWLIST = REPO / "scripts/msrv-undeclared.txt"
# The Rust targets of the machines in tests/oe-core/platforms.txt (Yocto's triples, like aarch64-poky-linux, have the
# same cfg values).
TARGETS = [
    "aarch64-unknown-linux-gnu",
    "armv7-unknown-linux-gnueabihf",
    "x86_64-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
]


def version(text: str) -> tuple:
    return tuple(int(part) for part in (text.split(".") + ["0", "0"])[:3])


def metadata(*args: str) -> dict:
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked", *args], cwd=REPO, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def built_for(target: str) -> set:
    """The ids of the packages `cargo build` (and `cargo test`) compiles for `target`."""
    meta = metadata("--filter-platform", target)
    nodes = {node["id"]: node for node in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            kinds = {kind["kind"] for kind in dep["dep_kinds"]}
            if (kinds & {None, "build"} or (node["id"] == root and "dev" in kinds)) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    return seen


def allowlist() -> set:
    entries = set()
    for line in ALLOWLIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.add(line.split()[0])
    return entries


def uses_new_build_syntax(package: dict) -> bool:
    scripts = [t["src_path"] for t in package["targets"] if "custom-build" in t["kind"]]
    return any(re.search(r"cargo::", pathlib.Path(path).read_text(errors="replace")) for path in scripts)


def main() -> int:
    msrv = sys.argv[1]
    packages = {p["id"]: p for p in metadata()["packages"]}
    root = next(p for p in packages.values() if p["source"] is None and p["manifest_path"] == str(REPO / "Cargo.toml"))
    problems = []
    for p in sorted(packages.values(), key=lambda p: (p["name"], p["version"])):
        if p["edition"] > "2021":
            problems.append(f"{p['name']} {p['version']} is edition {p['edition']}: cargo {msrv} cannot parse its "
                            "manifest, and Yocto vendors every crate of Cargo.lock")
    built = set().union(*(built_for(target) for target in TARGETS)) - {root["id"]}
    allowed = allowlist()
    for p in sorted((packages[i] for i in built), key=lambda p: p["name"]):
        name = f"{p['name']}@{p['version']}"
        if p["rust_version"] is None:
            if name not in allowed:
                problems.append(f"{p['name']} {p['version']} declares no rust-version: check that it builds with "
                                f"Rust {msrv}, then list it in {ALLOWLIST.relative_to(REPO)} with why")
            if uses_new_build_syntax(p):
                problems.append(f"{p['name']} {p['version']}: its build script uses `cargo::` (cargo 1.77)")
        elif version(p["rust_version"]) > version(msrv):
            problems.append(f"{p['name']} {p['version']} needs Rust {p['rust_version']} (its rust-version), newer "
                            f"than {msrv}")
    stale = allowed - {f"{packages[i]['name']}@{packages[i]['version']}" for i in built if packages[i]["rust_version"] is None}
    for name in sorted(stale):
        print(f"msrv-check: note: {name} in {ALLOWLIST.relative_to(REPO)} is not an undeclared crate that is built: remove it",
              flush=True)
    for problem in problems:
        print(f"msrv-check: {problem}", file=sys.stderr)
    print(f"msrv-check: {len(packages)} crates in Cargo.lock, {len(built)} built for {', '.join(TARGETS)}: "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
