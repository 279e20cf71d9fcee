//! Signatures for one destination: each manifest published there (an image's, an index's and each of its images')
//! signed for the name it is published under, in cosign's signature image at `sha256-<hex>.sig`, which podman,
//! skopeo and cosign verify. A signature names its destination (`docker-reference`), so each output gets its own.

use super::{Signer, tagged};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::artifact::{Attachment, signature_tag};
use crate::oci::image::Image;
use crate::sign::signature::sign_manifest;

/// Signs each of `manifests` as `docker_reference`, adding to the signature image already there (`existing`, by
/// manifest digest), so that a second key's signature keeps the first's.
pub fn sign(
    staging: &BlobStore,
    manifests: &[&Digest],
    docker_reference: &str,
    signer: &Signer,
    existing: impl Fn(&Digest) -> Result<Option<Image>>,
) -> Result<Vec<Attachment>> {
    let mut attachments = Vec::new();
    for &digest in manifests {
        let before = existing(digest)?;
        let image = sign_manifest(staging, before.as_ref(), signer.key(), docker_reference, digest)?;
        attachments.push(tagged(image, digest, signature_tag(digest)));
    }
    Ok(attachments)
}
