SUMMARY = "rootfs check: a container image of this layer's packages, installed by OE-core's do_rootfs with opkg"
LICENSE = "MIT"

IMAGE_INSTALL = "imgcraft-rootfs-hello imgcraft-rootfs-data imgcraft-rootfs-conf"
IMAGE_LINGUAS = ""
# Only the container image (the class appends imgcraft; its tar dependency stays a work file).
IMAGE_FSTYPES = ""

inherit core-image imgcraft

# No base-passwd/busybox bootstrap: only this layer's packages are built here.
ROOTFS_BOOTSTRAP_INSTALL = ""
# IMGCRAFT_LAYERS stays the class's default: packages (PKGDATA_DIR and IMAGE_MANIFEST of this real do_rootfs).
