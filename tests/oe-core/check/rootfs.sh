# shellcheck shell=bash disable=SC2016 # ${...} in single quotes is BitBake syntax, written as is
# Part of scripts/oe-core-check.sh: `bitbake imgcraft-rootfs-image`, a real do_rootfs (OE-core's own, opkg installing
# the ipk packages of tests/oe-core/rootfs-layer), layered by packages, run in Docker, then rebuilt with one package
# changed.

ROOTFS_IMAGE=imgcraft-rootfs-image
ROOTFS_LAYER=$REPO/tests/oe-core/rootfs-layer
ROOTFS_MACHINE=qemux86-64
ROOTFS_PLATFORM="amd64 - True"
ROOTFS_PACKAGES="imgcraft-rootfs-hello imgcraft-rootfs-data imgcraft-rootfs-conf"
ROOTFS_CHANGED=imgcraft-rootfs-hello
OPKG_GIT=${IMGCRAFT_OPKG_GIT:-}
OPKG_UTILS_GIT=${IMGCRAFT_OPKG_UTILS_GIT:-}
OPKG_PREFIX=$OE_DIR/host-opkg
# Debian packages opkg's build needs (configured with libsolv, as OE-core's opkg recipe is).
OPKG_BUILD_DEPS="autoconf automake libtool pkg-config make gcc libarchive-dev libsolv-dev libsolvext-dev libzstd-dev
  liblzma-dev libbz2-dev"

# Native recipes the image's task graph reaches that cannot be fetched here, with what stands in for them: the
# host's opkg (built by build_host_opkg), opkg-build, opkg-make-index and update-alternatives (opkg-utils), pseudo,
# quilt, tar, zstd; QEMU, localedef, ldconfig, update-rc.d, systemctl and kmod have nothing to do for this image.
# makedevs-native and depmodwrapper-cross build for real (they need no fetch).
ROOTFS_PROVIDED="pseudo-native opkg-native opkg-utils-native virtual/update-alternatives-native rpm-native
  dwarfsrcfiles-native quilt-native patch-replacement-native tar-replacement-native zstd-native qemu-system-native
  qemu-helper-native cross-localedef-native update-rc.d-native ldconfig-native systemd-systemctl-native
  systemd-tools-native kmod-native"

check_rootfs_inputs() {
  local var
  for var in IMGCRAFT_OPKG_GIT IMGCRAFT_OPKG_UTILS_GIT; do
    [ -n "${!var:-}" ] || die "$var is not set: the rootfs check builds opkg and takes opkg-utils from their git dirs" \
      "opkg and opkg-utils are in no package registry: point IMGCRAFT_OPKG_GIT at a git dir of opkg (e.g. a mirror of moto-timo/opkg) and IMGCRAFT_OPKG_UTILS_GIT at one of opkg-utils" \
      "or leave the rootfs check out of IMGCRAFT_OE_CHECKS"
    git --git-dir="${!var}" rev-parse --git-dir >/dev/null 2>&1 || die "\`${!var}\` (from $var) is not a git dir"
  done
  [ -x "$TOOLS/rootfs2image" ] || die "\`$TOOLS/rootfs2image\` does not exist" \
    "the rootfs check's image uses the host's rootfs2image: run \`cargo build --release\` or set IMGCRAFT_OE_TOOLS"
  [ -f /tmp/imgcraft-test-env/env.sh ] || die "no Docker test environment (/tmp/imgcraft-test-env/env.sh)" \
    "run scripts/setup-test-env.sh"
  if ! command -v busybox >/dev/null || ! file -L "$(command -v busybox)" | grep -q 'statically linked'; then
    apt_install busybox-static
  fi
}

# build_host_opkg: opkg built from IMGCRAFT_OPKG_GIT into OPKG_PREFIX (redone only when its commit moved), and
# opkg-utils' scripts from IMGCRAFT_OPKG_UTILS_GIT, linked into OPKG_PREFIX/bin.
build_host_opkg() {
  local missing=() dep commit src=$OPKG_PREFIX/src
  for dep in $OPKG_BUILD_DEPS python3; do dpkg -s "$dep" >/dev/null 2>&1 || missing+=("$dep"); done
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  unpack "$OPKG_UTILS_GIT" HEAD "$OPKG_PREFIX/opkg-utils"
  # Its Python scripts say `env python`, which Debian has no more (and HOSTTOOLS does not link): python3 runs them.
  sed -i '1s|^#!/usr/bin/env python$|#!/usr/bin/env python3|' "$OPKG_PREFIX"/opkg-utils/opkg-make-index
  commit=$(git --git-dir="$OPKG_GIT" rev-parse HEAD)
  if [ "$(cat "$OPKG_PREFIX/.opkg-commit" 2>/dev/null)" != "$commit" ] || [ ! -x "$OPKG_PREFIX/inst/bin/opkg" ]; then
    say "building opkg ${commit:0:10} into $OPKG_PREFIX/inst (log: $OPKG_PREFIX/build.log)"
    rm -rf "$src" "$OPKG_PREFIX/inst"
    mkdir -p "$src"
    git --git-dir="$OPKG_GIT" archive "$commit" | tar -x -C "$src"
    (cd "$src" && ./autogen.sh && ./configure --prefix="$OPKG_PREFIX/inst" --localstatedir=/var --sysconfdir=/etc \
      --with-libsolv --enable-zstd --enable-xz --enable-bzip2 --disable-curl --disable-gpg --enable-sha256 &&
      make -j"$(nproc)" && make install) >"$OPKG_PREFIX/build.log" 2>&1 ||
      die "building opkg failed, see $OPKG_PREFIX/build.log"
    echo "$commit" >"$OPKG_PREFIX/.opkg-commit"
  fi
  mkdir -p "$OPKG_PREFIX/bin"
  ln -sf ../inst/bin/opkg "$OPKG_PREFIX/bin/opkg"
  for dep in opkg-build update-alternatives; do
    ln -sf "../opkg-utils/$dep" "$OPKG_PREFIX/bin/$dep"
  done
  # wrynose's do_rootfs indexes with `--checksum md5 --checksum sha256`, which this opkg-make-index (2017) does not
  # know; it writes MD5Sum always, which opkg verifies. master passes no --checksum (opkg gets --force-checksum).
  rm -f "$OPKG_PREFIX/bin/opkg-make-index"
  printf '%s\n' '#!/bin/sh' '# Written by tests/oe-core/check/rootfs.sh: opkg-utils'"'"' opkg-make-index without --checksum ALG.' \
    'skip=' 'for a do' '  shift' '  if [ -n "$skip" ]; then skip=; continue; fi' \
    '  case $a in --checksum) skip=1; continue ;; --checksum=*) continue ;; esac' '  set -- "$@" "$a"' 'done' \
    "exec python3 $OPKG_PREFIX/opkg-utils/opkg-make-index \"\$@\"" >"$OPKG_PREFIX/bin/opkg-make-index"
  chmod 0755 "$OPKG_PREFIX/bin/opkg-make-index"
  "$OPKG_PREFIX/bin/opkg" --version >/dev/null 2>&1 || die "the built opkg does not run: $OPKG_PREFIX/bin/opkg"
}

# The local.conf lines of <branch>/build-rootfs: packages (ipk), OE-core's own do_rootfs with the host's opkg,
# create-spdx on (nodistro's default), the provenance on, the host's rootfs2image.
rootfs_conf() {
  local input=$1
  # shellcheck disable=SC2086 # the stand-in list is split into words on purpose, onto one line
  printf '%s\n' 'PACKAGE_CLASSES = "package_ipk"' 'IMAGE_PKGTYPE = "ipk"' 'BB_NUMBER_THREADS = "2"' \
    'PARALLEL_MAKE = "-j 2"' 'BB_NO_NETWORK = "1"' \
    '# No uninative (nothing to fetch it from); create-spdx stays on.' 'INHERIT_DISTRO:remove = "uninative"' \
    '# Stand-ins for recipes that need upstream sources (see tests/oe-core/check/rootfs.sh).' \
    'INIT_MANAGER = "mdev-busybox"' \
    "ASSUME_PROVIDED += \"$(printf '%s ' $ROOTFS_PROVIDED)\"" \
    'PREFERRED_PROVIDER_virtual/fakeroot-native = "pseudo-host-native"' \
    'KERNEL_DEPLOY_DEPEND = ""' 'KERNELDEPMODDEPEND = ""' 'LDCONFIGDEPEND = ""' 'SKIP_FILEDEPS = "1"' \
    'OPKGBUILDCMD = "opkg-build -Z xz"' \
    'HOSTTOOLS += "opkg opkg-build opkg-make-index update-alternatives quilt pseudo ar"' \
    '# rootfs2image from the host (IMGCRAFT_OE_TOOLS), as the layer'"'"'s README tells users without the Rust.' \
    'HOSTTOOLS += "rootfs2image"' 'IMGCRAFT_NATIVE_DEPENDS = ""' \
    '# The provenance is opt-in; the check reads MACHINE and IMAGE from it.' 'IMGCRAFT_PROVENANCE = "1"' \
    "IMGCRAFT_ROOTFS_INPUT = \"$input\""
  if [ "$(id -u)" = 0 ]; then
    printf '%s\n' '# BitBake runs as root here: every root-owned file would trip this check.' \
      'ERROR_QA:remove = "host-user-contaminated"' 'WARN_QA:remove = "host-user-contaminated"'
  fi
  fakeroot_conf
  # What scarthgap's image.bbclass adds to that list (master and wrynose track PSEUDO_INCLUDE_PATHS instead, which
  # Debian's pseudo does not know): without it a rebuild's do_rootfs can abort on an inode that pseudo's database
  # still gives to the deleted sstate-build-image_complete ("path mismatch").
  printf '%s\n' 'PSEUDO_IGNORE_PATHS:append = ",${WORKDIR}/intercept_scripts,${WORKDIR}/oe-rootfs-repo,${WORKDIR}/sstate-build-image_complete"'
}

# rootfs_layers ARCHIVE: one `digest package...` line per layer (the packages annotation), as tests/bitbake.rs reads
# it: `rootfs2image diff --json` of the image with itself.
rootfs_layers() {
  "$TOOLS/rootfs2image" diff --json "oci-archive:$1" "oci-archive:$1" |
    python3 -c 'import json, sys
for l in json.load(sys.stdin)["shared_layers"]: print(l["digest"], *l["packages"])'
}

# rootfs_files ARCHIVE: `digest path` for every regular file of every layer.
rootfs_files() {
  python3 - "$1" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as outer:
    def read(name):
        return outer.extractfile(name).read()
    index = json.loads(read("index.json"))
    manifest = json.loads(read("blobs/" + index["manifests"][0]["digest"].replace(":", "/")))
    import io
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(read("blobs/" + layer["digest"].replace(":", "/")))) as t:
            for e in t:
                if e.isreg() or e.issym():
                    print(layer["digest"], e.name[2:] if e.name.startswith("./") else e.name)
EOF
}

# rootfs_attached ARCHIVE SBOM: what is attached to the archive's image (OCI 1.1 artifacts listed in index.json whose
# subject is the image): `sbom attached` when one holds the SBOM file's bytes, else `sbom missing`; the provenance's
# build parameters as `param KEY=VALUE` and its dependencies as `dependency NAME URI DIGEST`.
rootfs_attached() {
  python3 - "$1" "$2" <<'EOF'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    def read(name):
        return archive.extractfile(name).read()
    index = json.loads(read("index.json"))
    image = [m for m in index["manifests"] if "artifactType" not in m][0]["digest"]
    sbom = open(sys.argv[2], "rb").read()
    found = False
    for entry in index["manifests"]:
        if "artifactType" not in entry:
            continue
        manifest = json.loads(read("blobs/" + entry["digest"].replace(":", "/")))
        if manifest.get("subject", {}).get("digest") != image:
            continue
        content = read("blobs/" + manifest["layers"][0]["digest"].replace(":", "/"))
        found = found or content == sbom
        if "in-toto" in entry["artifactType"]:
            definition = json.loads(content).get("predicate", {}).get("buildDefinition", {})
            for value in definition.get("externalParameters", {}).values():
                if isinstance(value, dict):
                    for key, v in sorted(value.items()):
                        if isinstance(v, str):
                            print("param %s=%s" % (key, v))
            for dep in definition.get("resolvedDependencies", []):
                print("dependency", dep.get("name"), dep.get("uri", "-"), json.dumps(dep.get("digest", {})))
    print("sbom attached" if found else "sbom missing")
EOF
}

# rootfs_build BRANCH ROOT BUILD LABEL: bitbake the image; the archive it deployed is copied to BUILD/LABEL.oci.tar.
rootfs_build() {
  local branch=$1 root=$2 build=$3 label=$4 log=$3/$4.log start status deploy
  start=$SECONDS
  status=0
  PATH="$OPKG_PREFIX/bin:$PATH" bitbake_in "$build" "$root/bitbake" "$ROOTFS_MACHINE" -- "$ROOTFS_IMAGE" >"$log" 2>&1 ||
    status=$?
  took "$branch rootfs: bitbake $ROOTFS_IMAGE ($label)" "$start" "$status" "$log"
  grep -h 'Sstate summary\|^NOTE: Tasks Summary' "$log" | sed 's/^/    /' || true
  check "$branch rootfs: bitbake $ROOTFS_IMAGE ($label) exit $status" "$status"
  [ "$status" = 0 ] || { errors "$log"; return 1; }
  deploy=$(find "$build"/tmp*/deploy/images/"$ROOTFS_MACHINE" -maxdepth 1 -name "$ROOTFS_IMAGE-$ROOTFS_MACHINE.rootfs.oci.tar" | head -n1)
  [ -n "$deploy" ] || deploy=$(find "$build"/tmp*/deploy/images/"$ROOTFS_MACHINE" -maxdepth 1 -name "$ROOTFS_IMAGE-$ROOTFS_MACHINE*.oci.tar" -type l | head -n1)
  check "$branch rootfs: the build deployed ${deploy:-(no .oci.tar link)}" "$([ -f "$deploy" ]; echo $?)"
  [ -f "$deploy" ] || return 1
  cp -L "$deploy" "$build/$label.oci.tar"
}

rootfs_checks() {
  local branch=$1 root=$2 build=$2/build-rootfs input start status layers files got pkg n holder env tmp
  local manifest pkgdata spdx out conf
  say "$branch rootfs: bitbake $ROOTFS_IMAGE (OE-core's do_rootfs, opkg $(cut -c1-10 "$OPKG_PREFIX/.opkg-commit"), packages layering, the host's rootfs2image)"
  input=$build/rootfs-input
  mkdir -p "$input"
  printf 'hello from imgcraft\n' | write_file "$input/greeting"
  mapfile -t conf < <(rootfs_conf "$input")
  setup_build "$build" "$root/openembedded-core" "$CHECKOUT_LAYER $ROOTFS_LAYER" "${conf[@]}"
  fresh_tmp "$build"

  env=$build/env-rootfs.txt
  start=$SECONDS
  status=0
  PATH="$OPKG_PREFIX/bin:$PATH" bitbake_in "$build" "$root/bitbake" "$ROOTFS_MACHINE" -- -e "$ROOTFS_IMAGE" >"$env" 2>&1 || status=$?
  took "$branch rootfs: parse (bitbake -e $ROOTFS_IMAGE)" "$start" "$status" "$env"
  check "$branch rootfs: bitbake -e $ROOTFS_IMAGE exit $status" "$status"
  [ "$status" = 0 ] || { errors "$env"; return 0; }
  check "$branch rootfs: IMGCRAFT_LAYERS is \"$(var IMGCRAFT_LAYERS "$env")\"" "$(is "$(var IMGCRAFT_LAYERS "$env")" packages)"
  check "$branch rootfs: IMAGE_PKGTYPE is \"$(var IMAGE_PKGTYPE "$env")\"" "$(is "$(var IMAGE_PKGTYPE "$env")" ipk)"
  check "$branch rootfs: create-spdx is inherited" "$(has " $(var INHERIT "$env") " " create-spdx ")"

  rootfs_build "$branch" "$root" "$build" first || return 0
  # IMAGE_MANIFEST as do_image_complete deployed it (`bitbake -e` gave the name of another DATETIME): its link.
  manifest=$(var DEPLOY_DIR_IMAGE "$env")/$(var IMAGE_LINK_NAME "$env").manifest
  pkgdata=$(var PKGDATA_DIR "$env")
  printf '    IMAGE_MANIFEST: %s\n' "$(tr '\n' ';' <"$manifest" 2>/dev/null)"
  for pkg in $ROOTFS_PACKAGES; do
    check "$branch rootfs: IMAGE_MANIFEST lists $pkg" "$(grep -q "^$pkg " "$manifest" 2>/dev/null; echo $?)"
    check "$branch rootfs: pkgdata has runtime/$pkg" "$([ -f "$pkgdata/runtime/$pkg" ]; echo $?)"
  done
  check "$branch rootfs: opkg ran in do_rootfs" \
    "$(grep -qs 'opkg' "$(var T "$env")/log.do_rootfs"; echo $?)"
  # The image's SBOM, by its link: SPDX 3.0's .spdx.json (deployed by do_create_image_sbom_spdx), else SPDX 2.2's
  # .spdx.tar.zst (scarthgap: written by do_rootfs, deployed with the image).
  spdx=$(var DEPLOY_DIR_IMAGE "$env")/$(var IMAGE_LINK_NAME "$env")
  if [ -e "$spdx.spdx.json" ]; then spdx=$spdx.spdx.json; else spdx=$spdx.spdx.tar.zst; fi
  check "$branch rootfs: create-spdx deployed $spdx" "$([ -e "$spdx" ]; echo $?)"

  got=$("$TOOLS/rootfs2image" inspect --json "oci-archive:$build/first.oci.tar" |
    python3 -c 'import json, sys; i = json.load(sys.stdin); print(i["architecture"], i.get("variant") or "-", i["verified"])') ||
    got="(inspect failed)"
  check "$branch rootfs: rootfs2image inspect gives \"$got\", want \"$ROOTFS_PLATFORM\"" "$(is "$got" "$ROOTFS_PLATFORM")"

  # imgcraft_supply_chain.bbclass: that SBOM is attached, byte for byte, and the provenance names the build.
  got=$(rootfs_attached "$build/first.oci.tar" "$spdx")
  printf '%s\n' "$got" | sed 's/^/    /'
  check "$branch rootfs: the deployed SBOM is attached to the image byte for byte" "$(has "$got" "sbom attached")"
  check "$branch rootfs: the provenance records MACHINE=$ROOTFS_MACHINE" "$(has "$got" "param MACHINE=$ROOTFS_MACHINE")"
  check "$branch rootfs: the provenance records IMAGE=$ROOTFS_IMAGE" "$(has "$got" "param IMAGE=$ROOTFS_IMAGE")"

  layers=$(rootfs_layers "$build/first.oci.tar")
  files=$(rootfs_files "$build/first.oci.tar")
  printf '%s\n' "$layers" | sed 's/^/    layer /'
  for pkg in $ROOTFS_PACKAGES; do
    n=$(printf '%s\n' "$layers" | awk -v p="$pkg" '{ for (i = 2; i <= NF; i++) if ($i == p) n++ } END { print n + 0 }')
    check "$branch rootfs: $pkg is named by $n layer annotations, want 1" "$(is "$n" 1)"
    holder=$(printf '%s\n' "$layers" | awk -v p="$pkg" '{ for (i = 2; i <= NF; i++) if ($i == p) print $1 }')
    # Every file pkgdata gives the package (FILES_INFO) sits in that layer and no other.
    n=0
    for f in $(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    if line.startswith("FILES_INFO:"): print(" ".join(p.lstrip("/") for p in json.loads(line.split(": ", 1)[1])))' \
      "$pkgdata/runtime/$pkg"); do
      n=$((n + 1))
      got=$(printf '%s\n' "$files" | awk -v f="$f" '$2 == f { print $1 }' | sort -u | tr '\n' ' ')
      printf '    %s: /%s in %s\n' "$pkg" "$f" "${got:-no layer}"
      check "$branch rootfs: $pkg's /$f is in layer(s) ${got:-none}, want ${holder:-none}" "$(is "$got" "${holder:+$holder }")"
    done
    check "$branch rootfs: pkgdata gives $pkg $n file(s)" "$([ "$n" -gt 0 ]; echo $?)"
  done

  # Docker: the image has no shell (only this layer's packages), so the host's static busybox runs the script.
  start=$SECONDS
  out=$(
    # shellcheck source=/dev/null
    . /tmp/imgcraft-test-env/env.sh
    image=$("$DOCKER" load -i "$build/first.oci.tar" | sed -n 's/^Loaded image[^:]*: //p' | tail -n1)
    echo "image $image"
    "$DOCKER" run --rm -v "$(readlink -f "$(command -v busybox)"):/.imgcraft/busybox:ro" "$image" \
      /.imgcraft/busybox sh /usr/bin/imgcraft-hello 2>&1
    "$DOCKER" rmi -f "$image" >/dev/null 2>&1 || true
  ) || true
  took "$branch rootfs: docker load + run" "$start" 0
  printf '%s\n' "$out" | sed 's/^/    docker: /'
  check "$branch rootfs: docker runs /usr/bin/imgcraft-hello: \"$(printf '%s' "$out" | tail -n1)\"" \
    "$(is "$(printf '%s' "$out" | tail -n1)" 'hello from imgcraft')"

  # One package changed: only its layer (and the top one, if any) differ.
  printf 'hello again from imgcraft\n' | write_file "$input/greeting"
  rootfs_build "$branch" "$root" "$build" rebuilt || return 0
  got=$(rootfs_layers "$build/rebuilt.oci.tar")
  printf '%s\n' "$got" | sed 's/^/    layer /'
  "$TOOLS/rootfs2image" diff --json "oci-archive:$build/first.oci.tar" "oci-archive:$build/rebuilt.oci.tar" >"$build/diff.json"
  tmp=$(python3 - "$build/diff.json" "$ROOTFS_CHANGED" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for key in ("shared_layers", "new_layers", "removed_layers"):
    for l in d.get(key) or []:
        print(key, l["digest"], *(l.get("packages") or ["-"]))
EOF
)
  printf '%s\n' "$tmp" | sed 's/^/    diff /'
  for pkg in $ROOTFS_PACKAGES; do
    holder=$(printf '%s\n' "$layers" | awk -v p="$pkg" '{ for (i = 2; i <= NF; i++) if ($i == p) print $1 }')
    n=$(printf '%s\n' "$got" | awk -v d="$holder" '$1 == d' | wc -l)
    if [ "$pkg" = "$ROOTFS_CHANGED" ]; then
      check "$branch rootfs: the changed $pkg's layer is new after the rebuild" "$(is "$n" 0)"
      n=$(printf '%s\n' "$tmp" | awk -v p="$pkg" '$1 == "new_layers" { for (i = 3; i <= NF; i++) if ($i == p) n++ } END { print n + 0 }')
      check "$branch rootfs: one new layer names $pkg ($n)" "$(is "$n" 1)"
    else
      check "$branch rootfs: $pkg's layer ${holder:0:19} is unchanged after the rebuild" "$(is "$n" 1)"
    fi
  done
  # New layers: the changed package's, and at most one more without packages (the top layer).
  n=$(printf '%s\n' "$tmp" | awk -v p="$ROOTFS_CHANGED" '$1 == "new_layers" { other = 0; for (i = 3; i <= NF; i++) if ($i != p && $i != "-") other = 1; n += other } END { print n + 0 }')
  check "$branch rootfs: no new layer holds an unchanged package ($n)" "$(is "$n" 0)"
}
