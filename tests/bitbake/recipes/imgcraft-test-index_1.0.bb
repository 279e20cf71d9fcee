SUMMARY = "A multi-platform index of imgcraft-test-image, built by the multiconfigs run.py --multiconfig writes"
LICENSE = "MIT"

inherit imgcraft_index

IMGCRAFT_INDEX_IMAGE = "imgcraft-test-image"
# MULTICONFIG:MACHINE pairs, from local.conf.
IMGCRAFT_INDEX_MULTICONFIGS ??= ""
