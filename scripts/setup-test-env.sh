#!/usr/bin/env bash
# Prepare this machine (Debian bookworm, as root) for imgcraft's real-engine tests:
# packages, arm64 and armhf emulation, podman, a private dockerd, a local registry, and
# $STATE/env.sh with the variables the tests read. Safe to rerun: every step
# checks first and does nothing when it is already done.
#
# Usage: scripts/setup-test-env.sh
#   IMGCRAFT_TEST_STATE    state dir (default /tmp/imgcraft-test-env)
#   IMGCRAFT_FIXTURES      fixtures dir written into env.sh (default <repo>/target/fixtures)
#   IMGCRAFT_REGISTRY_ADDR address of the local registry (default 127.0.0.1:5000)
#
# Running images by hand once this has run (`. $STATE/env.sh` first), all verified
# with Debian's docker.io 20.10.24 and podman 4.3.1:
#   docker:  "$DOCKER" run --rm --network none IMAGE /bin/busybox echo hi
#            arm64:  "$DOCKER" run --rm --network none --platform linux/arm64 IMAGE /bin/busybox uname -m
#            (without --platform it also runs, with a platform-mismatch WARNING on stderr)
#   podman:  podman run --rm --network none IMAGE /bin/busybox echo hi
#            arm64:  podman run --rm --network none --arch arm64 IMAGE /bin/busybox uname -m
#            (--platform linux/arm64 works too; without it podman WARNs and runs)
#   With --platform/--arch both engines insist on a local image of that architecture:
#   one labelled amd64 is not used, they try to pull it instead (and fail offline).
#   So an arm64 rootfs imported by hand needs `podman import --arch arm64`.
#   Inside a running container /dev is the runtime's tmpfs: device nodes from the
#   image are not visible there; inspect them with `docker export` or `podman mount`.
# arm64 and armhf (OCI arm/v7) run through binfmt_misc + qemu-aarch64-static and
# qemu-arm-static with the F flag, so no qemu binary is needed inside the image.
# Engine quirks found on the way:
#   - `docker import --platform` is ignored by engine 20.10 (not experimental):
#     the image stays amd64. Load a real arm64 image instead (docker load / skopeo).
#   - engine 20.10 `docker load` refuses a pure OCI archive (it needs manifest.json);
#     podman load takes both OCI and docker archives.
#   - skopeo 1.9 ignores DOCKER_HOST: pass `--dest-daemon-host "$DOCKER_HOST"`
#     (or --src-daemon-host) for the docker-daemon: transport.
#   - the 28.x client in /usr/local/bin (if present) negotiates API 1.41 by itself;
#     we still use Debian's /usr/bin/docker, which matches the engine.
#   - oci-image-tool 1.0.0-rc1: `oci-image-tool validate --type image --ref name=TAG DIR`.
set -euo pipefail

# setcap, getcap, dockerd and dpkg's helpers live in sbin, which a non-login PATH (CI) may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${IMGCRAFT_TEST_STATE:-/tmp/imgcraft-test-env}
FIXTURES=$(realpath -m "${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}")
REGISTRY_ADDR=${IMGCRAFT_REGISTRY_ADDR:-127.0.0.1:5000}
DOCKER=/usr/bin/docker   # Debian's client, same version as the engine it talks to
DOCKER_HOST=unix://$STATE/docker.sock
export DOCKER_HOST

PACKAGES=(docker.io podman skopeo umoci oci-image-tool docker-registry qemu-user-static
  busybox-static pigz pbzip2 zstd xz-utils bzip2 debootstrap apache2-utils runc
  libcap2-bin attr fuse-overlayfs uidmap containernetworking-plugins
  curl openssl pseudo python3 python3-venv python3-pip)  # curl: health checks here; openssl: fixture noise in
  # make-fixtures.sh; pseudo: BitBake tests; python3: package fixtures, BitBake tests (bitbake-setup in a venv);
  # python3-pip: the SBOM validators below
# The reference SBOM validators from PyPI that tests/sbom.rs runs through `python3`: spdx-tools (pyspdxtools) and
# cyclonedx-python-lib with its JSON schema validation.
PYPI_PACKAGES=(spdx-tools 'cyclonedx-python-lib[json-validation]')
# Emulated architectures the tests may use; every other qemu-*.conf is registered too.
REQUIRED_BINFMT=(aarch64 arm riscv64)
# Debian architectures whose busybox-static .deb we fetch, with what `uname -m` says under qemu.
FOREIGN_ARCHES=(arm64 armhf)
declare -A UNAME_M=([arm64]=aarch64 [armhf]=armv7l)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
step_start() { STEP_T0=$SECONDS; }
step_done() { say "$1 ($((SECONDS - STEP_T0))s)"; }
# Run a chatty command; show its output only when it fails.
quiet() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; die "failed: $*"; }; }

[[ $EUID -eq 0 ]] || die "run as root: it installs packages, mounts binfmt_misc and starts dockerd"
command -v apt-get >/dev/null || die "this script needs Debian's apt-get"
mkdir -p "$STATE/debs"

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg instead of failing on its lock.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)
APT_UPDATED=
apt_update_once() {
  [[ -n $APT_UPDATED ]] && return
  say "apt-get update"
  # One stale mirror index (seen: bookworm-security binary-armhf, "Mirror sync in progress?")
  # fails the whole update though every other list is fresh. Go on: a package that is
  # really missing still fails the install or download that follows, naming it.
  "${APT[@]}" update -qq || say "warning: apt-get update reported errors (above); going on with the lists it got"
  APT_UPDATED=1
}

# --- packages ---------------------------------------------------------------
step_start
# Add the foreign architectures before any update so one update fetches all their lists.
for arch in "${FOREIGN_ARCHES[@]}"; do
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    say "dpkg --add-architecture $arch"
    dpkg --add-architecture "$arch"
    ARCH_ADDED=1
  fi
done
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_update_once
  say "apt-get install ${missing[*]}"
  "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  step_done "packages: installed ${#missing[@]}"
else
  step_done "packages: all ${#PACKAGES[@]} already installed"
fi

# --- SBOM validators from PyPI ----------------------------------------------------
step_start
if python3 -c 'import spdx_tools.spdx.clitools.pyspdxtools, cyclonedx.validation.json, jsonschema' 2>/dev/null; then
  step_done "SBOM validators: already installed for $(command -v python3)"
else
  say "python3 -m pip install ${PYPI_PACKAGES[*]}"
  # Debian's python3 is externally managed (PEP 668): this machine exists to run the tests.
  python3 -m pip install -q --break-system-packages "${PYPI_PACKAGES[@]}"
  python3 -c 'import spdx_tools.spdx.clitools.pyspdxtools, cyclonedx.validation.json, jsonschema' ||
    die "the SBOM validators do not import after pip install"
  step_done "SBOM validators: installed ${PYPI_PACKAGES[*]} for $(command -v python3)"
fi

# --- busybox-static .debs (amd64 for smoke images, arm64 and armhf for emulation)
step_start
fetch_deb() { # $1 = apt name, $2 = arch; sets DEB to the cached .deb
  local found=("$STATE"/debs/busybox-static_*_"$2".deb)
  DEB=${found[0]}
  [[ -e $DEB ]] && return
  # A just-added architecture has no package lists until apt-get update.
  [[ -n ${ARCH_ADDED:-} ]] && apt_update_once
  say "apt-get download $1"
  (cd "$STATE/debs" && "${APT[@]}" download -qq "$1") ||
    { apt_update_once; (cd "$STATE/debs" && "${APT[@]}" download -qq "$1"); }
  found=("$STATE"/debs/busybox-static_*_"$2".deb)
  DEB=${found[0]}
  [[ -e $DEB ]] || die "apt-get download $1 left no .deb in $STATE/debs"
}
for arch in amd64 "${FOREIGN_ARCHES[@]}"; do
  name=busybox-static; [[ $arch != amd64 ]] && name=busybox-static:$arch
  fetch_deb "$name" "$arch"
  # The stamp names the .deb the tree came from, so a new cached .deb re-extracts.
  if [[ "$(cat "$STATE/busybox-$arch.from" 2>/dev/null)" != "$DEB" ]]; then
    rm -rf "$STATE/busybox-$arch"
    dpkg-deb -x "$DEB" "$STATE/busybox-$arch"
    ln -s busybox "$STATE/busybox-$arch/bin/sh"
    printf '%s\n' "$DEB" >"$STATE/busybox-$arch.from"
  fi
done
step_done "busybox-static debs: $(cd "$STATE/debs" && echo *.deb)"

# --- foreign architectures through binfmt_misc + qemu-user-static ------------
step_start
BINFMT=/proc/sys/fs/binfmt_misc
if [[ ! -e $BINFMT/register ]]; then
  say "mount -t binfmt_misc binfmt_misc $BINFMT"
  mount -t binfmt_misc binfmt_misc "$BINFMT"
fi
registered=()
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
  line=$(grep -v '^#' "$conf" | grep -m1 .)
  name=$(cut -d: -f2 <<<"$line")            # ":qemu-aarch64:M::..." -> qemu-aarch64
  [[ -e $BINFMT/$name ]] && continue
  # The F flag in Debian's confs opens the interpreter now, so it works in containers.
  printf '%s\n' "$line" >"$BINFMT/register" 2>/dev/null || say "warning: could not register $name"
  registered+=("$name")
done
for a in "${REQUIRED_BINFMT[@]}"; do
  grep -qx enabled "$BINFMT/qemu-$a" 2>/dev/null || die "binfmt handler qemu-$a is not enabled in $BINFMT"
done
ran=()
for arch in "${FOREIGN_ARCHES[@]}"; do
  got=$("$STATE/busybox-$arch/bin/busybox" uname -m) || die "running the $arch busybox failed"
  [[ $got == "${UNAME_M[$arch]}" ]] || die "$arch busybox says uname -m = $got, expected ${UNAME_M[$arch]}"
  ran+=("$arch: $got")
done
step_done "binfmt: registered ${#registered[@]} new, foreign busybox runs (uname -m = ${ran[*]})"

# --- podman -------------------------------------------------------------------
step_start
# crun refuses these machines' hybrid cgroup v1 mounts and there is no systemd:
# runc with cgroupfs works. Empty default_ulimits keeps podman from setting
# limits the sandbox does not allow.
CONTAINERS_CONF='[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"'
if [[ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$CONTAINERS_CONF" ]]; then
  mkdir -p /etc/containers
  [[ -e /etc/containers/containers.conf && ! -e /etc/containers/containers.conf.imgcraft-orig ]] &&
    cp /etc/containers/containers.conf /etc/containers/containers.conf.imgcraft-orig
  printf '%s\n' "$CONTAINERS_CONF" >/etc/containers/containers.conf
  say "wrote /etc/containers/containers.conf"
fi
podman_smoke() { # import a busybox image and run it without network
  # Untag a leftover of an interrupted run first, so reimporting leaves no dangling image.
  podman rmi -f localhost/imgcraft-smoke:amd64 >/dev/null 2>&1 || true
  tar -C "$STATE/busybox-amd64" -c . | podman import -q - localhost/imgcraft-smoke:amd64 >/dev/null &&
    [[ "$(podman run --rm --network none localhost/imgcraft-smoke:amd64 /bin/busybox echo hi)" == hi ]]
}
driver=$(podman info --format '{{.Store.GraphDriverName}}') || die "podman info failed"
if ! podman_smoke; then
  [[ $driver == vfs ]] && die "podman cannot run a container even with the vfs driver"
  # overlay needs kernel support the machine may lack; vfs always works (slower, fine for tiny images).
  say "podman failed with the $driver driver: switching storage to vfs (podman system reset)"
  printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
    >/etc/containers/storage.conf
  podman system reset --force
  driver=$(podman info --format '{{.Store.GraphDriverName}}')
  podman_smoke || die "podman cannot run a container with the vfs driver either"
fi
podman images >/dev/null || die "podman images failed"
step_done "podman: storage driver $driver, runs busybox with --network none"

# --- dockerd on a private socket ---------------------------------------------
step_start
docker_answers() { timeout 10 "$DOCKER" version >/dev/null 2>&1; }
if docker_answers; then
  step_done "dockerd: already answering on $DOCKER_HOST"
else
  # No iptables/bridge: the sandbox has no netfilter to spare and tests use --network none.
  # vfs storage and cgroupfs work everywhere, whatever the kernel and init.
  say "starting dockerd on $DOCKER_HOST (log $STATE/dockerd.log)"
  setsid nohup /usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none \
    --storage-driver=vfs --exec-opt native.cgroupdriver=cgroupfs \
    --host "$DOCKER_HOST" --data-root "$STATE/docker-data" --exec-root "$STATE/docker-exec" \
    --pidfile "$STATE/docker.pid" </dev/null >"$STATE/dockerd.log" 2>&1 &
  for ((i = 0; i < 60; i++)); do
    docker_answers && break
    kill -0 $! 2>/dev/null || break
    sleep 1
  done
  docker_answers || { tail -n 40 "$STATE/dockerd.log" >&2; die "dockerd did not answer on $DOCKER_HOST"; }
  step_done "dockerd: started (pid $(cat "$STATE/docker.pid"))"
fi

# --- local registry (plain HTTP on loopback, no auth) ------------------------
step_start
registry_answers() { curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/"; }
if registry_answers 2>/dev/null; then
  step_done "registry: already answering on $REGISTRY_ADDR"
else
  mkdir -p "$STATE/registry"
  # Our own config: Debian's default one asks for htpasswd auth and listens on all addresses.
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  say "starting docker-registry on $REGISTRY_ADDR (log $STATE/registry.log)"
  setsid nohup /usr/bin/docker-registry serve "$STATE/registry.yml" \
    </dev/null >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for ((i = 0; i < 30; i++)); do
    registry_answers 2>/dev/null && break
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  registry_answers || { tail -n 20 "$STATE/registry.log" >&2; die "registry did not answer on $REGISTRY_ADDR"; }
  step_done "registry: started on $REGISTRY_ADDR (pid $(cat "$STATE/registry.pid"))"
fi

# --- engines really run amd64 and arm64 images -------------------------------
step_start
"$DOCKER" rmi -f imgcraft-smoke:amd64 imgcraft-smoke:arm64 >/dev/null 2>&1 || true
tar -C "$STATE/busybox-amd64" -c . | "$DOCKER" import - imgcraft-smoke:amd64 >/dev/null
out=$("$DOCKER" run --rm --network none imgcraft-smoke:amd64 /bin/busybox echo hi)
[[ $out == hi ]] || die "docker run of the amd64 smoke image printed '$out'"
# A real arm64 image (config architecture arm64), built with umoci: docker import
# --platform is ignored by engine 20.10.
rm -rf "$STATE/smoke-oci" "$STATE/smoke-bundle"
quiet umoci init --layout "$STATE/smoke-oci"
quiet umoci new --image "$STATE/smoke-oci:arm64"
quiet umoci config --image "$STATE/smoke-oci:arm64" --architecture=arm64 --os=linux
quiet umoci unpack --image "$STATE/smoke-oci:arm64" "$STATE/smoke-bundle"
cp -a "$STATE/busybox-arm64/." "$STATE/smoke-bundle/rootfs/"
quiet umoci repack --image "$STATE/smoke-oci:arm64" "$STATE/smoke-bundle"
oci-image-tool validate --type image --ref name=arm64 "$STATE/smoke-oci" >/dev/null 2>&1 ||
  die "oci-image-tool rejected the smoke OCI layout $STATE/smoke-oci"
quiet skopeo copy -q --dest-daemon-host "$DOCKER_HOST" "oci:$STATE/smoke-oci:arm64" docker-daemon:imgcraft-smoke:arm64
quiet skopeo copy -q "oci:$STATE/smoke-oci:arm64" containers-storage:localhost/imgcraft-smoke:arm64
out=$("$DOCKER" run --rm --network none --platform linux/arm64 imgcraft-smoke:arm64 /bin/busybox uname -m)
[[ $out == aarch64 ]] || die "docker run of the arm64 smoke image printed '$out'"
out=$(podman run --rm --network none --arch arm64 localhost/imgcraft-smoke:arm64 /bin/busybox uname -m)
[[ $out == aarch64 ]] || die "podman run of the arm64 smoke image printed '$out'"
# Leave the engines empty for the tests.
"$DOCKER" rmi -f imgcraft-smoke:amd64 imgcraft-smoke:arm64 >/dev/null
podman rmi -f localhost/imgcraft-smoke:amd64 localhost/imgcraft-smoke:arm64 >/dev/null
rm -rf "$STATE/smoke-oci" "$STATE/smoke-bundle"
step_done "engines: docker and podman run amd64 and arm64 (qemu) busybox images with --network none"

# --- trixie's skopeo, for the signature tests ------------------------------------
# Bookworm's skopeo is built without sigstore; scripts/setup-trixie-tools.sh makes (once, cached) a Debian trixie
# tree whose skopeo 1.18 signs and verifies.
step_start
TRIXIE_DIR=$(realpath -m "${IMGCRAFT_TRIXIE_DIR:-/var/cache/imgcraft/trixie}")
IMGCRAFT_TRIXIE_DIR=$TRIXIE_DIR bash "$REPO/scripts/setup-trixie-tools.sh"
step_done "trixie tree: $(chroot "$TRIXIE_DIR" skopeo --version)"

# --- env.sh for the tests ------------------------------------------------------
{
  echo "# Written by scripts/setup-test-env.sh; source it before running the engine tests."
  printf 'export IMGCRAFT_TEST_STATE=%q\n' "$STATE"
  printf 'export DOCKER_HOST=%q\n' "$DOCKER_HOST"
  printf 'export DOCKER=%q\n' "$DOCKER"
  printf 'export IMGCRAFT_FIXTURES=%q\n' "$FIXTURES"
  echo "# Plain-HTTP registry on loopback, no auth (skopeo/podman need --tls-verify=false)."
  printf 'export IMGCRAFT_REGISTRY=%q\n' "$REGISTRY_ADDR"
  echo "# A Debian trixie tree whose skopeo signs and verifies sigstore signatures (chroot TREE skopeo ...)."
  printf 'export IMGCRAFT_TRIXIE=%q\n' "$TRIXIE_DIR"
  echo "# binfmt_misc + qemu-user-static run these foreign architectures' images."
  echo 'export IMGCRAFT_EMULATED_ARCHES="arm64 arm riscv64"'
  echo "# dockerd, setcap and getcap live in sbin, which a non-login PATH may lack."
  # shellcheck disable=SC2016 # expanded when env.sh is sourced
  echo 'case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac'
} >"$STATE/env.sh.tmp"
mv "$STATE/env.sh.tmp" "$STATE/env.sh"
say "wrote $STATE/env.sh"

# --- smoke check of every tool the tests call ----------------------------------
"$DOCKER" info --format 'docker info: engine {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}}'
podman info --format 'podman info: {{.Version.Version}}, storage {{.Store.GraphDriverName}}, runtime {{.Host.OCIRuntime.Name}}'
skopeo --version
umoci --version
oci-image-tool --version
qemu-aarch64-static --version | head -n1
qemu-arm-static --version | head -n1
say "test environment ready: . $STATE/env.sh"
