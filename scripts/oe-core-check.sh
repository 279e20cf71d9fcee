#!/usr/bin/env bash
# Parse meta-imgcraft with a real BitBake on a real OE-core, for each OE-core branch and each MACHINE in
# tests/oe-core/platforms.txt, and check what the class derives: IMGCRAFT_ARCH and IMGCRAFT_VARIANT as listed there,
# `imgcraft` in IMAGE_FSTYPES, and a do_image_imgcraft task. Nothing is built: each MACHINE is one `bitbake -e`
# (about a minute on 2 cores). Safe to rerun: sources are unpacked again only when their branch moved.
#
# Usage: scripts/oe-core-check.sh [BRANCH...]        (default: scarthgap master)
#   IMGCRAFT_OE_CORE_GIT   git dir of openembedded-core (required; e.g. a bare mirror)
#   IMGCRAFT_BITBAKE_GIT   git dir of bitbake (required)
#   IMGCRAFT_OE_DIR        where sources and build dirs go (default /var/tmp/imgcraft-oe): <dir>/<branch>/
#   IMGCRAFT_OE_LAYER      the layer under test (default <repo>/meta-imgcraft)
#   IMGCRAFT_OE_MACHINES   space-separated subset of the machines in tests/oe-core/platforms.txt
#
# Exit status: 0 all checks passed, 1 a check failed, 2 the environment is not ready (sources missing, host tools
# not installable). Full `bitbake -e` outputs stay in <dir>/<branch>/build/env-<MACHINE>.txt.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OE_DIR=${IMGCRAFT_OE_DIR:-/var/tmp/imgcraft-oe}
LAYER=${IMGCRAFT_OE_LAYER:-$REPO/meta-imgcraft}
TEST_LAYER=$REPO/tests/oe-core
PLATFORMS=$TEST_LAYER/platforms.txt
RECIPE=imgcraft-test-image

# Host commands OE-core's HOSTTOOLS (meta/conf/bitbake.conf) insists on that a Debian bookworm machine may lack,
# with the package that provides each.
HOST_TOOLS=(chrpath:chrpath cpio:cpio diffstat:diffstat gawk:gawk file:file wget:wget rpcgen:libc-dev-bin
  lz4c:lz4 pzstd:zstd zstd:zstd xz:xz-utils bzip2:bzip2 patch:patch perl:perl make:make gcc:gcc g++:g++
  git:git hostname:hostname)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$1" >&2; shift; for hint in "$@"; do printf 'hint: %s\n' "$hint" >&2; done; exit 2; }

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

setup_build() {
  local build=$1 core=$2
  mkdir -p "$build/conf"
  write_file "$build/conf/local.conf" <<EOF
# Written by scripts/oe-core-check.sh: parse-only configuration (shared/YOCTO.md).
MACHINE ??= "qemux86-64"
DISTRO = "nodistro"
INHERIT:remove = "sanity"
TMPDIR = "\${TOPDIR}/tmp"
DL_DIR = "\${TOPDIR}/downloads"
SSTATE_DIR = "\${TOPDIR}/sstate-cache"
EOF
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
check() { # check DESCRIPTION CONDITION-STATUS
  if [ "$2" = 0 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); printf 'FAIL: %s\n' "$1"; fi
}

check_machine() {
  local branch=$1 build=$2 bitbake=$3 machine=$4 want_arch=$5 want_variant=$6
  local env=$build/env-$machine.txt log=$build/env-$machine.log start status arch variant fstypes body fn
  say "$branch $machine: bitbake -e $RECIPE"
  start=$SECONDS
  status=0
  (cd "$build" && LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 MACHINE=$machine BB_ENV_PASSTHROUGH_ADDITIONS=MACHINE \
    "$bitbake/bin/bitbake" -e "$RECIPE" </dev/null >"$env" 2>"$log") || status=$?
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

  check "$branch $machine: IMGCRAFT_ARCH is \"$arch\", want \"$want_arch\"" "$([ "$arch" = "$want_arch" ]; echo $?)"
  [ "$want_variant" = - ] && want_variant=""
  check "$branch $machine: IMGCRAFT_VARIANT is \"$variant\", want \"$want_variant\"" \
    "$([ "$variant" = "$want_variant" ]; echo $?)"
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

check_branch() {
  local branch=$1 bb_branch root machine want_arch want_variant
  bb_branch=$(bitbake_branch_for "$branch") || die "no known BitBake for OE-core branch \`$branch\`" \
    "known: master (bitbake master), wrynose (2.18), scarthgap (2.8)"
  root=$OE_DIR/$branch
  unpack "$IMGCRAFT_OE_CORE_GIT" "$branch" "$root/openembedded-core" meta scripts
  unpack "$IMGCRAFT_BITBAKE_GIT" "$bb_branch" "$root/bitbake"
  setup_build "$root/build" "$root/openembedded-core"
  while read -r machine want_arch want_variant; do
    case "$machine" in '' | '#'*) continue ;; esac
    if [ -n "${IMGCRAFT_OE_MACHINES:-}" ]; then
      case " $IMGCRAFT_OE_MACHINES " in *" $machine "*) ;; *) continue ;; esac
    fi
    check_machine "$branch" "$root/build" "$root/bitbake" "$machine" "$want_arch" "$want_variant"
  done <"$PLATFORMS"
}

main() {
  [ $# -gt 0 ] || set -- scarthgap master
  check_sources
  ensure_locale
  ensure_host_tools
  say "layer under test: $LAYER"
  local branch
  for branch in "$@"; do check_branch "$branch"; done
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  [ "$FAILED" = 0 ]
}

main "$@"
