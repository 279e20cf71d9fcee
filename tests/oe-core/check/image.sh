# shellcheck shell=bash disable=SC2016 # ${...} in single quotes is BitBake syntax, written as is
# Part of scripts/oe-core-check.sh: `bitbake imgcraft-test-container`, the real task graph, for each MACHINE that
# platforms.txt gives a rootfs fixture, and what the build deployed.

BUILD_IMAGE=imgcraft-test-container

check_image_inputs() {
  local branch needs_host=
  for branch in "$@"; do in_list "$branch" "$NATIVE_BRANCHES" && wants native || needs_host=1; done
  [ -z "$needs_host" ] || [ -x "$TOOLS/rootfs2image" ] || die "\`$TOOLS/rootfs2image\` does not exist" \
    "branches that do not build imgcraft-native (not in IMGCRAFT_OE_NATIVE_BRANCHES) build images with the host's" \
    "run \`cargo build --release\`, or set IMGCRAFT_OE_TOOLS to the directory that holds rootfs2image" \
    "or leave the image check out: IMGCRAFT_OE_CHECKS=\"parse native\""
  [ -f "$FIXTURES/rootfs-arm64.tar" ] || die "no rootfs fixtures in \`$FIXTURES\`" \
    "run scripts/make-fixtures.sh, or set IMGCRAFT_FIXTURES"
}

# What image.bbclass's task graph pulls in besides imgcraft-native (tests/oe-core/recipes/imgcraft-test-container.bb
# wants no package, locale, kernel or QEMU): the package manager and tools of OE-core's do_rootfs, which the test
# image's do_rootfs does not run (it unpacks a fixture: no target package can be built without upstream sources),
# the image's patch tool (nothing to patch) and the archivers of do_image_tar, which the host has.
IMAGE_PROVIDED="opkg-native opkg-utils-native virtual/update-alternatives-native update-rc.d-native makedevs-native
  depmodwrapper-cross cross-localedef-native patch-replacement-native tar-replacement-native zstd-native"

# image_checks BRANCH ROOT NATIVE: the image builds in <branch>/build, with imgcraft-native from the native check's
# sstate when NATIVE is set, else with the host's rootfs2image.
image_checks() {
  local branch=$1 root=$2 native=$3
  fresh_tmp "$root/build"
  if [ -n "$native" ] && ! wants native; then
    say "$branch: images with imgcraft-native from sstate (or built here if sstate lacks it)"
  fi
  each_machine image_if_fixture "$branch" "$root/build" "$root/bitbake" "$native"
}

image_if_fixture() { # image_machine, for the machines platforms.txt gives a rootfs
  [ "${*: -1}" = - ] || image_machine "$@"
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

# fact NAME: the value of NAME in the image_facts of the calling image_machine.
fact() { printf '%s\n' "$facts" | awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }'; }

# image_machine BRANCH BUILD BITBAKE NATIVE MACHINE ARCH VARIANT ROOTFS
image_machine() {
  local branch=$1 build=$2 bitbake=$3 native=$4 machine=$5 want_arch=$6 want_variant=$7 rootfs=$FIXTURES/$8
  local log=$build/build-$machine.log env=$build/env-$machine-container.txt start status deploy link_name manifest
  local facts image got tool workdir
  say "$branch $machine: bitbake $BUILD_IMAGE, from $rootfs, with $([ -n "$native" ] && echo imgcraft-native || echo "the host's rootfs2image")"
  start=$SECONDS
  status=0
  bitbake_in "$build" "$bitbake" "$machine" "IMGCRAFT_TEST_ROOTFS=$rootfs" -- "$BUILD_IMAGE" >"$log" 2>&1 || status=$?
  took "$branch image $machine" "$start" "$status" "$log"
  grep -h 'Sstate summary' "$log" | sed 's/^/    /' || true
  check "$branch $machine: bitbake $BUILD_IMAGE exit $status" "$status"
  if [ "$status" != 0 ]; then
    errors "$log"
    return
  fi
  bitbake_in "$build" "$bitbake" "$machine" "IMGCRAFT_TEST_ROOTFS=$rootfs" -- -e "$BUILD_IMAGE" >"$env" 2>&1 ||
    { check "$branch $machine: bitbake -e $BUILD_IMAGE failed, see $env" 1; return; }
  deploy=$(var DEPLOY_DIR_IMAGE "$env")
  link_name=$(var IMAGE_LINK_NAME "$env")
  manifest=$(var IMAGE_OUTPUT_MANIFEST "$env")
  workdir=$(var WORKDIR "$env")
  facts=$(image_facts "$deploy" "$link_name" "$manifest")
  printf '%s\n' "$facts" | sed 's/^/    /'

  tool=$TOOLS/rootfs2image
  if [ -n "$native" ]; then
    # do_image_imgcraft ran imgcraft-native's rootfs2image from the image's native sysroot, which sstate filled.
    tool=$workdir/recipe-sysroot-native/usr/bin/rootfs2image
    check "$branch $machine: imgcraft-native's rootfs2image is in $BUILD_IMAGE's native sysroot" \
      "$([ -x "$tool" ]; echo $?)"
    check "$branch $machine: no do_compile of imgcraft-native in this build (it came from sstate)" \
      "$([ -z "$(task_log "$build" do_compile)" ]; echo $?)"
  fi

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
  if grep -q 'Skipping symlink' "$workdir/temp/log.do_image_imgcraft"; then
    check "$branch $machine: create_symlinks skipped a symlink in do_image_imgcraft" 1
  fi

  got=$("$tool" inspect --json "oci-archive:$deploy/$link_name.oci.tar" |
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
