//! Image signatures as cosign and containers/image store them: a simple-signing payload ([`super::payload`]) in a
//! layer of media type `application/vnd.dev.cosign.simplesigning.v1+json` of the image at the tag
//! `sha256-<hex>.sig` ([`super::attached`]), the layer's `dev.cosignproject.cosign/signature` annotation holding the
//! base64 of the DER signature of the payload's exact bytes. Making one, adding it beside earlier ones, and checking
//! them all against a key.
//!
//! Reproducible: our payload has no time and our signatures are deterministic, so the same image, reference and
//! key give the same signature image digest. A signature image that already holds others (another key's, or
//! skopeo's, whose payloads carry the signing time) keeps them, in order, with ours after them.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::attached::{self, Refusal, SIGNATURE_ANNOTATION};
use super::key::{PrivateKey, PublicKey};
use super::payload::{MAX_PAYLOAD_SIZE, Payload};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;
use crate::oci::descriptor::Descriptor;
use crate::oci::document::ParseResult;
use crate::oci::image::Image;
use crate::oci::manifest::parse_manifest;
use crate::oci::media_type::MediaType;

/// The media type of a signature layer (cosign's `types.SimpleSigningMediaType`).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The signature image `existing` (the one at [`crate::oci::artifact::signature_tag`], if there is one) with the signature
/// `signature` (ASN.1 DER) of `payload` (its exact bytes) added as a layer; its blobs (payload, config, manifest) are
/// written to `blobs`. Returned as an [`Image`] for a sink to publish at the signature tag.
pub fn add_signature(blobs: &BlobStore, existing: Option<&Image>, payload: &[u8], signature: &[u8]) -> Result<Image> {
    let annotations = BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), STANDARD.encode(signature))]);
    attached::append(blobs, existing, MediaType::from(SIMPLE_SIGNING_MEDIA_TYPE), payload, annotations)
}

/// Signs the manifest `manifest_digest` as `docker_reference` (see [`Payload::docker_reference`] for which form a
/// verifier expects) with `key`, and adds the signature to `existing` (see [`add_signature`]).
pub fn sign_manifest(
    blobs: &BlobStore,
    existing: Option<&Image>,
    key: &PrivateKey,
    docker_reference: &str,
    manifest_digest: &Digest,
) -> Result<Image> {
    let payload = Payload::new(docker_reference, manifest_digest).to_bytes();
    add_signature(blobs, existing, &payload, &key.sign(&payload))
}

/// What one layer of a signature image says, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The layer's digest (its payload's).
    pub layer: Digest,
    /// The payload, only when the key's signature of it is valid: nothing unauthenticated is reported.
    pub payload: Option<Payload>,
    /// `Ok` when the key signed this payload for the expected manifest; otherwise why not.
    pub outcome: std::result::Result<(), Refusal>,
}

impl SignatureCheck {
    pub fn is_valid(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The docker reference a valid signature, or a valid signature of another manifest, names.
    pub fn docker_reference(&self) -> Option<&str> {
        self.payload.as_ref().map(|payload| payload.docker_reference.as_str())
    }
}

/// Checks every layer of the signature image whose manifest is `manifest` (its exact bytes): is it a signature by
/// `key` of a payload for the manifest `expected`? `read_blob` gives a layer's bytes; each is held to a size bound
/// before it is read and to its descriptor's digest after. The order is containers/image's: the signature is
/// checked over the payload's bytes before the payload is parsed. An `Err` says why the manifest itself is unusable,
/// for the caller to put after the signature image's name.
pub fn check_signatures(
    manifest: &[u8],
    read_blob: impl Fn(&Descriptor) -> Result<Vec<u8>>,
    expected: &Digest,
    key: &PublicKey,
) -> ParseResult<Vec<SignatureCheck>> {
    let manifest = parse_manifest(manifest)?;
    let checks = manifest
        .layers
        .iter()
        .map(|layer| {
            let mut payload = None;
            let outcome = check_layer(layer, &read_blob, expected, key, &mut payload);
            SignatureCheck { layer: layer.digest.clone(), payload, outcome }
        })
        .collect();
    Ok(checks)
}

fn check_layer(
    layer: &Descriptor,
    read_blob: &impl Fn(&Descriptor) -> Result<Vec<u8>>,
    expected: &Digest,
    key: &PublicKey,
    verified: &mut Option<Payload>,
) -> std::result::Result<(), Refusal> {
    if layer.media_type.as_str() != SIMPLE_SIGNING_MEDIA_TYPE {
        return Err(Refusal::MediaType(layer.media_type.clone()));
    }
    let encoded = layer.annotations.as_ref().and_then(|a| a.get(SIGNATURE_ANNOTATION)).ok_or(Refusal::NoSignature)?;
    let signature = STANDARD.decode(encoded).map_err(|_| Refusal::BadSignatureEncoding)?;
    let bytes = attached::read_layer(layer, read_blob, MAX_PAYLOAD_SIZE)?;
    if !key.verify(&bytes, &signature) {
        return Err(Refusal::NotSignedByKey);
    }
    let payload = Payload::parse(&bytes).map_err(Refusal::Malformed)?;
    let signed = payload.manifest_digest.clone();
    *verified = Some(payload);
    if &signed != expected {
        return Err(Refusal::OtherImage(signed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::image::Layer;

    const SKOPEO_MANIFEST: &[u8] = include_bytes!("../../tests/data/signatures/skopeo-1.18/manifest.json");
    const SKOPEO_AFTER_4: &[u8] =
        include_bytes!("../../tests/data/signatures/skopeo-1.18/manifest-after-4-signatures.json");
    const SKOPEO_CONFIG: &[u8] = include_bytes!("../../tests/data/signatures/skopeo-1.18/config.json");
    const SKOPEO_PAYLOAD: &[u8] = include_bytes!("../../tests/data/signatures/skopeo-1.18/payload.json");
    const SKOPEO_PUB: &str = include_str!("../../tests/data/keys/skopeo-1.18.pub");
    const SKOPEO_SIGNED: &str = "sha256:f0d9e3da4745df470c08f2f46cd505ef75b33f509881e6b8c379cdfb1c3edaec";

    fn skopeo_key() -> PublicKey {
        PublicKey::from_pem(SKOPEO_PUB, "skopeo-1.18.pub").unwrap()
    }

    /// Serves blobs from `blobs`, and skopeo's payload.
    fn reader(blobs: &BlobStore) -> impl Fn(&Descriptor) -> Result<Vec<u8>> + '_ {
        move |descriptor: &Descriptor| {
            if descriptor.digest == Digest::of(SKOPEO_PAYLOAD) {
                return Ok(SKOPEO_PAYLOAD.to_vec());
            }
            std::fs::read(blobs.path(&descriptor.digest)).map_err(|e| crate::Error::io("read", "blob", e))
        }
    }

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        (dir, blobs)
    }

    fn manifest_bytes(image: &Image) -> &[u8] {
        &image.manifest.as_ref().unwrap().bytes
    }

    #[test]
    fn skopeos_signature_is_valid_for_its_key_and_image_only() {
        let (_dir, blobs) = store();
        let signed: Digest = SKOPEO_SIGNED.parse().unwrap();
        let checks = check_signatures(SKOPEO_MANIFEST, reader(&blobs), &signed, &skopeo_key()).unwrap();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].outcome, Ok(()));
        assert_eq!(checks[0].docker_reference(), Some("127.0.0.1:54705/demo:signed"));

        let other_key = PrivateKey::generate().public_key();
        let checks = check_signatures(SKOPEO_MANIFEST, reader(&blobs), &signed, &other_key).unwrap();
        assert_eq!(checks[0].outcome, Err(Refusal::NotSignedByKey));
        assert_eq!(checks[0].docker_reference(), None, "an unauthenticated payload is not reported");

        let other_image = Digest::of(b"another manifest");
        let checks = check_signatures(SKOPEO_MANIFEST, reader(&blobs), &other_image, &skopeo_key()).unwrap();
        assert_eq!(checks[0].outcome, Err(Refusal::OtherImage(signed)));
    }

    #[test]
    fn a_tampered_payload_is_refused_even_when_its_descriptor_is_updated() {
        let (_dir, blobs) = store();
        let signed: Digest = SKOPEO_SIGNED.parse().unwrap();
        let tampered = String::from_utf8(SKOPEO_PAYLOAD.to_vec()).unwrap().replace("demo:signed", "demo:forged");
        let (digest, _) = blobs.put(tampered.as_bytes()).unwrap();
        let manifest = String::from_utf8(SKOPEO_MANIFEST.to_vec()).unwrap().replace(
            &format!("\"digest\":\"{}\",\"size\":299", Digest::of(SKOPEO_PAYLOAD)),
            &format!("\"digest\":\"{digest}\",\"size\":299"),
        );
        assert!(manifest.contains(&digest.to_string()));
        let checks = check_signatures(manifest.as_bytes(), reader(&blobs), &signed, &skopeo_key()).unwrap();
        assert_eq!(checks[0].outcome, Err(Refusal::NotSignedByKey));
        // The same bytes served under the original descriptor: caught by the digest before the signature.
        let swapped = |_: &Descriptor| Ok(tampered.clone().into_bytes());
        let checks = check_signatures(SKOPEO_MANIFEST, swapped, &signed, &skopeo_key()).unwrap();
        assert!(matches!(checks[0].outcome, Err(Refusal::Unreadable(_))), "{:?}", checks[0].outcome);
    }

    #[test]
    fn our_signature_image_of_skopeos_payload_is_byte_for_byte_skopeos() {
        let (_dir, blobs) = store();
        let signature = STANDARD
            .decode("MEQCIHIKIIRxeMkPkSog0At5WHLJPC3cnkLVXIDfgvM2dsMmAiA90cPFQAf4IqL+x0pXV2CGaXTdRB9uNdp3aXi7OPqrIQ==")
            .unwrap();
        let image = add_signature(&blobs, None, SKOPEO_PAYLOAD, &signature).unwrap();
        assert_eq!(std::str::from_utf8(manifest_bytes(&image)).unwrap(), std::str::from_utf8(SKOPEO_MANIFEST).unwrap());
        assert_eq!(std::fs::read(blobs.path(&image.config_descriptor.digest)).unwrap(), SKOPEO_CONFIG);
        assert_eq!(std::fs::read(blobs.path(&Digest::of(SKOPEO_PAYLOAD))).unwrap(), SKOPEO_PAYLOAD);
        assert_eq!(image.manifest.as_ref().unwrap().descriptor.platform, None);
    }

    #[test]
    fn signatures_are_appended_as_skopeo_appends_them() {
        // skopeo's image after four signatures, rebuilt from its first one by adding the three later layers.
        let (_dir, blobs) = store();
        let first = parse_manifest(SKOPEO_MANIFEST).unwrap();
        let after = parse_manifest(SKOPEO_AFTER_4).unwrap();
        let signature =
            |layer: &Descriptor| STANDARD.decode(&layer.annotations.as_ref().unwrap()[SIGNATURE_ANNOTATION]);
        let mut image = add_signature(&blobs, None, SKOPEO_PAYLOAD, &signature(&first.layers[0]).unwrap()).unwrap();
        for later in &after.layers[1..] {
            // The later payloads were not kept: append their descriptors as a registry would show them.
            let mut layers = image.layers.clone();
            layers.push(Layer { descriptor: later.clone(), diff_id: Some(later.digest.clone()) });
            let mut config = image.config.clone();
            config.rootfs.diff_ids.clear();
            image = Image::assemble(&blobs, config, layers, BTreeMap::new()).unwrap();
        }
        assert_eq!(manifest_bytes(&image), SKOPEO_AFTER_4);
        assert_eq!(image.config_descriptor.digest, after.config.digest);

        // The same through add_signature: skopeo's three layers are kept in order, ours comes last.
        let key = PrivateKey::generate();
        let ours = sign_manifest(&blobs, Some(&image), &key, "r/app:1", &SKOPEO_SIGNED.parse().unwrap()).unwrap();
        assert_eq!(ours.layers.len(), 5);
        assert_eq!(ours.layers[..4], image.layers[..]);
        assert_eq!(ours.config.rootfs.diff_ids.len(), 5);
    }

    #[test]
    fn signing_with_a_second_key_keeps_the_first_and_both_check_against_their_own_key() {
        let (_dir, blobs) = store();
        let (first, second) = (PrivateKey::generate(), PrivateKey::generate());
        let manifest = Digest::of(b"the image manifest");
        let one = sign_manifest(&blobs, None, &first, "registry.example.com/app:1", &manifest).unwrap();
        let two = sign_manifest(&blobs, Some(&one), &second, "registry.example.com/app:1", &manifest).unwrap();
        assert_eq!(two.layers.len(), 2);
        for (key, valid) in [(&first, [true, false]), (&second, [false, true])] {
            let checks = check_signatures(manifest_bytes(&two), reader(&blobs), &manifest, &key.public_key()).unwrap();
            assert_eq!(checks.iter().map(SignatureCheck::is_valid).collect::<Vec<_>>(), valid);
        }
    }

    #[test]
    fn the_same_image_reference_and_key_give_the_same_signature_image() {
        let (_dir, blobs) = store();
        let key = PrivateKey::generate();
        let manifest = Digest::of(b"the image manifest");
        let sign = |existing: Option<&Image>| sign_manifest(&blobs, existing, &key, "r/app:1", &manifest).unwrap();
        let once = sign(None);
        assert_eq!(manifest_bytes(&sign(None)), manifest_bytes(&once));
        let again = sign(Some(&once));
        assert_eq!(again.layers.len(), 1, "the same signature is not added twice");
        assert_eq!(manifest_bytes(&again), manifest_bytes(&once));
        let elsewhere = sign_manifest(&blobs, None, &key, "r/app:2", &manifest).unwrap();
        assert_ne!(manifest_bytes(&elsewhere), manifest_bytes(&once));
    }

    #[test]
    fn layers_that_are_not_signatures_are_refused_with_the_reason() {
        let (_dir, blobs) = store();
        let key = PrivateKey::generate();
        let manifest = Digest::of(b"m");
        let image = sign_manifest(&blobs, None, &key, "r/app:1", &manifest).unwrap();
        let text = String::from_utf8(manifest_bytes(&image).to_vec()).unwrap();
        let check = |text: &str| {
            check_signatures(text.as_bytes(), reader(&blobs), &manifest, &key.public_key()).unwrap()[0].outcome.clone()
        };
        assert_eq!(check(&text), Ok(()));
        let other_type = text.replace(SIMPLE_SIGNING_MEDIA_TYPE, "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(check(&other_type), Err(Refusal::MediaType(MediaType::OciLayer)));
        assert_eq!(check(&text.replace(SIGNATURE_ANNOTATION, "org.example/x")), Err(Refusal::NoSignature));
        let not_base64 = text.replacen("\"M", "\"!", 1);
        assert_eq!(check(&not_base64), Err(Refusal::BadSignatureEncoding));
        let huge = text.replacen(&format!("\"size\":{}", image.layers[0].descriptor.size), "\"size\":4194305", 1);
        assert_eq!(check(&huge), Err(Refusal::TooLarge { size: 4194305, max: MAX_PAYLOAD_SIZE }));
        assert!(check_signatures(b"{}", reader(&blobs), &manifest, &key.public_key()).unwrap_err().contains("invalid"));
    }
}
