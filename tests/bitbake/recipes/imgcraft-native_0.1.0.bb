# meta-imgcraft's own imgcraft recipe builds rootfs2image with cargo.bbclass, which this configuration lacks (run.py
# masks it); the class only needs imgcraft-native:do_populate_sysroot, and the tool comes from PATH.
SUMMARY = "Stands in for meta-imgcraft's imgcraft-native: rootfs2image comes from PATH"
LICENSE = "MIT"

python do_populate_sysroot () {
    if not bb.utils.which(d.getVar('PATH'), 'rootfs2image'):
        bb.fatal("rootfs2image is not on PATH (%s): run `cargo build --release` first" % d.getVar('PATH'))
}
addtask populate_sysroot before do_build
