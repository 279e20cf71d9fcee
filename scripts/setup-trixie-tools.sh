#!/usr/bin/env bash
# Make a minimal Debian trixie tree holding skopeo and podman: for the signature tests (issue 13), since Debian
# bookworm's skopeo and podman are built with sigstore disabled, and for the zstd:chunked partial pulls of a current
# podman (issue 14). Trixie's skopeo 1.18 signs (--sign-by-sigstore-private-key, cosign's
# encrypted key format) and verifies (policy.json sigstoreSigned + keyPath, registries.d use-sigstore-attachments).
# Safe to rerun: the tree is rebuilt only when its stamp does not match or its skopeo does not run.
#
# Usage: scripts/setup-trixie-tools.sh     (as root)
#   IMGCRAFT_TRIXIE_DIR     the tree (default /var/cache/imgcraft/trixie)
#   IMGCRAFT_TRIXIE_MIRROR  Debian mirror (default: the first /debian URI in the host's apt sources,
#                           else http://deb.debian.org/debian)
#
# Running its skopeo: `chroot TREE skopeo ...`. chroot keeps the host's network namespace, so a registry on the
# host's loopback (127.0.0.1:PORT or localhost:PORT) answers inside; registries without TLS need
# --tls-verify=false (or --src-tls-verify / --dest-tls-verify). Host paths are not visible inside; pass files in
# one of two ways:
#   - copy them under TREE/tmp (sticky, world-writable) in a directory of your own and name them by the path
#     inside: `cp -a policy.json key.pub TREE/tmp/t1/` then `chroot TREE skopeo --policy /tmp/t1/policy.json ...`;
#     outputs the command writes there (oci:/tmp/t1/out) are at TREE/tmp/t1/out on the host. Remove the directory
#     after.
#   - or bind-mount a host directory in a private mount namespace, which is undone when the command exits, so
#     nothing is left mounted in the tree even if the caller dies:
#       unshare -m sh -c 'mkdir -p "$0/mnt/t1" && mount --bind "$1" "$0/mnt/t1" && shift &&
#         exec chroot "$0" skopeo "$@"' TREE HOSTDIR --policy /mnt/t1/policy.json ... oci:/mnt/t1/out:x
#     (two such commands at once need different mount points: TREE/mnt/<unique>.)
# The tree has no /proc or /dev/pts mounted; skopeo copy, inspect, sign and verify need neither. Never remove the
# tree while something is bind-mounted into it (this script refuses to).
# Seen with this skopeo (1.18.0, containers/image 5.34.2):
#   - signing (--sign-by-sigstore-private-key K --sign-passphrase-file F) needs a registries.d file with
#     `use-sigstore-attachments: true` for the destination, else "writing sigstore attachments is disabled by
#     configuration", and the image manifest is already pushed by then. F's first line is the passphrase.
#   - an oci: destination cannot keep sigstore signatures: a verifying copy into oci: needs --remove-signatures
#     (the source is still checked against the policy).
set -euo pipefail

# debootstrap and chroot live in sbin, which a non-login PATH (CI) may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

TREE=$(realpath -m "${IMGCRAFT_TRIXIE_DIR:-/var/cache/imgcraft/trixie}")
SUITE=trixie
VARIANT=minbase
ARCH=$(dpkg --print-architecture)
# debootstrap follows the Depends of what it includes but cannot pick a provider of a virtual package:
# skopeo -> golang-github-containers-common -> container-network-stack, provided by netavark (17 MB, the one
# containers-common recommends) or containernetworking-plugins (55 MB, pulls iptables). Nothing here runs it.
# ca-certificates is for registries with TLS. podman (5.x, with runc: crun refuses this machine's cgroups) is
# the current client of zstd:chunked partial pulls that tests/chunked.rs runs, chrooted with /proc, /dev and /sys
# bind-mounted in a mount namespace of its own (tests/common/partial_pull.rs).
INCLUDE=skopeo,ca-certificates,netavark,podman,runc
# What the tree is made of: a different recipe rebuilds it. The mirror is not part of it.
RECIPE="suite=$SUITE variant=$VARIANT arch=$ARCH include=$INCLUDE"
STAMP=$TREE/.imgcraft-stamp

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root: debootstrap and chroot need it"
command -v apt-get >/dev/null || die "this script needs Debian's apt-get"

# --- host tools ----------------------------------------------------------------
# debootstrap checks the trixie Release file with gpgv against debian-archive-keyring, whose trixie keys
# came with bookworm's 2023.3+deb12u1; older keyrings are upgraded.
declare -A TOOL_PACKAGE=([debootstrap]=debootstrap [gpgv]=gpgv [wget]=wget [chroot]=coreutils
  [unshare]=util-linux [flock]=util-linux [mountpoint]=util-linux)
missing=()
for t in "${!TOOL_PACKAGE[@]}"; do
  command -v "$t" >/dev/null || missing+=("${TOOL_PACKAGE[$t]}")
done
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -e /usr/share/keyrings/debian-archive-$SUITE-automatic.gpg && -e $KEYRING ]] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "apt-get install ${missing[*]} (host tools for debootstrap)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq -o DPkg::Lock::Timeout=600 update || say "warning: apt-get update reported errors (above); going on"
  apt-get -qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
fi
[[ -e /usr/share/debootstrap/scripts/$SUITE ]] || die "this debootstrap does not know $SUITE (upgrade debootstrap)"
[[ -e /usr/share/keyrings/debian-archive-$SUITE-automatic.gpg ]] ||
  die "debian-archive-keyring has no $SUITE key (needs 2023.3+deb12u1 or later)"

# --- mirror ----------------------------------------------------------------------
host_mirror() { # the first .../debian URI of the host's apt sources (deb822 or one-line style), not -security
  grep -hsv '^[[:space:]]*#' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | tr -d '[:space:]' | head -n1
}
MIRROR=${IMGCRAFT_TRIXIE_MIRROR:-$(host_mirror || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# --- tree ------------------------------------------------------------------------
mounts_under() { # mount points at or below $1, from /proc/mounts
  awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts
}
refuse_if_mounted() { # rm -rf would go down into bind-mounted host directories
  local m
  m=$(mounts_under "$1")
  [[ -z $m ]] || die "will not remove $1: still mounted inside it: $(tr '\n' ' ' <<<"$m")(umount them first)"
}
safe_remove() { refuse_if_mounted "$1"; rm -rf "$1"; }
tree_works() {
  [[ "$(cat "$STAMP" 2>/dev/null)" == "$RECIPE" ]] && chroot "$TREE" skopeo --version >/dev/null 2>&1
}

mkdir -p "$(dirname "$TREE")"
# One builder at a time; a second caller waits, then finds the stamp.
exec 9>"$TREE.lock"
flock 9
T0=$SECONDS
if tree_works; then
  say "trixie tree $TREE is up to date (stamp: $RECIPE)"
else
  NEW=$TREE.new
  refuse_if_mounted "$TREE"  # now, not after minutes of debootstrap
  # A tree left by an interrupted debootstrap may still have proc or sys mounted.
  for m in $(mounts_under "$NEW" | sort -r); do say "umount $m (left by an interrupted run)"; umount -l "$m"; done
  safe_remove "$NEW"
  say "debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE $TREE from $MIRROR (a few minutes)"
  # Nice and idle I/O: the machine is shared. The log goes to a file; it is shown when debootstrap fails.
  mkdir -p "$NEW"
  if ! nice -n 10 ionice -c 3 debootstrap --variant="$VARIANT" --arch="$ARCH" --include="$INCLUDE" \
    --keyring="$KEYRING" "$SUITE" "$NEW" "$MIRROR" >"$TREE.log" 2>&1; then
    tail -n 30 "$TREE.log" >&2
    [[ -e $NEW/debootstrap/debootstrap.log ]] && tail -n 30 "$NEW/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (full log: $TREE.log)"
  fi
  # Package lists and cached .debs are not needed to run skopeo.
  rm -rf "$NEW"/var/lib/apt/lists/* "$NEW"/var/cache/apt/archives/*.deb "$NEW"/var/cache/apt/*.bin
  chroot "$NEW" skopeo --version >/dev/null || die "skopeo does not run in the fresh tree $NEW"
  # podman reads /proc even for --version: the tree has none mounted, so only its presence is checked here.
  [[ -x $NEW/usr/bin/podman && -x $NEW/usr/bin/runc ]] || die "no podman or runc in the fresh tree $NEW"
  printf '%s\n' "$RECIPE" >"$NEW/.imgcraft-stamp"
  safe_remove "$TREE"
  mv "$NEW" "$TREE"
  say "built $TREE ($((SECONDS - T0))s, $(du -sh --one-file-system "$TREE" | cut -f1))"
fi
# debootstrap writes no /etc/hosts: without one, `localhost` goes to the host's DNS server and fails.
if [[ ! -e $TREE/etc/hosts ]]; then
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$TREE/etc/hosts"
  say "wrote $TREE/etc/hosts (localhost)"
fi
chroot "$TREE" skopeo --version
say "trixie skopeo ready: chroot $TREE skopeo ..."
