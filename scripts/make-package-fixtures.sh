#!/usr/bin/env bash
# Build the package-ownership fixtures of issue 6 (layered images) from real Debian bookworm
# amd64 .debs, byte for byte the same on every run.
#
# Usage: scripts/make-package-fixtures.sh [OUTDIR]   (as root; default $IMGCRAFT_FIXTURES/packages,
#                                                     IMGCRAFT_FIXTURES defaulting to <repo>/target/fixtures)
# The work is done by scripts/package_fixtures.py; this script fetches the .debs (cached in OUTDIR/debs)
# and skips everything while OUTDIR/stamp matches both scripts and the cached .debs.
#
# Packages. v1: busybox-static (the shell), libc6 (Multi-Arch: same, so libc6:amd64.list; Depends on
# libgcc-s1, which Depends on it back: a cycle), libgcc-s1 (its usr/share/doc/libgcc-s1 is a symlink to
# a directory of gcc-12-base), gcc-12-base, hello (runs on libc6), netbase (conffiles), tzdata (about
# 1300 entries), gzip (Essential, Pre-Depends, a hardlink). zlib1g is the added package, hello the
# removed one, bzip2 a package Yocto built but no image installs (pkgdata only).
#
# Layout of OUTDIR (every TREE also as TREE.tar, made with Yocto's tar flags, and TREE.owners.tsv:
# `path<TAB>package` for every non-directory a package owns, no leading slash, sorted):
#   dpkg/{v1,changed,added,removed}   var/lib/dpkg: status, info/<pkg>[:amd64].{list,md5sums,conffiles,...}
#   opkg/{v1,changed,added,removed}   var/lib/opkg: status, info/<pkg>.{list,control,...} (opkg 0.9 formats)
#   opkg/usr-lib-v1                   v1 with the opkg database in usr/lib/opkg
#   yocto/VARIANT/rootfs              no package database
#   yocto/VARIANT/pkgdata/            PKGDATA_DIR: runtime/, runtime-reverse/, runtime-rprovides/, extended/, <PN>
#   yocto/VARIANT/image.manifest      IMAGE_MANIFEST: `name arch version`, the installed packages
#   base/rootfs, base/derived         for --base: busybox-static + libc6; base/CHANGES.txt lists each difference
#   debs/  SHA256SUMS  stamp
# Variants: changed = v1 with a line appended to netbase's etc/protocols (dpkg and opkg databases as in
# v1; in pkgdata netbase is rebuilt: PR r1, new size); added = v1 + zlib1g; removed = v1 - hello.
# Times: every path of v1 (and of base/rootfs) has mtime 1700000000; in the other variants what the build
# wrote anew (new or rewritten entries, directories whose entries changed) has 1700086400.
# Formats, as checked against the sources: the dpkg database is byte for byte what dpkg 1.21 writes;
# opkg's .list lines are `/path<TAB>0<st_mode in octal>[<TAB>symlink target]`, directories included,
# in opkg's hash order (libopkg/pkg.c pkg_write_filelist_helper); pkgdata follows OE-core's emit_pkgdata,
# whose FILES_INFO leaves out symlinks to directories (tzdata's usr/share/zoneinfo/posix/*): the yocto
# owners.tsv files therefore lack those paths while the dpkg and opkg ones have them.
set -euo pipefail

case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$REPO/scripts/package_fixtures.py
OUTDIR=${1:-${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}/packages}
mkdir -p "$OUTDIR/debs"
OUTDIR=$(cd "$OUTDIR" && pwd)
GENERATED=(dpkg opkg yocto base SHA256SUMS)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_tools() {
  [[ $EUID -eq 0 ]] || die "run as root: the trees hold files of other owners and dpkg-deb must keep them"
  [[ $(dpkg --print-architecture) == amd64 ]] || die "the package fixtures are amd64 and need an amd64 host (ldconfig -r, chroot checks)"
  command -v python3 >/dev/null || die "python3 is missing: apt-get install python3"
  local t missing=()
  for t in apt-get dpkg-deb tar zstd ldconfig chroot; do command -v "$t" >/dev/null || missing+=("$t"); done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: scripts/make-fixtures.sh installs them"
}

fetch_debs() { # every package the helper names, once, into OUTDIR/debs
  local want=() name
  mapfile -t PACKAGES < <(python3 "$PY" --packages)
  for name in "${PACKAGES[@]}"; do
    compgen -G "$OUTDIR/debs/${name}_*.deb" >/dev/null || want+=("$name")
  done
  ((${#want[@]} == 0)) && return
  say "apt-get download ${want[*]} (into $OUTDIR/debs)"
  # Sandbox user root: _apt may not be able to write into OUTDIR.
  if ! (cd "$OUTDIR/debs" && apt-get -qq -o APT::Sandbox::User=root download "${want[@]}"); then
    say "apt-get update, then one more try"
    apt-get -qq -o DPkg::Lock::Timeout=600 update || say "warning: apt-get update reported errors (above); going on"
    (cd "$OUTDIR/debs" && apt-get -qq -o APT::Sandbox::User=root download "${want[@]}") ||
      die "apt-get download ${want[*]} failed"
  fi
}

outputs_present() {
  local f
  for f in "${GENERATED[@]}"; do [[ -e $OUTDIR/$f ]] || return 1; done
}

stamp_value() { # both scripts and the .debs they were built from
  { sha256sum "${BASH_SOURCE[0]}" "$PY" | cut -d' ' -f1; (cd "$OUTDIR/debs" && ls -1 -- *.deb); } | sha256sum | cut -d' ' -f1
}

T0=$SECONDS
need_tools
fetch_debs
STAMP=$(stamp_value)
if [[ "$(cat "$OUTDIR/stamp" 2>/dev/null)" == "$STAMP" ]] && outputs_present; then
  say "package fixtures in $OUTDIR are up to date (stamp matches)"
else
  rm -f "$OUTDIR/stamp"
  rm -rf "${GENERATED[@]/#/$OUTDIR/}" "$OUTDIR/.work"
  say "building package fixtures in $OUTDIR"
  python3 "$PY" --debs "$OUTDIR/debs" --out "$OUTDIR"
  (cd "$OUTDIR" && find dpkg opkg yocto base -name '*.tar' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
  printf '%s\n' "$STAMP" >"$OUTDIR/stamp"
fi
say "package fixtures ready in $OUTDIR: $(du -sh --exclude=debs "$OUTDIR" | cut -f1) ($((SECONDS - T0))s)"
