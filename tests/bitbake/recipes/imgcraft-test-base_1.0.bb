SUMMARY = "A base image for imgcraft-test-image (IMGCRAFT_BASE_IMAGE = \"imgcraft-test-base\"), from a rootfs tarball"
LICENSE = "MIT"

inherit image imgcraft

IMGCRAFT_TEST_BASE_ROOTFS ??= "${IMGCRAFT_TEST_ROOTFS}"
IMGCRAFT_LAYERS = "single"
IMGCRAFT_PREVIOUS = ""

do_rootfs () {
    [ -n "${IMGCRAFT_TEST_BASE_ROOTFS}" ] || bbfatal "set IMGCRAFT_TEST_BASE_ROOTFS to a rootfs tarball"
    tar --xattrs --xattrs-include='*' --numeric-owner -xpf "${IMGCRAFT_TEST_BASE_ROOTFS}" -C "${IMAGE_ROOTFS}"
}
