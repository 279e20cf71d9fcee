#!/usr/bin/env bash
# Build small but nasty rootfs fixtures for imgcraft's tests, byte for byte the
# same on every run (fixed mtimes, sorted tar, no names or timestamps in gzip).
#
# Usage: scripts/make-fixtures.sh [OUTDIR]     (as root; default <repo>/target/fixtures)
#
# For ARCH in amd64 arm64 armhf (armhf: 32-bit ARM hard-float, OCI arm/v7) it writes
#   OUTDIR/rootfs-ARCH/       the tree (busybox-static from Debian's .deb, cached in OUTDIR/debs)
#   OUTDIR/rootfs-ARCH.tar    a Yocto-style tarball: tar --xattrs --format=posix --sort=name
#   OUTDIR/rootfs-ARCH.list   `tar -tvv` of it (with xattr names), for humans
# and the same tar compressed: rootfs-amd64.tar.{gz,xz,zst,bz2}, rootfs-arm64.tar.zst and
# rootfs-armhf.tar.zst.
# The .gz is two gzip members and the .xz two xz streams (one per half of the tar), the
# .bz2 comes from pbzip2 (one stream per block): decoders must read past the first end.
#
# Dates, for the tests: most entries have mtime 1700000000; usr/share/old-file has
# 1600000000 and usr/share/future-file 2000000000, later than the SOURCE_DATE_EPOCH of
# 1800000000 that the tests clamp with.
# Reruns are skipped while OUTDIR/stamp holds this script's hash.
set -euo pipefail

# setcap, getcap, dockerd and dpkg's helpers live in sbin, which a non-login PATH (CI) may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-$REPO/target/fixtures}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
SELF_HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
ARCHES=(amd64 arm64 armhf)
# Foreign architectures: the binfmt_misc handler that runs their busybox, and its `uname -m`.
declare -A QEMU=([arm64]=qemu-aarch64 [armhf]=qemu-arm)
declare -A UNAME_M=([arm64]=aarch64 [armhf]=armv7l)
T_MOST=1700000000
T_OLD=1600000000
T_FUTURE=2000000000

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- build --------------------------------------------------------------------

# The Debian package of each tool these scripts run: a fresh machine gets them from apt-get, so that the README's
# first command (scripts/example.sh) works before scripts/setup-test-env.sh has ever run.
declare -A TOOL_PACKAGE=([dpkg-deb]=dpkg [tar]=tar [gzip]=gzip [xz]=xz-utils [zstd]=zstd [pbzip2]=pbzip2
  [bzip2]=bzip2 [openssl]=openssl [setcap]=libcap2-bin [getcap]=libcap2-bin [setfattr]=attr [getfattr]=attr
  [mknod]=coreutils [python3]=python3 [ldconfig]=libc-bin [chroot]=coreutils)

need_tools() {
  [[ $EUID -eq 0 ]] || die "run as root: the fixtures hold devices, foreign owners and file capabilities"
  command -v apt-get >/dev/null || die "this script needs Debian's apt-get"
  local t missing=()
  for t in "${!TOOL_PACKAGE[@]}"; do
    command -v "$t" >/dev/null || missing+=("${TOOL_PACKAGE[$t]}")
  done
  ((${#missing[@]} == 0)) && return
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "apt-get install ${missing[*]} (tools the fixtures are made with)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq -o DPkg::Lock::Timeout=600 update || say "warning: apt-get update reported errors (above); going on"
  apt-get -qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

fetch_busybox_deb() { # $1 = arch; sets DEB to the cached busybox-static .deb
  local found=("$OUTDIR"/debs/busybox-static_*_"$1".deb)
  DEB=${found[0]}
  [[ -e $DEB ]] && return
  local name=busybox-static
  if [[ $1 != "$(dpkg --print-architecture)" ]]; then
    name=busybox-static:$1
    if ! dpkg --print-foreign-architectures | grep -qx "$1"; then
      say "dpkg --add-architecture $1 && apt-get update"
      dpkg --add-architecture "$1"
      # A stale index elsewhere fails the update; the download below still fails if it matters.
      apt-get -qq -o DPkg::Lock::Timeout=600 update || say "warning: apt-get update reported errors (above); going on"
    fi
  fi
  say "apt-get download $name (into $OUTDIR/debs)"
  mkdir -p "$OUTDIR/debs"
  # Sandbox user root: _apt may not be able to write into OUTDIR.
  (cd "$OUTDIR/debs" && apt-get -qq -o APT::Sandbox::User=root download "$name")
  found=("$OUTDIR"/debs/busybox-static_*_"$1".deb)
  DEB=${found[0]}
  [[ -e $DEB ]] || die "apt-get download $name left no .deb in $OUTDIR/debs"
}

# Every name below is relative to the tree root $R.
put() { # put MODE UID:GID PATH CONTENT  -- a regular file with exact content
  mkdir -p "$R/$(dirname "$3")"
  printf '%b' "$4" >"$R/$3"
  chown "$2" "$R/$3"
  chmod "$1" "$R/$3"
}

build_tree() { # $1 = arch, $2 = busybox-static .deb
  local arch=$1 deb=$2 x
  R=$OUTDIR/rootfs-$arch
  say "building $R"
  rm -rf "$R" "$OUTDIR/deb-$arch"
  dpkg-deb -x "$deb" "$OUTDIR/deb-$arch"
  mkdir -p "$R"
  chmod 0755 "$R"

  # busybox and the applets the tests call, as relative symlinks.
  mkdir -p "$R/bin" "$R/usr/bin"
  install -m 0755 "$OUTDIR/deb-$arch/bin/busybox" "$R/bin/busybox"
  for x in sh ls cat echo stat uname id; do ln -s busybox "$R/bin/$x"; done
  rm -rf "$OUTDIR/deb-$arch"

  put 0644 0:0 etc/passwd 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n'
  put 0644 0:0 etc/group 'root:x:0:\ndisk:x:6:\nuser:x:1000:\n'
  put 0644 0:0 etc/os-release 'NAME="imgcraft fixture"\nID=imgcraft-fixture\nVERSION_ID=1\nPRETTY_NAME="imgcraft fixture rootfs ('"$arch"')"\n'
  setfattr -n user.imgcraft.note -v hello "$R/etc/os-release"

  # Special directory modes: sticky, private and owned by a user, setgid.
  mkdir -p "$R/tmp" "$R/root" "$R/var/empty" "$R/srv/shared" "$R/home/user"
  chmod 1777 "$R/tmp"
  chmod 0700 "$R/root"
  chown 1000:1000 "$R/var/empty" "$R/home/user"
  chmod 0700 "$R/var/empty"
  chown 0:1000 "$R/srv/shared"
  chmod 2775 "$R/srv/shared"

  # setuid/setgid files; chmod after chown, which clears those bits.
  put 4755 0:0 usr/bin/suid-tool '#!/bin/sh\necho suid-tool\n'
  put 2755 0:0 usr/bin/sgid-tool '#!/bin/sh\necho sgid-tool\n'
  # A file capability (xattr security.capability); setcap after chown, which drops it.
  install -m 0755 "$R/bin/busybox" "$R/usr/bin/ping-cap"
  setcap cap_net_raw+ep "$R/usr/bin/ping-cap"

  # Device nodes and a fifo.
  mkdir -p "$R/dev" "$R/run"
  mknod -m 0666 "$R/dev/null-test" c 1 3
  mknod -m 0660 "$R/dev/loop-test" b 7 0
  chown 0:6 "$R/dev/loop-test"
  mkfifo -m 0640 "$R/run/fifo-test"

  # Hardlinks: a pair, and a group of three spread over two directories.
  put 0644 0:0 usr/share/hl/a 'hardlinked\n'
  ln "$R/usr/share/hl/a" "$R/usr/share/hl/b"
  put 0644 0:0 opt/triple/one 'three names, one inode\n'
  mkdir -p "$R/var/lib/triple"
  ln "$R/opt/triple/one" "$R/opt/triple/two"
  ln "$R/opt/triple/one" "$R/var/lib/triple/three"

  # A path over 200 bytes whose file name alone (120 bytes) overflows ustar's 100-byte name field.
  local d1 d2 long_name long_path
  d1=a-directory-with-a-deliberately-long-name-to-push-paths-past-ustar-limits-1
  d2=a-directory-with-a-deliberately-long-name-to-push-paths-past-ustar-limits-2
  long_name=$(printf 'f%.0s' {1..98})-name-of-120-bytes.txt   # 98 + 22 bytes
  long_path=usr/share/deep/$d1/$d2/$long_name
  put 0644 0:0 "$long_path" 'deep\n'

  # A name that is not UTF-8 (bytes ff fe).
  put 0644 0:0 "usr/share/bytes/name-$(printf '\xff\xfe').txt" 'not utf-8\n'

  # Symlinks: absolute target, dangling relative, target over 100 bytes.
  ln -s /usr/share/hl/a "$R/etc/alt"
  ln -s ../missing/nothing "$R/usr/share/dangling"
  ln -s "deep/$d1/$d2/$long_name" "$R/usr/share/long-target-link"

  # Owners: a user, an id over 65535, and one over ustar's 2097151 (needs a PAX record).
  put 0644 1000:1000 home/user/notes 'owned by 1000\n'
  put 0644 70000:70000 usr/share/owners/big-id 'owned by 70000\n'
  put 0644 3000000:3000000 usr/share/owners/huge-id 'owned by 3000000\n'

  # Sizes: empty, and 3 MiB of reproducible noise (AES-CTR of zeros with a fixed key).
  put 0644 0:0 usr/share/empty ''
  head -c $((3 * 1024 * 1024)) /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 \
      >"$R/usr/share/random.bin"
  chmod 0644 "$R/usr/share/random.bin"

  put 0644 0:0 usr/share/old-file 'old\n'
  put 0644 0:0 usr/share/future-file 'from the future\n'

  # Times last: files, then the odd ones, then directories bottom-up (adding a child
  # changes a directory's mtime). -h sets a symlink's own time and never opens devices.
  find "$R" ! -type d -exec touch -h -d "@$T_MOST" {} +
  touch -h -d "@$T_OLD" "$R/usr/share/old-file"
  touch -h -d "@$T_FUTURE" "$R/usr/share/future-file"
  find "$R" -depth -type d -exec touch -h -d "@$T_MOST" {} +
}

pack() { # $1 = arch: the Yocto-style tar and its listing
  local arch=$1 tar=$OUTDIR/rootfs-$1.tar
  say "packing $tar"
  rm -f "$tar"
  tar --xattrs --xattrs-include='*' --sort=name --format=posix --pax-option=delete=atime,delete=ctime \
    --numeric-owner -C "$OUTDIR/rootfs-$arch" -cf "$tar" .
  # -vv lists xattr names; without --xattrs-include tar would hide the security.* ones.
  TZ=UTC tar --xattrs --xattrs-include='*' --numeric-owner -tvvf "$tar" >"$OUTDIR/rootfs-$arch.list"
}

compress_all() {
  local tar=$OUTDIR/rootfs-amd64.tar size half
  size=$(stat -c %s "$tar")
  half=$((size / 2))
  say "compressing rootfs-amd64.tar (gz and xz in two members/streams, zst, pbzip2), rootfs-arm64.tar and rootfs-armhf.tar (zst)"
  # -n: no name or timestamp in the gzip header. -T1: xz and zstd output depends on threads.
  { head -c "$half" "$tar" | gzip -n -6; tail -c +"$((half + 1))" "$tar" | gzip -n -6; } >"$tar.gz"
  { head -c "$half" "$tar" | xz -T1 -6 -c; tail -c +"$((half + 1))" "$tar" | xz -T1 -6 -c; } >"$tar.xz"
  zstd -q -f -T1 -3 "$tar" -o "$tar.zst"
  pbzip2 -c -9 -p2 <"$tar" >"$tar.bz2"
  zstd -q -f -T1 -3 "$OUTDIR/rootfs-arm64.tar" -o "$OUTDIR/rootfs-arm64.tar.zst"
  zstd -q -f -T1 -3 "$OUTDIR/rootfs-armhf.tar" -o "$OUTDIR/rootfs-armhf.tar.zst"
}

# --- verify (on every run: cheap, and catches a fixture someone changed) ------

verify() {
  local tar=$OUTDIR/rootfs-amd64.tar f got
  for f in .gz:"gzip -dc" .xz:"xz -dc" .zst:"zstd -qdc" .bz2:"bzip2 -dc"; do
    ${f#*:} "$tar${f%%:*}" | cmp - "$tar" || die "$tar${f%%:*} does not decompress to $tar"
  done
  for f in rootfs-arm64.tar rootfs-armhf.tar; do
    zstd -qdc "$OUTDIR/$f.zst" | cmp - "$OUTDIR/$f" || die "$f.zst does not decompress to $f"
  done
  # Each half was compressed alone, so a second header must follow the first member/stream.
  (($(grep -a -o $'\x1f\x8b\x08\x00' "$tar.gz" | wc -l) >= 2)) || die "$tar.gz has one gzip member, expected two"
  (($(xz --robot -l "$tar.xz" | awk '$1 == "totals" {print $2}') == 2)) || die "$tar.xz has not two xz streams"
  (($(grep -a -o 'BZh91AY&SY' "$tar.bz2" | wc -l) >= 2)) || die "$tar.bz2 has one bzip2 stream, expected several"

  for arch in "${ARCHES[@]}"; do
    local R=$OUTDIR/rootfs-$arch list=$OUTDIR/rootfs-$arch.list
    for f in ./usr/share/hl/b ./dev/null-test ./dev/loop-test ./run/fifo-test ./usr/bin/ping-cap \
      ./usr/share/owners/huge-id ./usr/share/long-target-link; do
      grep -q -- " $f" "$list" || die "$list lacks $f"
    done
    grep -q 'security.capability' "$list" || die "$list shows no security.capability xattr"
    grep -q 'user.imgcraft.note' "$list" || die "$list shows no user.imgcraft.note xattr"
    got=$(getcap "$R/usr/bin/ping-cap")
    [[ $got == *cap_net_raw=ep ]] || die "getcap $R/usr/bin/ping-cap says '$got'"
  done

  # Foreign busyboxes run here only through binfmt_misc + qemu (scripts/setup-test-env.sh).
  for arch in "${ARCHES[@]}"; do
    [[ -v QEMU[$arch] ]] || continue
    if [[ -e /proc/sys/fs/binfmt_misc/${QEMU[$arch]} ]]; then
      got=$("$OUTDIR/rootfs-$arch/bin/busybox" uname -m)
      [[ $got == "${UNAME_M[$arch]}" ]] || die "rootfs-$arch/bin/busybox uname -m says '$got', expected ${UNAME_M[$arch]}"
      say "verified: rootfs-$arch/bin/busybox uname -m = $got (${QEMU[$arch]})"
    else
      say "skipped running rootfs-$arch/bin/busybox: no ${QEMU[$arch]} binfmt handler (scripts/setup-test-env.sh registers it)"
    fi
  done
  say "verified: 6 compressed variants decompress to the exact tars; lists show devices, hardlinks, xattrs; getcap shows cap_net_raw"
}

# --- main ---------------------------------------------------------------------

outputs_present() {
  local f
  for f in rootfs-amd64 rootfs-arm64 rootfs-armhf rootfs-amd64.tar{,.gz,.xz,.zst,.bz2} \
    rootfs-arm64.tar{,.zst} rootfs-armhf.tar{,.zst} SHA256SUMS; do
    [[ -e $OUTDIR/$f ]] || return 1
  done
}

T0=$SECONDS
need_tools  # also for scripts/make-package-fixtures.sh, called at the end
if [[ "$(cat "$OUTDIR/stamp" 2>/dev/null)" == "$SELF_HASH" ]] && outputs_present; then
  say "fixtures in $OUTDIR are up to date (stamp matches this script)"
else
  umask 022
  rm -f "$OUTDIR/stamp"
  for arch in "${ARCHES[@]}"; do
    fetch_busybox_deb "$arch"
    build_tree "$arch" "$DEB"
    pack "$arch"
  done
  compress_all
  (cd "$OUTDIR" && sha256sum rootfs-*.tar rootfs-*.tar.* >SHA256SUMS)
  printf '%s\n' "$SELF_HASH" >"$OUTDIR/stamp"
  say "built fixtures in $OUTDIR ($((SECONDS - T0))s)"
fi
verify
(cd "$OUTDIR" && cat SHA256SUMS)
say "fixtures ready in $OUTDIR ($((SECONDS - T0))s)"
bash "$REPO/scripts/make-package-fixtures.sh" "$OUTDIR/packages"
