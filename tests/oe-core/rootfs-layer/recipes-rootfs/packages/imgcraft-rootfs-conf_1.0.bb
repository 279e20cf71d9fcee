SUMMARY = "rootfs check: a configuration file package"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"
S = "${UNPACKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${sysconfdir}
    printf 'greeting_file=/usr/bin/imgcraft-hello\n' >${D}${sysconfdir}/imgcraft-rootfs.conf
    chmod 0644 ${D}${sysconfdir}/imgcraft-rootfs.conf
}
