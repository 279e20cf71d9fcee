# Stands in for OE-core's create-spdx-image-3.0: do_create_image_sbom_spdx runs after do_image_complete (OE-core's
# runs after do_create_image_spdx, which runs after do_image_complete) and deploys the image's SPDX 3.0 JSON-LD
# document as ${DEPLOY_DIR_IMAGE}/${IMAGE_NAME}.spdx.json with the link ${IMAGE_LINK_NAME}.spdx.json (OE-core's
# writes them into SPDXIMAGEDEPLOYDIR, which its sstate installs into DEPLOY_DIR_IMAGE).

python do_create_image_sbom_spdx() {
    import json
    name, pn = d.getVar('IMAGE_NAME'), d.getVar('PN')
    base = 'http://spdx.org/spdxdocs/%s-imgcraft-test' % pn
    graph = [
        {'type': 'CreationInfo', '@id': '_:CreationInfo0', 'created': '2018-03-09T12:34:56Z',
         'createdBy': [base + '/agent/OpenEmbedded'], 'specVersion': '3.0.1'},
        {'type': 'Organization', 'spdxId': base + '/agent/OpenEmbedded', 'creationInfo': '_:CreationInfo0',
         'name': 'OpenEmbedded'},
        {'type': 'software_Package', 'spdxId': base + '/package/' + pn, 'creationInfo': '_:CreationInfo0',
         'name': pn, 'software_packageVersion': d.getVar('PV'), 'software_primaryPurpose': 'container'},
        {'type': 'software_Sbom', 'spdxId': base + '/sbom', 'creationInfo': '_:CreationInfo0', 'name': name,
         'rootElement': [base + '/package/' + pn], 'software_sbomType': ['build']},
        {'type': 'SpdxDocument', 'spdxId': base + '/document', 'creationInfo': '_:CreationInfo0', 'name': name,
         'profileConformance': ['core', 'software'], 'rootElement': [base + '/sbom']},
    ]
    deploy = d.getVar('DEPLOY_DIR_IMAGE')
    path = os.path.join(deploy, name + '.spdx.json')
    with open(path, 'w') as f:
        json.dump({'@context': 'https://spdx.org/rdf/3.0.1/spdx-context.jsonld', '@graph': graph}, f,
                  separators=(',', ':'))
    link = os.path.join(deploy, d.getVar('IMAGE_LINK_NAME') + '.spdx.json')
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.basename(path), link)
}
addtask do_create_image_sbom_spdx after do_image_complete before do_build
