//! Copying one image from any transport to others unchanged (what `skopeo copy` and `crane copy` do): the manifest
//! keeps its bytes and so its digest, every blob is checked against its descriptor on the way. meta-imgcraft uses
//! it to fetch a registry base image, pinned by digest, into DL_DIR once, so that image builds need no network.

use serde::Serialize;

use crate::blobs::BlobStore;
use crate::commands::index::copy_blob;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::descriptor::Descriptor;
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::PushReport;
use crate::sink::{self, Publication, PublishedImage, SinkOptions};

#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    pub manifest_digest: Digest,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub outputs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushReport>,
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
        sink::check_destination(output)?;
    }
    let image = crate::source::open_with(source, &options.registry)?;
    let (Some(manifest), Some(manifest_bytes), Some(descriptor)) =
        (&image.manifest, &image.manifest_bytes, &image.manifest_descriptor)
    else {
        return Err(Error::bad_image(
            source,
            "this archive has no OCI manifest (an old `docker save` format) to copy unchanged",
        ));
    };
    let staging_dir = sink::staging_dir(outputs)?;
    let staging = BlobStore::open(staging_dir.path())?;
    // Blobs that every output can mount from the source's repository are never downloaded.
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
    let top = Descriptor { platform: None, annotations: None, ..descriptor.clone() };
    let publication = Publication {
        top: top.clone(),
        top_bytes: manifest_bytes.clone(),
        images: vec![PublishedImage {
            manifest: top,
            manifest_bytes: manifest_bytes.clone(),
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            origin,
        }],
    };
    let pushes = sink::publish(outputs, &publication, &staging, name, options)?;
    Ok(CopyReport {
        manifest_digest: descriptor.digest.clone(),
        architecture: image.config.architecture.clone(),
        variant: image.config.variant.clone(),
        outputs: outputs.iter().map(ToString::to_string).collect(),
        pushes,
    })
}
