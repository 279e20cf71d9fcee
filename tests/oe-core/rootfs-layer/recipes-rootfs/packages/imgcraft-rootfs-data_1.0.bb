SUMMARY = "rootfs check: a data file package"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"
S = "${UNPACKDIR}"

inherit allarch

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${datadir}/${BPN}
    printf 'line %s\n' 1 2 3 4 5 6 7 8 >${D}${datadir}/${BPN}/data.txt
    chmod 0644 ${D}${datadir}/${BPN}/data.txt
}
