# A small image mechanism with the variable names and task graph of OE-core's image.bbclass, image_types.bbclass and
# image-artifact-names.bbclass:
#   do_rootfs (the recipe's: OE-core installs packages, these tests unpack a prepared tree into IMAGE_ROOTFS)
#   -> do_image -> do_image_<type> for each base type in IMAGE_FSTYPES, running IMAGE_CMD:<type> and then the
#      CONVERSION_CMDs of its compressed forms (tar.zst: IMAGE_CMD:tar, then CONVERSION_CMD:zst), after the tasks of
#      the types IMAGE_TYPEDEP:<type> names
#   -> do_image_complete, which deploys IMGDEPLOYDIR into DEPLOY_DIR_IMAGE (OE-core does that through sstate, by
#      hard links) and gathers what each do_image_<type> recorded into IMAGE_OUTPUT_MANIFEST
#   -> do_build
# After each do_image_<type>, OE-core's postfuncs create_symlinks and write_image_output_manifest link and record
# ${IMAGE_NAME}.<subimage> for each name in the task's [subimages] flag; they are copied here as they are.
# do_rootfs, do_image, do_image_<type> and do_image_complete are fakeroot tasks: they run under pseudo.

# Artifact names as in OE-core since 4.3 (nanbield): IMAGE_NAME already ends in IMAGE_NAME_SUFFIX plus the version.
IMAGE_BASENAME ?= "${PN}"
IMAGE_MACHINE_SUFFIX ??= "-${MACHINE}"
IMAGE_NAME_SUFFIX ??= ".rootfs"
IMAGE_LINK_NAME ?= "${IMAGE_BASENAME}${IMAGE_MACHINE_SUFFIX}${IMAGE_NAME_SUFFIX}"
IMAGE_VERSION_SUFFIX ?= "-${DATETIME}"
IMAGE_VERSION_SUFFIX[vardepsexclude] += "DATETIME"
IMAGE_NAME ?= "${IMAGE_LINK_NAME}${IMAGE_VERSION_SUFFIX}"

IMAGE_ROOTFS = "${WORKDIR}/rootfs"
# The installed packages (`name arch version` lines), written during do_rootfs (rootfs-postcommands.bbclass).
IMAGE_MANIFEST = "${IMGDEPLOYDIR}/${IMAGE_NAME}.manifest"
IMGDEPLOYDIR = "${WORKDIR}/deploy-${PN}-image-complete"
IMGMANIFESTDIR = "${WORKDIR}/image-task-manifest"
IMAGE_OUTPUT_MANIFEST_DIR = "${WORKDIR}/deploy-image-output-manifest"
IMAGE_OUTPUT_MANIFEST = "${IMAGE_OUTPUT_MANIFEST_DIR}/manifest.json"
PACKAGE_ARCH = "${MACHINE_ARCH}"

IMAGE_TYPES = "tar"
IMAGE_CMD:tar = "tar --sort=name --format=posix --pax-option=delete=atime,delete=ctime --numeric-owner -cf ${IMGDEPLOYDIR}/${IMAGE_NAME}.tar -C ${IMAGE_ROOTFS} . || [ $? -eq 1 ]"
CONVERSIONTYPES = "gz xz zst"
CONVERSION_CMD:gz = "gzip -f -9 -n -c --rsyncable ${IMAGE_NAME}.${type} > ${IMAGE_NAME}.${type}.gz"
CONVERSION_CMD:xz = "xz -f -k -c -6 --check=crc32 ${IMAGE_NAME}.${type} > ${IMAGE_NAME}.${type}.xz"
CONVERSION_CMD:zst = "zstd -f -k -c -3 ${IMAGE_NAME}.${type} > ${IMAGE_NAME}.${type}.zst"

# Classes every image inherits (OE-core's image.bbclass: create-spdx-3.0 adds create-spdx-image-3.0 here).
IMAGE_CLASSES ??= ""
inherit_defer ${IMAGE_CLASSES}

# What OE-core's do_rootfs runs once the packages are in (create-spdx-2.2 adds image_combine_spdx): each function,
# within do_rootfs, after the recipe's own body.
ROOTFS_POSTUNINSTALL_COMMAND ?= ""
do_rootfs[postfuncs] += "rootfs_postuninstall"
python rootfs_postuninstall () {
    for func in (d.getVar('ROOTFS_POSTUNINSTALL_COMMAND') or '').replace(';', ' ').split():
        bb.build.exec_func(func, d)
}

do_rootfs[dirs] = "${TOPDIR}"
do_rootfs[cleandirs] = "${IMAGE_ROOTFS} ${IMGDEPLOYDIR}"
do_rootfs[fakeroot] = "1"
addtask rootfs

fakeroot python do_image () {
    bb.note("image %s: rootfs %s" % (d.getVar('IMAGE_NAME'), d.getVar('IMAGE_ROOTFS')))
}
do_image[dirs] = "${TOPDIR}"
do_image[cleandirs] += "${IMGMANIFESTDIR}"
addtask image after do_rootfs

def link_or_copy(source, target):
    import shutil
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)

fakeroot python do_image_complete () {
    import shutil
    src, dst = d.getVar('IMGDEPLOYDIR'), d.getVar('DEPLOY_DIR_IMAGE')
    bb.utils.mkdirhier(dst)
    for name in sorted(os.listdir(src)):
        source, target = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)
        # Hard links where it can, as OE-core's sstate_install does (oe.path.copyhardlinktree): a task that rewrites
        # a deployed file in place would change IMGDEPLOYDIR's too.
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        elif os.path.isdir(source):
            shutil.copytree(source, target, symlinks=True, copy_function=link_or_copy)
        else:
            link_or_copy(source, target)
        bb.note("deployed %s" % target)

    import json
    data = []
    for manifest in sorted(os.listdir(d.getVar('IMGMANIFESTDIR'))):
        if manifest.endswith('.json'):
            with open(os.path.join(d.getVar('IMGMANIFESTDIR'), manifest)) as f:
                data.extend(json.load(f))
    with open(d.getVar('IMAGE_OUTPUT_MANIFEST'), 'w') as f:
        json.dump(data, f)
}
do_image_complete[dirs] = "${TOPDIR} ${IMAGE_OUTPUT_MANIFEST_DIR}"
addtask image_complete after do_image before do_build

# OE-core's create_symlinks: IMAGE_LINK_NAME.<subimage> -> IMAGE_NAME.<subimage> for each image the task made.
python create_symlinks () {
    deploy_dir, img_name, link_name = d.getVar('IMGDEPLOYDIR'), d.getVar('IMAGE_NAME'), d.getVar('IMAGE_LINK_NAME')
    subimages = (d.getVarFlag('do_' + d.getVar('BB_CURRENTTASK'), 'subimages', False) or '').split()
    if not link_name:
        return
    for subimage in subimages:
        dst, src = os.path.join(deploy_dir, link_name + '.' + subimage), img_name + '.' + subimage
        if os.path.exists(os.path.join(deploy_dir, src)):
            bb.note("Creating symlink: %s -> %s" % (dst, src))
            if os.path.islink(dst):
                os.remove(dst)
            os.symlink(src, dst)
        else:
            bb.note("Skipping symlink, source does not exist: %s -> %s" % (dst, src))
}

# OE-core's write_image_output_manifest: the task's images that exist, for do_image_complete's IMAGE_OUTPUT_MANIFEST.
python write_image_output_manifest () {
    import json
    taskname = d.getVar('BB_CURRENTTASK')
    subimages = (d.getVarFlag('do_' + taskname, 'subimages', False) or '').split()
    data = {'taskname': taskname, 'imagetype': d.getVarFlag('do_' + taskname, 'imagetype', False), 'images': []}
    for subimage in subimages:
        filename = d.getVar('IMAGE_NAME') + '.' + subimage
        if os.path.exists(os.path.join(d.getVar('IMGDEPLOYDIR'), filename)):
            data['images'].append({'filename': filename})
    with open(os.path.join(d.getVar('IMGMANIFESTDIR'), 'do_%s.json' % taskname), 'w') as f:
        json.dump([data], f)
}

python () {
    # OE-core's dispatch, condensed: an IMAGE_FSTYPES entry is a base type plus conversions (tar.zst: tar, then
    # zst); each base type gets one task whose body is IMAGE_CMD with the type in OVERRIDES, then the conversions.
    ctypes = (d.getVar('CONVERSIONTYPES') or '').split()

    def split_type(t):
        conversions = []
        while True:
            for c in ctypes:
                if t.endswith('.' + c):
                    conversions.insert(0, c)
                    t = t[:-len(c) - 1]
                    break
            else:
                return t, conversions

    alltypes = (d.getVar('IMAGE_FSTYPES') or '').split()
    wanted, typedeps = {}, {}
    pending = list(alltypes)
    while pending:
        t = pending.pop(0)
        base = split_type(t)[0]
        wanted.setdefault(base, [])
        if t not in wanted[base]:
            wanted[base].append(t)
        for name in dict.fromkeys((t, base)):
            for dep in (d.getVar('IMAGE_TYPEDEP:' + name) or '').split():
                typedeps.setdefault(base, set()).add(split_type(dep)[0])
                if dep not in alltypes:
                    alltypes.append(dep)
                    pending.append(dep)

    old_overrides = d.getVar('OVERRIDES', False)
    for base, types in wanted.items():
        localdata = bb.data.createCopy(d)
        localdata.setVar('OVERRIDES', '%s:%s' % (base, old_overrides))
        localdata.setVar('type', base)
        # Expanded when the task runs, so that the task's signature does not change with the clock.
        for var in ('DATETIME', 'DATE', 'TMPDIR', 'IMAGE_VERSION_SUFFIX'):
            localdata.delVar(var)
        image_cmd = localdata.getVar('IMAGE_CMD')
        if not image_cmd:
            bb.fatal("No IMAGE_CMD defined for IMAGE_FSTYPES entry '%s' - possibly invalid type name or missing "
                     "support class" % base)
        cmds = ['\t' + image_cmd, localdata.expand('\tcd ${IMGDEPLOYDIR}')]
        # IMAGE_CMD is inlined in the task: no separate function for it.
        d.delVarFlag('IMAGE_CMD:' + base, 'func')
        vardeps = {'IMAGE_CMD:' + base}
        subimages, intermediates = [], set()
        for t in types:
            made = base
            for c in split_type(t)[1]:
                localdata.setVar('type', made)
                cmd = '\t' + localdata.getVar('CONVERSION_CMD:' + c)
                if cmd not in cmds:
                    cmds.append(cmd)
                vardeps.add('CONVERSION_CMD:' + c)
                if made not in alltypes:
                    intermediates.add(made)
                made += '.' + c
            if made not in subimages:
                subimages.append(made)
        if base not in alltypes:
            intermediates.add(base)
        cmds += ['\trm ${IMAGE_NAME}.%s' % t for t in sorted(intermediates)]

        task = 'do_image_%s' % base.replace('-', '_').replace('.', '_')
        after = ' '.join(['do_image'] + ['do_image_%s' % dep.replace('-', '_').replace('.', '_')
                                         for dep in sorted(typedeps.get(base, ()))])
        d.setVar(task, '\n'.join(cmds))
        d.setVarFlag(task, 'func', '1')
        d.setVarFlag(task, 'fakeroot', '1')
        d.setVarFlag(task, 'imagetype', base)
        d.appendVarFlag(task, 'subimages', ' ' + ' '.join(subimages))
        d.prependVarFlag(task, 'postfuncs', 'create_symlinks ')
        d.appendVarFlag(task, 'vardeps', ' ' + ' '.join(sorted(vardeps)))
        d.appendVarFlag(task, 'vardepsexclude', ' DATETIME DATE')
        d.appendVarFlag(task, 'postfuncs', ' write_image_output_manifest')
        bb.build.addtask(task, 'do_image_complete', after, d)
}
