#!/usr/bin/env bash
# Make the seed corpora of the fuzz targets (fuzz/fuzz_targets/*.rs): small valid inputs of every format each
# target reads, so that the fuzzer starts from inputs that go deep. Idempotent: each seed is written anew by name.
#
# Usage: scripts/make-fuzz-corpus.sh [OUTDIR]     (default <repo>/fuzz/corpus; one directory per target)
#   The OCI documents and archives are written by the built tool (target/release/rootfs2image, built if missing).
#   Package-database seeds also come from $IMGCRAFT_FIXTURES/packages when scripts/make-package-fixtures.sh made it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(realpath -m "${1:-$REPO/fuzz/corpus}")
FIXTURES=${IMGCRAFT_FIXTURES:-$REPO/target/fixtures}
BIN=$REPO/target/release/rootfs2image
command -v cargo >/dev/null || export PATH="${HOME:-/root}/.cargo/bin:$PATH"
for tool in tar gzip xz zstd bzip2; do
  command -v "$tool" >/dev/null || { echo "error: missing $tool (apt-get install $tool)" >&2; exit 1; }
done

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
TAR=(tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner)

seed() { # seed TARGET NAME: the seed's content from standard input
  mkdir -p "$OUT/$1"
  cat >"$OUT/$1/$2"
}

tars() { # small tars of one tree in the formats a rootfs may come in: ustar, GNU, PAX with xattrs, long names
  echo "tars: ustar, gnu and pax archives of a tree with long names, links, a fifo and xattrs"
  local tree=$SCRATCH/tree long
  mkdir -p "$tree/etc" "$tree/usr/bin" "$tree/var/empty"
  echo "fuzz" >"$tree/etc/hostname"
  printf '#!/bin/sh\necho hi\n' >"$tree/usr/bin/hello" && chmod 4755 "$tree/usr/bin/hello"
  ln -s ../../etc/hostname "$tree/usr/bin/link"
  ln "$tree/etc/hostname" "$tree/etc/hardlink"
  long=$(printf 'd%.0s' {1..120})
  mkdir -p "$tree/$long" && echo long >"$tree/$long/$(printf 'f%.0s' {1..110})"
  mkfifo "$tree/var/fifo"
  if [[ $(id -u) == 0 ]]; then mknod "$tree/var/null" c 1 3 && mknod "$tree/var/loop" b 7 0; fi
  setfattr -n user.fuzz -v seed "$tree/etc/hostname" 2>/dev/null || true
  for format in ustar gnu pax; do
    "${TAR[@]}" --format=$format --xattrs -C "$tree" -cf "$SCRATCH/$format.tar" . 2>/dev/null ||
      "${TAR[@]}" --format=$format -C "$SCRATCH/tree" -cf "$SCRATCH/$format.tar" etc usr var
    seed tar_normalize "$format.tar" <"$SCRATCH/$format.tar"
  done
  "${TAR[@]}" --format=pax --pax-option=globexthdr.name=g,mtime:=1700000000.5 -C "$tree" -cf - etc |
    seed tar_normalize pax-global.tar
  seed tar_normalize empty.tar < <(head -c 1024 /dev/zero)
}

compressed() { # the pax tar in each compression the input reader decodes
  echo "decompress: the pax tar as gzip, xz, zstd and bzip2, and a concatenated gzip"
  seed decompress plain.tar <"$SCRATCH/pax.tar"
  gzip -9n <"$SCRATCH/pax.tar" | seed decompress tar.gz
  xz -T1 <"$SCRATCH/pax.tar" | seed decompress tar.xz
  zstd -q -c <"$SCRATCH/pax.tar" | seed decompress tar.zst
  bzip2 <"$SCRATCH/pax.tar" | seed decompress tar.bz2
  { head -c 5000 "$SCRATCH/pax.tar" | gzip -n; tail -c +5001 "$SCRATCH/pax.tar" | gzip -n; } | seed decompress multi.tar.gz
}

packages() { # dpkg and opkg databases as `head` prints them: status, then `==> NAME.list <==` and each list
  echo "packages: dpkg and opkg status files with their list files"
  seed packages dpkg <<'SEED'
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Installed-Size: 12000
Depends: libgcc-s1

Package: hello
Status: install ok installed
Architecture: amd64
Installed-Size: 100
Pre-Depends: dpkg (>= 1.15)
Depends: libc6 (>= 2.34)
Description: example
 more text
 .

Package: gone
Status: deinstall ok config-files
Architecture: amd64

==> libc6:amd64.list <==
/.
/lib
/lib/x86_64-linux-gnu/libc.so.6

==> hello.list <==
/.
/usr/bin/hello
SEED
  seed packages opkg <<'SEED'
Package: busybox
Version: 1.36
Depends: libc6 (>= 2.39)
Status: install user installed
Architecture: cortexa57
Installed-Size: 600000

Package: old
Status: deinstall ok not-installed

==> busybox.list <==
/bin/busybox.nosuid	0100755
/bin/sh	0120777	/bin/busybox.nosuid
SEED
  local db=$FIXTURES/packages/dpkg/v1/var/lib/dpkg
  if [[ -f $db/status ]]; then
    echo "packages: the dpkg fixture's status and two of its lists ($db)"
    (cd "$db/info" && head -c 4000 ../status && for list in hello.list gzip.list; do
      printf '\n==> %s <==\n' "$list" && head -n 20 "$list"; done) | seed packages dpkg-fixture
  fi
}

pkgdata() { # pkgdata runtime files as OE-core's emit_pkgdata writes them
  echo "pkgdata: runtime files with FILES_INFO, RDEPENDS and escapes"
  seed pkgdata busybox <<'SEED'
PN: busybox
PV: 1.36.1
PR: r0
PKGV: 1.36.1
PKG:busybox: busybox
RDEPENDS:busybox: libc6 (>= 2.39) update-alternatives-opkg
FILES_INFO:busybox: {"/bin/busybox.nosuid": 600000, "/etc/busybox.links": 120}
PKGSIZE:busybox: 600120
DESCRIPTION:busybox: Tiny versions of many common UNIX utilities\nin a single small executable.\u00e9
SEED
  local runtime=$FIXTURES/packages/yocto/v1/pkgdata/runtime
  if [[ -f $runtime/busybox-static ]]; then
    echo "pkgdata: the yocto fixture's busybox-static ($runtime)"
    head -c 8000 "$runtime/busybox-static" | seed pkgdata busybox-static
  fi
}

references() { # what users type as image references
  echo "reference: layouts, archives, registry references and image names"
  local i=0 ref
  for ref in oci:layout oci:layout:1.0 oci-archive:image.tar oci-archive:image.tar:myorg/app:1.0 \
    docker-archive:image.tar docker-archive:image.tar:myorg/app:1.0 docker://localhost:5000/a/b:tag \
    docker://registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
    "docker://[::1]:5000/app" myorg/app:1.0 ubuntu library/ubuntu:22.04 quay.io/org/app:v1; do
    i=$((i + 1))
    printf '%s' "$ref" | seed reference "ref-$i"
  done
}

auth() { # WWW-Authenticate values and token answers as registries send them
  echo "registry_auth: challenges and token answers"
  printf '%s' 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"' | seed registry_auth docker-hub
  printf '%s' 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull,push"' | seed registry_auth ghcr
  printf '%s' 'Basic realm="Registry Realm"' | seed registry_auth basic
  printf '%s' 'bearer realm=http://127.0.0.1:1/t, service = "a\"b" , scope=x' | seed registry_auth unquoted
  printf '%s' '{"token":"eyJhbGciOi.x.y","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}' | seed registry_auth token
  printf '%s' '{"access_token":"abc","token":""}' | seed registry_auth access-token
}

images() { # OCI documents, archives and a layout written by the tool from a tiny rootfs
  [[ -x $BIN ]] || { echo "images: building $BIN"; (cd "$REPO" && cargo build --release --quiet); }
  echo "images: documents, archives and a layout written by $BIN from a tiny rootfs"
  local work=$SCRATCH/images
  mkdir -p "$work/rootfs/etc" && echo fuzz >"$work/rootfs/etc/hostname"
  "$BIN" "$work/rootfs" --arch amd64 -o "oci:$work/layout:1.0" -o "oci-archive:$work/oci.tar:fuzz:1.0" \
    -o "docker-archive:$work/docker.tar:fuzz:1.0" >/dev/null
  seed oci_documents index.json <"$work/layout/index.json"
  local blob n=0
  for blob in "$work"/layout/blobs/sha256/*; do
    [[ $(head -c 1 "$blob") == "{" ]] || continue
    n=$((n + 1))
    seed oci_documents "blob-$n" <"$blob"
  done
  seed inspect_archive oci.tar <"$work/oci.tar"
  seed inspect_archive docker.tar <"$work/docker.tar"
  "${TAR[@]}" -C "$work/layout" -cf - . | seed inspect_layout layout.tar
  # The harness's archive holds config.json and layer.tar beside the manifest.json under test.
  printf '%s' '[{"Config":"config.json","RepoTags":["fuzz:1.0"],"Layers":["layer.tar"]}]' |
    seed docker_manifest_json manifest.json
  tar -xOf "$work/docker.tar" manifest.json 2>/dev/null | seed docker_manifest_json written-by-tool.json
}

tars
compressed
packages
pkgdata
references
auth
images
for dir in "$OUT"/*/; do printf '  %-22s %s seeds\n' "$(basename "$dir")" "$(find "$dir" -type f | wc -l)"; done
echo "seed corpora in $OUT"
