#!/usr/bin/env bash
# Check meta-imgcraft with a real BitBake on a real OE-core, for each OE-core branch:
#  - parse: for each MACHINE of tests/oe-core/platforms.txt, `bitbake -e imgcraft-test-image` (2 to 5 minutes on 2
#    cores when BitBake's cache for that MACHINE is cold, as on a first run or after the layer changed; seconds when
#    warm) must give IMGCRAFT_ARCH and IMGCRAFT_VARIANT as listed there, `imgcraft` in IMAGE_FSTYPES, and a
#    do_image_imgcraft task;
#  - build: for each MACHINE that platforms.txt gives a rootfs fixture, `bitbake -b imgcraft-test-container.bb -c
#    image_complete` (10 to 20 seconds) runs OE-core's image tasks for real (do_rootfs, overridden to unpack the
#    fixture; do_image; do_image_tar; do_image_imgcraft; do_image_complete) under Debian's pseudo, with rootfs2image
#    from the host (imgcraft-native needs a newer Rust than scarthgap has, and hours to build). The deployed archive
#    must inspect as that platform; OE-core's create_symlinks must have linked IMAGE_LINK_NAME.oci.tar and .oci like
#    its own .tar.zst; IMAGE_OUTPUT_MANIFEST must record both; and the layer must carry the fixture's device node,
#    uid 3000000, setuid bit and file capability, which on disk only pseudo's database holds.
# Safe to rerun: sources are unpacked again only when their branch moved, and each build starts from an empty TMPDIR.
#
# Usage: scripts/oe-core-check.sh [BRANCH...]        (default: scarthgap wrynose master)
#   IMGCRAFT_OE_CORE_GIT   git dir of openembedded-core (required; e.g. a bare mirror)
#   IMGCRAFT_BITBAKE_GIT   git dir of bitbake (required)
#   IMGCRAFT_OE_DIR        where sources and build dirs go (default /var/tmp/imgcraft-oe): <dir>/<branch>/
#   IMGCRAFT_OE_LAYER      the layer under test (default <repo>/meta-imgcraft)
#   IMGCRAFT_OE_MACHINES   space-separated subset of the machines in tests/oe-core/platforms.txt
#   IMGCRAFT_OE_CHECKS     which checks: "parse build" (default), "parse" or "build"
#   IMGCRAFT_OE_TOOLS      the directory holding rootfs2image, for the build (default <repo>/target/release)
#   IMGCRAFT_FIXTURES      the rootfs fixtures of scripts/make-fixtures.sh (default <repo>/target/fixtures)
#
# Exit status: 0 all checks passed, 1 a check failed, 2 the environment is not ready (sources, host tools, pseudo,
# rootfs2image or fixtures missing). Outputs stay in <dir>/<branch>/: build/env-<MACHINE>.txt (`bitbake -e`),
# build-image/build-<MACHINE>.log (the build) and build-image/tmp*/ (its work and deploy directories).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OE_DIR=${IMGCRAFT_OE_DIR:-/var/tmp/imgcraft-oe}
LAYER=${IMGCRAFT_OE_LAYER:-$REPO/meta-imgcraft}
TEST_LAYER=$REPO/tests/oe-core
PLATFORMS=$TEST_LAYER/platforms.txt
RECIPE=imgcraft-test-image
BUILD_RECIPE=$TEST_LAYER/recipes/imgcraft-test-container.bb
CHECKS=${IMGCRAFT_OE_CHECKS:-parse build}
TOOLS=${IMGCRAFT_OE_TOOLS:-$REPO/target/release}
FIXTURES=${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}

# Host commands OE-core's HOSTTOOLS (meta/conf/bitbake.conf) insists on that a Debian bookworm machine may lack,
# with the package that provides each; and pseudo, the build's fakeroot.
HOST_TOOLS=(chrpath:chrpath cpio:cpio diffstat:diffstat gawk:gawk file:file wget:wget rpcgen:libc-dev-bin
  lz4c:lz4 pzstd:zstd zstd:zstd xz:xz-utils bzip2:bzip2 patch:patch perl:perl make:make gcc:gcc g++:g++
  git:git hostname:hostname pseudo:pseudo)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$1" >&2; shift; for hint in "$@"; do printf 'hint: %s\n' "$hint" >&2; done; exit 2; }
wants() { case " $CHECKS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# The BitBake branch that parses an OE-core branch (shared/YOCTO.md; BB_MIN_VERSION in meta/conf/sanity.conf).
bitbake_branch_for() {
  case "$1" in
  master) echo master ;;
  wrynose) echo 2.18 ;;
  scarthgap) echo 2.8 ;;
  *) return 1 ;;
  esac
}

check_sources() {
  local var
  for var in IMGCRAFT_OE_CORE_GIT IMGCRAFT_BITBAKE_GIT; do
    [ -n "${!var:-}" ] || die "$var is not set: it names the git dir of $([ "$var" = IMGCRAFT_BITBAKE_GIT ] && echo bitbake || echo openembedded-core)" \
      "OE-core and BitBake are in no package registry and CI cannot clone them: point $var at a local mirror"
    git --git-dir="${!var}" rev-parse --git-dir >/dev/null 2>&1 || die "\`${!var}\` (from $var) is not a git dir"
  done
  [ -f "$LAYER/conf/layer.conf" ] || die "\`$LAYER/conf/layer.conf\` does not exist" \
    "set IMGCRAFT_OE_LAYER to the layer to check"
}

check_build_inputs() {
  [ -x "$TOOLS/rootfs2image" ] || die "\`$TOOLS/rootfs2image\` does not exist" \
    "run \`cargo build --release\`, or set IMGCRAFT_OE_TOOLS to the directory that holds rootfs2image" \
    "or check parsing only: IMGCRAFT_OE_CHECKS=parse"
  [ -f "$FIXTURES/rootfs-arm64.tar" ] || die "no rootfs fixtures in \`$FIXTURES\`" \
    "run scripts/make-fixtures.sh, or set IMGCRAFT_FIXTURES"
}

ensure_locale() {
  if ! locale -a 2>/dev/null | grep -qix 'en_US.utf8'; then
    say "generating the en_US.UTF-8 locale BitBake needs"
    [ -e /usr/sbin/locale-gen ] || apt_install locales
    grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
    /usr/sbin/locale-gen
  fi
}

APT_UPDATED=
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install $*" "install them by hand: apt-get install $*"
  if [ -z "$APT_UPDATED" ]; then
    # One stale index (a foreign architecture's, say) must not stop us: the lists already here may do.
    apt-get update -qq || say "apt-get update failed; trying the package lists already on this machine"
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_host_tools() {
  local pair missing=()
  for pair in "${HOST_TOOLS[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] || { mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u); apt_install "${missing[@]}"; }
  # Debian's multiarch directory of libpseudo.so, for FAKEROOTBASEENV.
  PSEUDO_LIBDIR=$(dirname "$(dpkg -L libpseudo | grep '/libpseudo\.so$' | head -n1)")
  [ -f "$PSEUDO_LIBDIR/libpseudo.so" ] || die "libpseudo.so not found" "apt-get install --reinstall libpseudo"
}

# unpack GITDIR BRANCH DEST [PATH...]: DEST holds BRANCH's tree (or PATHs of it), redone only when BRANCH moved.
unpack() {
  local gitdir=$1 branch=$2 dest=$3 commit
  shift 3
  commit=$(git --git-dir="$gitdir" rev-parse --verify -q "$branch^{commit}") ||
    die "\`$gitdir\` has no branch \`$branch\`"
  if [ "$(cat "$dest/.imgcraft-commit" 2>/dev/null)" = "$commit" ]; then
    say "$dest is at $branch ${commit:0:10}"
    return
  fi
  say "unpacking $branch ${commit:0:10} of $gitdir into $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  git --git-dir="$gitdir" archive "$commit" "$@" | tar -x -C "$dest"
  echo "$commit" >"$dest/.imgcraft-commit"
}

# write_file PATH: stdin to PATH, leaving PATH untouched when its content is the same (BitBake watches mtimes).
write_file() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# setup_build DIR CORE [LOCAL.CONF LINES]: a build directory with the configuration shared/YOCTO.md describes.
setup_build() {
  local build=$1 core=$2
  shift 2
  mkdir -p "$build/conf"
  {
    cat <<EOF
# Written by scripts/oe-core-check.sh (shared/YOCTO.md).
MACHINE ??= "qemux86-64"
DISTRO = "nodistro"
INHERIT:remove = "sanity"
TMPDIR = "\${TOPDIR}/tmp"
DL_DIR = "\${TOPDIR}/downloads"
SSTATE_DIR = "\${TOPDIR}/sstate-cache"
EOF
    [ $# -eq 0 ] || printf '%s\n' "$@"
  } | write_file "$build/conf/local.conf"
  write_file "$build/conf/bblayers.conf" <<EOF
# Written by scripts/oe-core-check.sh.
BBPATH = "\${TOPDIR}"
BBFILES ?= ""
BBLAYERS = " \\
    $core/meta \\
    $LAYER \\
    $TEST_LAYER \\
"
EOF
  write_file "$build/conf/sanity.conf" </dev/null
}

# The build directory's additions: real fakeroot tasks with Debian's pseudo in place of pseudo-native (OE-core's
# FAKEROOT* settings with its paths), and rootfs2image linked into TMPDIR/hosttools like OE-core's other host tools.
# That pseudo (2022) knows PSEUDO_IGNORE_PATHS but not the PSEUDO_INCLUDE_PATHS of wrynose and master: they get
# scarthgap's list, while scarthgap's bitbake.conf sets its own, which wins over ??=.
build_conf() {
  local canonical="\${@oe.path.canonicalize(d.getVar('PSEUDO_IGNORE_PATHS'))}"
  cat <<EOF
# The rootfs tarball of imgcraft-test-container, from the environment.
IMGCRAFT_TEST_ROOTFS ??= ""
# No download: an image task must build offline. So no uninative (no native tool is built here either), and no SPDX,
# whose rootfs document needs the package list that OE-core's own do_rootfs writes.
BB_NO_NETWORK = "1"
INHERIT_DISTRO:remove = "uninative create-spdx"
# rootfs2image from the host, as the layer's README tells scarthgap users: no imgcraft-native.
HOSTTOOLS += "rootfs2image"
IMGCRAFT_NATIVE_DEPENDS = ""
PSEUDO_IGNORE_PATHS ??= "/usr/,/etc/,/lib,/dev/,/run/,\${T},\${WORKDIR}/recipe-sysroot,\${SSTATE_DIR},\${STAMPS_DIR},\${TMPDIR}/sstate-control,\${TMPDIR}/buildstats,\${TMPDIR}/sysroots-components,\${TMPDIR}/pkgdata,\${WORKDIR}/deploy-,\${WORKDIR}/sstate-build-package_,\${WORKDIR}/sstate-install-package_,\${WORKDIR}/pkgdata-sysroot,\${DEPLOY_DIR},\${TOPDIR}/cache,\${COREBASE}/scripts"
FAKEROOTCMD = "/usr/bin/pseudo"
FAKEROOTBASEENV = "PSEUDO_BINDIR=/usr/bin PSEUDO_LIBDIR=$PSEUDO_LIBDIR PSEUDO_PREFIX=/usr PSEUDO_IGNORE_PATHS=$canonical PSEUDO_DISABLED=1 PYTHONDONTWRITEBYTECODE=1"
FAKEROOTENV = "PSEUDO_PREFIX=/usr PSEUDO_LOCALSTATEDIR=\${PSEUDO_LOCALSTATEDIR} PSEUDO_PASSWD=\${PSEUDO_PASSWD} PSEUDO_NOSYMLINKEXP=1 PSEUDO_IGNORE_PATHS=$canonical PSEUDO_DISABLED=0"
EOF
}

# var NAME FILE: the value `bitbake -e` printed for NAME; status 1 when it printed none.
var() {
  awk -v name="$1" '
    index($0, name "=\"") == 1 || index($0, "export " name "=\"") == 1 {
      v = substr($0, index($0, "=\"") + 2); sub(/"$/, "", v); print v; found = 1; exit
    }
    END { exit !found }' "$2"
}

# shell_function NAME FILE: the shell function NAME as `bitbake -e` printed it; status 1 when absent.
shell_function() {
  awk -v head="$1() {" '
    $0 == head { p = 1 }
    p { print }
    p && $0 == "}" { found = 1; exit }
    END { exit !found }' "$2"
}

PASSED=0
FAILED=0
declare -A BRANCH_PASSED BRANCH_FAILED
check() { # check DESCRIPTION CONDITION-STATUS
  local branch=${1%% *}
  if [ "$2" = 0 ]; then
    PASSED=$((PASSED + 1)); BRANCH_PASSED[$branch]=$((${BRANCH_PASSED[$branch]:-0} + 1))
  else
    FAILED=$((FAILED + 1)); BRANCH_FAILED[$branch]=$((${BRANCH_FAILED[$branch]:-0} + 1))
    printf 'FAIL: %s\n' "$1"
  fi
}
is() { [ "$1" = "$2" ]; echo $?; } # is GOT WANT: 0 when equal, for check

# bitbake_in BUILD BITBAKE MACHINE [ENV=VALUE...] -- ARGS...: runs BitBake there, for MACHINE, with those variables.
bitbake_in() {
  local build=$1 bitbake=$2 machine=$3 pass=MACHINE
  shift 3
  local assignments=(LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 "MACHINE=$machine")
  while [ "$1" != -- ]; do assignments+=("$1"); pass+=" ${1%%=*}"; shift; done
  shift
  (cd "$build" && env "${assignments[@]}" BB_ENV_PASSTHROUGH_ADDITIONS="$pass" "$bitbake/bin/bitbake" "$@" </dev/null)
}

check_machine() {
  local branch=$1 build=$2 bitbake=$3 machine=$4 want_arch=$5 want_variant=$6
  local env=$build/env-$machine.txt log=$build/env-$machine.log start status arch variant fstypes body fn
  say "$branch $machine: bitbake -e $RECIPE"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" "$machine" -- -e "$RECIPE" >"$env" 2>"$log" || status=$?
  printf '    took %ds (exit %d); full output in %s\n' $((SECONDS - start)) "$status" "$env"
  if [ "$status" != 0 ]; then
    check "$branch $machine: bitbake -e failed" 1
    grep -h -E '^(ERROR|FATAL)|Error:' "$env" "$log" | head -20 | sed 's/^/    /'
    return
  fi

  arch=$(var IMGCRAFT_ARCH "$env") || arch="(unset)"
  variant=$(var IMGCRAFT_VARIANT "$env") || variant=""
  fstypes=$(var IMAGE_FSTYPES "$env") || fstypes="(unset)"
  printf '    IMGCRAFT_ARCH="%s"\n    IMGCRAFT_VARIANT="%s"\n    IMAGE_FSTYPES="%s"\n' "$arch" "$variant" "$fstypes"
  for fn in TARGET_ARCH TUNE_FEATURES TUNE_PKGARCH MACHINEOVERRIDES PACKAGE_EXTRA_ARCHS; do
    printf '    (%s="%s")\n' "$fn" "$(var "$fn" "$env" || true)"
  done

  check "$branch $machine: IMGCRAFT_ARCH is \"$arch\", want \"$want_arch\"" "$(is "$arch" "$want_arch")"
  check "$branch $machine: IMGCRAFT_VARIANT is \"$variant\", want \"$want_variant\"" "$(is "$variant" "$want_variant")"
  check "$branch $machine: imgcraft is not in IMAGE_FSTYPES" "$(case " $fstypes " in *" imgcraft "*) echo 0 ;; *) echo 1 ;; esac)"

  if body=$(shell_function do_image_imgcraft "$env"); then
    check "$branch $machine: do_image_imgcraft() present" 0
    printf '%s\n' "$body" | sed 's/^/    /'
    # The shell functions the task body calls, one level down, so the command that runs is visible too.
    for fn in $(printf '%s\n' "$body" | sed '1d;$d' | awk '{ print $1 }' | sort -u); do
      shell_function "$fn" "$env" 2>/dev/null | sed 's/^/    /' || true
    done
  else
    check "$branch $machine: no do_image_imgcraft() in bitbake -e output" 1
  fi
}

# image_facts DEPLOY_DIR LINK_NAME MANIFEST: what the build left, one `name value` line each: the files the links
# point at, what IMAGE_OUTPUT_MANIFEST records for do_image_imgcraft, and the layer's entries that only pseudo knows.
image_facts() {
  python3 - "$@" <<'EOF'
import json, os, sys, tarfile
deploy, link_name, manifest = sys.argv[1:]
for suffix in ("tar.zst", "oci.tar", "oci"):
    link = os.path.join(deploy, link_name + "." + suffix)
    target = os.readlink(link) if os.path.islink(link) else "(no symlink)"
    exists = os.path.exists(os.path.join(deploy, target))
    print("link.%s %s%s" % (suffix, target, "" if exists else " (missing)"))
try:
    with open(manifest) as f:
        tasks = {t["taskname"]: [i["filename"] for i in t["images"]] for t in json.load(f)}
    print("recorded %s" % " ".join(tasks.get("image_imgcraft", ["(none)"])))
except OSError as e:
    print("recorded (%s)" % e)
layout = os.path.join(deploy, link_name + ".oci")
def blob(digest):
    return os.path.join(layout, "blobs", *digest.split(":"))
try:
    with open(os.path.join(layout, "index.json")) as f:
        with open(blob(json.load(f)["manifests"][0]["digest"])) as m:
            layers = json.load(m)["layers"]
except OSError as e:
    sys.exit(print("layer (%s)" % e))
wanted = {"dev/null-test", "usr/share/owners/huge-id", "usr/bin/suid-tool", "usr/bin/ping-cap"}
for layer in layers:
    with tarfile.open(blob(layer["digest"])) as t:
        for e in t:
            name = e.name[2:] if e.name.startswith("./") else e.name
            if name in wanted:
                caps = "cap" if "SCHILY.xattr.security.capability" in e.pax_headers else "nocap"
                kind = "char" if e.ischr() else "file" if e.isreg() else "other"
                print("entry.%s %s %d,%d %d:%d %o %s"
                      % (name, kind, e.devmajor, e.devminor, e.uid, e.gid, e.mode, caps))
EOF
}

# fact NAME: the value of NAME in the image_facts of the calling build_machine.
fact() { printf '%s\n' "$facts" | awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }'; }

build_machine() {
  local branch=$1 build=$2 bitbake=$3 machine=$4 want_arch=$5 want_variant=$6 rootfs=$FIXTURES/$7
  local log=$build/build-$machine.log env=$build/env-$machine.txt start status deploy link_name manifest facts
  local image got
  say "$branch $machine: bitbake -b $(basename "$BUILD_RECIPE") -c image_complete, from $rootfs"
  # No stamp, work or deploy directory of an earlier run may stand in for this one.
  rm -rf "$build/tmp" "$build/tmp-glibc"
  start=$SECONDS
  status=0
  PATH="$TOOLS:$PATH" bitbake_in "$build" "$bitbake" "$machine" "IMGCRAFT_TEST_ROOTFS=$rootfs" -- \
    -b "$BUILD_RECIPE" -c image_complete >"$log" 2>&1 || status=$?
  printf '    took %ds (exit %d); full output in %s\n' $((SECONDS - start)) "$status" "$log"
  check "$branch $machine: bitbake -b $(basename "$BUILD_RECIPE") -c image_complete exit $status" "$status"
  if [ "$status" != 0 ]; then
    grep -E '^(ERROR|FATAL)|^ \| ' "$log" | tail -30 | sed 's/^/    /'
    return
  fi
  bitbake_in "$build" "$bitbake" "$machine" "IMGCRAFT_TEST_ROOTFS=$rootfs" -- -e -b "$BUILD_RECIPE" >"$env" 2>&1 ||
    { check "$branch $machine: bitbake -e -b failed, see $env" 1; return; }
  deploy=$(var DEPLOY_DIR_IMAGE "$env")
  link_name=$(var IMAGE_LINK_NAME "$env")
  manifest=$(var IMAGE_OUTPUT_MANIFEST "$env")
  facts=$(image_facts "$deploy" "$link_name" "$manifest")
  printf '%s\n' "$facts" | sed 's/^/    /'

  # OE-core's create_symlinks links IMAGE_LINK_NAME.<subimage> to IMAGE_NAME.<subimage>; its tar.zst gives IMAGE_NAME.
  image=$(fact link.tar.zst)
  image=${image%.tar.zst}
  check "$branch $machine: $link_name.tar.zst links to \"$image.tar.zst\"" \
    "$(case "$image" in "$link_name"-*) echo 0 ;; *) echo 1 ;; esac)"
  check "$branch $machine: $link_name.oci.tar links to \"$(fact link.oci.tar)\"" \
    "$(is "$(fact link.oci.tar)" "$image.oci.tar")"
  check "$branch $machine: $link_name.oci links to \"$(fact link.oci)\"" "$(is "$(fact link.oci)" "$image.oci")"
  check "$branch $machine: IMAGE_OUTPUT_MANIFEST records \"$(fact recorded)\" for image_imgcraft" \
    "$(is "$(fact recorded)" "$image.oci.tar $image.oci")"
  if grep -q 'Skipping symlink' "$build"/tmp*/work/*/imgcraft-test-container/*/temp/log.do_image_imgcraft; then
    check "$branch $machine: create_symlinks skipped a symlink in do_image_imgcraft" 1
  fi

  got=$("$TOOLS/rootfs2image" inspect --json "oci-archive:$deploy/$link_name.oci.tar" |
    python3 -c 'import json, sys; i = json.load(sys.stdin); print(i["architecture"], i.get("variant") or "-", i["verified"])') ||
    got="(inspect failed)"
  printf '    rootfs2image inspect: %s\n' "$got"
  check "$branch $machine: rootfs2image inspect gives \"$got\", want \"$want_arch ${want_variant:--} True\"" \
    "$(is "$got" "$want_arch ${want_variant:--} True")"

  # The fixture's entries as pseudo recorded them: on disk they are plain files of the building user.
  check "$branch $machine: dev/null-test is \"$(fact entry.dev/null-test)\"" \
    "$(is "$(fact entry.dev/null-test)" "char 1,3 0:0 666 nocap")"
  check "$branch $machine: usr/share/owners/huge-id is \"$(fact entry.usr/share/owners/huge-id)\"" \
    "$(is "$(fact entry.usr/share/owners/huge-id)" "file 0,0 3000000:3000000 644 nocap")"
  check "$branch $machine: usr/bin/suid-tool is \"$(fact entry.usr/bin/suid-tool)\"" \
    "$(is "$(fact entry.usr/bin/suid-tool)" "file 0,0 0:0 4755 nocap")"
  check "$branch $machine: usr/bin/ping-cap is \"$(fact entry.usr/bin/ping-cap)\"" \
    "$(is "$(fact entry.usr/bin/ping-cap)" "file 0,0 0:0 755 cap")"
}

# each_machine FUNCTION BRANCH BUILD BITBAKE: FUNCTION for each selected machine of platforms.txt, with its columns.
each_machine() {
  local fn=$1 machine want_arch want_variant rootfs
  shift
  while read -r machine want_arch want_variant rootfs; do
    case "$machine" in '' | '#'*) continue ;; esac
    if [ -n "${IMGCRAFT_OE_MACHINES:-}" ]; then
      case " $IMGCRAFT_OE_MACHINES " in *" $machine "*) ;; *) continue ;; esac
    fi
    [ "$want_variant" = - ] && want_variant=""
    "$fn" "$@" "$machine" "$want_arch" "$want_variant" "$rootfs"
  done <"$PLATFORMS"
}

build_if_fixture() { # build_machine, for the machines platforms.txt gives a rootfs
  [ "${*: -1}" = - ] || build_machine "$@"
}

check_branch() {
  local branch=$1 bb_branch root
  bb_branch=$(bitbake_branch_for "$branch") || die "no known BitBake for OE-core branch \`$branch\`" \
    "known: master (bitbake master), wrynose (2.18), scarthgap (2.8)"
  root=$OE_DIR/$branch
  unpack "$IMGCRAFT_OE_CORE_GIT" "$branch" "$root/openembedded-core" meta scripts
  unpack "$IMGCRAFT_BITBAKE_GIT" "$bb_branch" "$root/bitbake"
  if wants parse; then
    setup_build "$root/build" "$root/openembedded-core"
    each_machine check_machine "$branch" "$root/build" "$root/bitbake"
  fi
  if wants build; then
    # A build directory of its own: the parse checks keep their cache, and `bitbake -b` parses one recipe only.
    local conf
    mapfile -t conf < <(build_conf)
    setup_build "$root/build-image" "$root/openembedded-core" "${conf[@]}"
    each_machine build_if_fixture "$branch" "$root/build-image" "$root/bitbake"
  fi
}

main() {
  [ $# -gt 0 ] || set -- scarthgap wrynose master
  check_sources
  ensure_locale
  ensure_host_tools
  wants build && check_build_inputs
  say "layer under test: $LAYER; checks: $CHECKS"
  local branch
  for branch in "$@"; do check_branch "$branch"; done
  for branch in "$@"; do
    printf '%s: %d passed, %d failed\n' "$branch" "${BRANCH_PASSED[$branch]:-0}" "${BRANCH_FAILED[$branch]:-0}"
  done
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" = 0 ]
}

main "$@"
