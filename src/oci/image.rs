//! The image model: one image as its documents describe it (manifest, config, layers), what every source yields and
//! every sink consumes, in the way go-containerregistry's `v1.Image` is what its layout, tarball and remote packages
//! all read and write. The blobs themselves stay where they are, served by a [`crate::blobs::BlobSource`].

use std::collections::BTreeMap;

use super::config::{ImageConfig, RootFs};
use super::descriptor::{Descriptor, PlatformDoc};
use super::manifest::Manifest;
use super::media_type::MediaType;
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;

/// A document blob (a manifest or an index): its descriptor and its exact bytes, which the digest is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

impl Document {
    /// Stores `bytes` in `blobs` and describes them as `media_type`.
    pub fn put(blobs: &BlobStore, media_type: MediaType, bytes: Vec<u8>) -> Result<Document> {
        let (digest, size) = blobs.put(&bytes)?;
        Ok(Document { descriptor: Descriptor::new(media_type, digest, size), bytes })
    }
}

/// A layer as its image lists it: its descriptor in the manifest and the diff_id the config gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar (config.md `rootfs.diff_ids`); `None` where an image read back lists fewer
    /// diff_ids than layers (a registry's or an old `docker save`'s), which is then not checked.
    pub diff_id: Option<Digest>,
}

/// Where an image was read from, when that was a registry: a push to the same registry mounts its blobs from there
/// instead of sending them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The registry's API host (`registry-1.docker.io` for Docker Hub).
    pub host: String,
    pub repository: String,
}

/// One image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest as stored; its descriptor carries the platform, as an index lists it. `None` only for an archive
    /// in the old `docker save` format, which has no manifest: such an image can be read but not copied unchanged.
    pub manifest: Option<Document>,
    pub config_descriptor: Descriptor,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    pub origin: Option<Origin>,
}

impl Image {
    /// Writes the config and the manifest for these layers into `blobs`.
    pub fn assemble(
        blobs: &BlobStore,
        mut config: ImageConfig,
        layers: Vec<Layer>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Image> {
        config.rootfs =
            RootFs { kind: "layers".into(), diff_ids: layers.iter().filter_map(|l| l.diff_id.clone()).collect() };
        let config_bytes = serde_json::to_vec(&config).expect("an image config always serialises");
        let config_descriptor = Document::put(blobs, MediaType::OciConfig, config_bytes)?.descriptor;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest),
            artifact_type: None,
            config: config_descriptor.clone(),
            layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
            subject: None,
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let mut manifest = Document::put(blobs, MediaType::OciManifest, manifest_bytes)?;
        manifest.descriptor.platform = Some(PlatformDoc {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
        });
        Ok(Image { manifest: Some(manifest), config_descriptor, config, layers, annotations, origin: None })
    }

    /// Every blob the image references (config and layers), each once.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config_descriptor).chain(self.layers.iter().map(|l| &l.descriptor))
    }
}
