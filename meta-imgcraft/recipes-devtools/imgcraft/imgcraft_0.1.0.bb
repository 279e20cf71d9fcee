# nooelint: oelint.var.mandatoryvar.HOMEPAGE,oelint.var.suggestedvar.BUGTRACKER,oelint.var.suggestedvar.CVE_PRODUCT - the recipe builds the repository it lives in; there is no separate upstream to point at
SUMMARY = "Turn root filesystems into exact, reproducible OCI container images"
DESCRIPTION = "rootfs2image converts a rootfs tarball or directory into a container image for docker, podman, skopeo and OCI registries, in one streaming pass; the imgcraft class runs it in do_image."
SECTION = "devel"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3333bf710aa10b5ce634e7b6f726972d"

# The layer lives in the imgcraft repository, whose root holds the crate. The fetcher copies exactly the crate's files
# from there (file://, found through FILESEXTRAPATHS), so:
#  - the checkout is only read, never written (externalsrc wrote into it at parse time and in do_configure), and a
#    read-only checkout (kas, CI containers) works;
#  - the task signatures hash those files and nothing else: editing the README or the tests reruns nothing, editing
#    src/ rebuilds imgcraft-native and with it every image;
#  - results go to sstate like any recipe's, so a second build directory takes imgcraft-native from it.
# A git SRC_URI with a pinned SRCREV would need a commit of this file after every commit of the crate it names.
# To hack on the tool inside a build: `devtool modify -n imgcraft-native /path/to/imgcraft` builds the working tree as
# it is (`imgcraft` for the target's).
# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext - the crate's files are at the repository root, outside the layer: no bbappend can point there
FILESEXTRAPATHS:prepend := "${@os.path.normpath(os.path.join(d.getVar('THISDIR'), '../../..'))}:"

inherit cargo

# zstd layers must come out byte for byte as from any other build of this version: keep the libzstd that Cargo.lock
# pins (zstd-sys bundles 1.5.7) rather than whatever zstd the sysroot has. OE-core master's cargo class asks zstd-sys
# to link the system's through pkg-config (ZSTD_SYS_USE_PKG_CONFIG, in oe_cargo_fix_env, which do_compile runs
# first); without pkg-config and zstd in DEPENDS that fails, and with them the output would follow OE's zstd.
oe_cargo_fix_env:append() {
    unset ZSTD_SYS_USE_PKG_CONFIG
}

# The crates first (crate:// with sha256, generated from Cargo.lock), then the crate's own files.
require ${BPN}-crates.inc
# nooelint: oelint.vars.inconspaces,oelint.vars.notneededspace - the items need the space after the crates the .inc adds
SRC_URI += " \
    file://Cargo.toml;subdir=${BP} \
    file://Cargo.lock;subdir=${BP} \
    file://LICENSE;subdir=${BP} \
    file://src;subdir=${BP} \
"

# The oldest Rust the crate builds with: Cargo.toml's rust-version (a test keeps the two equal). A release whose Rust
# is older skips the recipe at parse time, naming the fix, instead of failing in do_compile after rust-native built.
IMGCRAFT_RUST_VERSION = "1.75"

# nooelint: oelint.task.noanonpython - the Rust check must skip the recipe while parsing, before any task is scheduled
python __anonymous() {
    import re
    wanted = d.getVar('IMGCRAFT_RUST_VERSION')
    have = (d.getVar('RUSTVERSION') or '').rstrip('%')
    def parts(version):
        return [int(n) for n in re.findall(r'\d+', version)[:3]]
    if have and parts(have) < parts(wanted):
        raise bb.parse.SkipRecipe(
            "imgcraft needs Rust %s or newer and RUSTVERSION is %s: add a layer with a newer Rust (on scarthgap, "
            "meta-lts-mixins' scarthgap/rust branch), or build rootfs2image on the host, set "
            "IMGCRAFT_NATIVE_DEPENDS = \"\" and add rootfs2image to HOSTTOOLS" % (wanted, have))
}

BBCLASSEXTEND = "native nativesdk"
