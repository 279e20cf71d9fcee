# Container images from an image recipe's rootfs: `inherit imgcraft` adds the image type `imgcraft`, whose
# do_image_imgcraft task runs rootfs2image and deploys an archive that `docker load`, `podman load` and skopeo accept
# (${IMAGE_LINK_NAME}.oci.tar) and, if asked, an OCI image layout (${IMAGE_LINK_NAME}.oci), for the MACHINE's
# architecture. `bitbake -c imgcraft_push IMAGE` pushes it to a registry; a normal build never touches the network.

# What to convert. Empty: a tarball of IMAGE_ROOTFS streamed straight into rootfs2image, made under pseudo by GNU tar
# with --xattrs (OE-core's own IMAGE_CMD:tar drops xattrs, and with them file capabilities). A tar type of
# IMAGE_FSTYPES (tar.zst, tar.bz2, ...) converts that tarball instead.
IMGCRAFT_ROOTFS_TYPE ??= ""
# The name the image carries in archives (docker/podman load list it under it).
IMGCRAFT_TAG ??= "${IMAGE_BASENAME}:latest"
# Entrypoint and default command: a JSON array (["/usr/bin/app","-v"]) or a shell-like string.
# nooelint: oelint.vars.mispell.unknown - the class's own variable, not a misspelling
IMGCRAFT_ENTRYPOINT ??= ""
# nooelint: oelint.vars.mispell.unknown - the class's own variable, not a misspelling
IMGCRAFT_CMD ??= ""
# Space-separated KEY=VALUE environment variables of the container.
IMGCRAFT_ENV ??= ""
# Working directory and user (NAME, UID, NAME:GROUP or UID:GID) of the container's process.
IMGCRAFT_WORKDIR ??= ""
IMGCRAFT_USER ??= ""
# Space-separated KEY=VALUE config labels and manifest annotations, added to IMGCRAFT_STANDARD_LABELS.
IMGCRAFT_LABELS ??= ""
IMGCRAFT_ANNOTATIONS ??= ""
# The OCI labels and annotations every image gets, for traceability back to the build.
IMGCRAFT_STANDARD_LABELS ??= "org.opencontainers.image.title=${IMAGE_BASENAME} org.opencontainers.image.version=${PV} ${@imgcraft_revision_label(d)}"
# The product's source revision for org.opencontainers.image.revision (OE-core's METADATA_REVISION is OE-core's own
# commit, not the product's, so it is not used).
IMGCRAFT_REVISION ??= ""
# Space-separated ports (PORT, PORT/tcp, PORT/udp) and volume mount points.
IMGCRAFT_PORTS ??= ""
IMGCRAFT_VOLUMES ??= ""
# Signal that stops the container (SIGTERM, SIGINT, ...).
IMGCRAFT_STOPSIGNAL ??= ""
# Layer compression: gzip (what every engine and registry accepts), zstd or none.
IMGCRAFT_COMPRESSION ??= "gzip"
# What to deploy: "archive" (NAME.oci.tar), "layout" (NAME.oci, an OCI image layout directory), or both.
IMGCRAFT_OUTPUTS ??= "archive"
# How the rootfs is split into layers (rootfs2image --layers): "packages" (the default: by package ownership from the
# build's PKGDATA_DIR, the installed set from IMAGE_MANIFEST, so that an unchanged package keeps a bit-identical layer
# from build to build), "paths" (by IMGCRAFT_LAYER_RULES), "single", or "auto".
IMGCRAFT_LAYERS ??= "packages"
# At most this many layers, the base image's included (Docker and containerd fail past about 125).
IMGCRAFT_MAX_LAYERS ??= "64"
# Space-separated NAME=GLOB[,GLOB...] rules for IMGCRAFT_LAYERS = "paths", bottom first; globs match paths without a
# leading /, `*` stops at /, `**` crosses it.
IMGCRAFT_LAYER_RULES ??= ""
# An image to build on (rootfs2image --base), in one of three forms that BitBake knows as inputs:
#  - the name of an image recipe that inherits imgcraft (IMGCRAFT_OUTPUTS with archive or layout): do_image_imgcraft
#    depends on its do_image_complete and reads what it deployed under IMGCRAFT_BASE_LINK_NAME;
#  - a path to an OCI archive (.oci.tar) or layout directory, or a local reference (oci:DIR[:TAG], oci-archive:FILE,
#    docker-archive:FILE); its content is part of the task's signature (file-checksums);
#  - a registry image pinned by digest, docker://HOST/REPO@sha256:HEX (the digest of the MACHINE's image manifest, not
#    of a multi-platform index): do_imgcraft_fetch_base copies it once into IMGCRAFT_BASE_DL_DIR, the only task that
#    uses the network, and it honours BB_NO_NETWORK and BB_ALLOWED_NETWORKS. A tag without a digest is refused.
IMGCRAFT_BASE_IMAGE ??= ""
# Where a base recipe's image is deployed: its IMAGE_LINK_NAME (computed from ours with its name as IMAGE_BASENAME).
IMGCRAFT_BASE_LINK_NAME ??= "${@imgcraft_base_link_name(d)}"
# Where registry bases are kept, like the fetcher's downloads; shared between builds.
IMGCRAFT_BASE_DL_DIR ??= "${DL_DIR}/imgcraft"
# Registry mirrors tried before a base's own registry, like PREMIRRORS: space-separated FROM=TO pairs of docker://
# prefixes (docker://registry.example.com/=docker://mirror.local:5000/). The digest makes any mirror's copy safe.
IMGCRAFT_BASE_MIRRORS ??= ""
# rootfs2image options for reaching registries when fetching a base (--cert-dir DIR, --tls-verify=false, --timeout N).
IMGCRAFT_REGISTRY_ARGS ??= ""
# The image whose package groups are kept (rootfs2image --previous): empty by default, so that the same inputs give
# the same digests whatever DEPLOY_DIR_IMAGE holds. Layers by package already come out bit-identical for every package
# whose files did not change, because the grouping is a pure function of the package set and sizes; a previous image
# only helps when packages are added or removed or change size a lot, and then the image depends on which build came
# before. Set it (e.g. "${DEPLOY_DIR_IMAGE}/${IMAGE_LINK_NAME}.oci.tar", what was deployed last) to trade
# reproducibility for that. A path that does not exist yet (a first build) is skipped. It stays out of the task's
# signature: the deployed image changes with every build and would rerun every build.
IMGCRAFT_PREVIOUS ??= ""
# Where rootfs2image records which tar each layer blob it writes or checks holds, so that with IMGCRAFT_PREVIOUS a
# blob of the previous image is checked by its digest instead of being decompressed again (README, "Rebuilds").
# Under TMPDIR, not the user's home; empty keeps nothing. Out of the task's signature: it changes no output byte.
IMGCRAFT_CACHE_DIR ??= "${TMPDIR}/imgcraft-cache"
# More rootfs2image options, verbatim.
IMGCRAFT_EXTRA_ARGS ??= ""
# Where rootfs2image comes from: the imgcraft-native recipe, built with the release's own Rust (1.75 or newer). Empty,
# with rootfs2image added to HOSTTOOLS, uses a host-built one; then upgrading it reruns no image task.
IMGCRAFT_NATIVE_DEPENDS ??= "imgcraft-native:do_populate_sysroot"
# Creation time and mtime ceiling. For images OE-core clamps rootfs mtimes to REPRODUCIBLE_TIMESTAMP_ROOTFS, while
# SOURCE_DATE_EPOCH is only its 2011 fallback: the former keeps the rootfs's own times and the image reproducible.
IMGCRAFT_SOURCE_DATE_EPOCH ??= "${@d.getVar('REPRODUCIBLE_TIMESTAMP_ROOTFS') or d.getVar('SOURCE_DATE_EPOCH') or ''}"
# Where `bitbake -c imgcraft_push IMAGE` pushes (docker://HOST/REPO:TAG), and its extra options (--creds-stdin is not
# available in a task: credentials come from the files of IMGCRAFT_REGISTRY_ENV or a credential helper).
IMGCRAFT_PUSH_REF ??= ""
IMGCRAFT_PUSH_ARGS ??= ""
# The variables of the environment bitbake was started in that the registry tasks (push, base fetch) get, for
# credentials: an auth file (REGISTRY_AUTH_FILE, podman's ${XDG_RUNTIME_DIR}/containers/auth.json, DOCKER_CONFIG's
# config.json). Credential helpers (docker-credential-NAME, named by credHelpers or credsStore) run from PATH, which
# in a task holds only HOSTTOOLS: add them in local.conf, e.g. HOSTTOOLS_NONFATAL += "docker-credential-pass".
IMGCRAFT_REGISTRY_ENV ??= "REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_RUNTIME_DIR"
# The OCI platform, from TARGET_ARCH and the tune (see imgcraft_oci_platform); set them to override.
IMGCRAFT_ARCH ??= "${@imgcraft_oci_platform(d)[0]}"
IMGCRAFT_VARIANT ??= "${@imgcraft_oci_platform(d)[1]}"

# SBOMs, provenance and signing: IMGCRAFT_SBOM, IMGCRAFT_PROVENANCE, IMGCRAFT_SIGN_KEY, ...
inherit imgcraft_supply_chain

IMAGE_TYPES:append = " imgcraft"
IMAGE_FSTYPES:append = " imgcraft"
# nooelint: oelint.vars.mispell - OE-core image.bbclass's per-type dependency variable
IMAGE_TYPEDEP:imgcraft = "${IMGCRAFT_ROOTFS_TYPE}"
# nooelint: oelint.vars.mispell - OE-core image.bbclass's per-type command variable
IMAGE_CMD:imgcraft = "imgcraft_image"
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[vardeps] += "IMGCRAFT_ARCH IMGCRAFT_VARIANT"
# PKGDATA_DIR is complete for the image's packages once do_rootfs ran (its recrdeptask on do_packagedata), and
# IMAGE_MANIFEST is written by do_rootfs (rootfs-postcommands' write_image_manifest): do_image_imgcraft runs after both.
# The previous image is an input whose content must not change the task's signature. BitBake applies a
# vardepsexclude to the variable that names it, so it goes on imgcraft_image, which reads it, as well; so does the
# provenance, which describes the build rather than the image (see imgcraft_supply_chain.bbclass).
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[vardepsexclude] += "IMGCRAFT_PREVIOUS IMGCRAFT_CACHE_DIR"
imgcraft_image[vardepsexclude] += "IMGCRAFT_PREVIOUS IMGCRAFT_PROVENANCE_OPTIONS IMGCRAFT_CACHE_DIR"
# imgcraft_option reads them by a name BitBake's code parser cannot see: named here, a new command reruns the task.
imgcraft_image[vardeps] += "IMGCRAFT_ENTRYPOINT IMGCRAFT_CMD"

def imgcraft_oci_platform(d):
    """The OCI architecture and variant for TARGET_ARCH. The ARM level is looked for in TUNE_FEATURES, then in
    MACHINEOVERRIDES, TUNE_PKGARCH and PACKAGE_EXTRA_ARCHS: qemuarm's TUNE_FEATURES ("arm vfp cortexa15 neon thumb
    callconvention-hard") names no level, which only its overrides (armv7ve) and package archs show."""
    import re
    arch = d.getVar('TARGET_ARCH') or ''
    simple = {
        'aarch64': ('arm64', 'v8'), 'x86_64': ('amd64', ''), 'riscv64': ('riscv64', ''),
        'powerpc64le': ('ppc64le', ''), 'powerpc64': ('ppc64', ''), 's390x': ('s390x', ''),
        'mips': ('mips', ''), 'mipsel': ('mipsle', ''), 'mips64': ('mips64', ''), 'mips64el': ('mips64le', ''),
        'loongarch64': ('loong64', ''),
    }
    if arch in simple:
        return simple[arch]
    if re.fullmatch(r'i[3-6]86', arch):
        return ('386', '')
    if arch in ('arm', 'armeb'):
        if arch == 'armeb':
            return ('', 'big-endian ARM')
        words = (d.getVar('TUNE_FEATURES') or '').split()
        words += (d.getVar('MACHINEOVERRIDES') or '').split(':')
        words += (d.getVar('TUNE_PKGARCH') or '').split()
        words += (d.getVar('PACKAGE_EXTRA_ARCHS') or '').split()
        levels = [int(m.group(1)) for w in words for m in [re.match(r'armv([5-8])', w)] if m]
        if not levels:
            return ('arm', '')
        return ('arm', 'v%d' % min(max(levels), 8))
    return ('', arch)

def imgcraft_option(d, flag, var):
    """A shell line adding `flag=VALUE` to the arguments when the variable is set, quoted whatever it holds."""
    import shlex
    value = d.getVar(var)
    return 'set -- "$@" %s' % shlex.quote('%s=%s' % (flag, value)) if value else ':'

def imgcraft_base(d):
    """What IMGCRAFT_BASE_IMAGE names, as (kind, value): ('', ''), ('recipe', NAME), ('path', PATH), ('reference',
    REF) for a local image reference, or ('registry', docker://HOST/REPO@sha256:HEX); ('invalid', REASON)."""
    import re
    location = (d.getVar('IMGCRAFT_BASE_IMAGE') or '').strip()
    if not location:
        return ('', '')
    if location.startswith('docker://'):
        if not re.fullmatch(r'docker://[^@\s]+/[^@\s]+@sha256:[0-9a-f]{64}', location):
            return ('invalid', "IMGCRAFT_BASE_IMAGE '%s' is not pinned by digest: write docker://HOST/REPO@sha256:HEX "
                    "(`skopeo inspect --raw --override-arch ARCH docker://...` shows the MACHINE's manifest; its "
                    "sha256 is the digest), so that the same build fetches the same base" % location)
        return ('registry', location)
    if re.match(r'(oci|oci-archive|docker-archive):', location):
        return ('reference', location)
    if '/' in location:
        return ('path', location)
    if re.fullmatch(r'[a-z0-9][a-z0-9.+-]*', location):
        return ('recipe', location)
    return ('invalid', "IMGCRAFT_BASE_IMAGE '%s' is neither an image recipe name, a path, an oci:, oci-archive: or "
            "docker-archive: reference, nor docker://HOST/REPO@sha256:HEX" % location)

def imgcraft_base_link_name(d):
    """The IMAGE_LINK_NAME an image recipe named by IMGCRAFT_BASE_IMAGE deploys under: ours, with its name."""
    kind, name = imgcraft_base(d)
    if kind != 'recipe':
        return ''
    localdata = bb.data.createCopy(d)
    localdata.setVar('PN', name)
    localdata.setVar('IMAGE_BASENAME', name)
    return localdata.getVar('IMAGE_LINK_NAME')

def imgcraft_base_download(d):
    """Where do_imgcraft_fetch_base keeps a registry base: IMGCRAFT_BASE_DL_DIR/HOST/REPO@sha256-HEX.oci.tar."""
    import os
    kind, location = imgcraft_base(d)
    if kind != 'registry':
        return ''
    name, digest = location[len('docker://'):].split('@')
    return os.path.join(d.getVar('IMGCRAFT_BASE_DL_DIR'), name.replace(':', '_') + '@' + digest.replace(':', '-')
                        + '.oci.tar')

def imgcraft_base_option(d):
    """A shell line adding `--base REF` for IMGCRAFT_BASE_IMAGE. Paths and a base recipe's deployed image are looked
    at when the task runs (a layout directory becomes oci:, anything else oci-archive:), never at parse time."""
    import os
    import shlex
    kind, location = imgcraft_base(d)
    if kind == 'reference':
        return 'set -- "$@" --base %s' % shlex.quote(location)
    if kind == 'registry':
        return 'set -- "$@" --base %s' % shlex.quote('oci-archive:' + imgcraft_base_download(d))
    if kind == 'path':
        base = shlex.quote(location)
    elif kind == 'recipe':
        stem = shlex.quote(os.path.join(d.getVar('DEPLOY_DIR_IMAGE'), d.getVar('IMGCRAFT_BASE_LINK_NAME')))
        return ('if [ -e %s.oci.tar ]; then set -- "$@" --base oci-archive:%s.oci.tar; '
                'elif [ -d %s.oci ]; then set -- "$@" --base oci:%s.oci; '
                'else bbfatal "imgcraft: the base recipe %s deployed neither %s.oci.tar nor %s.oci: it must inherit '
                'imgcraft"; fi' % (stem, stem, stem, stem, location, stem, stem))
    else:
        return ':'
    return 'if [ -d %s ]; then set -- "$@" --base oci:%s; else set -- "$@" --base oci-archive:%s; fi' % (
        base, base, base)

def imgcraft_base_file_checksums(d):
    """file-checksums for a base given by path, so that a changed base reruns do_image_imgcraft."""
    import os
    kind, location = imgcraft_base(d)
    if kind == 'reference':
        location = location.split(':', 1)[1]
        if location.startswith('/') and ':' in os.path.basename(location) and not os.path.exists(location):
            location = location.rsplit(':', 1)[0]
    elif kind != 'path':
        return ''
    return '%s:%s' % (location, os.path.exists(location))

def imgcraft_revision_label(d):
    revision = d.getVar('IMGCRAFT_REVISION')
    return 'org.opencontainers.image.revision=%s' % revision if revision else ''

# Configuration errors skip this image recipe with the reason (`bitbake IMAGE` prints it), rather than bb.fatal, which
# would end the parse of every recipe: one image for a MACHINE no engine knows must not break the others' builds.
# nooelint: oelint.task.noanonpython - what an image can be built for is known only after parsing, before any task
python __anonymous() {
    def skip(reason):
        raise bb.parse.SkipRecipe("imgcraft: " + reason)
    arch = d.getVar('IMGCRAFT_ARCH')
    if not arch:
        skip("TARGET_ARCH '%s' (%s) is not an architecture container engines know; set IMGCRAFT_ARCH (and "
             "IMGCRAFT_VARIANT) if you know better" % (d.getVar('TARGET_ARCH'), imgcraft_oci_platform(d)[1]))
    layers = d.getVar('IMGCRAFT_LAYERS')
    if layers not in ('packages', 'paths', 'single', 'auto'):
        skip("IMGCRAFT_LAYERS is '%s': use packages, paths, single or auto" % layers)
    if layers == 'paths' and not (d.getVar('IMGCRAFT_LAYER_RULES') or '').split():
        skip("IMGCRAFT_LAYERS = \"paths\" needs IMGCRAFT_LAYER_RULES (NAME=GLOB[,GLOB...] ...)")
    if arch == 'arm' and not d.getVar('IMGCRAFT_VARIANT'):
        skip("no ARM architecture level (armv5/6/7/8) found in TUNE_FEATURES, MACHINEOVERRIDES, TUNE_PKGARCH or "
             "PACKAGE_EXTRA_ARCHS; set IMGCRAFT_VARIANT = \"v7\" (or v5, v6, v8)")
    for output in (d.getVar('IMGCRAFT_OUTPUTS') or '').split():
        if output not in ('archive', 'layout'):
            skip("IMGCRAFT_OUTPUTS holds '%s': use archive, layout or both" % output)
    kind, base = imgcraft_base(d)
    if kind == 'invalid':
        skip(base)
    elif kind == 'recipe':
        if base == d.getVar('PN'):
            skip("IMGCRAFT_BASE_IMAGE names this image itself")
        d.appendVarFlag('do_image_imgcraft', 'depends', ' %s:do_image_complete' % base)
    elif kind == 'registry':
        bb.build.addtask('do_imgcraft_fetch_base', 'do_image_imgcraft', None, d)
    elif kind in ('path', 'reference'):
        checksums = imgcraft_base_file_checksums(d)
        if checksums:
            d.appendVarFlag('do_image_imgcraft', 'file-checksums', ' ' + checksums)
}

# Runs rootfs2image in do_image_imgcraft (under pseudo, so the stream sees the rootfs's real owners).
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[doc] = "Builds the container image (archive and/or OCI layout) from the rootfs with rootfs2image"
# nooelint: oelint.task.docstrings - a shell function that IMAGE_CMD:imgcraft calls, not a task
imgcraft_image() {
    set -- --arch "${IMGCRAFT_ARCH}${@'/' + d.getVar('IMGCRAFT_VARIANT') if d.getVar('IMGCRAFT_VARIANT') else ''}" \
        --tag "${IMGCRAFT_TAG}" --compression "${IMGCRAFT_COMPRESSION}" --quiet
    [ -n "${IMGCRAFT_SOURCE_DATE_EPOCH}" ] && set -- "$@" --source-date-epoch "${IMGCRAFT_SOURCE_DATE_EPOCH}"
    # Quoted by Python: JSON arrays and shell-like strings may hold any quote or space.
    ${@imgcraft_option(d, '--entrypoint', 'IMGCRAFT_ENTRYPOINT')}
    ${@imgcraft_option(d, '--cmd', 'IMGCRAFT_CMD')}
    [ -n "${IMGCRAFT_WORKDIR}" ] && set -- "$@" --workdir "${IMGCRAFT_WORKDIR}"
    [ -n "${IMGCRAFT_USER}" ] && set -- "$@" --user "${IMGCRAFT_USER}"
    [ -n "${IMGCRAFT_STOPSIGNAL}" ] && set -- "$@" --stop-signal "${IMGCRAFT_STOPSIGNAL}"
    for kv in ${IMGCRAFT_ENV}; do set -- "$@" --env "$kv"; done
    for kv in ${IMGCRAFT_STANDARD_LABELS} ${IMGCRAFT_LABELS}; do set -- "$@" --label "$kv"; done
    for kv in ${IMGCRAFT_STANDARD_LABELS} ${IMGCRAFT_ANNOTATIONS}; do set -- "$@" --annotation "$kv"; done
    for port in ${IMGCRAFT_PORTS}; do set -- "$@" --expose "$port"; done
    set -- "$@" --layers "${IMGCRAFT_LAYERS}" --max-layers "${IMGCRAFT_MAX_LAYERS}"
    # "auto" uses the build's package data when there is some, else the rootfs's own database if it kept one.
    if [ "${IMGCRAFT_LAYERS}" = packages ] || { [ "${IMGCRAFT_LAYERS}" = auto ] && [ -d "${PKGDATA_DIR}/runtime" ]; }; then
        set -- "$@" --pkgdata "${PKGDATA_DIR}"
        [ -e "${IMAGE_MANIFEST}" ] && set -- "$@" --package-manifest "${IMAGE_MANIFEST}"
    fi
    for rule in ${IMGCRAFT_LAYER_RULES}; do set -- "$@" --layer "$rule"; done
    ${@imgcraft_base_option(d)}
    # The previous image, when one was deployed: its package groups are kept, so unchanged packages keep their layers.
    previous="${IMGCRAFT_PREVIOUS}"
    if [ -n "$previous" ] && [ ! -e "$previous" ] && [ -e "${previous%.oci.tar}.oci" ]; then
        previous="${previous%.oci.tar}.oci"
    fi
    if [ -n "$previous" ] && [ -d "$previous" ]; then
        set -- "$@" --previous "oci:$previous"
    elif [ -n "$previous" ] && [ -e "$previous" ]; then
        set -- "$@" --previous "oci-archive:$previous"
    fi
    export IMGCRAFT_CACHE_DIR="${IMGCRAFT_CACHE_DIR}"
    for volume in ${IMGCRAFT_VOLUMES}; do set -- "$@" --volume "$volume"; done
    ${@imgcraft_sbom_options(d)}
    ${IMGCRAFT_PROVENANCE_OPTIONS}
    # IMAGE_NAME already ends in IMAGE_NAME_SUFFIX (.rootfs) and the build's version, as OE-core's own tarball does.
    name="${IMAGE_NAME}"
    for output in ${IMGCRAFT_OUTPUTS}; do
        case "$output" in
        archive) set -- "$@" -o "oci-archive:${IMGDEPLOYDIR}/$name.oci.tar" ;;
        layout) rm -rf "${IMGDEPLOYDIR}/$name.oci"; set -- "$@" -o "oci:${IMGDEPLOYDIR}/$name.oci" ;;
        esac
    done

    if [ -n "${IMGCRAFT_ROOTFS_TYPE}" ]; then
        rootfs2image "${IMGDEPLOYDIR}/$name.${IMGCRAFT_ROOTFS_TYPE}" "$@" ${IMGCRAFT_EXTRA_ARGS}
    else
        # OE-core's tar flags plus xattrs. /bin/sh has no pipefail: tar's status goes through a file, and 1 ("file
        # changed as we read it") is accepted, as OE-core's IMAGE_CMD:tar does.
        status="${WORKDIR}/imgcraft-tar.status"
        { tar --xattrs --xattrs-include='*' --sort=name --format=posix --pax-option=delete=atime,delete=ctime \
            --numeric-owner -C "${IMAGE_ROOTFS}" -cf - . ; echo $? > "$status"; } |
            rootfs2image - "$@" ${IMGCRAFT_EXTRA_ARGS}
        if [ "$(cat "$status")" -gt 1 ]; then
            bbfatal "imgcraft: tar of ${IMAGE_ROOTFS} failed with status $(cat "$status")"
        fi
    fi
}

# After every do_image_<type>, OE-core's image.bbclass runs create_symlinks and write_image_output_manifest, which link
# ${IMAGE_LINK_NAME}.<subimage> to ${IMAGE_NAME}.<subimage> and record it in IMAGE_OUTPUT_MANIFEST for each name in
# the task's [subimages] flag. For this type the flag holds "imgcraft", a file that never exists: this prefunc sets it
# to what IMGCRAFT_OUTPUTS deploys. It does so when the task runs (BitBake's exec_task hands the prefuncs, the task
# and its postfuncs one datastore), so the order in which image.bbclass's anonymous function and ours run is moot.
# nooelint: oelint.vars.mispell.unknown - the task OE-core image.bbclass creates for this image type
do_image_imgcraft[prefuncs] += "imgcraft_subimages"
# nooelint: oelint.task.docstrings - a prefunc of do_image_imgcraft, not a task
python imgcraft_subimages() {
    suffixes = {'archive': 'oci.tar', 'layout': 'oci'}
    task = 'do_' + d.getVar('BB_CURRENTTASK')
    d.setVarFlag(task, 'subimages', ' '.join(suffixes[o] for o in d.getVar('IMGCRAFT_OUTPUTS').split()))
}

# `bitbake -c imgcraft_push IMAGE`: pushes the deployed archive to IMGCRAFT_PUSH_REF, with the SBOMs and provenance
# attached to it, signed with IMGCRAFT_SIGN_KEY when set. Not part of any normal build.
do_imgcraft_push() {
    if [ -z "${IMGCRAFT_PUSH_REF}" ]; then
        bbfatal "imgcraft: set IMGCRAFT_PUSH_REF = \"docker://HOST/REPO:TAG\" to push"
    fi
    set --
    if [ -n "${IMGCRAFT_SIGN_KEY}" ]; then
        set -- --sign-key "${IMGCRAFT_SIGN_KEY}"
        [ -n "${IMGCRAFT_SIGN_PASSPHRASE_FILE}" ] && set -- "$@" --sign-passphrase-file "${IMGCRAFT_SIGN_PASSPHRASE_FILE}"
    fi
    rootfs2image push ${IMGCRAFT_PUSH_ARGS} "$@" "oci-archive:${DEPLOY_DIR_IMAGE}/${IMAGE_LINK_NAME}.oci.tar" \
        "${IMGCRAFT_PUSH_REF}"
}
addtask imgcraft_push after do_image_complete
do_imgcraft_push[doc] = "Pushes the deployed container image to IMGCRAFT_PUSH_REF (run it explicitly; never part of a build)"
do_imgcraft_push[nostamp] = "1"
# nooelint: oelint.task.network - pushing to a registry is this task's purpose; it is never part of a normal build
do_imgcraft_push[network] = "1"
do_imgcraft_push[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
do_imgcraft_push[prefuncs] += "extend_recipe_sysroot imgcraft_registry_environment"
# Where a builder keeps its key is no input of the push: it must not change the task's signature.
do_imgcraft_push[vardepsexclude] += "IMGCRAFT_SIGN_KEY IMGCRAFT_SIGN_PASSPHRASE_FILE"

# Exports the variables of IMGCRAFT_REGISTRY_ENV from the environment bitbake was started in (BitBake's workers start
# from a clean one), unless the configuration sets them: the registry tasks find the user's credentials as
# rootfs2image run by hand would. A prefunc: the task runs with the datastore its prefuncs changed.
# BB_ORIGENV is an object whose text changes from one parse to the next: it must stay out of signatures.
imgcraft_registry_environment[vardepsexclude] = "BB_ORIGENV"
# nooelint: oelint.task.docstrings - a prefunc of the registry tasks, not a task
python imgcraft_registry_environment() {
    origenv = d.getVar('BB_ORIGENV', False)
    for name in (d.getVar('IMGCRAFT_REGISTRY_ENV') or '').split():
        value = d.getVar(name) or (origenv.getVar(name) if origenv else None)
        if value:
            d.setVar(name, value)
            d.setVarFlag(name, 'export', '1')
}

# Copies a registry base pinned by digest into IMGCRAFT_BASE_DL_DIR, once: the only imgcraft task of a build that
# uses the network, added by the anonymous function above only for a docker:// base. Like BitBake's fetcher, it
# honours BB_NO_NETWORK (a base already in IMGCRAFT_BASE_DL_DIR is enough) and BB_ALLOWED_NETWORKS, and tries
# IMGCRAFT_BASE_MIRRORS first. rootfs2image checks the manifest against the digest and every blob against it.
do_imgcraft_fetch_base[doc] = "Fetches the registry base image named by digest in IMGCRAFT_BASE_IMAGE into DL_DIR"
# nooelint: oelint.task.network - fetching the pinned base image is this task's purpose
do_imgcraft_fetch_base[network] = "1"
do_imgcraft_fetch_base[depends] += "${IMGCRAFT_NATIVE_DEPENDS}"
do_imgcraft_fetch_base[prefuncs] += "extend_recipe_sysroot imgcraft_registry_environment"
do_imgcraft_fetch_base[vardepsexclude] += "IMGCRAFT_BASE_MIRRORS IMGCRAFT_REGISTRY_ARGS IMGCRAFT_BASE_DL_DIR"
python do_imgcraft_fetch_base() {
    import os
    import shlex
    import subprocess
    location = imgcraft_base(d)[1]
    dest = imgcraft_base_download(d)
    if os.path.exists(dest):
        bb.note("imgcraft: %s is already in %s" % (location, dest))
        return
    candidates = []
    for pair in (d.getVar('IMGCRAFT_BASE_MIRRORS') or '').split():
        source, _, mirror = pair.partition('=')
        if mirror and location.startswith(source):
            candidates.append(mirror + location[len(source):])
    candidates.append(location)
    bb.utils.mkdirhier(os.path.dirname(dest))
    partial = dest + '.part-%d' % os.getpid()
    args = shlex.split(d.getVar('IMGCRAFT_REGISTRY_ARGS') or '')
    failures = []
    for url in candidates:
        try:
            bb.fetch2.check_network_access(d, "rootfs2image copy %s" % url, url)
        except bb.fetch2.NetworkAccess as e:
            failures.append(str(e))
            continue
        command = ['rootfs2image', 'copy', '--json'] + args + [url, 'oci-archive:' + partial]
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if result.returncode == 0:
            os.rename(partial, dest)
            bb.note("imgcraft: fetched %s into %s" % (url, dest))
            return
        failures.append(result.stderr.strip() or "rootfs2image copy %s failed" % url)
    bb.fatal("imgcraft: cannot fetch the base image %s into %s: %s" % (location, dest, "; ".join(failures)))
}
