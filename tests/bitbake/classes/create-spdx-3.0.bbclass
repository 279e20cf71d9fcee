# Stands in for OE-core's create-spdx-3.0 (the create-spdx of walnascar and later) where the imgcraft class meets it:
# images inherit create-spdx-image-3.0 through IMAGE_CLASSES. INHERIT += "create-spdx-3.0" turns it on.

IMAGE_CLASSES:append = " create-spdx-image-3.0"
