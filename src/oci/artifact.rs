//! Manifests about an image rather than part of it: SBOMs and provenance attached as OCI 1.1 artifacts (a manifest
//! whose `subject` is the image's manifest, found through the referrers API or its fallback tag), and signatures and
//! signed attestations stored the way cosign stores them (a manifest at the tag `sha256-<hex>.sig` or `.att`).
//! Attaching never changes the image's own manifest or its digest.

use std::collections::BTreeMap;

use super::descriptor::Descriptor;
use super::image::Document;
use super::manifest::Manifest;
use super::media_type::MediaType;
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;

/// image-spec manifest.md "Guidance for an empty descriptor": the config of an artifact that has none.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The title annotation: the file an artifact's layer was made from.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// Where an attachment is found beside its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// An OCI 1.1 referrer: listed by the referrers API (or the fallback tag `sha256-<hex>`), in a layout's
    /// `index.json` by its artifact type.
    Referrer,
    /// A manifest at a tag derived from the subject's digest (cosign's `sha256-<hex>.sig` and `.att`).
    Tag(String),
}

/// A manifest attached to an image, with the blobs it references.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub manifest: Document,
    /// Its config and layers.
    pub blobs: Vec<Descriptor>,
    /// The digest of the manifest it is about.
    pub subject: Digest,
    pub placement: Placement,
}

impl Attachment {
    /// An OCI 1.1 artifact about `subject`: an empty config, `layers` (already in `blobs`), `artifact_type`.
    pub fn artifact(
        blobs: &BlobStore,
        subject: &Descriptor,
        artifact_type: &str,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Attachment> {
        let (digest, size) = blobs.put(EMPTY_CONFIG)?;
        let config = Descriptor::new(MediaType::from(EMPTY_CONFIG_MEDIA_TYPE), digest, size);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest),
            artifact_type: Some(artifact_type.to_string()),
            config: config.clone(),
            layers: layers.clone(),
            subject: Some(Descriptor::new(subject.media_type.clone(), subject.digest.clone(), subject.size)),
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let mut manifest = Document::put(blobs, MediaType::OciManifest, bytes)?;
        manifest.descriptor.artifact_type = Some(artifact_type.to_string());
        manifest.descriptor.annotations = manifest_annotations(&manifest.bytes);
        Ok(Attachment {
            manifest,
            blobs: std::iter::once(config).chain(layers).collect(),
            subject: subject.digest.clone(),
            placement: Placement::Referrer,
        })
    }

    /// A manifest stored at `tag` (a cosign signature or attestation image), its blobs already in the store.
    pub fn tagged(manifest: Document, blobs: Vec<Descriptor>, subject: &Digest, tag: String) -> Attachment {
        Attachment { manifest, blobs, subject: subject.clone(), placement: Placement::Tag(tag) }
    }

    /// The artifact type, from the descriptor or else the manifest (a signature image has none).
    pub fn artifact_type(&self) -> Option<&str> {
        self.manifest.descriptor.artifact_type.as_deref()
    }

    /// The descriptor the referrers API and a layout's `index.json` list it by: artifact type and the manifest's
    /// annotations beside digest and size (distribution-spec "Listing Referrers").
    pub fn referrer_descriptor(&self) -> Descriptor {
        let manifest = &self.manifest.descriptor;
        Descriptor {
            artifact_type: manifest.artifact_type.clone(),
            annotations: manifest.annotations.clone(),
            ..Descriptor::new(manifest.media_type.clone(), manifest.digest.clone(), manifest.size)
        }
    }

    /// Every blob to copy: its config, layers and the manifest itself.
    pub fn blob_digests(&self) -> impl Iterator<Item = &Digest> {
        self.blobs.iter().map(|d| &d.digest).chain(std::iter::once(&self.manifest.descriptor.digest))
    }
}

/// The tag of cosign's signature image for `subject`: `sha256-<hex>.sig`.
pub fn signature_tag(subject: &Digest) -> String {
    format!("{}.sig", referrers_tag(subject))
}

/// The tag of cosign's attestation image for `subject`: `sha256-<hex>.att`.
pub fn attestation_tag(subject: &Digest) -> String {
    format!("{}.att", referrers_tag(subject))
}

/// distribution-spec "Referrers Tag Schema": the tag of the index listing `subject`'s referrers where a registry has
/// no referrers API: `<alg>-<hex>`.
pub fn referrers_tag(subject: &Digest) -> String {
    subject.to_string().replacen(':', "-", 1)
}

/// Whether a tag is one an attachment is stored at (a referrers fallback index, a signature, an attestation), not
/// one naming an image.
pub fn is_attachment_tag(tag: &str) -> bool {
    let stem = tag.strip_suffix(".sig").or_else(|| tag.strip_suffix(".att")).unwrap_or(tag);
    stem.strip_prefix("sha256-").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The annotations of a manifest's bytes, which a referrers listing repeats.
fn manifest_annotations(bytes: &[u8]) -> Option<BTreeMap<String, String>> {
    serde_json::from_slice::<Manifest>(bytes).ok().and_then(|m| m.annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_cosign_and_the_referrers_tag_schema() {
        let digest = Digest::of(b"image");
        let hex = digest.hex().to_string();
        assert_eq!(signature_tag(&digest), format!("sha256-{hex}.sig"));
        assert_eq!(attestation_tag(&digest), format!("sha256-{hex}.att"));
        assert_eq!(referrers_tag(&digest), format!("sha256-{hex}"));
        assert!(is_attachment_tag(&signature_tag(&digest)));
        assert!(is_attachment_tag(&referrers_tag(&digest)));
        assert!(!is_attachment_tag("1.0"));
        assert!(!is_attachment_tag("sha256-abc.sig"));
    }

    #[test]
    fn an_artifact_names_its_subject_and_type_and_keeps_the_subject_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = Document::put(&store, MediaType::OciManifest, b"{\"schemaVersion\":2}".to_vec()).unwrap();
        let (digest, size) = store.put(b"sbom").unwrap();
        let layer = Descriptor::new(MediaType::from("application/spdx+json"), digest, size);
        let annotations = BTreeMap::from([(ANNOTATION_TITLE.to_string(), "x.spdx.json".to_string())]);
        let attachment =
            Attachment::artifact(&store, &image.descriptor, "application/spdx+json", vec![layer], annotations).unwrap();
        let manifest: Manifest = serde_json::from_slice(&attachment.manifest.bytes).unwrap();
        assert_eq!(manifest.subject.unwrap().digest, image.descriptor.digest);
        assert_eq!(manifest.config.media_type.as_str(), EMPTY_CONFIG_MEDIA_TYPE);
        assert_eq!(attachment.referrer_descriptor().artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(
            attachment.referrer_descriptor().annotations.unwrap().get(ANNOTATION_TITLE).map(String::as_str),
            Some("x.spdx.json")
        );
        assert!(store.contains(&attachment.manifest.descriptor.digest));
        assert_eq!(attachment.blob_digests().count(), 3);
    }
}
