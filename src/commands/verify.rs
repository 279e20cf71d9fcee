//! `verify`: does an image carry a valid signature by a given key? Each layer of its signature image
//! (`sha256-<hex>.sig`) is checked as podman, skopeo and cosign check it: the key's ECDSA signature over the payload's
//! exact bytes, then the payload's manifest digest against the image's, then the name it vouches for against the
//! repository the image was read from. Attestations (`.att`) are checked the same way; SBOMs and other referrers are
//! listed with their digests. Only a valid signature by the key makes the image verified.

use std::fmt::Write as _;
use std::io::Read;

use serde::Serialize;

use super::inspect::AttachmentReport;
use crate::blobs::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Placement, attestation_tag, signature_tag};
use crate::oci::descriptor::Descriptor;
use crate::oci::reference::ImageRef;
use crate::registry::referrers::{get_manifest, list_referrers};
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

/// Verifies the image `reference` names against `key`.
pub fn verify(reference: &ImageRef, key: &PublicKey, registry: &ClientOptions) -> Result<VerifyReport> {
    if let ImageRef::Registry(target) = reference {
        let client = RegistryClient::connect_for_pull(target, registry.clone())?;
        if let Some(top) = get_manifest(&client, &target.manifest_reference())?.filter(|m| m.media_type.is_index()) {
            return verify_index(reference, &client, &top.digest, key);
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
    let tag_bytes = |tag: &str| {
        opened.attachments.iter().find(|a| a.placement == Placement::Tag(tag.to_string())).map(|a| &a.manifest)
    };
    let read_blob = |descriptor: &Descriptor| read_bounded(&opened, descriptor);

    let signatures = match tag_bytes(&signature_tag(&manifest_digest)) {
        Some(document) => check(&document.bytes, read_blob, &manifest_digest, key, reference)?,
        None => Vec::new(),
    };
    let mut attestations = Vec::new();
    if let Some(document) = tag_bytes(&attestation_tag(&manifest_digest)) {
        let checks = check_attestations(&document.bytes, read_blob, &manifest_digest, key).map_err(|problem| {
            Error::bad_image(
                reference,
                format!("the attestation image {}: {problem}", attestation_tag(&manifest_digest)),
            )
        })?;
        attestations.extend(checks.into_iter().map(|check| SignatureReport {
            layer: check.layer.clone(),
            valid: check.is_valid(),
            docker_reference: None,
            predicate_type: check.predicate_type.clone(),
            problem: check.outcome.as_ref().err().map(ToString::to_string),
        }));
    }
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

/// Each layer of the signature image `bytes`, checked against `key` and `digest`, and a valid one's name against
/// the repository of `reference` when it is a registry's.
fn check(
    bytes: &[u8],
    read_blob: impl Fn(&Descriptor) -> Result<Vec<u8>>,
    digest: &Digest,
    key: &PublicKey,
    reference: &ImageRef,
) -> Result<Vec<SignatureReport>> {
    let checks = check_signatures(bytes, read_blob, digest, key).map_err(|problem| {
        Error::bad_image(reference, format!("the signature image {}: {problem}", signature_tag(digest)))
    })?;
    let mut reports = Vec::new();
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
            let named_repository = strip_tag(named.split('@').next().unwrap_or(named));
            if named_repository != repository {
                report.valid = false;
                report.problem = Some(format!("signed for `{named}`, not for the repository {repository}"));
            }
        }
        reports.push(report);
    }
    Ok(reports)
}

/// A multi-platform index on a registry: its own signature (each image's is checked by its digest), and what
/// refers to it.
fn verify_index(
    reference: &ImageRef,
    client: &RegistryClient,
    digest: &Digest,
    key: &PublicKey,
) -> Result<VerifyReport> {
    let read_blob = |descriptor: &Descriptor| {
        if descriptor.size > MAX_PAYLOAD_SIZE {
            return Err(client.fail(&format!("blob {} is larger than a signature may be", descriptor.digest)));
        }
        let mut bytes = Vec::new();
        client
            .open_blob(&descriptor.digest, descriptor.size)?
            .take(MAX_PAYLOAD_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| client.fail(&format!("blob {}: {e}", descriptor.digest)))?;
        Ok(bytes)
    };
    let signatures = match get_manifest(client, &signature_tag(digest))? {
        Some(signature) => check(&signature.bytes, read_blob, digest, key, reference)?,
        None => Vec::new(),
    };
    let (_, listed) = list_referrers(client, digest)?;
    let referrers = listed
        .into_iter()
        .map(|d| AttachmentReport {
            digest: d.digest,
            placement: "referrer".into(),
            artifact_type: d.artifact_type,
            layers: Vec::new(),
        })
        .collect();
    Ok(VerifyReport {
        reference: reference.to_string(),
        verified: signatures.iter().any(|s| s.valid),
        manifest_digest: digest.clone(),
        key: key.fingerprint(),
        signatures,
        attestations: Vec::new(),
        referrers,
    })
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
