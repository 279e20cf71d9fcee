//! Image manifests (image-spec manifest.md) and the annotations imgcraft reads and writes on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::Descriptor;
use super::document::{ParseResult, parse_document};
use super::media_type::MediaType;

/// image-spec annotations.md
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name containerd (and Docker 25's `docker save`) record in `index.json`.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The most layers an image read back may have. overlayfs stacks at most 500 lower directories (`OVL_MAX_STACK`)
/// and Docker refuses images deeper than 125 layers, so no image an engine can run has more; past it the image is
/// refused as soon as its manifest is parsed, before any layer is read.
pub const MAX_IMAGE_LAYERS: usize = 500;

/// Parses an image manifest (manifest.md) and checks its layer count.
pub fn parse_manifest(bytes: &[u8]) -> ParseResult<Manifest> {
    let manifest: Manifest = parse_document(bytes, "manifest")?;
    if manifest.layers.len() > MAX_IMAGE_LAYERS {
        return Err(format!(
            "the manifest lists {} layers, more than the {MAX_IMAGE_LAYERS} an image may have",
            manifest.layers.len()
        ));
    }
    Ok(manifest)
}

/// manifest.md: one image, its config and its layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// image-spec 1.1: what an artifact manifest holds, when its config is the empty descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// image-spec 1.1: the manifest this one is about (an SBOM's or an attestation's image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}
