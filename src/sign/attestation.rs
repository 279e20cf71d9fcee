//! Signed attestations as `cosign attest` stores them: an in-toto statement ([`super::provenance`]) signed in a DSSE
//! envelope ([`super::dsse`], payload type `application/vnd.in-toto+json`), the envelope's JSON a layer of media type
//! `application/vnd.dsse.envelope.v1+json` of the image at the tag `sha256-<hex>.att` ([`super::attached`]), with the
//! layer annotations cosign writes: `predicateType` and an empty `dev.cosignproject.cosign/signature` (the
//! signature is inside the envelope). Making one, adding it beside earlier ones, and checking them against a key.

use std::collections::BTreeMap;

use super::attached::{self, Refusal, SIGNATURE_ANNOTATION};
use super::dsse::{Envelope, MAX_ENVELOPE_SIZE};
use super::key::{PrivateKey, PublicKey};
use super::provenance::{IN_TOTO_MEDIA_TYPE, StatementSummary};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Result, display_text};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::ParseResult;
use crate::oci::image::Image;
use crate::oci::manifest::parse_manifest;
use crate::oci::media_type::MediaType;

/// The media type of an attestation layer (cosign's `types.DssePayloadType`).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The layer annotation naming the statement's predicate type, which cosign filters attestations by.
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";

/// The attestation image `existing` (the one at [`crate::oci::artifact::attestation_tag`], if there is one) with `envelope`
/// added as a layer for a statement of `predicate_type`; its blobs (envelope, config, manifest) are written to
/// `blobs`. Returned as an [`Image`] for a sink to publish at the attestation tag.
pub fn add_attestation(
    blobs: &BlobStore,
    existing: Option<&Image>,
    envelope: &Envelope,
    predicate_type: &str,
) -> Result<Image> {
    let annotations = BTreeMap::from([
        (SIGNATURE_ANNOTATION.to_string(), String::new()),
        (PREDICATE_TYPE_ANNOTATION.to_string(), predicate_type.to_string()),
    ]);
    attached::append(blobs, existing, MediaType::from(DSSE_MEDIA_TYPE), &envelope.to_bytes(), annotations)
}

/// Signs `statement` (an in-toto statement's exact bytes, of `predicate_type`) with `key` and adds it to
/// `existing` (see [`add_attestation`]). Deterministic: the same statement and key give the same image.
pub fn attest(
    blobs: &BlobStore,
    existing: Option<&Image>,
    key: &PrivateKey,
    statement: Vec<u8>,
    predicate_type: &str,
) -> Result<Image> {
    let envelope = Envelope::sign(IN_TOTO_MEDIA_TYPE, statement, key);
    add_attestation(blobs, existing, &envelope, predicate_type)
}

/// What one layer of an attestation image says, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationCheck {
    /// The layer's digest (its envelope's).
    pub layer: Digest,
    /// The statement's predicate type, only when the key's signature of it is valid.
    pub predicate_type: Option<String>,
    /// The statement's exact bytes, only when the key's signature of them is valid.
    pub statement: Option<Vec<u8>>,
    /// `Ok` when the key signed an in-toto statement about the manifest `expected`; otherwise why not.
    pub outcome: std::result::Result<(), Refusal>,
}

impl AttestationCheck {
    pub fn is_valid(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Checks every layer of the attestation image whose manifest is `manifest` (its exact bytes): is it a DSSE
/// envelope signed by `key` holding an in-toto statement whose subject is the manifest `expected`? Blobs come from
/// `read_blob`, bounded and held to their digests as in [`super::signature::check_signatures`]. An `Err` says why the
/// manifest itself is unusable, for the caller to put after the attestation image's name.
pub fn check_attestations(
    manifest: &[u8],
    read_blob: impl Fn(&Descriptor) -> Result<Vec<u8>>,
    expected: &Digest,
    key: &PublicKey,
) -> ParseResult<Vec<AttestationCheck>> {
    let manifest = parse_manifest(manifest)?;
    let checks = manifest
        .layers
        .iter()
        .map(|layer| {
            let mut check = AttestationCheck {
                layer: layer.digest.clone(),
                predicate_type: None,
                statement: None,
                outcome: Ok(()),
            };
            check.outcome = check_layer(layer, &read_blob, expected, key, &mut check);
            check
        })
        .collect();
    Ok(checks)
}

fn check_layer(
    layer: &Descriptor,
    read_blob: &impl Fn(&Descriptor) -> Result<Vec<u8>>,
    expected: &Digest,
    key: &PublicKey,
    check: &mut AttestationCheck,
) -> std::result::Result<(), Refusal> {
    if layer.media_type.as_str() != DSSE_MEDIA_TYPE {
        return Err(Refusal::MediaType(layer.media_type.clone()));
    }
    let bytes = attached::read_layer(layer, read_blob, MAX_ENVELOPE_SIZE)?;
    let envelope = Envelope::parse(&bytes).map_err(Refusal::Malformed)?;
    if !envelope.is_signed_by(key) {
        return Err(Refusal::NotSignedByKey);
    }
    if envelope.payload_type != IN_TOTO_MEDIA_TYPE {
        return Err(Refusal::Malformed(format!(
            "the envelope's payload type is `{}`, not `{IN_TOTO_MEDIA_TYPE}`",
            display_text(&envelope.payload_type, 100)
        )));
    }
    let statement = StatementSummary::parse(&envelope.payload).map_err(Refusal::Malformed)?;
    check.predicate_type = Some(statement.predicate_type.clone());
    check.statement = Some(envelope.payload);
    if !statement.names(expected) {
        return Err(match statement.first_subject() {
            Some(other) => Refusal::OtherImage(other),
            None => Refusal::Malformed("the statement has no sha256 subject".into()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::provenance::{PROVENANCE_PREDICATE_TYPE, Provenance};
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        (dir, blobs)
    }

    fn reader(blobs: &BlobStore) -> impl Fn(&Descriptor) -> Result<Vec<u8>> + '_ {
        |d: &Descriptor| std::fs::read(blobs.path(&d.digest)).map_err(|e| crate::Error::io("read", "blob", e))
    }

    fn manifest_text(image: &Image) -> String {
        String::from_utf8(image.manifest.as_ref().unwrap().bytes.clone()).unwrap()
    }

    #[test]
    fn the_attestation_layer_has_cosigns_media_type_and_annotations() {
        let (_dir, blobs) = store();
        let key = PrivateKey::generate();
        let manifest = Digest::of(b"image manifest");
        let statement = Provenance::new("r/app", &manifest).statement();
        let image = attest(&blobs, None, &key, statement.clone(), PROVENANCE_PREDICATE_TYPE).unwrap();
        let layer = &image.layers[0].descriptor;
        assert_eq!(layer.media_type.as_str(), DSSE_MEDIA_TYPE);
        let annotations = layer.annotations.clone().unwrap();
        let expected = [(PREDICATE_TYPE_ANNOTATION, PROVENANCE_PREDICATE_TYPE), (SIGNATURE_ANNOTATION, "")];
        assert_eq!(annotations, expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let envelope = Envelope::parse(&std::fs::read(blobs.path(&layer.digest)).unwrap()).unwrap();
        assert_eq!((envelope.payload_type.as_str(), &envelope.payload), (IN_TOTO_MEDIA_TYPE, &statement));
        let again = attest(&blobs, None, &key, statement, PROVENANCE_PREDICATE_TYPE).unwrap();
        assert_eq!(manifest_text(&again), manifest_text(&image), "the same statement and key, the same image");
        assert!(manifest_text(&image).contains(r#""config":{"mediaType":"application/vnd.oci.image.config.v1+json""#));
    }

    #[test]
    fn attestations_check_against_the_key_and_the_image_they_are_about() {
        let (_dir, blobs) = store();
        let (first, second) = (PrivateKey::generate(), PrivateKey::generate());
        let manifest = Digest::of(b"image manifest");
        let statement = Provenance::new("r/app", &manifest).statement();
        let one = attest(&blobs, None, &first, statement.clone(), PROVENANCE_PREDICATE_TYPE).unwrap();
        let two = attest(&blobs, Some(&one), &second, statement.clone(), PROVENANCE_PREDICATE_TYPE).unwrap();
        let text = manifest_text(&two);
        let check = |key: &PrivateKey, expected: &Digest| {
            check_attestations(text.as_bytes(), reader(&blobs), expected, &key.public_key()).unwrap()
        };
        let checks = check(&first, &manifest);
        assert_eq!(checks.iter().map(AttestationCheck::is_valid).collect::<Vec<_>>(), [true, false]);
        assert_eq!(checks[0].predicate_type.as_deref(), Some(PROVENANCE_PREDICATE_TYPE));
        assert_eq!(checks[0].statement.as_ref(), Some(&statement));
        assert_eq!((checks[1].outcome.clone(), checks[1].statement.clone()), (Err(Refusal::NotSignedByKey), None));
        assert_eq!(check(&second, &manifest).iter().filter(|c| c.is_valid()).count(), 1);
        let elsewhere = check(&first, &Digest::of(b"another manifest"));
        assert_eq!(elsewhere[0].outcome, Err(Refusal::OtherImage(manifest)));
    }

    #[test]
    fn an_envelope_of_another_type_or_a_tampered_statement_is_refused() {
        let (_dir, blobs) = store();
        let key = PrivateKey::generate();
        let manifest = Digest::of(b"image manifest");
        let statement = Provenance::new("r/app", &manifest).statement();
        let check = |envelope: &Envelope| {
            let image = add_attestation(&blobs, None, envelope, PROVENANCE_PREDICATE_TYPE).unwrap();
            let text = manifest_text(&image);
            check_attestations(text.as_bytes(), reader(&blobs), &manifest, &key.public_key()).unwrap()[0].clone()
        };
        let retyped = check(&Envelope::sign("application/json", statement.clone(), &key));
        assert!(matches!(&retyped.outcome, Err(Refusal::Malformed(m)) if m.contains("payload type")), "{retyped:?}");
        let mut tampered = Envelope::sign(IN_TOTO_MEDIA_TYPE, statement.clone(), &key);
        tampered.payload = String::from_utf8(statement).unwrap().replace("r/app", "r/evil").into_bytes();
        assert_eq!(check(&tampered).outcome, Err(Refusal::NotSignedByKey));
        let not_statement = check(&Envelope::sign(IN_TOTO_MEDIA_TYPE, b"{}".to_vec(), &key));
        assert!(matches!(&not_statement.outcome, Err(Refusal::Malformed(m)) if m.contains("in-toto")));
        let signature = crate::sign::signature::sign_manifest(&blobs, None, &key, "r/app:1", &manifest).unwrap();
        let checks =
            check_attestations(manifest_text(&signature).as_bytes(), reader(&blobs), &manifest, &key.public_key());
        assert!(matches!(&checks.unwrap()[0].outcome, Err(Refusal::MediaType(_))), "a .sig layer is no attestation");
    }
}
