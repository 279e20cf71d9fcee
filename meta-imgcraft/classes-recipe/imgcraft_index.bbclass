# One multi-platform OCI image index from an image built for several machines, inside BitBake: `inherit imgcraft_index`
# in a recipe of its own names the image recipe (which inherits imgcraft) and the multiconfigs that build it, one per
# MACHINE. do_imgcraft_index depends on each multiconfig's image build (mcdepends), then combines the archives
# they deployed with `rootfs2image index`. `bitbake -c imgcraft_index_push RECIPE` pushes it.
#
#   # conf/local.conf:  BBMULTICONFIG = "arm64 amd64"
#   # conf/multiconfig/arm64.conf: MACHINE = "qemuarm64"    conf/multiconfig/amd64.conf: MACHINE = "qemux86-64"
#   # recipes-images/my-app-multiarch.bb:
#   inherit imgcraft_index
#   IMGCRAFT_INDEX_IMAGE = "my-app-image"
#   IMGCRAFT_INDEX_MULTICONFIGS = "arm64:qemuarm64 amd64:qemux86-64"
#
# `bitbake my-app-multiarch` then builds both images and deploys ${IMGCRAFT_INDEX_NAME}.oci.tar, which docker, podman
# and skopeo load or copy as one multi-platform image.

LICENSE ?= "MIT"
INHIBIT_DEFAULT_DEPS = "1"

# The image recipe to combine; it must inherit imgcraft with "archive" in IMGCRAFT_OUTPUTS.
IMGCRAFT_INDEX_IMAGE ??= ""
# Space-separated MULTICONFIG:MACHINE pairs, one per platform of the index.
IMGCRAFT_INDEX_MULTICONFIGS ??= ""
# Where each multiconfig deployed its image: by default the multiconfigs share DEPLOY_DIR (the same TMPDIR, as
# multiconfigs that differ only in MACHINE usually do). Set IMGCRAFT_INDEX_ARCHIVE[MULTICONFIG] to a path otherwise.
IMGCRAFT_INDEX_DEPLOY_DIR ??= "${DEPLOY_DIR}"
IMGCRAFT_INDEX_IMAGE_NAME_SUFFIX ??= "${@d.getVar('IMAGE_NAME_SUFFIX') or '.rootfs'}"
# The name the index carries in the archive, and the file name it is deployed under.
IMGCRAFT_INDEX_TAG ??= "${IMGCRAFT_INDEX_IMAGE}:latest"
IMGCRAFT_INDEX_NAME ??= "${PN}"
IMGCRAFT_INDEX_OUTPUT_DIR ??= "${DEPLOY_DIR}/images/${PN}"
# Where `bitbake -c imgcraft_index_push RECIPE` pushes the index (docker://HOST/REPO:TAG), and its extra options.
IMGCRAFT_INDEX_PUSH_REF ??= ""
IMGCRAFT_INDEX_PUSH_ARGS ??= ""
# The key do_imgcraft_index_push signs the index and every image in it with, and the file holding its passphrase, as
# imgcraft_supply_chain.bbclass has them for do_imgcraft_push (usually set once in local.conf for both): paths only.
IMGCRAFT_SIGN_KEY ??= ""
IMGCRAFT_SIGN_PASSPHRASE_FILE ??= ""
IMGCRAFT_NATIVE_DEPENDS ??= "imgcraft-native:do_populate_sysroot"
IMGCRAFT_REGISTRY_ENV ??= "REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_RUNTIME_DIR"

def imgcraft_index_archives(d):
    """The archive each multiconfig deploys, in IMGCRAFT_INDEX_MULTICONFIGS order: [(multiconfig, path)]."""
    import os
    image = d.getVar('IMGCRAFT_INDEX_IMAGE')
    archives = []
    for pair in (d.getVar('IMGCRAFT_INDEX_MULTICONFIGS') or '').split():
        mc, _, machine = pair.partition(':')
        path = d.getVarFlag('IMGCRAFT_INDEX_ARCHIVE', mc) or os.path.join(
            d.getVar('IMGCRAFT_INDEX_DEPLOY_DIR'), 'images', machine,
            '%s-%s%s.oci.tar' % (image, machine, d.getVar('IMGCRAFT_INDEX_IMAGE_NAME_SUFFIX')))
        archives.append((mc, path))
    return archives

# nooelint: oelint.task.noanonpython - the multiconfig dependencies exist only once the variables are parsed
python __anonymous() {
    import re
    def skip(reason):
        raise bb.parse.SkipRecipe("imgcraft-index: " + reason)
    image = d.getVar('IMGCRAFT_INDEX_IMAGE')
    if not image:
        skip("set IMGCRAFT_INDEX_IMAGE to the image recipe (which inherits imgcraft) to combine")
    pairs = (d.getVar('IMGCRAFT_INDEX_MULTICONFIGS') or '').split()
    if not pairs or any(not re.fullmatch(r'[A-Za-z0-9_-]+:[A-Za-z0-9_.-]+', p) for p in pairs):
        skip("IMGCRAFT_INDEX_MULTICONFIGS is '%s': write MULTICONFIG:MACHINE pairs, one per platform"
             % ' '.join(pairs))
    enabled = (d.getVar('BBMULTICONFIG') or '').split()
    missing = [p.split(':')[0] for p in pairs if p.split(':')[0] not in enabled]
    if missing:
        skip("multiconfig %s not in BBMULTICONFIG (%s)" % (', '.join(missing), ' '.join(enabled)))
    current = d.getVar('BB_CURRENT_MC') or ''
    if current == 'default':
        current = ''
    # do_build, not do_image_complete: an image's SPDX 3.0 SBOM is attached after do_image_complete (by
    # do_imgcraft_attach_sbom), and the index carries each image's attachments, so it waits for them.
    for pair in pairs:
        d.appendVarFlag('do_imgcraft_index', 'mcdepends',
                        ' mc:%s:%s:%s:do_build' % (current, pair.split(':')[0], image))
}

do_imgcraft_index[doc] = "Combines the image built by each multiconfig into one multi-platform OCI index archive"
do_imgcraft_index[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
do_imgcraft_index[prefuncs] += "extend_recipe_sysroot"
do_imgcraft_index[dirs] = "${WORKDIR}"
do_imgcraft_index[vardeps] += "IMGCRAFT_INDEX_MULTICONFIGS IMGCRAFT_INDEX_IMAGE"
def imgcraft_index_sources(d):
    """The oci-archive: reference of each multiconfig's deployed image, or a bb.fatal naming what is missing."""
    import os
    sources = []
    for mc, path in imgcraft_index_archives(d):
        if not os.path.exists(path):
            bb.fatal("imgcraft-index: multiconfig %s deployed no %s: does %s inherit imgcraft with archive in "
                     "IMGCRAFT_OUTPUTS, and does %s share DEPLOY_DIR (else set IMGCRAFT_INDEX_ARCHIVE[%s])?"
                     % (mc, path, d.getVar('IMGCRAFT_INDEX_IMAGE'), mc, mc))
        sources.append('oci-archive:' + os.path.realpath(path))
    return sources

def imgcraft_index_run(d, outputs, extra):
    """Runs `rootfs2image index` over the multiconfigs' images into outputs; its report goes to the task log."""
    import subprocess
    command = ['rootfs2image', 'index', '--tag', d.getVar('IMGCRAFT_INDEX_TAG')] + extra
    for output in outputs:
        command += ['-o', output]
    result = subprocess.run(command + imgcraft_index_sources(d), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode != 0:
        bb.fatal("imgcraft-index: %s" % result.stdout.strip())
    bb.note(result.stdout.strip())

python do_imgcraft_index() {
    import os
    outdir = d.getVar('IMGCRAFT_INDEX_OUTPUT_DIR')
    bb.utils.mkdirhier(outdir)
    output = os.path.join(outdir, d.getVar('IMGCRAFT_INDEX_NAME') + '.oci.tar')
    if os.path.exists(output):
        os.unlink(output)
    imgcraft_index_run(d, ['oci-archive:' + output], [])
}
addtask imgcraft_index before do_build

# `bitbake -c imgcraft_index_push RECIPE`: pushes the deployed index to IMGCRAFT_INDEX_PUSH_REF. Never part of a build.
do_imgcraft_index_push[doc] = "Pushes the deployed multi-platform index to IMGCRAFT_INDEX_PUSH_REF"
do_imgcraft_index_push[nostamp] = "1"
# nooelint: oelint.task.network - pushing to a registry is this task's purpose; it is never part of a normal build
do_imgcraft_index_push[network] = "1"
do_imgcraft_index_push[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
do_imgcraft_index_push[prefuncs] += "extend_recipe_sysroot imgcraft_index_registry_environment"
imgcraft_index_registry_environment[vardepsexclude] = "BB_ORIGENV"
# nooelint: oelint.task.docstrings - a prefunc of the push task: the user's registry credentials, as in imgcraft.bbclass
python imgcraft_index_registry_environment() {
    origenv = d.getVar('BB_ORIGENV', False)
    for name in (d.getVar('IMGCRAFT_REGISTRY_ENV') or '').split():
        value = d.getVar(name) or (origenv.getVar(name) if origenv else None)
        if value:
            d.setVar(name, value)
            d.setVarFlag(name, 'export', '1')
}

def imgcraft_index_sign_options(d):
    """The signing options of the push: --sign-key, and --sign-passphrase-file only with a key (rootfs2image refuses
    one alone)."""
    key = d.getVar('IMGCRAFT_SIGN_KEY')
    if not key:
        return []
    options = ['--sign-key', key]
    passphrase_file = d.getVar('IMGCRAFT_SIGN_PASSPHRASE_FILE')
    if passphrase_file:
        options += ['--sign-passphrase-file', passphrase_file]
    return options

# Where a builder keeps its key is no input of the push: it must not change the task's signature. BitBake applies a
# vardepsexclude to the variable that names it, so it goes on the function that reads them as well.
# nooelint: oelint.vars.mispell.unknown - a flag of the class's own function, not a misspelling
imgcraft_index_sign_options[vardepsexclude] += "IMGCRAFT_SIGN_KEY IMGCRAFT_SIGN_PASSPHRASE_FILE"
do_imgcraft_index_push[vardepsexclude] += "IMGCRAFT_SIGN_KEY IMGCRAFT_SIGN_PASSPHRASE_FILE"
# The index is made again from the same archives straight to the registry: the same bytes, so the same digest. With
# IMGCRAFT_SIGN_KEY, the index and each image it lists are signed as they are pushed.
python do_imgcraft_index_push() {
    import shlex
    ref = d.getVar('IMGCRAFT_INDEX_PUSH_REF')
    if not ref:
        bb.fatal("imgcraft-index: set IMGCRAFT_INDEX_PUSH_REF = \"docker://HOST/REPO:TAG\" to push")
    extra = shlex.split(d.getVar('IMGCRAFT_INDEX_PUSH_ARGS') or '') + imgcraft_index_sign_options(d)
    imgcraft_index_run(d, [ref], extra)
}
addtask imgcraft_index_push after do_imgcraft_index
