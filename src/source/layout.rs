//! Reading an image from an OCI layout (image-spec image-layout.md), a directory or the one inside an
//! `oci-archive:` (or a Docker 25+ `docker save`): `index.json` names the image, its manifest and config are read
//! within their declared sizes and checked against their digests.

use std::collections::HashMap;

use super::{Blobs, SourceImage, layers_of, shown};
use crate::error::{Error, Result};
use crate::oci::config::{ImageConfig, parse_config};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::MAX_DOCUMENT_SIZE;
use crate::oci::image::{Document, Image};
use crate::oci::index::{Index, parse_index};
use crate::oci::manifest::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Manifest, parse_manifest};

/// The image of `index.json` named `wanted`, or its only one.
pub(super) fn open(blobs: Blobs, display: &str, wanted: Option<&str>) -> Result<SourceImage> {
    let index_bytes = blobs.read_path("index.json", MAX_DOCUMENT_SIZE, display)?;
    let index: Index = parse_index(&index_bytes).map_err(|e| Error::bad_image(display, format!("index.json: {e}")))?;
    let chosen =
        match wanted {
            Some(wanted) => index.manifests.iter().find(|d| names(d).iter().any(|n| n == wanted)).ok_or_else(|| {
                Error::bad_image(display, format!("no image named `{}` in index.json", shown(wanted)))
            })?,
            None => match index.manifests.as_slice() {
                [one] => one,
                [] => return Err(Error::bad_image(display, "index.json lists no image")),
                many => {
                    let listed: Vec<String> = many.iter().flat_map(names).collect();
                    return Err(Error::bad_image(
                        display,
                        format!("index.json lists {} images: name one of: {}", many.len(), shown(&listed.join(", "))),
                    ));
                }
            },
        };
    if chosen.media_type.is_index() {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    if !chosen.media_type.is_manifest() {
        return Err(Error::bad_image(
            display,
            format!("unsupported manifest media type `{}`", shown(chosen.media_type.as_str())),
        ));
    }
    let manifest_bytes = blobs.read_verified(chosen, display)?;
    let manifest: Manifest = parse_manifest(&manifest_bytes)
        .map_err(|e| Error::bad_image(display, format!("manifest {}: {e}", chosen.digest)))?;
    let config_bytes = blobs.read_verified(&manifest.config, display)?;
    let config: ImageConfig = parse_config(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("image config {}: {e}", manifest.config.digest)))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::bad_image(
            display,
            format!(
                "the manifest lists {} layers but the config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    let image = Image {
        manifest: Some(Document { descriptor: chosen.clone(), bytes: manifest_bytes }),
        config_descriptor: manifest.config.clone(),
        layers: layers_of(&manifest.layers, &config.rootfs.diff_ids),
        config,
        annotations: manifest.annotations.unwrap_or_default(),
        origin: None,
    };
    Ok(SourceImage { reference: display.to_string(), names: names(chosen), image, blobs, members: HashMap::new() })
}

/// The names an index entry gives its image: containerd's full name and the OCI ref.name.
fn names(descriptor: &Descriptor) -> Vec<String> {
    let annotations = descriptor.annotations.clone().unwrap_or_default();
    let mut names: Vec<String> =
        [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME].iter().filter_map(|k| annotations.get(*k).cloned()).collect();
    names.dedup();
    names
}
