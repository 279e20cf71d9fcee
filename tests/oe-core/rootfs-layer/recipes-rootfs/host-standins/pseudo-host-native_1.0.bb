SUMMARY = "Stand-in for pseudo-native: the build host's Debian pseudo (FAKEROOTCMD = /usr/bin/pseudo)"
DESCRIPTION = "virtual/fakeroot-native must have a provider for the real task graph of a packaging build; this \
one installs nothing (pseudo-native cannot be fetched here)."
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"
PROVIDES = "virtual/fakeroot-native"
INHIBIT_DEFAULT_DEPS = "1"

inherit native

S = "${UNPACKDIR}"
do_configure[noexec] = "1"
do_compile[noexec] = "1"
do_install() {
    install -d ${D}${bindir}
}
