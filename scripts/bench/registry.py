"""A private docker-registry on a free loopback port, for the push rows: start, restart empty, stop, and what its access
log says a client asked for."""

import json
import random
import shutil
import socket
import subprocess
import time
import urllib.request

import settings
from console import die, say

# Loopback only, and never through a proxy the environment names.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A loopback port nothing listens on, picked at random in 5100-5899 so that two benches side by side rarely
    collide."""
    for _ in range(100):
        port = 5100 + random.randrange(800)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    die("found no free loopback port in 5100-5899")


class Registry:
    def __init__(self):
        self.folder = settings.REGISTRY_DIR
        self.storage = self.folder / "storage"
        self.log = self.folder / "registry.log"
        self.addr = ""  # picked on the first start, kept across restarts so the rows' destination stays the same
        self.process = None
        self.log_mark = 0

    def destination(self) -> str:
        return f"docker://{self.addr}/{settings.PUSH_REPO}:{settings.PUSH_TAG}"

    def answers(self) -> bool:
        try:
            with LOOPBACK.open(f"http://{self.addr}/v2/", timeout=2):
                return True
        except OSError:
            return False

    def start(self) -> None:
        self.addr = self.addr or f"127.0.0.1:{free_port()}"
        self.storage.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yml"
        # Our own config: Debian's default asks for htpasswd auth and listens on every address.
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                          f"http:\n  addr: {self.addr}\n")
        say(f"starting docker-registry on {self.addr} (storage {self.storage}, log {self.log})")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(["docker-registry", "serve", str(config)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        for _ in range(50):
            # Alive and answering: a registry that lost the port to someone else exits at once.
            if self.answers() and self.process.poll() is None:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        say("the last lines of its log:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:]))
        self.stop()
        die(f"docker-registry did not answer on {self.addr}; its log is {self.log}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        self.process.wait()
        self.process = None

    def stop_at_exit(self) -> None:
        """However the bench ends: the registry stops and its storage (a copy of the image) goes."""
        if self.process is None:
            return
        say(f"stopping docker-registry on {self.addr} and removing {self.storage}")
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)

    def empty(self) -> None:
        """No blob of any repository left (blobs are global in docker-registry) and a new process, so no cache remembers
        one."""
        say(f"emptying the registry: stop, remove {self.storage}, start")
        self.stop()
        shutil.rmtree(self.storage, ignore_errors=True)
        self.start()

    def mark_log(self) -> None:
        """Where the next timed run's requests begin in the access log."""
        self.log_mark = self.log.read_bytes().count(b"\n")

    def requests(self) -> str:
        """What the client asked for since the mark, summed up the same way for both tools (skopeo prints no "skipped:
        already exists" without a terminal, so its own output says little)."""
        # The access log line is written once the response is out; give the last one a moment to land.
        time.sleep(0.2)
        heads = found = uploads = patches = manifests = 0
        for line in self.log.read_text(errors="replace").splitlines()[self.log_mark:]:
            words = line.split()
            if len(words) < 9 or words[0] != "127.0.0.1" or words[1] != "-":
                continue
            method, path, code = words[5][1:], words[6], words[8]
            if method == "HEAD" and "/blobs/sha256:" in path:
                heads += 1
                found += code == "200"
            elif method == "POST" and "/blobs/uploads/" in path:
                uploads += 1
            elif method == "PATCH":
                patches += 1
            elif method == "PUT" and "/manifests/" in path:
                manifests += 1
        return (f"registry saw: HEAD blob {heads} ({found} found), POST upload {uploads}, PATCH {patches}, "
                f"PUT manifest {manifests}")

    def blob_bytes(self):
        """(body bytes, requests) of the blob GETs since the mark, range answers included: what a pulling client
        fetched."""
        time.sleep(0.2)  # as in requests(): the last access log line lands once the response is out
        sent = count = 0
        for line in self.log.read_text(errors="replace").splitlines()[self.log_mark:]:
            words = line.split()
            if len(words) < 10 or words[0] != "127.0.0.1" or words[1] != "-":
                continue
            if words[5][1:] == "GET" and "/blobs/sha256:" in words[6] and words[9].isdigit():
                sent += int(words[9])
                count += 1
        return sent, count

    def pushed_layers(self):
        """The layer digests of the manifest the registry now serves for the pushed tag, or None."""
        request = urllib.request.Request(
            f"http://{self.addr}/v2/{settings.PUSH_REPO}/manifests/{settings.PUSH_TAG}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                               "application/vnd.docker.distribution.manifest.v2+json"})
        try:
            with LOOPBACK.open(request, timeout=30) as response:
                return [layer["digest"] for layer in json.load(response)["layers"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
