//! Multi-platform images: several single-platform images combined into one OCI image index
//! (image-spec image-index.md), each manifest listed with the platform its config declares.

use serde::Serialize;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::descriptor::{Descriptor, PlatformDoc};
use crate::oci::image::Document;
use crate::oci::index::Index;
use crate::oci::media_type::MediaType;
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::PushReport;
use crate::sink::{self, Publication, SinkOptions};

#[derive(Clone, Debug, Serialize)]
pub struct IndexReport {
    pub index_digest: Digest,
    pub manifests: Vec<Descriptor>,
    pub outputs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushReport>,
}

/// Combines `sources` into an index written to every output.
pub fn build_index(
    sources: &[ImageRef],
    outputs: &[ImageRef],
    name: Option<&ImageName>,
    options: &SinkOptions,
) -> Result<IndexReport> {
    if sources.is_empty() || outputs.is_empty() {
        return Err(Error::Invalid("an index needs at least one source image and one -o output".into()));
    }
    for output in outputs {
        sink::check_destination(output, options)?;
    }
    let staging_dir = sink::staging_dir(outputs)?;
    let staging = BlobStore::open(staging_dir.path())?;

    let mut images = Vec::new();
    // Each image's SBOMs and signatures stay with it: their subjects are the manifests the index lists.
    let mut attachments = Vec::new();
    let mut platforms: Vec<(PlatformDoc, String)> = Vec::new();
    for source in sources {
        let mut opened = crate::source::open_with(source, &options.registry)?;
        opened.load_attachments()?;
        let mut image = opened.image.clone();
        let config = &image.config;
        let platform = PlatformDoc {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
        };
        let Some(manifest) = &mut image.manifest else {
            return Err(Error::bad_image(source, "this archive has no OCI manifest to put in an index"));
        };
        if let Some((_, other)) = platforms.iter().find(|(p, _)| *p == platform) {
            return Err(Error::Invalid(format!(
                "`{source}` and `{other}` are both for {}/{}{}: an index holds one image per platform",
                platform.os,
                platform.architecture,
                platform.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default()
            )));
        }
        platforms.push((platform.clone(), source.to_string()));
        manifest.descriptor.platform = Some(platform);
        manifest.descriptor.annotations = None;
        sink::stage(&image, &opened, &staging, outputs, source)?;
        sink::stage_attachments(&opened.attachments, &opened, &staging, source)?;
        attachments.extend(opened.attachments.iter().cloned());
        images.push(image);
    }
    let listed: Vec<Descriptor> =
        images.iter().filter_map(|i| i.manifest.as_ref()).map(|m| m.descriptor.clone()).collect();
    let index_bytes = serde_json::to_vec(&Index::new(listed.clone())).expect("an index serialises");
    let index = Document::put(&staging, MediaType::OciIndex, index_bytes)?;
    let mut publication = Publication::index(index, images);
    publication.attachments = attachments;
    let pushes = sink::publish(outputs, &publication, &staging, name, options)?.pushes;
    Ok(IndexReport {
        index_digest: publication.top.descriptor.digest.clone(),
        manifests: listed,
        outputs: outputs.iter().map(ToString::to_string).collect(),
        pushes,
    })
}
