# What travels with the container images of imgcraft.bbclass (which inherits this class), for the Cyber Resilience
# Act and for devices that run only what their vendor signed: the image's SBOM (OE-core's create-spdx output, or one
# rootfs2image generates), when asked for an in-toto SLSA provenance naming the build (MACHINE, DISTRO, the image
# recipe, each layer's git revision), and the signature do_imgcraft_push makes with the vendor's key. None of it
# changes the image's manifest digest: SBOMs and provenance are OCI 1.1 artifacts whose subject is the image.

# SBOMs to attach, space-separated:
#  - "create-spdx": the image's SPDX from OE-core's create-spdx, when the build runs it (INHERIT += "create-spdx"):
#    SPDX 2.2's ${IMAGE_NAME}.spdx.tar.zst (scarthgap's default), which do_rootfs writes, goes into the image as it
#    is built; SPDX 3.0's ${IMAGE_NAME}.spdx.json (walnascar on), which do_create_image_sbom_spdx writes after
#    do_image_complete, is attached to the deployed image by do_imgcraft_attach_sbom. Nothing when create-spdx is off.
#  - "generate": an SBOM rootfs2image writes from the package data it layers by (IMGCRAFT_SBOM_FORMAT);
#  - an absolute path to an SBOM file (SPDX 2 or 3 JSON, CycloneDX JSON, a Yocto *.spdx.tar.zst).
# Empty: no SBOM.
IMGCRAFT_SBOM ??= "create-spdx"
# The format of a generated SBOM: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.6 JSON).
IMGCRAFT_SBOM_FORMAT ??= "spdx"
# "1": attach an in-toto SLSA provenance with IMGCRAFT_PROVENANCE_PARAMS and the git revision of every layer. Off by
# default: it holds the build's paths (the rootfs, pkgdata) and the layers' remote URLs, which not every vendor
# publishes.
IMGCRAFT_PROVENANCE ??= "0"
# What the provenance records of the build, space-separated: a variable's name (its value, left out when empty) or
# KEY=VALUE. It describes the build that made the image, so it stays out of the task's signature: an image taken
# from sstate keeps the provenance of the build that made it.
IMGCRAFT_PROVENANCE_PARAMS ??= "MACHINE DISTRO DISTRO_VERSION TUNE_PKGARCH IMAGE=${PN}"
# The key do_imgcraft_push signs with (cosign's encrypted format, as `rootfs2image keygen` writes it, or a PKCS#8
# PEM key) and the file holding its passphrase: paths only, never the passphrase itself. Both are outside task
# signatures, so that builders without the key share sstate with the one that signs.
# nooelint: oelint.vars.mispell.unknown - the class's own variable, not a misspelling
IMGCRAFT_SIGN_KEY ??= ""
# nooelint: oelint.vars.mispell.unknown - the class's own variable, not a misspelling
IMGCRAFT_SIGN_PASSPHRASE_FILE ??= ""

def imgcraft_create_spdx(d):
    """Which image SBOM OE-core's create-spdx makes in this build: '2.2' (image_combine_spdx, run by do_rootfs,
    writes ${IMGDEPLOYDIR}/${IMAGE_NAME}.spdx.tar.zst), '3.0' (do_create_image_sbom_spdx writes
    ${DEPLOY_DIR_IMAGE}/${IMAGE_NAME}.spdx.json after do_image_complete), or '' (create-spdx off, or nospdx, which
    deletes the task). Asked of the parsed recipe, whichever class or release brought them."""
    import re
    if d.getVarFlag('do_create_image_sbom_spdx', 'task'):
        return '3.0'
    if re.search(r'(^|[\s;])image_combine_spdx([\s;]|$)', d.getVar('ROOTFS_POSTUNINSTALL_COMMAND') or ''):
        return '2.2'
    return ''

def imgcraft_sbom_options(d):
    """Shell lines adding the --sbom options of do_image_imgcraft; the SPDX 3.0 SBOM comes later, from
    do_imgcraft_attach_sbom."""
    import os
    import shlex
    lines = []
    for word in (d.getVar('IMGCRAFT_SBOM') or '').split():
        if word == 'create-spdx':
            if imgcraft_create_spdx(d) == '2.2':
                path = os.path.join(d.getVar('IMGDEPLOYDIR'), d.getVar('IMAGE_NAME') + '.spdx.tar.zst')
                lines.append('set -- "$@" --sbom %s' % shlex.quote(path))
        elif word == 'generate':
            lines.append('set -- "$@" --sbom generate --sbom-format %s' % shlex.quote(d.getVar('IMGCRAFT_SBOM_FORMAT')))
        else:
            lines.append('set -- "$@" --sbom %s' % shlex.quote(word))
    return '\n    '.join(lines) or ':'

def imgcraft_git(path, *args):
    """git's output in path, or '' when it fails. PSEUDO_UNLOAD: do_image_imgcraft runs under pseudo, which must not
    see git read (or refresh the index of) a layer's checkout."""
    import os
    import subprocess
    env = dict(os.environ, PSEUDO_UNLOAD='1')
    result = subprocess.run(['git'] + list(args), cwd=path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    return result.stdout.strip() if result.returncode == 0 else ''

def imgcraft_layer_dependencies(d):
    """NAME=URI@REVISION for each layer of BBLAYERS in git, as oe.buildcfg.get_layer_revisions names them (the
    directory's name), with the URL of the remote its branch tracks (else origin), without user or password; a
    layer with uncommitted changes is named NAME+modified, since its revision alone does not describe it. The URI is
    empty for a remote that is a local path. Run when the task runs, not at parse time."""
    import os
    import re
    dependencies = []
    for path in (d.getVar('BBLAYERS') or '').split():
        revision = imgcraft_git(path, 'rev-parse', 'HEAD')
        if not re.fullmatch(r'[0-9a-f]{40}|[0-9a-f]{64}', revision):
            continue
        upstream = imgcraft_git(path, 'rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}')
        remote = upstream.split('/')[0] if upstream else 'origin'
        url = imgcraft_git(path, 'remote', 'get-url', remote)
        scp = re.fullmatch(r'(?:[^@/:]+@)?([^/:]+):(?!//)(.+)', url)
        if scp:
            url = 'ssh://%s/%s' % scp.groups()
        url = re.sub(r'^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@', r'\1', url)
        if not re.match(r'[a-zA-Z][a-zA-Z0-9+.-]*://', url):
            url = ''
        modified = imgcraft_git(path, 'status', '--porcelain', '--untracked-files=no', '--', '.') != ''
        name = os.path.basename(os.path.normpath(path)) + ('+modified' if modified else '')
        dependencies.append('%s=%s@%s' % (name, url, revision))
    return dependencies

def imgcraft_provenance_options(d):
    """A shell line adding the provenance options (--provenance-param, --provenance-dependency), or ':'."""
    import shlex
    if d.getVar('IMGCRAFT_PROVENANCE') != '1':
        return ':'
    options = ['--provenance']
    for word in (d.getVar('IMGCRAFT_PROVENANCE_PARAMS') or '').split():
        key, sep, value = word.partition('=')
        if not sep:
            value = d.getVar(key) or ''
        if value:
            options += ['--provenance-param', '%s=%s' % (key, value)]
    for dependency in imgcraft_layer_dependencies(d):
        options += ['--provenance-dependency', dependency]
    return 'set -- "$@" ' + ' '.join(shlex.quote(o) for o in options)

# The rootfs2image options of the provenance, set by the prefunc below when do_image_imgcraft runs (the task runs
# with the datastore its prefuncs changed): the layers' revisions are read then, never while parsing.
# nooelint: oelint.vars.mispell.unknown - the class's own variable, not a misspelling
IMGCRAFT_PROVENANCE_OPTIONS = ":"
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[prefuncs] += "imgcraft_provenance"
# The build it describes is not an input of the image: an image from sstate keeps the provenance of its own build.
imgcraft_provenance[vardepsexclude] += "IMGCRAFT_PROVENANCE_PARAMS"
# nooelint: oelint.vars.mispell.unknown - a flag of the class's own function, not a misspelling
imgcraft_provenance_options[vardepsexclude] += "IMGCRAFT_PROVENANCE_PARAMS"
# nooelint: oelint.vars.mispell.unknown - a flag of the class's own function, not a misspelling
imgcraft_layer_dependencies[vardepsexclude] += "BBLAYERS"
# nooelint: oelint.task.docstrings - a prefunc of do_image_imgcraft, not a task
python imgcraft_provenance() {
    d.setVar('IMGCRAFT_PROVENANCE_OPTIONS', imgcraft_provenance_options(d))
}

# nooelint: oelint.task.noanonpython - which SBOM create-spdx makes is known only once the recipe is parsed
python __anonymous() {
    def skip(reason):
        raise bb.parse.SkipRecipe("imgcraft: " + reason)
    words = (d.getVar('IMGCRAFT_SBOM') or '').split()
    import os
    for word in words:
        if word not in ('create-spdx', 'generate') and not word.startswith('/'):
            skip("IMGCRAFT_SBOM holds '%s': use create-spdx, generate or absolute paths of SBOM files" % word)
        if word.startswith('/'):
            d.appendVarFlag('do_image_imgcraft', 'file-checksums', ' %s:%s' % (word, os.path.exists(word)))
    if d.getVar('IMGCRAFT_SBOM_FORMAT') not in ('spdx', 'cyclonedx'):
        skip("IMGCRAFT_SBOM_FORMAT is '%s': use spdx or cyclonedx" % d.getVar('IMGCRAFT_SBOM_FORMAT'))
    if d.getVar('IMGCRAFT_PROVENANCE') not in ('0', '1'):
        skip("IMGCRAFT_PROVENANCE is '%s': use 1 or 0" % d.getVar('IMGCRAFT_PROVENANCE'))
    if 'create-spdx' in words and imgcraft_create_spdx(d) == '3.0':
        bb.build.addtask('do_imgcraft_attach_sbom', 'do_build', 'do_create_image_sbom_spdx', d)
        bb.build.addtask('do_imgcraft_push', None, 'do_imgcraft_attach_sbom', d)
}

# SPDX 3.0 (walnascar on): create-spdx writes the image's SBOM after do_image_complete, from the deployed files, so
# it is attached to what do_image_complete deployed, through the IMAGE_LINK_NAME links (an IMAGE_NAME of this build
# may differ from the deployed one's). `rootfs2image attach` replaces the archive and a layout's index.json by
# renaming a new file into place: the hard links sstate made from IMGDEPLOYDIR keep the image as it was built, and
# the image's manifest digest does not change. Added by the anonymous function above, only for SPDX 3.0.
do_imgcraft_attach_sbom[doc] = "Attaches the SPDX 3.0 SBOM of OE-core's create-spdx to the deployed container image"
do_imgcraft_attach_sbom[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
do_imgcraft_attach_sbom[prefuncs] += "extend_recipe_sysroot"
do_imgcraft_attach_sbom() {
    name="${@d.getVar('IMAGE_LINK_NAME') or d.getVar('IMAGE_NAME')}"
    sbom="${DEPLOY_DIR_IMAGE}/$name.spdx.json"
    [ -e "$sbom" ] || bbfatal "imgcraft: create-spdx deployed no $sbom to attach"
    sbom=$(readlink -f "$sbom")
    for output in ${IMGCRAFT_OUTPUTS}; do
        case "$output" in
        archive) image="oci-archive:$(readlink -f "${DEPLOY_DIR_IMAGE}/$name.oci.tar")" ;;
        layout) image="oci:$(readlink -f "${DEPLOY_DIR_IMAGE}/$name.oci")" ;;
        *) continue ;;
        esac
        rootfs2image attach "$image" --sbom "$sbom"
        bbnote "imgcraft: attached $sbom to $image"
    done
}
