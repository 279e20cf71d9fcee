//! The "simple signing" payload a cosign signature signs: which manifest digest is signed, under which docker
//! reference (containers/image docs/containers-signature.5.md, as cosign and `skopeo copy --sign-by-sigstore-*`
//! write it; its `critical.type` says it is a cosign signature rather than a GPG "atomic" one).
//!
//! What imgcraft writes is reproducible: `{"critical":{"identity":{"docker-reference":REF},"image":
//! {"docker-manifest-digest":DIGEST},"type":"cosign container image signature"},"optional":{"creator":
//! "rootfs2image VERSION"}}`, keys sorted as Go's encoding/json writes them, no trailing newline, and no
//! `optional.timestamp` (containers/image adds the signing time there; nothing checks it). `optional` must be
//! present: containers/image refuses a payload without it, and accepts an object or `null` (what cosign writes when
//! it has no annotations); cosign reads either into a map.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::display_text;

/// `critical.type` of every cosign signature payload; part of the signed bytes, so a payload signed for another
/// scheme cannot be replayed as an image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The largest payload read: containers/image's limit for a signature (`iolimits.MaxSignatureBodySize`, 4 MiB).
/// A real one is about 300 bytes.
pub const MAX_PAYLOAD_SIZE: u64 = 4 << 20;

/// The claim a signature makes: the manifest with this digest is the image named `docker_reference`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The name the image is signed under. containers/image's `sigstoreSigned` policy (with its default
    /// `matchRepoDigestOrExact`) wants `HOST/REPO:TAG` when the image is pulled by that tag, `HOST/REPO` when by
    /// digest; skopeo signs the full destination reference, cosign the repository alone.
    pub docker_reference: String,
    pub manifest_digest: Digest,
    /// `optional.creator`: the tool that signed.
    pub creator: Option<String>,
    /// `optional.timestamp`: seconds since the epoch, written by containers/image, never by imgcraft.
    pub timestamp: Option<i64>,
}

/// The payload's JSON, field for field; struct order is the sorted key order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    critical: Critical,
    // Required though it may be `null`: `Option` fields are optional to serde unless read through a function.
    #[serde(deserialize_with = "Option::deserialize")]
    optional: Option<Optional>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// `optional` is free-form (cosign puts its `-a key=value` annotations there): fields other than these two are
/// ignored, as containers/image ignores them.
#[derive(Serialize, Deserialize)]
struct Optional {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<serde_json::Number>,
}

impl Payload {
    /// The payload imgcraft signs for `manifest_digest` under `docker_reference`: the creator is this tool and its
    /// version, and there is no timestamp, so the same image signed again gives the same bytes.
    pub fn new(docker_reference: &str, manifest_digest: &Digest) -> Payload {
        Payload {
            docker_reference: docker_reference.to_string(),
            manifest_digest: manifest_digest.clone(),
            creator: Some(format!("rootfs2image {}", env!("CARGO_PKG_VERSION"))),
            timestamp: None,
        }
    }

    /// The exact bytes that are signed and stored as the signature layer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let document = Document {
            critical: Critical {
                identity: Identity { docker_reference: self.docker_reference.clone() },
                image: Image { docker_manifest_digest: self.manifest_digest.to_string() },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: Some(Optional { creator: self.creator.clone(), timestamp: self.timestamp.map(Into::into) }),
        };
        serde_json::to_vec(&document).expect("a payload always serialises")
    }

    /// Reads a payload as containers/image does: exactly `critical` and `optional` at the top, exactly the known
    /// fields inside `critical` (an unknown critical field means a claim this reader cannot check), no duplicate
    /// keys, nothing after the object. The error says what is wrong, for the caller to put after the layer's name.
    pub fn parse(bytes: &[u8]) -> Result<Payload, String> {
        if bytes.len() as u64 > MAX_PAYLOAD_SIZE {
            return Err(format!("the payload is {} bytes, more than the {MAX_PAYLOAD_SIZE} allowed", bytes.len()));
        }
        let document: Document = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a simple signing payload: {}", display_text(&e.to_string(), 200)))?;
        let critical = document.critical;
        if critical.kind != SIGNATURE_TYPE {
            return Err(format!(
                "the payload's type is `{}`, not `{SIGNATURE_TYPE}`",
                display_text(&critical.kind, 100)
            ));
        }
        let manifest_digest: Digest = critical.image.docker_manifest_digest.parse().map_err(|_| {
            format!(
                "the payload names the manifest digest `{}`, not a sha256 digest",
                display_text(&critical.image.docker_manifest_digest, 100)
            )
        })?;
        let (creator, timestamp) = match document.optional {
            None => (None, None),
            Some(optional) => (optional.creator, optional.timestamp.map(whole_seconds).transpose()?),
        };
        Ok(Payload { docker_reference: critical.identity.docker_reference, manifest_digest, creator, timestamp })
    }
}

/// containers/image reads the timestamp as a JSON number and refuses a fraction.
fn whole_seconds(number: serde_json::Number) -> Result<i64, String> {
    number
        .as_i64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
        .ok_or_else(|| format!("the payload's timestamp {number} is not a whole number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKOPEO: &[u8] = include_bytes!("../../tests/data/signatures/skopeo-1.18/payload.json");

    fn digest() -> Digest {
        Digest::of(b"manifest")
    }

    #[test]
    fn our_payload_has_the_fields_and_order_containers_image_writes_and_no_time() {
        let payload = Payload::new("registry.example.com/team/app:1.2", &digest());
        let text = String::from_utf8(payload.to_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"registry.example.com/team/app:1.2"}},"image":{{"docker-manifest-digest":"{}"}},"type":"cosign container image signature"}},"optional":{{"creator":"rootfs2image {}"}}}}"#,
                digest(),
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(Payload::new("registry.example.com/team/app:1.2", &digest()).to_bytes(), text.as_bytes());
        assert_eq!(Payload::parse(text.as_bytes()).unwrap(), payload);
    }

    #[test]
    fn skopeos_payload_parses_and_serialises_back_to_the_same_bytes() {
        let payload = Payload::parse(SKOPEO).unwrap();
        assert_eq!(payload.docker_reference, "127.0.0.1:54705/demo:signed");
        assert_eq!(
            payload.manifest_digest.to_string(),
            "sha256:f0d9e3da4745df470c08f2f46cd505ef75b33f509881e6b8c379cdfb1c3edaec"
        );
        assert_eq!(payload.creator.as_deref(), Some("containers/image 5.34.2"));
        assert_eq!(payload.timestamp, Some(1796005100));
        assert_eq!(payload.to_bytes(), SKOPEO);
    }

    #[test]
    fn cosigns_null_optional_and_unknown_optional_fields_are_accepted() {
        let d = digest();
        let cosign = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/app"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let payload = Payload::parse(cosign.as_bytes()).unwrap();
        assert_eq!((payload.creator, payload.timestamp), (None, None));
        let annotated = cosign.replace("null", r#"{"env":"prod","timestamp":1.7e9}"#);
        assert_eq!(Payload::parse(annotated.as_bytes()).unwrap().timestamp, Some(1_700_000_000));
    }

    #[test]
    fn payloads_that_containers_image_refuses_are_refused() {
        let good = String::from_utf8(Payload::new("r/app:1", &digest()).to_bytes()).unwrap();
        let refused = |text: &str, expected: &str| {
            let err = Payload::parse(text.as_bytes()).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.contains(expected), "{text}: {err}");
        };
        let without_optional = good.split(r#","optional""#).next().unwrap().to_string() + "}";
        refused(&without_optional, "missing field `optional`");
        refused(&good.replace(r#""type":"#, r#""extra":1,"type":"#), "unknown field `extra`");
        refused(&good.replace(r#""optional""#, r#""other":1,"optional""#), "unknown field `other`");
        refused(&good.replace(r#"{"docker-reference""#, r#"{"docker-reference":"x","docker-reference""#), "duplicate");
        refused(&good.replace("cosign container image signature", "atomic container signature"), "payload's type");
        refused(&good.replace("sha256:", "sha512:"), "not a sha256 digest");
        refused(&good.replace(r#""creator""#, r#""timestamp":1.5,"creator""#), "whole number");
        refused(&format!("{good} {{}}"), "trailing characters");
        refused("[]", "not a simple signing payload");
        let huge = format!("{good}{}", " ".repeat(MAX_PAYLOAD_SIZE as usize));
        refused(&huge, "more than the 4194304 allowed");
    }
}
