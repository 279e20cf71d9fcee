//! The image model: one image as its documents describe it (manifest, config, layers), what every source yields and
//! every sink consumes, and its assembly from freshly written layers.

use std::collections::BTreeMap;

use super::config::{ImageConfig, RootFs};
use super::descriptor::{Descriptor, PlatformDoc};
use super::manifest::Manifest;
use super::media_type::MediaType;
use crate::blobs::BlobStore;
use crate::error::Result;
use crate::layer::writer::Layer;

/// A complete image whose blobs are in a [`BlobStore`]: its layers, config and manifest, with the exact bytes of
/// the two documents.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
    pub config_descriptor: Descriptor,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_descriptor: Descriptor,
}

impl Image {
    /// Writes the config and the manifest for these layers into `blobs`.
    pub fn assemble(
        blobs: &BlobStore,
        mut config: ImageConfig,
        layers: Vec<Layer>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Image> {
        config.rootfs = RootFs { kind: "layers".into(), diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect() };
        let config_bytes = serde_json::to_vec(&config).expect("an image config always serialises");
        let (digest, size) = blobs.put(&config_bytes)?;
        let config_descriptor =
            Descriptor { media_type: MediaType::OciConfig, digest, size, platform: None, annotations: None };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest),
            config: config_descriptor.clone(),
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest.clone(),
                    size: l.size,
                    platform: None,
                    annotations: (!l.annotations.is_empty()).then(|| l.annotations.clone()),
                })
                .collect(),
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let (digest, size) = blobs.put(&manifest_bytes)?;
        let manifest_descriptor = Descriptor {
            media_type: MediaType::OciManifest,
            digest,
            size,
            platform: Some(PlatformDoc {
                architecture: config.architecture.clone(),
                os: config.os.clone(),
                variant: config.variant.clone(),
            }),
            annotations: None,
        };
        Ok(Image { layers, config, config_descriptor, manifest, manifest_bytes, manifest_descriptor })
    }
}
