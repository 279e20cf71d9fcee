# shellcheck shell=bash disable=SC2016 # ${...} in single quotes is BitBake syntax, written as is
# Part of scripts/oe-core-check.sh: imgcraft-native built by OE-core's cargo class from a read-only checkout, taken
# from sstate by a second build directory, and rebuilt only when the crate's sources change.

NATIVE=imgcraft-native

check_native_inputs() {
  [ -x "$RUST_BIN/cargo" ] && [ -x "$RUST_BIN/rustc" ] || die "no cargo and rustc in \`$RUST_BIN\`" \
    "set IMGCRAFT_OE_RUST_BIN to a Rust toolchain's bin directory (it stands in for rust-native and cargo-native)" \
    "or leave the native check out: IMGCRAFT_OE_CHECKS=\"parse image\""
  git -C "$LAYER" rev-parse --show-toplevel >/dev/null 2>&1 || die "\`$LAYER\` is not inside a git checkout" \
    "the native check builds from a read-only copy of the checkout that holds the layer"
}

# The stand-ins for what OE-core would build first (see the header of scripts/oe-core-check.sh for why each).
NATIVE_PROVIDED="rust-native cargo-native python3-native quilt-native pseudo-native virtual/fakeroot-native"

# bitbake_native BUILD BITBAKE ARGS...: BitBake for the build host's MACHINE (imgcraft-native is the same for all).
bitbake_native() {
  local build=$1 bitbake=$2
  shift 2
  bitbake_in "$build" "$bitbake" qemux86-64 -- "$@"
}

# fresh_tmp BUILD: TMPDIR emptied but for BitBake's parse cache (TMPDIR/cache), so no work, stamp or sysroot of an
# earlier run stands in for this one while the parse stays warm. TMPDIR is tmp, or tmp-glibc where the branch's
# nodistro appends TCLIBCAPPEND (scarthgap).
fresh_tmp() {
  local tmp
  for tmp in "$1"/tmp "$1"/tmp-glibc; do
    [ ! -d "$tmp" ] || find "$tmp" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
  done
}

# The checkout under test: a copy of the git checkout holding the layer (its .git a real clone, its tracked files as
# they are in the working tree, uncommitted changes included), bind-mounted read-only at <branch>/checkout-ro, which
# every native and image build reads the layer from. Root ignores file modes, so only a read-only mount stops writes.
mount_checkout() {
  local root=$1 source rel
  CHECKOUT=$root/checkout
  CHECKOUT_RO=$root/checkout-ro
  source=$(git -C "$LAYER" rev-parse --show-toplevel)
  rel=$(realpath --relative-to="$source" "$LAYER")
  CHECKOUT_SOURCE=$source
  CHECKOUT_LAYER=$CHECKOUT_RO/$rel
  unmount_checkout "$root"
  say "copying $source (git ls-files, .git cloned) to $CHECKOUT, read-only at $CHECKOUT_RO"
  rm -rf "$CHECKOUT"
  git clone -q --no-hardlinks "$source" "$CHECKOUT"
  git -C "$source" ls-files -z | (cd "$source" && tar --null -T - -cf -) | tar -x -C "$CHECKOUT"
  mkdir -p "$CHECKOUT_RO"
  mount --bind "$CHECKOUT" "$CHECKOUT_RO" && mount -o remount,bind,ro "$CHECKOUT_RO" ||
    die "cannot bind-mount \`$CHECKOUT\` read-only at \`$CHECKOUT_RO\`" "run as root where mount(2) is allowed"
  if touch "$CHECKOUT_RO/.imgcraft-write-test" 2>/dev/null; then
    rm -f "$CHECKOUT_RO/.imgcraft-write-test"
    die "\`$CHECKOUT_RO\` is writable after remount,ro"
  fi
  listing "$CHECKOUT" >"$root/checkout-before.txt"
}

unmount_checkout() {
  ! mountpoint -q "$1/checkout-ro" || umount "$1/checkout-ro"
}

# listing DIR: every path under DIR, .git included, with its size, mtime (ns) and mode.
listing() { (cd "$1" && find . -printf '%p\t%s\t%T@\t%M\n' | LC_ALL=C sort); }

checkout_unchanged() {
  local branch=$1 root=$2 changed
  listing "$CHECKOUT" >"$root/checkout-after.txt"
  changed=$(diff "$root/checkout-before.txt" "$root/checkout-after.txt" | grep -c '^[<>]' || true)
  printf '    checkout: %s paths listed before the builds, %s after, %s lines differ\n' \
    "$(wc -l <"$root/checkout-before.txt")" "$(wc -l <"$root/checkout-after.txt")" "$changed"
  check "$branch: the checkout's listing (path, size, mtime, mode; .git included) is the same after the builds" \
    "$(is "$changed" 0)"
  [ "$changed" = 0 ] || diff "$root/checkout-before.txt" "$root/checkout-after.txt" | head -20 | sed 's/^/    /'
}

# sysroot_tool BUILD: the rootfs2image imgcraft-native put in BUILD's sysroot components.
sysroot_tool() { find "$1"/tmp*/sysroots-components -path '*/imgcraft-native/*' -name rootfs2image -type f 2>/dev/null | head -n1; }

# task_log BUILD TASK: BUILD's log of TASK of imgcraft-native, if that task ran there.
task_log() { find "$1"/tmp*/work/*/imgcraft-native/*/temp -name "log.$2" 2>/dev/null | head -n1; }

# compile_seconds BUILD: do_compile's elapsed time as buildstats recorded it.
compile_seconds() {
  find "$1"/tmp*/buildstats -path '*imgcraft-native*' -name do_compile -exec awk '/^Elapsed time:/ { print int($3) }' {} + 2>/dev/null | head -n1
}

tool_runs() { # tool_runs BRANCH WHERE TOOL
  local version
  version=$("$3" --version 2>&1) || version="(failed: $version)"
  printf '    %s --version: %s\n' "$3" "$version"
  check "$1: rootfs2image from $2 runs: \"$version\"" "$(has "$version" rootfs2image)"
}

# native_checks BRANCH ROOT LOCAL.CONF-LINES...: imgcraft-native built in <branch>/build, then from sstate in
# <branch>/build-sstate (same configuration).
native_checks() {
  local branch=$1 root=$2 build=$root/build second=$root/build-sstate start status seconds tool
  shift 2

  say "$branch: bitbake -c cleansstate $NATIVE, so that the crate compiles here"
  start=$SECONDS
  status=0
  bitbake_native "$build" "$root/bitbake" -c cleansstate "$NATIVE" >"$build/native-cleansstate.log" 2>&1 || status=$?
  took "$branch native: parse and cleansstate" "$start" "$status" "$build/native-cleansstate.log"
  check "$branch: bitbake -c cleansstate $NATIVE exit $status" "$status"
  [ "$status" = 0 ] || { errors "$build/native-cleansstate.log"; return; }

  say "$branch: bitbake $NATIVE (crates from crates.io through BitBake's crate fetcher, the host's Rust)"
  start=$SECONDS
  status=0
  bitbake_native "$build" "$root/bitbake" "$NATIVE" >"$build/native-build.log" 2>&1 || status=$?
  took "$branch native: bitbake $NATIVE (fetch, compile, sstate)" "$start" "$status" "$build/native-build.log"
  check "$branch: bitbake $NATIVE exit $status" "$status"
  [ "$status" = 0 ] || { errors "$build/native-build.log"; return; }
  seconds=$(compile_seconds "$build")
  printf '    do_compile: %ss (buildstats)\n' "${seconds:-?}"
  FIGURES+=("$(printf '%-58s %5ss' "$branch native: do_compile alone" "${seconds:-?}")")
  check "$branch: do_compile of $NATIVE ran in build" "$([ -n "$(task_log "$build" do_compile)" ]; echo $?)"
  tool=$(sysroot_tool "$build")
  tool_runs "$branch" "build's sysroot" "${tool:-(none in $build/tmp*/sysroots-components)}"

  say "$branch: bitbake $NATIVE in a second build directory sharing SSTATE_DIR and DL_DIR"
  setup_build "$second" "$root/openembedded-core" "$CHECKOUT_LAYER $TEST_LAYER" "$@"
  fresh_tmp "$second"
  start=$SECONDS
  status=0
  bitbake_native "$second" "$root/bitbake" "$NATIVE" >"$second/native-build.log" 2>&1 || status=$?
  took "$branch native: bitbake $NATIVE from sstate" "$start" "$status" "$second/native-build.log"
  grep -h 'Sstate summary' "$second/native-build.log" | sed 's/^/    /' || true
  check "$branch: bitbake $NATIVE from sstate exit $status" "$status"
  [ "$status" = 0 ] || { errors "$second/native-build.log"; return; }
  check "$branch: no do_compile of $NATIVE in build-sstate (found \"$(task_log "$second" do_compile)\")" \
    "$([ -z "$(task_log "$second" do_compile)" ]; echo $?)"
  check "$branch: do_populate_sysroot_setscene of $NATIVE ran in build-sstate" \
    "$([ -n "$(task_log "$second" do_populate_sysroot_setscene)" ]; echo $?)"
  tool=$(sysroot_tool "$second")
  tool_runs "$branch" "sstate" "${tool:-(none in $second/tmp*/sysroots-components)}"
}

# compile_hash BUILD BITBAKE: the signature of imgcraft-native's do_compile, as `bitbake -S none` writes it.
compile_hash() {
  local sig
  find "$1"/tmp*/stamps -path '*/imgcraft-native/*' -name '*.do_compile.sigdata.*' -delete 2>/dev/null || true
  bitbake_native "$1" "$2" -S none "$NATIVE" >"$1/signature.log" 2>&1 || { echo "(bitbake -S none failed)"; return; }
  sig=$(find "$1"/tmp*/stamps -path '*/imgcraft-native/*' -name '*.do_compile.sigdata.*' | head -n1)
  [ -n "$sig" ] && cp "$sig" "$1/do_compile.sigdata.$3" && echo "${sig##*.}" || echo "(no sigdata)"
}

# Only the crate's sources (Cargo.toml, Cargo.lock, LICENSE, src/) are inputs of imgcraft-native: a change to the
# README leaves do_compile's signature alone, a change to src/ changes it. The copy is changed under the read-only
# mount, after its listing was compared, and restored afterwards.
signature_checks() {
  local branch=$1 root=$2 build=$root/build-sstate bitbake=$root/bitbake start before readme src file
  say "$branch: do_compile's signature of $NATIVE after a README change and after a src/ change (bitbake -S none)"
  start=$SECONDS
  before=$(compile_hash "$build" "$bitbake" before)
  echo "imgcraft-oe-check: a change outside the crate" >>"$CHECKOUT/README.md"
  readme=$(compile_hash "$build" "$bitbake" readme)
  cp -p "$CHECKOUT_SOURCE/README.md" "$CHECKOUT/README.md"
  file=$(cd "$CHECKOUT" && ls src/*.rs | head -n1)
  echo "// imgcraft-oe-check: a change inside the crate" >>"$CHECKOUT/$file"
  src=$(compile_hash "$build" "$bitbake" src)
  cp -p "$CHECKOUT_SOURCE/$file" "$CHECKOUT/$file"
  took "$branch native: three signature computations" "$start" 0 "$build/signature.log"
  printf '    do_compile signature: %s; after README.md: %s; after %s: %s\n' "$before" "$readme" "$file" "$src"
  check "$branch: do_compile's signature \"$before\" is a hash" "$([[ $before =~ ^[0-9a-f]{64}$ ]]; echo $?)"
  check "$branch: a README.md change leaves do_compile's signature (\"$readme\")" "$(is "$readme" "$before")"
  check "$branch: a $file change changes do_compile's signature (\"$src\")" \
    "$([[ $src =~ ^[0-9a-f]{64}$ ]] && [ "$src" != "$before" ]; echo $?)"
  if [ -f "$build/do_compile.sigdata.before" ] && [ -f "$build/do_compile.sigdata.src" ]; then
    # bitbake-diffsigs starts BitBake (tinfoil): from the build directory.
    (cd "$build" && LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 "$bitbake/bin/bitbake-diffsigs" \
      "$build/do_compile.sigdata.before" "$build/do_compile.sigdata.src" 2>&1 | grep -v '^NOTE' | head -12 |
      sed 's/^/    diffsigs: /') || true
  fi
}
