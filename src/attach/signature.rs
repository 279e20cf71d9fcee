//! Signatures for one destination: each manifest published there (an image's, an index's and each of its images')
//! signed for the name it is published under, in cosign's signature image at `sha256-<hex>.sig`, which podman,
//! skopeo and cosign verify. A signature names its destination (`docker-reference`), so each output gets its own.

use super::{Signer, tagged};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::artifact::{Attachment, Placement, signature_tag};
use crate::oci::config::{ImageConfig, RootFs};
use crate::oci::image::{Image, Layer};
use crate::oci::manifest::parse_manifest;
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

/// The signature image of `digest` among `attachments` (read with the image being copied), as the image a new
/// signature is added to; `None` when there is none or it is not a manifest.
pub fn among(attachments: &[Attachment], digest: &Digest) -> Option<Image> {
    let attachment = attachments.iter().find(|a| a.placement == Placement::Tag(signature_tag(digest)))?;
    let manifest = parse_manifest(&attachment.manifest.bytes).ok()?;
    Some(Image {
        manifest: Some(attachment.manifest.clone()),
        config_descriptor: manifest.config,
        // Only the layers and annotations are carried into the new signature image.
        config: ImageConfig {
            created: None,
            author: None,
            architecture: String::new(),
            variant: None,
            os: String::new(),
            config: Default::default(),
            rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
            history: Vec::new(),
        },
        layers: manifest.layers.into_iter().map(|descriptor| Layer { descriptor, diff_id: None }).collect(),
        annotations: manifest.annotations.unwrap_or_default(),
        origin: None,
    })
}
