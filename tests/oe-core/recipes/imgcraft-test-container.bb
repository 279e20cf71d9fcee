SUMMARY = "A container image that scripts/oe-core-check.sh builds for real, from a prepared rootfs tarball"
LICENSE = "MIT"

# No package can be built here (no upstream sources), so the do_rootfs below unpacks a prepared tree instead of
# installing packages: the image installs none and wants no locale, kernel (modules, deployed kernel) or QEMU
# (qemuboot, which qemu.inc adds; removed before `inherit image`, which inherits IMAGE_CLASSES on scarthgap). The
# native tools OE-core's do_rootfs and do_image_tar would run are stood in for by scripts/oe-core-check.sh
# (ASSUME_PROVIDED), so that `bitbake imgcraft-test-container` runs the real task graph.
IMAGE_CLASSES:remove = "qemuboot"

inherit image imgcraft

IMAGE_INSTALL = ""
IMAGE_FEATURES = ""
IMAGE_LINGUAS = ""
ROOTFS_BOOTSTRAP_INSTALL = ""
PACKAGE_INSTALL = ""
KERNELDEPMODDEPEND = ""
KERNEL_DEPLOY_DEPEND = ""
LDCONFIGDEPEND = ""
# scarthgap's image.bbclass DEPENDS on it to run postinstall scripts under QEMU; this image runs none.
DEPENDS:remove = "qemuwrapper-cross"

# OE-core's own tarball beside the container image: create_symlinks must link both alike.
IMAGE_FSTYPES = "tar.zst"
IMGCRAFT_OUTPUTS = "archive layout"
# No package was built, so PKGDATA_DIR is empty and the class's default (layers by package) has nothing to go by:
# auto makes one layer of a rootfs without a package database.
IMGCRAFT_LAYERS = "auto"
# The prepared rootfs (the check passes it through the environment): no package can be built here.
IMGCRAFT_TEST_ROOTFS ??= ""

# Unpacks the tarball where OE-core's do_rootfs installs packages. Still a fakeroot task: pseudo records the owners,
# modes, device nodes and xattrs in its database, and do_image_imgcraft must find them there.
fakeroot python do_rootfs () {
    import subprocess
    tarball = d.getVar('IMGCRAFT_TEST_ROOTFS')
    if not tarball:
        bb.fatal("set IMGCRAFT_TEST_ROOTFS to a rootfs tarball")
    subprocess.run(['tar', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarball,
                    '-C', d.getVar('IMAGE_ROOTFS')], check=True)
    bb.note("unpacked %s into %s" % (tarball, d.getVar('IMAGE_ROOTFS')))
}

# scarthgap's do_rootfs also wants pigz-native (for package feeds); this do_rootfs writes none.
python () {
    deps = (d.getVarFlag('do_rootfs', 'depends') or '').split()
    d.setVarFlag('do_rootfs', 'depends', ' '.join(dep for dep in deps if not dep.startswith('pigz-native:')))
}
