# Stands in for OE-core's create-spdx-2.2 (scarthgap's create-spdx) where the imgcraft class meets it: during
# do_rootfs, image_combine_spdx (a ROOTFS_POSTUNINSTALL_COMMAND) writes ${IMGDEPLOYDIR}/${IMAGE_NAME}.spdx.tar.zst, a
# zstd-compressed tar of the image's SPDX 2.2 document, one document per package and an index.json, as OE-core's
# combine_spdx does, and links ${IMAGE_LINK_NAME}.spdx.tar.zst to it. INHERIT += "create-spdx-2.2" turns it on.

ROOTFS_POSTUNINSTALL_COMMAND =+ "image_combine_spdx"

python image_combine_spdx() {
    import io
    import json
    import subprocess
    import tarfile
    name = d.getVar('IMAGE_NAME')
    namespace = 'http://spdx.org/spdxdoc/%s-imgcraft-test' % name

    def document(doc_name, packages):
        return {
            'SPDXID': 'SPDXRef-DOCUMENT', 'spdxVersion': 'SPDX-2.2', 'dataLicense': 'CC0-1.0', 'name': doc_name,
            'documentNamespace': '%s/%s' % (namespace, doc_name),
            'creationInfo': {'created': '2018-03-09T12:34:56Z', 'creators': ['Tool: OpenEmbedded Core create-spdx.bbclass']},
            'packages': [{'SPDXID': 'SPDXRef-%s' % p, 'name': p, 'versionInfo': '1.0', 'downloadLocation': 'NOASSERTION',
                          'licenseDeclared': 'MIT', 'licenseConcluded': 'MIT', 'copyrightText': 'NOASSERTION'}
                         for p in packages],
        }

    docs = {name: document(name, [d.getVar('PN')]), 'busybox': document('busybox', ['busybox'])}
    index = {'documents': []}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w|') as tar:
        for doc_name in sorted(docs):
            data = json.dumps(docs[doc_name], sort_keys=True).encode()
            info = tarfile.TarInfo(doc_name + '.spdx.json')
            info.size, info.mtime = len(data), 1520598896
            tar.addfile(info, io.BytesIO(data))
            index['documents'].append({'filename': info.name, 'documentNamespace': docs[doc_name]['documentNamespace']})
        data = json.dumps(index, sort_keys=True).encode()
        info = tarfile.TarInfo('index.json')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    deploy = d.getVar('IMGDEPLOYDIR')
    path = os.path.join(deploy, name + '.spdx.tar.zst')
    with open(path, 'wb') as out:
        subprocess.run(['zstd', '-q', '-c'], input=raw.getvalue(), stdout=out, check=True)
    link = os.path.join(deploy, d.getVar('IMAGE_LINK_NAME') + '.spdx.tar.zst')
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.basename(path), link)
}
