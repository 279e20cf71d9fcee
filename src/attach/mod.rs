//! The supply chain around an image: what is attached to it (SBOMs the user gives or that are generated from the
//! rootfs, [`sbom`]; an in-toto SLSA provenance statement, [`provenance`]) and the signatures made for each place it
//! is written to ([`signature`]). Each becomes an [`Attachment`] beside the image; the image's own manifest, and so
//! its digest, never changes.
//!
//! What is reproducible: SBOM, provenance and signature payload bytes, and so their digests, are the same for the same
//! inputs; ECDSA signatures are too, since keys sign deterministically (RFC 6979), but a signature made by another
//! tool with the same key (skopeo, cosign) has other bytes.

pub mod provenance;
pub mod sbom;
pub mod signature;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::oci::artifact::Attachment;
use crate::oci::image::Image;
use crate::sbom::{GeneratedFormat, SbomFile};
use crate::sign::key::PrivateKey;
use crate::sign::provenance::Dependency;

/// A signing key, loaded and unsealed, and the file it came from (for messages). Its `Debug` shows the file only.
#[derive(Clone)]
pub struct Signer {
    key: Arc<PrivateKey>,
    pub source: String,
}

impl Signer {
    pub fn new(key: PrivateKey, source: impl Into<String>) -> Signer {
        Signer { key: Arc::new(key), source: source.into() }
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.source)
    }
}

/// An SBOM to attach.
#[derive(Clone, Debug)]
pub enum SbomRequest {
    /// A file, recognised (and refused when it is no SBOM) before any work starts.
    File(SbomFile),
    /// One written from the rootfs's package data and files.
    Generate(GeneratedFormat),
}

/// What to attach to a converted image.
#[derive(Clone, Debug, Default)]
pub struct AttachOptions {
    pub sboms: Vec<SbomRequest>,
    pub provenance: Option<ProvenanceRequest>,
}

impl AttachOptions {
    /// The format of the SBOM to generate, if one is asked for.
    pub fn generated_sbom(&self) -> Option<GeneratedFormat> {
        self.sboms.iter().find_map(|s| match s {
            SbomRequest::Generate(format) => Some(*format),
            SbomRequest::File(_) => None,
        })
    }
}

/// What the provenance records besides what the conversion knows itself.
#[derive(Clone, Debug, Default)]
pub struct ProvenanceRequest {
    /// Build parameters (`--provenance-param`): MACHINE, DISTRO, the image recipe.
    pub parameters: BTreeMap<String, String>,
    /// Sources the build used (`--provenance-dependency`): layers at their git revisions.
    pub dependencies: Vec<Dependency>,
}

/// The SBOM files a user named, recognised by content: one line naming the file when one is not an SBOM.
pub fn recognise_sboms(files: &[PathBuf]) -> Result<Vec<SbomFile>> {
    files.iter().map(|f| crate::sbom::recognise(f)).collect()
}

/// A signature or attestation image, as the attachment at its tag.
pub(crate) fn tagged(image: Image, subject: &crate::digest::Digest, tag: String) -> Attachment {
    let blobs = image.blobs().cloned().collect();
    let manifest = image.manifest.expect("a signature image is assembled with its manifest");
    Attachment::tagged(manifest, blobs, subject, tag)
}
