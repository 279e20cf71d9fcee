# shellcheck shell=bash disable=SC2016 # ${...} in single quotes is BitBake syntax, written as is
# Part of scripts/oe-core-check.sh: the environment BitBake needs (host tools, sources, build directories) and how
# to run it and read what `bitbake -e` printed.

# Host commands OE-core's HOSTTOOLS (meta/conf/bitbake.conf) insists on that a Debian bookworm machine may lack,
# with the package that provides each; and pseudo, the build's fakeroot.
HOST_TOOLS=(chrpath:chrpath cpio:cpio diffstat:diffstat gawk:gawk file:file wget:wget rpcgen:libc-dev-bin
  lz4c:lz4 pzstd:zstd zstd:zstd xz:xz-utils bzip2:bzip2 patch:patch perl:perl make:make gcc:gcc g++:g++
  git:git hostname:hostname pseudo:pseudo)

# The BitBake branch that parses an OE-core branch (shared/YOCTO.md; BB_MIN_VERSION in meta/conf/sanity.conf).
bitbake_branch_for() {
  case "$1" in
  master) echo master ;;
  wrynose) echo 2.18 ;;
  whinlatter) echo 2.16 ;;
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
  # Debian's multiarch directory of libpseudo.so, for FAKEROOTBASEENV.
  PSEUDO_LIBDIR=$(dirname "$(dpkg -L libpseudo | grep '/libpseudo\.so$' | head -n1)")
  [ -f "$PSEUDO_LIBDIR/libpseudo.so" ] || die "libpseudo.so not found" "apt-get install --reinstall libpseudo"
}

# Real fakeroot tasks with Debian's pseudo in place of pseudo-native (OE-core's FAKEROOT* settings with its paths).
# That pseudo (2022) knows PSEUDO_IGNORE_PATHS but not the PSEUDO_INCLUDE_PATHS of wrynose and master: they get
# scarthgap's list, while scarthgap's bitbake.conf sets its own, which wins over ??=.
fakeroot_conf() {
  local canonical="\${@oe.path.canonicalize(d.getVar('PSEUDO_IGNORE_PATHS'))}"
  printf '%s\n' \
    "PSEUDO_IGNORE_PATHS ??= \"/usr/,/etc/,/lib,/dev/,/run/,\${T},\${WORKDIR}/recipe-sysroot,\${SSTATE_DIR},\${STAMPS_DIR},\${TMPDIR}/sstate-control,\${TMPDIR}/buildstats,\${TMPDIR}/sysroots-components,\${TMPDIR}/pkgdata,\${WORKDIR}/deploy-,\${WORKDIR}/sstate-build-package_,\${WORKDIR}/sstate-install-package_,\${WORKDIR}/pkgdata-sysroot,\${DEPLOY_DIR},\${TOPDIR}/cache,\${COREBASE}/scripts\"" \
    'FAKEROOTCMD = "/usr/bin/pseudo"' \
    "FAKEROOTBASEENV = \"PSEUDO_BINDIR=/usr/bin PSEUDO_LIBDIR=$PSEUDO_LIBDIR PSEUDO_PREFIX=/usr PSEUDO_IGNORE_PATHS=$canonical PSEUDO_DISABLED=1 PYTHONDONTWRITEBYTECODE=1\"" \
    "FAKEROOTENV = \"PSEUDO_PREFIX=/usr PSEUDO_LOCALSTATEDIR=\${PSEUDO_LOCALSTATEDIR} PSEUDO_PASSWD=\${PSEUDO_PASSWD} PSEUDO_NOSYMLINKEXP=1 PSEUDO_IGNORE_PATHS=$canonical PSEUDO_DISABLED=0\""
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

# setup_build DIR CORE LAYERS [LOCAL.CONF LINES]: a build directory with the configuration shared/YOCTO.md describes,
# for OE-core's meta and the space-separated LAYERS. Downloads and sstate are shared by the branch's build dirs.
setup_build() {
  local build=$1 core=$2 layers=$3 layer
  shift 3
  mkdir -p "$build/conf"
  {
    printf '%s\n' '# Written by scripts/oe-core-check.sh (shared/YOCTO.md).' 'MACHINE ??= "qemux86-64"' \
      'DISTRO = "nodistro"' 'INHERIT:remove = "sanity"' 'TMPDIR = "${TOPDIR}/tmp"' \
      "DL_DIR = \"$(dirname "$build")/downloads\"" "SSTATE_DIR = \"$(dirname "$build")/sstate-cache\"" \
      '# The build directories of a branch share the hash equivalence database with SSTATE_DIR, as build directories' \
      '# that share sstate must (BB_HASHSERVE = "auto" keeps one per build directory; with its own, a second build' \
      '# directory computes other unihashes and finds none of the first one'"'"'s sstate objects).' \
      "BB_HASHSERVE_DB_DIR = \"$(dirname "$build")/hashserv\"" "$@"
  } | write_file "$build/conf/local.conf"
  {
    printf '# Written by scripts/oe-core-check.sh.\nBBPATH = "${TOPDIR}"\nBBFILES ?= ""\nBBLAYERS = " \\\n'
    for layer in "$core/meta" $layers; do printf '    %s \\\n' "$layer"; done
    printf '"\n'
  } | write_file "$build/conf/bblayers.conf"
  write_file "$build/conf/sanity.conf" </dev/null
}

# bitbake_in BUILD BITBAKE MACHINE [ENV=VALUE...] -- ARGS...: runs BitBake there, for MACHINE, with those variables,
# and the host's Rust and rootfs2image on PATH for HOSTTOOLS to link (tasks see only what HOSTTOOLS lists).
bitbake_in() {
  local build=$1 bitbake=$2 machine=$3 pass=MACHINE
  shift 3
  local assignments=(LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 "MACHINE=$machine")
  while [ "$1" != -- ]; do assignments+=("$1"); pass+=" ${1%%=*}"; shift; done
  shift
  (cd "$build" && PATH="$RUST_BIN:$TOOLS:$PATH" env "${assignments[@]}" BB_ENV_PASSTHROUGH_ADDITIONS="$pass" "$bitbake/bin/bitbake" "$@" </dev/null)
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

# errors LOG...: BitBake's error lines and failing task output, indented.
errors() { grep -h -E '^(ERROR|FATAL)|Error:|^ \| ' "$@" | tail -30 | sed 's/^/    /' || true; }

# each_machine FUNCTION ARGS...: FUNCTION ARGS... MACHINE ARCH VARIANT ROOTFS for each selected row of platforms.txt.
each_machine() {
  local fn=$1 machine want_arch want_variant rootfs
  shift
  while read -r machine want_arch want_variant rootfs; do
    case "$machine" in '' | '#'*) continue ;; esac
    if [ -n "${IMGCRAFT_OE_MACHINES:-}" ]; then
      in_list "$machine" "$IMGCRAFT_OE_MACHINES" || continue
    fi
    [ "$want_variant" = - ] && want_variant=""
    "$fn" "$@" "$machine" "$want_arch" "$want_variant" "$rootfs"
  done <"$PLATFORMS"
}
