# shellcheck shell=bash disable=SC2016 # ${...} in single quotes is BitBake syntax, written as is
# Part of scripts/oe-core-check.sh: what `bitbake -e` says about the layer's recipes, per MACHINE, in <branch>/build.

TEST_IMAGE=imgcraft-test-image
RECIPE_FILE=recipes-devtools/imgcraft/imgcraft_0.1.0.bb

parse_checks() {
  local branch=$1 root=$2
  each_machine parse_machine "$branch" "$root/build" "$root/bitbake"
  parse_native "$branch" "$root/build" "$root/bitbake"
}

# parse_machine BRANCH BUILD BITBAKE MACHINE ARCH VARIANT ROOTFS
parse_machine() {
  if [ "$5" = skip ]; then parse_unsupported "$@"; else parse_supported "$@"; fi
}

parse_supported() {
  local branch=$1 build=$2 bitbake=$3 machine=$4 want_arch=$5 want_variant=$6 rootfs=()
  local env=$build/env-$machine.txt log=$build/env-$machine.log start status arch variant fstypes body fn
  # The image check's IMGCRAFT_TEST_ROOTFS, so that its build finds BitBake's parse cache of this MACHINE warm (a
  # variable from the environment is part of the configuration the cache is kept for).
  [ "$7" = - ] || rootfs=("IMGCRAFT_TEST_ROOTFS=$FIXTURES/$7")
  say "$branch $machine: bitbake -e $TEST_IMAGE"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" "$machine" "${rootfs[@]}" -- -e "$TEST_IMAGE" >"$env" 2>"$log" || status=$?
  took "$branch parse $machine" "$start" "$status" "$env"
  if [ "$status" != 0 ]; then
    check "$branch $machine: bitbake -e failed" 1
    errors "$env" "$log"
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
  check "$branch $machine: imgcraft is not in IMAGE_FSTYPES" "$(has " $fstypes " " imgcraft ")"

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

# A MACHINE whose architecture no container engine knows: the class skips the image recipe, with its reason, and
# nothing else: the parse goes on and other recipes (imgcraft-native) still resolve for that MACHINE.
parse_unsupported() {
  local branch=$1 build=$2 bitbake=$3 machine=$4
  local env=$build/env-$machine.txt log=$build/env-$machine.log start status reason
  say "$branch $machine: bitbake -e $TEST_IMAGE must report the recipe skipped"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" "$machine" -- -e "$TEST_IMAGE" >"$env" 2>"$log" || status=$?
  took "$branch parse $machine (skipped image)" "$start" "$status" "$env"
  reason=$(grep -h -o "$TEST_IMAGE was skipped: .*" "$env" "$log" | head -n1) || reason="(no skip reason)"
  printf '    %s\n' "$reason"
  check "$branch $machine: bitbake -e $TEST_IMAGE exits $status, want a failure" "$([ "$status" != 0 ]; echo $?)"
  check "$branch $machine: the skip reason is the class's: \"$reason\"" \
    "$(has "$reason" "was skipped: imgcraft: TARGET_ARCH '")"

  say "$branch $machine: bitbake -e imgcraft-native must still work"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" "$machine" -- -e imgcraft-native >"$build/env-$machine-native.txt" \
    2>"$build/env-$machine-native.log" || status=$?
  took "$branch parse $machine imgcraft-native" "$start" "$status" "$build/env-$machine-native.txt"
  check "$branch $machine: bitbake -e imgcraft-native exit $status, the parse ended" "$status"
  [ "$status" = 0 ] || errors "$build/env-$machine-native.txt" "$build/env-$machine-native.log"
}

# imgcraft-native is not skipped with the branch's Rust, and is, naming the fix, when RUSTVERSION is older than the
# crate's rust-version. The second parse reads tests/oe-core/conf/rust-1.70.conf after local.conf (-R) and parses the
# recipe alone (-b, which ends with "was skipped: REASON" for a skipped recipe; `-e -b` would print the environment
# anyway), so BitBake's cache of the whole parse stays.
parse_native() {
  local branch=$1 build=$2 bitbake=$3
  local env=$build/env-native.txt log=$build/env-native.log start status rust wanted reason
  say "$branch: bitbake -e imgcraft-native (qemux86-64)"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" qemux86-64 -- -e imgcraft-native >"$env" 2>"$log" || status=$?
  took "$branch parse imgcraft-native" "$start" "$status" "$env"
  rust=$(var RUSTVERSION "$env") || rust="(unset)"
  wanted=$(var IMGCRAFT_RUST_VERSION "$env") || wanted="(unset)"
  printf '    RUSTVERSION="%s" IMGCRAFT_RUST_VERSION="%s"\n' "$rust" "$wanted"
  check "$branch: bitbake -e imgcraft-native exit $status (RUSTVERSION $rust, crate needs $wanted)" "$status"
  [ "$status" = 0 ] || errors "$env" "$log"

  say "$branch: bitbake -R rust-1.70.conf -b virtual:native:imgcraft_0.1.0.bb -c listtasks must report it skipped"
  env=$build/native-rust-1.70.log
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" qemux86-64 -- -R "$TEST_LAYER/conf/rust-1.70.conf" \
    -b "virtual:native:$CHECKOUT_LAYER/$RECIPE_FILE" -c listtasks >"$env" 2>&1 || status=$?
  took "$branch parse imgcraft-native, RUSTVERSION 1.70" "$start" "$status" "$env"
  reason=$(grep -h -o 'imgcraft needs Rust .*' "$env" | head -n1) || reason="(no skip reason)"
  printf '    %s\n' "$reason"
  check "$branch: with RUSTVERSION 1.70, bitbake -b imgcraft (native) exits $status, want a failure" \
    "$([ "$status" != 0 ]; echo $?)"
  check "$branch: the skip names the versions and the fixes: \"$reason\"" \
    "$(has "$reason" "imgcraft needs Rust $wanted or newer and RUSTVERSION is 1.70: add a layer with a newer Rust")"
  check "$branch: the skip names the host-tool fix" "$(has "$reason" 'IMGCRAFT_NATIVE_DEPENDS = "" and add rootfs2image to HOSTTOOLS')"
}
