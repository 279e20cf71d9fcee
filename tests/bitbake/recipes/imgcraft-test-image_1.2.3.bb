SUMMARY = "A container image from a prepared rootfs tarball, made by the imgcraft class"
LICENSE = "MIT"

inherit image imgcraft

# The prepared rootfs, a tarball that tar can read (run.py sets it in local.conf).
IMGCRAFT_TEST_ROOTFS ??= ""

# A fakeroot task (image.bbclass): tar runs under pseudo, which keeps the owners, modes, device nodes and xattrs of
# the tarball in its database, as OE-core's do_rootfs does for the packages it installs.
do_rootfs () {
    [ -n "${IMGCRAFT_TEST_ROOTFS}" ] || bbfatal "set IMGCRAFT_TEST_ROOTFS to a rootfs tarball"
    tar --xattrs --xattrs-include='*' --numeric-owner -xpf "${IMGCRAFT_TEST_ROOTFS}" -C "${IMAGE_ROOTFS}"
    bbnote "unpacked ${IMGCRAFT_TEST_ROOTFS} into ${IMAGE_ROOTFS}"
}
