SUMMARY = "rootfs check: a shell script in /usr/bin that prints the greeting the check chose"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

# The check writes the greeting into IMGCRAFT_ROOTFS_INPUT (local.conf) and changes it for the rebuild: this
# package alone changes, without a reparse (do_fetch's file checksum sees the new content).
IMGCRAFT_ROOTFS_INPUT ??= "${TOPDIR}/rootfs-input"
FILESEXTRAPATHS:prepend := "${IMGCRAFT_ROOTFS_INPUT}:"
SRC_URI = "file://greeting"
S = "${UNPACKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${bindir}
    printf '#!/bin/sh\necho "%s"\n' "$(cat ${UNPACKDIR}/greeting)" >${D}${bindir}/imgcraft-hello
    chmod 0755 ${D}${bindir}/imgcraft-hello
}
