SUMMARY = "Smallest image that uses the imgcraft image type, for scripts/oe-core-check.sh"
LICENSE = "MIT"

# Nothing here sets IMAGE_FSTYPES or IMGCRAFT_*: the check proves that inheriting the class is enough.
inherit core-image imgcraft
