//! Reading an image from an OCI layout (image-spec image-layout.md), a directory or the one inside an
//! `oci-archive:` (or a Docker 25+ `docker save`): `index.json` names the image, its manifest and config are read
//! within their declared sizes and checked against their digests.

use std::collections::HashMap;

use super::{Blobs, SourceImage, layers_of, shown};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Placement, attestation_tag, is_attachment_tag, signature_tag};
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
    // Attachments (SBOMs, signatures) are listed beside the images; only an image is chosen.
    let images: Vec<&Descriptor> = index.manifests.iter().filter(|d| !is_attachment(d)).collect();
    let chosen = match wanted {
        Some(wanted) => *images
            .iter()
            .find(|d| names(d).iter().any(|n| n == wanted))
            .ok_or_else(|| Error::bad_image(display, format!("no image named `{}` in index.json", shown(wanted))))?,
        None => match images.as_slice() {
            [one] => one,
            [] => return Err(Error::bad_image(display, "index.json lists no image")),
            many => {
                let listed: Vec<String> = many.iter().flat_map(|d| names(d)).collect();
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
    let attachments = attachment_candidates(&index, &chosen.digest);
    Ok(SourceImage {
        reference: display.to_string(),
        names: names(chosen),
        image,
        blobs,
        members: HashMap::new(),
        attachments: Vec::new(),
        candidates: attachments,
    })
}

/// Whether an index entry is an attachment rather than an image: an artifact, or a manifest at a signature's,
/// attestation's or referrers index's tag.
fn is_attachment(descriptor: &Descriptor) -> bool {
    descriptor.artifact_type.is_some() || names(descriptor).iter().any(|n| is_attachment_tag(n))
}

/// The entries of `index` that may be attached to the image `subject`: artifacts (their `subject` is checked when
/// they are read) and the manifests at its signature and attestation tags.
fn attachment_candidates(index: &Index, subject: &Digest) -> Vec<(Descriptor, Placement)> {
    let tags = [signature_tag(subject), attestation_tag(subject)];
    index
        .manifests
        .iter()
        .filter_map(|d| {
            if let Some(tag) = names(d).into_iter().find(|n| tags.contains(n)) {
                Some((d.clone(), Placement::Tag(tag)))
            } else if d.artifact_type.is_some() {
                Some((d.clone(), Placement::Referrer))
            } else {
                None
            }
        })
        .collect()
}

/// The names an index entry gives its image: containerd's full name and the OCI ref.name.
fn names(descriptor: &Descriptor) -> Vec<String> {
    let annotations = descriptor.annotations.clone().unwrap_or_default();
    let mut names: Vec<String> =
        [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME].iter().filter_map(|k| annotations.get(*k).cloned()).collect();
    names.dedup();
    names
}
