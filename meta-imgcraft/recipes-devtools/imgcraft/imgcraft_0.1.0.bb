# nooelint: oelint.var.mandatoryvar.HOMEPAGE,oelint.var.suggestedvar.BUGTRACKER,oelint.var.suggestedvar.CVE_PRODUCT - the recipe builds the checkout it lives in; there is no separate upstream to point at
SUMMARY = "Turn root filesystems into exact, reproducible OCI container images"
DESCRIPTION = "rootfs2image converts a rootfs tarball or directory into a container image for docker, podman, skopeo and OCI registries, in one streaming pass; the imgcraft class runs it in do_image."
SECTION = "devel"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3333bf710aa10b5ce634e7b6f726972d"

# The layer lives in the imgcraft repository: build the tool from the checkout the layer came from.
inherit cargo externalsrc
EXTERNALSRC ?= "${@os.path.abspath(os.path.join(d.getVar('THISDIR'), '../../..'))}"
EXTERNALSRC_BUILD ?= "${WORKDIR}/build"

require ${BPN}-crates.inc

BBCLASSEXTEND = "native nativesdk"
