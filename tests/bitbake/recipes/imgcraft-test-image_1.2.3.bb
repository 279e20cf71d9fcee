SUMMARY = "A container image from a prepared rootfs tarball, made by the imgcraft class"
LICENSE = "MIT"

inherit image imgcraft

# The prepared rootfs, a tarball that tar can read (run.py sets it in local.conf), and, for layering by packages, the
# package data and image manifest of the build that made it.
IMGCRAFT_TEST_ROOTFS ??= ""
IMGCRAFT_TEST_PKGDATA ??= ""
IMGCRAFT_TEST_MANIFEST ??= ""

# A fakeroot task (image.bbclass): tar runs under pseudo, which keeps the owners, modes, device nodes and xattrs of
# the tarball in its database, as OE-core's do_rootfs does for the packages it installs.
do_rootfs () {
    [ -n "${IMGCRAFT_TEST_ROOTFS}" ] || bbfatal "set IMGCRAFT_TEST_ROOTFS to a rootfs tarball"
    tar --xattrs --xattrs-include='*' --numeric-owner -xpf "${IMGCRAFT_TEST_ROOTFS}" -C "${IMAGE_ROOTFS}"
    bbnote "unpacked ${IMGCRAFT_TEST_ROOTFS} into ${IMAGE_ROOTFS}"
    # What OE-core's do_packagedata of each package and write_image_manifest leave for the image tasks.
    if [ -n "${IMGCRAFT_TEST_PKGDATA}" ]; then
        rm -rf "${PKGDATA_DIR}"
        mkdir -p "$(dirname "${PKGDATA_DIR}")"
        cp -a "${IMGCRAFT_TEST_PKGDATA}" "${PKGDATA_DIR}"
    fi
    if [ -n "${IMGCRAFT_TEST_MANIFEST}" ]; then
        cp "${IMGCRAFT_TEST_MANIFEST}" "${IMAGE_MANIFEST}"
    fi
}
