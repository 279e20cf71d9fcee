//! Copying one image from any transport to others unchanged (what `skopeo copy` and `crane copy` do): the manifest
//! keeps its bytes and so its digest, every blob is checked against its descriptor on the way. meta-imgcraft uses
//! it to fetch a registry base image, pinned by digest, into DL_DIR once, so that image builds need no network.

use serde::Serialize;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::PushReport;
use crate::sink::{self, Publication, SinkOptions};

#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    pub manifest_digest: Digest,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub outputs: Vec<String>,
    /// The SBOMs, provenance and signatures copied with the image (their manifest digests).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Digest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushReport>,
    /// What went otherwise than asked without failing the copy (a bundle's process that will not run as it is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Copies the image `source` names to every output, unchanged.
pub fn copy_image(
    source: &ImageRef,
    outputs: &[ImageRef],
    name: Option<&ImageName>,
    options: &SinkOptions,
) -> Result<CopyReport> {
    if outputs.is_empty() {
        return Err(Error::Invalid("a copy needs at least one destination".into()));
    }
    for output in outputs {
        sink::check_destination(output, options)?;
    }
    let mut opened = crate::source::open_with(source, &options.registry)?;
    opened.load_attachments()?;
    let mut image = opened.image.clone();
    // Listed as the top of a layout, the manifest carries no platform or name of its source's index.
    if let Some(manifest) = &mut image.manifest {
        manifest.descriptor.platform = None;
        manifest.descriptor.annotations = None;
    }
    let mut publication = Publication::single(image).ok_or_else(|| {
        Error::bad_image(source, "this archive has no OCI manifest (an old `docker save` format) to copy unchanged")
    })?;
    publication.attachments = opened.attachments.clone();
    let staging_dir = sink::staging_dir(outputs)?;
    let staging = BlobStore::open(staging_dir.path())?;
    sink::stage(&publication.images[0], &opened, &staging, outputs, source)?;
    sink::stage_attachments(&publication.attachments, &opened, &staging, source)?;
    let published = sink::publish(outputs, &publication, &staging, name, options)?;
    Ok(CopyReport {
        manifest_digest: publication.top.descriptor.digest.clone(),
        architecture: opened.image.config.architecture.clone(),
        variant: opened.image.config.variant.clone(),
        outputs: outputs.iter().map(ToString::to_string).collect(),
        attachments: publication.attachments.iter().map(|a| a.manifest.descriptor.digest.clone()).collect(),
        pushes: published.pushes,
        warnings: published.warnings,
    })
}
