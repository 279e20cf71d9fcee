//! `attach`: SBOMs (and, with a key, signatures) added to an image written or pushed earlier, in place: a layout's
//! `index.json` gains entries, an archive is rewritten beside itself and renamed over, a registry gets the artifacts
//! and its tag put again unchanged. The image's manifest, and so its digest, stays as it was; what was attached before
//! stays too. meta-imgcraft uses it to attach the SPDX that OE-core writes after the image.

use serde::Serialize;

use super::inspect::AttachmentReport;
use crate::attach::sbom::file_artifact;
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::PushReport;
use crate::sbom::SbomFile;
use crate::sink::{self, Publication, SinkOptions};

#[derive(Clone, Debug, Serialize)]
pub struct AttachReport {
    pub manifest_digest: Digest,
    /// Everything attached to the image now, what was there before included.
    pub attachments: Vec<AttachmentReport>,
    pub output: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushReport>,
}

/// Attaches `sboms` (recognised already) to the image `reference` names, and signs it when `options` has a signer.
pub fn attach(reference: &ImageRef, sboms: &[SbomFile], options: &SinkOptions) -> Result<AttachReport> {
    if sboms.is_empty() && options.signer.is_none() {
        return Err(Error::Invalid("nothing to attach: give --sbom FILE or --sign-key FILE".into()));
    }
    let mut opened = crate::source::open_with(reference, &options.registry)?;
    opened.load_attachments()?;
    let mut image = opened.image.clone();
    if let Some(manifest) = &mut image.manifest {
        manifest.descriptor.platform = None;
        manifest.descriptor.annotations = None;
    }
    let mut publication = Publication::single(image).ok_or_else(|| {
        Error::bad_image(reference, "this archive has no OCI manifest (an old `docker save` format) to attach to")
    })?;
    // Written back under the name it has, so that its entry is replaced rather than a second one added.
    let output = same_place(reference, &opened.names);
    let name: Option<ImageName> = opened.names.iter().find_map(|n| n.parse().ok());
    let outputs = [output.clone()];
    let staging_dir = sink::staging_dir(&outputs)?;
    let staging = BlobStore::open(staging_dir.path())?;
    sink::stage(&publication.images[0], &opened, &staging, &outputs, reference)?;
    sink::stage_attachments(&opened.attachments, &opened, &staging, reference)?;
    publication.attachments = opened.attachments.clone();
    let subject = publication.top.descriptor.clone();
    for sbom in sboms {
        let attachment = file_artifact(&staging, &subject, sbom)?;
        // The same SBOM attached twice is listed once.
        if !publication
            .attachments
            .iter()
            .any(|a| a.manifest.descriptor.digest == attachment.manifest.descriptor.digest)
        {
            publication.attachments.push(attachment);
        }
    }
    drop(opened);
    let pushes = sink::publish(&outputs, &publication, &staging, name.as_ref(), options)?.pushes;
    let reread = {
        let mut source = crate::source::open_with(&output, &options.registry)?;
        source.load_attachments()?;
        source.attachments
    };
    Ok(AttachReport {
        manifest_digest: subject.digest,
        attachments: reread.iter().map(AttachmentReport::of).collect(),
        output: output.to_string(),
        pushes,
    })
}

/// The reference that writes back to where `reference` read from: a layout by the tag the image has there.
fn same_place(reference: &ImageRef, names: &[String]) -> ImageRef {
    match reference {
        ImageRef::Layout { dir, tag: None } => {
            // Layouts list the tag as ref.name; containerd's full name is not a tag.
            let tag = names.iter().find(|n| !n.contains('/') && !n.contains(':')).cloned();
            ImageRef::Layout { dir: dir.clone(), tag }
        }
        other => other.clone(),
    }
}
