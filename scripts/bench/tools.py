"""The stock tools the rows run, installed from the distribution when missing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from console import die, say

# Every row's tools, always: the input needs debootstrap and zstd, the rows time the rest (and a missing one would
# turn into a failed row rather than a clear message).
ALWAYS = [("/usr/bin/time", "time"), ("debootstrap", "debootstrap"), ("zstd", "zstd"), ("pigz", "pigz"),
          ("umoci", "umoci"), ("podman", "podman")]
PUSH = [("skopeo", "skopeo"), ("docker-registry", "docker-registry")]
PACKAGES_SCAN = [("strace", "strace")]


def need_tool(command: str, package: str) -> None:
    """Install `package` from the distribution when `command` is missing."""
    found = os.access(command, os.X_OK) if command.startswith("/") else shutil.which(command)
    if found:
        return
    if os.geteuid() != 0:
        die(f"`{command}` is missing; install the Debian package `{package}`")
    say(f"installing {package} (for `{command}`)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], check=True, env=env,
                   stdout=sys.stderr)


def need_tools(tools) -> None:
    for command, package in tools:
        need_tool(command, package)


# podman in a container needs cgroupfs, runc and no default ulimits; scripts/setup-test-env.sh writes the same file.
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


def ensure_containers_conf() -> None:
    conf = Path("/etc/containers/containers.conf")
    if conf.exists():
        return
    say(f"writing {conf} (cgroupfs, runc, no default ulimits)")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(CONTAINERS_CONF)
