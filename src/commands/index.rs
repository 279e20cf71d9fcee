//! Multi-platform images: several single-platform images combined into one OCI image index
//! (image-spec image-index.md), each manifest listed with the platform its config declares.

use std::io::{self, Write};

use serde::Serialize;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::descriptor::{Descriptor, PlatformDoc};
use crate::oci::index::Index;
use crate::oci::media_type::MediaType;
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::PushReport;
use crate::registry::push::BlobSource;
use crate::sink::{self, Publication, PublishedImage, SinkOptions};

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
        sink::check_destination(output)?;
    }
    let staging_dir = sink::staging_dir(outputs)?;
    let staging = BlobStore::open(staging_dir.path())?;

    let mut images = Vec::new();
    let mut platforms: Vec<(PlatformDoc, String)> = Vec::new();
    for source in sources {
        let image = crate::source::open_with(source, &options.registry)?;
        let (Some(manifest), Some(manifest_bytes), Some(descriptor)) =
            (&image.manifest, &image.manifest_bytes, &image.manifest_descriptor)
        else {
            return Err(Error::bad_image(source, "this archive has no OCI manifest to put in an index"));
        };
        let platform = PlatformDoc {
            architecture: image.config.architecture.clone(),
            os: image.config.os.clone(),
            variant: image.config.variant.clone(),
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
        // Blobs of an image on a registry that every output can mount from are never downloaded.
        let origin = image.registry_origin();
        let mountable_everywhere = outputs.iter().all(|output| match (output, &origin) {
            (ImageRef::Registry(target), Some((host, _))) => target.api_host() == host,
            _ => false,
        });
        if !mountable_everywhere {
            for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                copy_blob(&image, &staging, blob, source)?;
            }
        }
        staging.put(manifest_bytes)?;
        images.push(PublishedImage {
            manifest: Descriptor { platform: Some(platform), annotations: None, ..descriptor.clone() },
            manifest_bytes: manifest_bytes.clone(),
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            origin,
        });
    }
    let index = Index::new(images.iter().map(|i| i.manifest.clone()).collect());
    let index_bytes = serde_json::to_vec(&index).expect("an index serialises");
    let (digest, size) = staging.put(&index_bytes)?;
    let publication = Publication {
        top: Descriptor {
            media_type: MediaType::OciIndex,
            digest: digest.clone(),
            size,
            platform: None,
            annotations: None,
        },
        top_bytes: index_bytes,
        images,
    };
    let pushes = sink::publish(outputs, &publication, &staging, name, options)?;
    Ok(IndexReport {
        index_digest: digest,
        manifests: publication.images.iter().map(|i| i.manifest.clone()).collect(),
        outputs: outputs.iter().map(ToString::to_string).collect(),
        pushes,
    })
}

/// Streams one blob from a source image into the staging store, checking its digest and size.
pub(crate) fn copy_blob(
    image: &dyn BlobSource,
    staging: &BlobStore,
    blob: &Descriptor,
    source: &ImageRef,
) -> Result<()> {
    if staging.contains(&blob.digest) {
        return Ok(());
    }
    let mut reader = image.open_blob(&blob.digest)?;
    let mut writer = staging.writer()?;
    io::copy(&mut reader, &mut writer)
        .map_err(|e| Error::bad_image(source, format!("cannot copy blob {}: {e}", blob.digest)))?;
    writer.flush().map_err(|e| Error::io("cannot write", staging.root(), e))?;
    let (digest, size) = writer.commit()?;
    if digest != blob.digest || size != blob.size {
        return Err(Error::bad_image(source, format!("blob {} is corrupt (read {digest}, {size} bytes)", blob.digest)));
    }
    Ok(())
}
