//! DSSE envelopes (secure-systems-lab/dsse v1: envelope.md, protocol.md), the signed wrapper of in-toto
//! attestations: `{"payloadType":TYPE,"payload":BASE64,"signatures":[{"keyid":ID,"sig":BASE64}]}`, each signature
//! over the pre-authentication encoding `PAE(type, payload)`, never over the payload alone, so that a signature
//! made for one payload type cannot be passed off as another (cosign's CVE-2022-35929 came from checking the type
//! beside the signature).
//!
//! We write what cosign's `attest` writes (sigstore's `dsse.WrapSigner` through go-securesystemslib): that field
//! order, standard base64 with padding, and an empty `keyid`. Key ids are only hints and each tool derives its own
//! (in-toto hashes its own key JSON, cosign uses none); go-securesystemslib skips a signature whose non-empty keyid
//! differs from its verifier's, so an empty one is the hint every verifier accepts.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::key::{PrivateKey, PublicKey};
use crate::error::display_text;

/// The largest envelope read. Provenance is a few KiB; an SBOM attested by someone else may be megabytes.
pub const MAX_ENVELOPE_SIZE: u64 = 16 << 20;

/// A DSSE envelope with its payload decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// An unauthenticated hint naming the key; empty in what we write.
    pub keyid: String,
    /// The ASN.1 DER ECDSA signature of `PAE(payload_type, payload)`.
    pub sig: Vec<u8>,
}

/// The envelope's JSON, in the field order Go's encoding/json writes go-securesystemslib's `dsse.Envelope`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Json {
    payload_type: String,
    payload: String,
    signatures: Vec<JsonSignature>,
}

#[derive(Serialize, Deserialize)]
struct JsonSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// protocol.md: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal byte counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

impl Envelope {
    /// `payload` of type `payload_type`, signed with `key` (deterministically: the same inputs give the same
    /// envelope).
    pub fn sign(payload_type: &str, payload: Vec<u8>, key: &PrivateKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, &payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload,
            signatures: vec![EnvelopeSignature { keyid: String::new(), sig }],
        }
    }

    /// The envelope's JSON, the bytes stored as an attestation layer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = Json {
            payload_type: self.payload_type.clone(),
            payload: STANDARD.encode(&self.payload),
            signatures: self
                .signatures
                .iter()
                .map(|s| JsonSignature { keyid: s.keyid.clone(), sig: STANDARD.encode(&s.sig) })
                .collect(),
        };
        serde_json::to_vec(&json).expect("an envelope always serialises")
    }

    /// Reads an envelope. envelope.md: base64 fields may be standard or URL-safe, padded or not; unknown fields are
    /// ignored; at least one signature. The error says what is wrong, for the caller to put after the layer's name.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        if bytes.len() as u64 > MAX_ENVELOPE_SIZE {
            return Err(format!("the envelope is {} bytes, more than the {MAX_ENVELOPE_SIZE} allowed", bytes.len()));
        }
        let json: Json = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a DSSE envelope: {}", display_text(&e.to_string(), 200)))?;
        if json.signatures.is_empty() {
            return Err("the DSSE envelope has no signatures".into());
        }
        let payload = decode(&json.payload).ok_or("the DSSE envelope's payload is not base64")?;
        let signatures = json
            .signatures
            .into_iter()
            .map(|s| {
                let sig = decode(&s.sig).ok_or("a DSSE signature is not base64")?;
                Ok(EnvelopeSignature { keyid: s.keyid, sig })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Envelope { payload_type: json.payload_type, payload, signatures })
    }

    /// Whether one of the signatures is `key`'s over `PAE(payload_type, payload)`.
    pub fn is_signed_by(&self, key: &PublicKey) -> bool {
        let encoded = pae(&self.payload_type, &self.payload);
        self.signatures.iter().any(|s| key.verify(&encoded, &s.sig))
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specifications_test_vector() {
        // protocol.md, "Test Vectors".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn an_envelope_round_trips_in_cosigns_shape_and_is_the_same_every_time() {
        let key = PrivateKey::generate();
        let envelope = Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}".to_vec(), &key);
        let bytes = envelope.to_bytes();
        assert_eq!(Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}".to_vec(), &key).to_bytes(), bytes);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let prefix = r#"{"payloadType":"application/vnd.in-toto+json","payload":"eyJhIjoxfQ==","signatures":[{"keyid":"","sig":"#;
        assert!(text.starts_with(prefix), "{text}");
        let read = Envelope::parse(&bytes).unwrap();
        assert_eq!(read, envelope);
        assert!(read.is_signed_by(&key.public_key()));
        // The signature is over the PAE: the payload alone does not verify.
        assert!(key.public_key().verify(&pae(&read.payload_type, &read.payload), &read.signatures[0].sig));
        assert!(!key.public_key().verify(&read.payload, &read.signatures[0].sig));
    }

    #[test]
    fn another_key_a_changed_payload_or_a_changed_type_does_not_verify() {
        let key = PrivateKey::generate();
        let envelope = Envelope::sign("application/vnd.in-toto+json", b"statement".to_vec(), &key);
        assert!(!envelope.is_signed_by(&PrivateKey::generate().public_key()));
        let mut payload = envelope.clone();
        payload.payload[0] ^= 1;
        assert!(!payload.is_signed_by(&key.public_key()));
        let mut retyped = envelope.clone();
        retyped.payload_type = "application/json".into();
        assert!(!retyped.is_signed_by(&key.public_key()));
        let mut two = envelope.clone();
        two.signatures.insert(0, EnvelopeSignature { keyid: "other".into(), sig: vec![0x30, 0] });
        assert!(two.is_signed_by(&key.public_key()), "any one valid signature is enough");
    }

    #[test]
    fn url_safe_unpadded_base64_and_unknown_fields_are_read_and_broken_envelopes_refused() {
        let read = Envelope::parse(br#"{"payloadType":"t","payload":"-_8","signatures":[{"sig":"AA"}],"x":1}"#);
        let read = read.unwrap();
        assert_eq!(
            (read.payload, read.signatures[0].sig.clone(), read.signatures[0].keyid.clone()),
            (vec![0xfb, 0xff], vec![0], String::new())
        );
        let refused = |json: &str, expected: &str| {
            let err = Envelope::parse(json.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        };
        refused(r#"{"payloadType":"t","payload":"","signatures":[]}"#, "no signatures");
        refused(r#"{"payloadType":"t","payload":"!!","signatures":[{"sig":"AA"}]}"#, "payload is not base64");
        refused(r#"{"payloadType":"t","payload":"","signatures":[{"sig":"*"}]}"#, "signature is not base64");
        refused(r#"{"payload":"","signatures":[{"sig":""}]}"#, "missing field `payloadType`");
        refused(&" ".repeat(MAX_ENVELOPE_SIZE as usize + 1), "more than the");
    }
}
