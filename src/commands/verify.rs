//! `verify`: does an image carry a valid signature by a given key? Each layer of its signature image
//! (`sha256-<hex>.sig`) is checked as podman, skopeo and cosign check it: the key's ECDSA signature over the payload's
//! exact bytes, then the payload's manifest digest against the image's, then the name it vouches for against the
//! repository the image was read from. Attestations (`.att`) are checked the same way; SBOMs and other referrers are
//! listed with their digests. Only a valid signature by the key makes the image verified. An index on a registry is
//! verified by its own signature image; each of its images by its digest.

use std::fmt::Write as _;
use std::io::Read;

use serde::Serialize;

use super::inspect::AttachmentReport;
use crate::blobs::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Placement, attestation_tag, signature_tag};
use crate::oci::descriptor::Descriptor;
use crate::oci::reference::{ImageRef, RegistryRef, RegistryTarget};
use crate::registry::referrers::get_manifest;
use crate::registry::{ClientOptions, RegistryClient};
use crate::sign::attestation::check_attestations;
use crate::sign::key::PublicKey;
use crate::sign::payload::MAX_PAYLOAD_SIZE;
use crate::sign::signature::check_signatures;
use crate::source::{self, SourceImage};

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub reference: String,
    pub manifest_digest: Digest,
    /// The sha256 of the public key's DER form.
    pub key: Digest,
    pub signatures: Vec<SignatureReport>,
    pub attestations: Vec<SignatureReport>,
    /// SBOMs, provenance and other artifacts attached to the image.
    pub referrers: Vec<AttachmentReport>,
    /// At least one valid signature by the key, for this manifest and this repository.
    pub verified: bool,
}

/// One signature or attestation layer, checked.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureReport {
    pub layer: Digest,
    pub valid: bool,
    /// The image name a valid signature vouches for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_reference: Option<String>,
    /// The statement's predicate type, for an attestation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// Why it does not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Verifies the image `reference` names against `key`: one image, or an index on a registry (its own signature; each
/// of its images is verified by its digest).
pub fn verify(reference: &ImageRef, key: &PublicKey, registry: &ClientOptions) -> Result<VerifyReport> {
    if let ImageRef::Registry(target) = reference {
        if let Some(index) = registry_index(target, registry)? {
            return verify_index(reference, target, index, key, registry);
        }
    }
    let mut opened = source::open_with(reference, registry)?;
    opened.load_attachments()?;
    let manifest_digest = opened
        .image
        .manifest
        .as_ref()
        .map(|m| m.descriptor.digest.clone())
        .ok_or_else(|| Error::bad_image(reference, "this archive has no OCI manifest to verify"))?;
    let tagged = |tag: String| {
        opened.attachments.iter().find(|a| a.placement == Placement::Tag(tag.clone())).map(|a| &a.manifest.bytes[..])
    };
    let read_blob = |descriptor: &Descriptor| read_bounded(&opened, descriptor);
    let signatures = match tagged(signature_tag(&manifest_digest)) {
        Some(manifest) => check_signature_image(reference, manifest, read_blob, &manifest_digest, key)?,
        None => Vec::new(),
    };
    let attestations = match tagged(attestation_tag(&manifest_digest)) {
        Some(manifest) => check_attestation_image(reference, manifest, read_blob, &manifest_digest, key)?,
        None => Vec::new(),
    };
    let referrers =
        opened.attachments.iter().filter(|a| a.placement == Placement::Referrer).map(AttachmentReport::of).collect();
    Ok(VerifyReport {
        reference: opened.reference.clone(),
        verified: signatures.iter().any(|s| s.valid),
        manifest_digest,
        key: key.fingerprint(),
        signatures,
        attestations,
        referrers,
    })
}

/// The digest of the index `target` names; `None` when it names one image (or nothing, which opening it reports).
fn registry_index(target: &RegistryRef, registry: &ClientOptions) -> Result<Option<Digest>> {
    let client = RegistryClient::connect_for_pull(target, registry.clone())?;
    Ok(get_manifest(&client, &target.manifest_reference())?
        .filter(|top| top.media_type.is_index())
        .map(|top| top.digest))
}

/// An index's signature and attestation images, read from their tags like any image. Its referrers are not listed:
/// SBOMs and provenance are attached to each image, which `verify` reads by its digest.
fn verify_index(
    reference: &ImageRef,
    target: &RegistryRef,
    digest: Digest,
    key: &PublicKey,
    registry: &ClientOptions,
) -> Result<VerifyReport> {
    let open_tag = |tag: String| -> Result<Option<SourceImage>> {
        let mut tagged = target.clone();
        tagged.target = RegistryTarget::Tag(tag);
        let client = RegistryClient::connect_for_pull(&tagged, registry.clone())?;
        if get_manifest(&client, &tagged.manifest_reference())?.is_none() {
            return Ok(None);
        }
        source::open_with(&ImageRef::Registry(tagged), registry).map(Some)
    };
    // A signature image is an image manifest: opening it gives its bytes and serves its payload layers.
    let manifest = |image: &SourceImage| image.image.manifest.as_ref().map(|m| m.bytes.clone()).unwrap_or_default();
    let signatures = match open_tag(signature_tag(&digest))? {
        Some(image) => check_signature_image(reference, &manifest(&image), |d| read_bounded(&image, d), &digest, key)?,
        None => Vec::new(),
    };
    let attestations = match open_tag(attestation_tag(&digest))? {
        Some(image) => {
            check_attestation_image(reference, &manifest(&image), |d| read_bounded(&image, d), &digest, key)?
        }
        None => Vec::new(),
    };
    Ok(VerifyReport {
        reference: reference.to_string(),
        verified: signatures.iter().any(|s| s.valid),
        manifest_digest: digest,
        key: key.fingerprint(),
        signatures,
        attestations,
        referrers: Vec::new(),
    })
}

/// Each layer of a signature image (`manifest`, at `sha256-<hex>.sig`) checked against `digest` and `key`, and the
/// name a valid one vouches for against the repository `reference` was read from.
fn check_signature_image(
    reference: &ImageRef,
    manifest: &[u8],
    read_blob: impl Fn(&Descriptor) -> Result<Vec<u8>>,
    digest: &Digest,
    key: &PublicKey,
) -> Result<Vec<SignatureReport>> {
    let checks = check_signatures(manifest, read_blob, digest, key)
        .map_err(|problem| unusable(reference, &signature_tag(digest), problem))?;
    let mut signatures = Vec::new();
    for check in checks {
        let mut report = SignatureReport {
            layer: check.layer.clone(),
            valid: check.is_valid(),
            docker_reference: check.docker_reference().map(str::to_string),
            predicate_type: None,
            problem: check.outcome.as_ref().err().map(ToString::to_string),
        };
        if let (true, Some(named), ImageRef::Registry(target)) = (report.valid, &report.docker_reference, reference) {
            // containers/image's default identity rule (matchRepoDigestOrExact) for an image pulled by digest,
            // which also holds for one pulled by tag: the signature must name this repository.
            let repository = format!("{}/{}", target.domain, target.repository);
            let named_repository = named.split('@').next().unwrap_or(named);
            let named_repository = strip_tag(named_repository);
            if named_repository != repository {
                report.valid = false;
                report.problem = Some(format!("signed for `{named}`, not for the repository {repository}"));
            }
        }
        signatures.push(report);
    }
    Ok(signatures)
}

/// Each layer of an attestation image (`manifest`, at `sha256-<hex>.att`), checked like a signature.
fn check_attestation_image(
    reference: &ImageRef,
    manifest: &[u8],
    read_blob: impl Fn(&Descriptor) -> Result<Vec<u8>>,
    digest: &Digest,
    key: &PublicKey,
) -> Result<Vec<SignatureReport>> {
    let checks = check_attestations(manifest, read_blob, digest, key)
        .map_err(|problem| unusable(reference, &attestation_tag(digest), problem))?;
    Ok(checks
        .into_iter()
        .map(|check| SignatureReport {
            layer: check.layer.clone(),
            valid: check.is_valid(),
            docker_reference: None,
            predicate_type: check.predicate_type.clone(),
            problem: check.outcome.as_ref().err().map(ToString::to_string),
        })
        .collect())
}

fn unusable(reference: &ImageRef, tag: &str, problem: impl std::fmt::Display) -> Error {
    Error::bad_image(reference, format!("the signature image {tag}: {problem}"))
}

/// `host/repo:tag` without its tag (a port's colon comes before the last `/`).
fn strip_tag(name: &str) -> &str {
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// A signature image's blob, read within [`MAX_PAYLOAD_SIZE`] (the checks hold it to its digest).
fn read_bounded(source: &SourceImage, descriptor: &Descriptor) -> Result<Vec<u8>> {
    if descriptor.size > MAX_PAYLOAD_SIZE {
        return Err(Error::bad_image(
            &source.reference,
            format!(
                "blob {} is {} bytes, more than a signature's {MAX_PAYLOAD_SIZE}",
                descriptor.digest, descriptor.size
            ),
        ));
    }
    let mut bytes = Vec::new();
    source
        .open_blob(&descriptor.digest)?
        .take(MAX_PAYLOAD_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::bad_image(&source.reference, format!("blob {}: {e}", descriptor.digest)))?;
    Ok(bytes)
}

impl VerifyReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Image:        {}", self.reference);
        let _ = writeln!(out, "Manifest:     {}", self.manifest_digest);
        let _ = writeln!(out, "Key:          {}", self.key);
        if self.signatures.is_empty() {
            let _ = writeln!(out, "Signatures:   none");
        }
        for (kind, reports) in [("Signature:", &self.signatures), ("Attestation:", &self.attestations)] {
            for report in reports {
                let verdict = match (&report.problem, report.valid) {
                    (_, true) => "valid".to_string(),
                    (Some(problem), false) => format!("not valid: {problem}"),
                    (None, false) => "not valid".to_string(),
                };
                let named = report.docker_reference.as_deref().or(report.predicate_type.as_deref()).unwrap_or("");
                let _ = writeln!(out, "{kind:<13} {}  {verdict}  {named}", report.layer);
            }
        }
        for referrer in &self.referrers {
            let kind = referrer.artifact_type.as_deref().unwrap_or("artifact");
            let _ = writeln!(out, "Referrer:     {}  {kind}", referrer.digest);
        }
        let _ = writeln!(
            out,
            "Verified:     {}",
            if self.verified { "a valid signature by the key" } else { "NO valid signature by the key" }
        );
        out
    }
}
