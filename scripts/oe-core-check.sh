#!/usr/bin/env bash
# Check meta-imgcraft with a real BitBake on a real OE-core (issue 11), for each OE-core branch. Run by hand: CI has
# no OE-core. Every check prints the seconds it took; the run ends with those figures and `N passed, M failed`.
#
#  parse (tests/oe-core/check/parse.sh), all branches, build dir <dir>/<branch>/build:
#   - for each MACHINE of tests/oe-core/platforms.txt, `bitbake -e imgcraft-test-image` (1 to 5 minutes per MACHINE
#     when BitBake's cache is cold, seconds when warm) gives IMGCRAFT_ARCH and IMGCRAFT_VARIANT as listed there,
#     `imgcraft` in IMAGE_FSTYPES and a do_image_imgcraft task; for a MACHINE listed "skip" (qemuppc: 32-bit powerpc,
#     which no container engine knows) the image recipe is skipped with the class's "imgcraft: TARGET_ARCH" reason
#     while the parse goes on: `bitbake -e imgcraft-native` for that MACHINE still succeeds;
#   - `bitbake -e imgcraft-native` is not skipped (every branch's RUSTVERSION is 1.75 or newer), and with
#     RUSTVERSION = "1.70%" (tests/oe-core/conf/rust-1.70.conf) it is skipped with a reason naming the fix.
#  native (tests/oe-core/check/native.sh), branches of IMGCRAFT_OE_NATIVE_BRANCHES, against a read-only copy of the
#  checkout that holds the layer (<dir>/<branch>/checkout, bind-mounted read-only at checkout-ro):
#   - `bitbake imgcraft-native` (the whole task graph; its sstate removed first, so the crate compiles every run, a
#     few minutes on 2 cores) builds rootfs2image with OE-core's cargo class from crates BitBake's crate fetcher takes
#     from crates.io, and the built rootfs2image runs;
#   - a second build directory sharing SSTATE_DIR and DL_DIR takes imgcraft-native from sstate: no do_compile;
#   - the copy, .git included, lists the same (path, size, mtime, mode) before and after all builds;
#   - do_compile's signature (`bitbake -S none`) stays when the copy's README.md changes and changes when a src/ file
#     does (bitbake-diffsigs shows why).
#  image (tests/oe-core/check/image.sh), for each MACHINE that platforms.txt gives a rootfs fixture:
#   - `bitbake imgcraft-test-container` (the real task graph, no -b) runs OE-core's image tasks (do_rootfs overridden
#     to unpack the fixture, because no target package can be built without upstream sources; do_image, do_image_tar,
#     do_image_imgcraft, do_image_complete) under Debian's pseudo. Where the native check runs, rootfs2image is
#     imgcraft-native from that check's sstate (its do_compile must not run); elsewhere it is the host's
#     (HOSTTOOLS += "rootfs2image", IMGCRAFT_NATIVE_DEPENDS = "", as the layer's README tells users without the Rust).
#     The archive must inspect as that platform; OE-core's create_symlinks must have linked IMAGE_LINK_NAME.oci.tar
#     and .oci like its own .tar.zst; IMAGE_OUTPUT_MANIFEST must record both; the layer must carry the fixture's
#     device node, uid 3000000, setuid bit and file capability, which on disk only pseudo's database holds.
#  rootfs (tests/oe-core/check/rootfs.sh), only when IMGCRAFT_OE_CHECKS names it, build dir <dir>/<branch>/build-rootfs:
#   - `bitbake imgcraft-rootfs-image` (the real task graph, no -b) builds the three allarch packages of
#     tests/oe-core/rootfs-layer (a script in /usr/bin, a data file, a configuration file) as ipk, with OE-core's
#     pkgdata and create-spdx, and OE-core's own do_rootfs installs them with opkg; the image inherits imgcraft with the
#     default IMGCRAFT_LAYERS = "packages". rootfs2image is the host's (IMGCRAFT_OE_TOOLS; HOSTTOOLS += "rootfs2image",
#     IMGCRAFT_NATIVE_DEPENDS = ""), not imgcraft-native. opkg is built once from IMGCRAFT_OPKG_GIT into
#     <dir>/host-opkg (Debian's build dependencies installed by apt), opkg-utils' scripts come from
#     IMGCRAFT_OPKG_UTILS_GIT, and that bin directory goes first on PATH (HOSTTOOLS links them); the other native tools
#     are host stand-ins (ROOTFS_PROVIDED in rootfs.sh, the pseudo-host-native recipe for virtual/fakeroot-native);
#   - IMAGE_MANIFEST and pkgdata list each package; the .oci.tar inspects verified as linux/amd64; each package's
#     files sit in exactly one layer, the one whose packages annotation names it (`rootfs2image diff --json`);
#     Docker loads the image and runs /usr/bin/imgcraft-hello (through the host's static busybox: the image has no
#     shell);
#   - with one package changed (the greeting file imgcraft-rootfs-hello reads from IMGCRAFT_ROOTFS_INPUT) the rebuild
#     keeps every other package's layer digest and makes one new layer for that package.
#
# Stand-ins (ASSUME_PROVIDED: BitBake takes the recipe as built and tasks use what the host has), because no upstream
# source of an OE-core recipe can be fetched here (only crates.io is reachable) and rust-native takes hours to build:
#   rust-native, cargo-native   the host's Rust toolchain (IMGCRAFT_OE_RUST_BIN, default 1.95), first on PATH and
#                               linked into TMPDIR/hosttools (HOSTTOOLS += "cargo rustc"); a native recipe builds for
#                               x86_64-unknown-linux-gnu (rust-common's triple when the vendor is empty), a target the
#                               host's std exists for
#   python3-native              the host's python3 (rust-common inherits python3native; only the rustc wrappers run it)
#   quilt-native, patch-replacement-native
#                               nothing is patched (do_patch depends on them regardless)
#   pseudo-native, virtual/fakeroot-native
#                               Debian's pseudo: FAKEROOTCMD and its environment point at it (do_install, do_rootfs,
#                               do_image*)
#   opkg-native, opkg-utils-native, virtual/update-alternatives-native, update-rc.d-native, makedevs-native,
#   depmodwrapper-cross, cross-localedef-native
#                               what OE-core's do_rootfs runs; the test image's do_rootfs unpacks a fixture instead
#   tar-replacement-native, zstd-native
#                               the host's tar and zstd, for do_image_tar's tar.zst
# The test image also wants no package, locale, kernel or QEMU (tests/oe-core/recipes/imgcraft-test-container.bb), and
# the builds use no uninative (nodistro has none) and no create-spdx (its rootfs document needs the package list that
# OE-core's own do_rootfs writes).
#
# Safe to rerun: sources are unpacked again only when their branch moved; DL_DIR and SSTATE_DIR are shared per branch
# (<dir>/<branch>/downloads, sstate-cache); each build starts from an empty TMPDIR; parse caches stay.
#
# Usage: scripts/oe-core-check.sh [BRANCH...]        (default: scarthgap whinlatter wrynose master)
#   IMGCRAFT_OE_CORE_GIT   git dir of openembedded-core (required; e.g. a bare mirror)
#   IMGCRAFT_BITBAKE_GIT   git dir of bitbake (required)
#   IMGCRAFT_OE_DIR        where sources and build dirs go (default /var/tmp/imgcraft-oe): <dir>/<branch>/
#   IMGCRAFT_OE_LAYER      the layer under test (default <repo>/meta-imgcraft), inside a git checkout
#   IMGCRAFT_OE_MACHINES   space-separated subset of the machines in tests/oe-core/platforms.txt
#   IMGCRAFT_OE_CHECKS     which checks: "parse native image" (default), or any of them, and "rootfs"
#   IMGCRAFT_OPKG_GIT      git dir of opkg (the rootfs check; e.g. a mirror of moto-timo/opkg)
#   IMGCRAFT_OPKG_UTILS_GIT  git dir of opkg-utils (the rootfs check)
#   IMGCRAFT_OE_NATIVE_BRANCHES  branches that build imgcraft-native (default "wrynose master"); the others build
#                          images with the host's rootfs2image
#   IMGCRAFT_OE_RUST_BIN   the host Rust toolchain's bin directory (default ~/.rustup/toolchains/1.95.0-<host>/bin)
#   IMGCRAFT_OE_TOOLS      the directory holding the host's rootfs2image (default <repo>/target/release)
#   IMGCRAFT_FIXTURES      the rootfs fixtures of scripts/make-fixtures.sh (default <repo>/target/fixtures)
#
# Exit status: 0 all checks passed, 1 a check failed, 2 the environment is not ready (sources, host tools, pseudo,
# Rust, rootfs2image, fixtures or a read-only bind mount missing). Outputs stay in <dir>/<branch>/: build/env-*.txt
# (`bitbake -e`), build/native-*.log and build-sstate/native-build.log (the native builds), build/build-<MACHINE>.log
# (the image builds), checkout-{before,after}.txt (the listings).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OE_DIR=${IMGCRAFT_OE_DIR:-/var/tmp/imgcraft-oe}
LAYER=${IMGCRAFT_OE_LAYER:-$REPO/meta-imgcraft}
TEST_LAYER=$REPO/tests/oe-core
PLATFORMS=$TEST_LAYER/platforms.txt
CHECKS=${IMGCRAFT_OE_CHECKS:-parse native image}
NATIVE_BRANCHES=${IMGCRAFT_OE_NATIVE_BRANCHES:-wrynose master}
RUST_BIN=${IMGCRAFT_OE_RUST_BIN:-$HOME/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin}
TOOLS=${IMGCRAFT_OE_TOOLS:-$REPO/target/release}
FIXTURES=${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$1" >&2; shift; for hint in "$@"; do printf 'hint: %s\n' "$hint" >&2; done; exit 2; }
wants() { case " $CHECKS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
in_list() { case " $2 " in *" $1 "*) return 0 ;; *) return 1 ;; esac; } # in_list WORD LIST

PASSED=0
FAILED=0
declare -A BRANCH_PASSED BRANCH_FAILED
check() { # check DESCRIPTION CONDITION-STATUS; DESCRIPTION starts with the branch
  local branch=${1%% *}
  branch=${branch%:}
  if [ "$2" = 0 ]; then
    PASSED=$((PASSED + 1)); BRANCH_PASSED[$branch]=$((${BRANCH_PASSED[$branch]:-0} + 1))
  else
    FAILED=$((FAILED + 1)); BRANCH_FAILED[$branch]=$((${BRANCH_FAILED[$branch]:-0} + 1))
    printf 'FAIL: %s\n' "$1"
  fi
}
is() { [ "$1" = "$2" ]; echo $?; } # is GOT WANT: 0 when equal, for check
has() { case "$1" in *"$2"*) echo 0 ;; *) echo 1 ;; esac; } # has TEXT PART: 0 when TEXT holds PART, for check

# The seconds each check took, quoted again at the end.
FIGURES=()
took() { # took WHAT START STATUS [LOG]
  local seconds=$((SECONDS - $2))
  printf '    took %ds (exit %d)%s\n' "$seconds" "$3" "${4:+; full output in $4}"
  FIGURES+=("$(printf '%-58s %5ds' "$1" "$seconds")")
}

# shellcheck source=tests/oe-core/check/env.sh
. "$TEST_LAYER/check/env.sh"
# shellcheck source=tests/oe-core/check/parse.sh
. "$TEST_LAYER/check/parse.sh"
# shellcheck source=tests/oe-core/check/native.sh
. "$TEST_LAYER/check/native.sh"
# shellcheck source=tests/oe-core/check/image.sh
. "$TEST_LAYER/check/image.sh"
# shellcheck source=tests/oe-core/check/rootfs.sh
. "$TEST_LAYER/check/rootfs.sh"

# The local.conf lines of a branch's build directories. The parse, native and image checks share <branch>/build, and
# so BitBake's parse cache of each MACHINE. NATIVE: the branch builds imgcraft-native.
branch_conf() {
  # shellcheck disable=SC2086 # the stand-in lists are split into words on purpose, onto one line
  printf '%s\n' \
    '# The rootfs tarball of imgcraft-test-container, from the environment.' 'IMGCRAFT_TEST_ROOTFS ??= ""' \
    '# No uninative (nothing to fetch it from), no SPDX (its rootfs document needs the package list of a real do_rootfs).' \
    'INHERIT_DISTRO:remove = "uninative create-spdx"' \
    '# Stand-ins for recipes that need upstream sources (see scripts/oe-core-check.sh).' \
    "ASSUME_PROVIDED += \"$(printf '%s ' $NATIVE_PROVIDED $IMAGE_PROVIDED)\""
  if [ -n "$1" ]; then
    printf '%s\n' '# do_fetch takes the crates from crates.io; BitBake cuts every other task off the network.' \
      'BB_NO_NETWORK = "0"' 'HOSTTOOLS += "cargo rustc"'
  else
    printf '%s\n' 'BB_NO_NETWORK = "1"' \
      '# rootfs2image from the host, as the layer'"'"'s README tells users whose Rust is too old: no imgcraft-native.' \
      'HOSTTOOLS += "rootfs2image"' 'IMGCRAFT_NATIVE_DEPENDS = ""'
  fi
  fakeroot_conf
}

check_branch() {
  local branch=$1 bb_branch root native='' conf
  bb_branch=$(bitbake_branch_for "$branch") || die "no known BitBake for OE-core branch \`$branch\`" \
    "known: master (bitbake master), wrynose (2.18), whinlatter (2.16), scarthgap (2.8)"
  root=$OE_DIR/$branch
  unpack "$IMGCRAFT_OE_CORE_GIT" "$branch" "$root/openembedded-core" meta scripts
  unpack "$IMGCRAFT_BITBAKE_GIT" "$bb_branch" "$root/bitbake"
  in_list "$branch" "$NATIVE_BRANCHES" && native=1
  mount_checkout "$root"
  mapfile -t conf < <(branch_conf "$native")
  setup_build "$root/build" "$root/openembedded-core" "$CHECKOUT_LAYER $TEST_LAYER" "${conf[@]}"
  fresh_tmp "$root/build"
  wants parse && parse_checks "$branch" "$root"
  if wants native && [ -n "$native" ]; then
    native_checks "$branch" "$root" "${conf[@]}"
  elif wants native; then
    say "$branch: no native check (not in IMGCRAFT_OE_NATIVE_BRANCHES=\"$NATIVE_BRANCHES\"): images use the host's rootfs2image"
  fi
  wants image && image_checks "$branch" "$root" "$native"
  wants rootfs && rootfs_checks "$branch" "$root"
  checkout_unchanged "$branch" "$root"
  if wants native && [ -n "$native" ]; then signature_checks "$branch" "$root"; fi
  unmount_checkout "$root"
}

main() {
  [ $# -gt 0 ] || set -- scarthgap whinlatter wrynose master
  check_sources
  ensure_locale
  ensure_host_tools
  wants native && check_native_inputs
  wants image && check_image_inputs "$@"
  if wants rootfs; then check_rootfs_inputs; build_host_opkg; fi
  say "layer under test: $LAYER; checks: $CHECKS; imgcraft-native built on: $NATIVE_BRANCHES"
  local branch figure
  for branch in "$@"; do check_branch "$branch"; done
  say "figures"
  for figure in "${FIGURES[@]}"; do printf '    %s\n' "$figure"; done
  for branch in "$@"; do
    printf '%s: %d passed, %d failed\n' "$branch" "${BRANCH_PASSED[$branch]:-0}" "${BRANCH_FAILED[$branch]:-0}"
  done
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" = 0 ]
}

main "$@"
