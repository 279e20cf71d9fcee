//! The provenance of a converted image: an in-toto statement with a SLSA provenance v1 predicate, attached as an
//! OCI 1.1 artifact and, with a key, signed as a DSSE envelope in cosign's attestation image (`sha256-<hex>.att`).

use std::collections::BTreeMap;

use super::{ProvenanceRequest, Signer, tagged};
use crate::blobs::BlobStore;
use crate::error::Result;
use crate::oci::artifact::{Attachment, attestation_tag};
use crate::oci::descriptor::Descriptor;
use crate::oci::media_type::MediaType;
use crate::sign::attestation::attest;
use crate::sign::provenance::{Dependency, IN_TOTO_MEDIA_TYPE, PROVENANCE_PREDICATE_TYPE, Provenance};

/// The annotation naming a statement's predicate type on its artifact (as Docker's and oras's attestations do).
pub const ANNOTATION_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// What the conversion itself knows of how the image was made.
#[derive(Clone, Debug, Default)]
pub struct BuildRecord {
    /// The image's name (`--tag`, or the output), the statement's subject name.
    pub subject_name: String,
    /// Every option that shapes the output, as the user gave it.
    pub options: BTreeMap<String, serde_json::Value>,
    /// What was read: the input rootfs with its sha256, a base or previous image with its manifest digest.
    pub inputs: Vec<Dependency>,
    /// The image's creation time, the one time the statement may carry and stay reproducible.
    pub created: Option<String>,
}

/// The provenance of the image whose manifest is `subject`: the artifact, and with `signer` the attestation image.
pub fn attach(
    staging: &BlobStore,
    subject: &Descriptor,
    record: &BuildRecord,
    request: &ProvenanceRequest,
    signer: Option<&Signer>,
) -> Result<Vec<Attachment>> {
    let mut provenance = Provenance::new(&record.subject_name, &subject.digest);
    provenance.options = record.options.clone();
    provenance.build_parameters = request.parameters.clone();
    provenance.dependencies = record.inputs.iter().chain(&request.dependencies).cloned().collect();
    provenance.started_on = record.created.clone();
    let statement = provenance.statement();

    let (digest, size) = staging.put(&statement)?;
    let layer = Descriptor {
        annotations: Some(BTreeMap::from([(
            ANNOTATION_PREDICATE_TYPE.to_string(),
            PROVENANCE_PREDICATE_TYPE.to_string(),
        )])),
        ..Descriptor::new(MediaType::from(IN_TOTO_MEDIA_TYPE), digest, size)
    };
    let annotations = BTreeMap::from([(ANNOTATION_PREDICATE_TYPE.to_string(), PROVENANCE_PREDICATE_TYPE.to_string())]);
    let mut attachments = vec![Attachment::artifact(staging, subject, IN_TOTO_MEDIA_TYPE, vec![layer], annotations)?];
    if let Some(signer) = signer {
        let image = attest(staging, None, signer.key(), statement, PROVENANCE_PREDICATE_TYPE)?;
        attachments.push(tagged(image, &subject.digest, attestation_tag(&subject.digest)));
    }
    Ok(attachments)
}
