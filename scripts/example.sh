#!/usr/bin/env bash
# Builds rootfs2image and converts the bundled example rootfs (a busybox-based rootfs made by
# scripts/make-fixtures.sh from Debian's busybox-static, tarred the way Yocto does) into container images,
# then shows how to load and run them. Safe to rerun.
#
# Usage: scripts/example.sh            (as root: the example rootfs holds device nodes and setuid files)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
command -v cargo >/dev/null || export PATH="${HOME:-/root}/.cargo/bin:$PATH"
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;; esac

say() { printf '\n==> %s\n' "$*"; }

say "building rootfs2image (cargo build --release)"
cargo build --release --quiet
TOOL=$REPO/target/release/rootfs2image

say "making the example rootfs tarballs (scripts/make-fixtures.sh)"
bash scripts/make-fixtures.sh target/fixtures >/dev/null
OUT=$REPO/target/example
mkdir -p "$OUT"

say "converting target/fixtures/rootfs-amd64.tar.zst (architecture detected from its binaries)"
"$TOOL" target/fixtures/rootfs-amd64.tar.zst --tag imgcraft/example:amd64 \
  --label org.opencontainers.image.title=example -o "oci-archive:$OUT/example-amd64.oci.tar" -o "oci:$OUT/layout:amd64"

say "converting target/fixtures/rootfs-arm64.tar.zst with --arch arm64"
"$TOOL" target/fixtures/rootfs-arm64.tar.zst --arch arm64 --tag imgcraft/example:arm64 --compression zstd \
  -o "oci-archive:$OUT/example-arm64.oci.tar" -o "oci:$OUT/layout:arm64"

say "verifying and describing the amd64 image (rootfs2image inspect)"
"$TOOL" inspect "oci-archive:$OUT/example-amd64.oci.tar"

cat <<EOT

Done. Load and run the images with any engine:
  docker load -i $OUT/example-amd64.oci.tar && docker run --rm imgcraft/example:amd64 /bin/busybox echo hello
  podman load -i $OUT/example-arm64.oci.tar && podman run --rm --arch arm64 imgcraft/example:arm64 uname -m
  skopeo inspect oci:$OUT/layout:amd64
  umoci unpack --image $OUT/layout:arm64 bundle
EOT
