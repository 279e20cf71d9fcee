//! Signing keys: ECDSA P-256, the keys cosign and containers/image's sigstore signing use.
//!
//! A private key is stored either as PKCS#8 PEM (`PRIVATE KEY`, unencrypted) or in cosign's encrypted format, which
//! `skopeo copy --sign-by-sigstore-private-key` and `cosign sign --key` read: PEM `ENCRYPTED SIGSTORE PRIVATE KEY`
//! (`ENCRYPTED COSIGN PRIVATE KEY` before cosign 2) around JSON from secure-systems-lab's `encrypted` package:
//! the PKCS#8 DER of the key sealed with NaCl's secretbox (XSalsa20-Poly1305, the tag before the ciphertext) under
//! a key that scrypt derives from the passphrase. The public key is PKIX PEM (`PUBLIC KEY`).
//!
//! Signatures are what cosign and containers/image make and check: ECDSA P-256 over the SHA-256 of the message, as
//! ASN.1 DER. Ours are deterministic (RFC 6979, as RustCrypto's `p256` signs): the same key and message give the same
//! bytes, so signing the same image again gives the same signature image. Go's signers (cosign, skopeo) randomise
//! theirs; both verify the same way.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};

use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit, OsRng, rand_core::RngCore};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The PEM label cosign 2 writes, and the one cosign 1 wrote (both are read).
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const ENCRYPTED_LABEL_V1: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// secure-systems-lab's `encrypted` defaults, which cosign uses: scrypt N = 2^15, r = 8, p = 1 (32 MiB), a 32-byte
/// salt and a 24-byte nonce.
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// The most memory a key file's scrypt parameters may ask for (128 * r * N * p bytes): a hostile key cannot make
/// this tool allocate gigabytes. Sixteen times cosign's default.
const MAX_SCRYPT_MEMORY: u64 = 512 << 20;
/// The largest key file read.
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// The JSON inside an encrypted key's PEM (secure-systems-lab/go-securesystemslib `encrypted`): byte fields are
/// base64 with padding, as Go's encoding/json writes `[]byte`.
#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "base64_bytes")]
    nonce: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A private signing key.
pub struct PrivateKey {
    key: SigningKey,
}

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> PrivateKey {
        PrivateKey { key: SigningKey::random(&mut OsRng) }
    }

    /// The key in cosign's encrypted format, sealed under `passphrase`.
    pub fn to_encrypted_pem(&self, passphrase: &[u8]) -> String {
        let der = self.key.to_pkcs8_der().expect("a P-256 key encodes as PKCS#8");
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let secret =
            derive(passphrase, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P).expect("the default parameters are valid");
        let ciphertext = XSalsa20Poly1305::new(&secret.into())
            .encrypt(&nonce.into(), der.as_bytes())
            .expect("sealing never fails for a short plaintext");
        let sealed = Sealed {
            kdf: Kdf {
                name: "scrypt".into(),
                params: KdfParams { n: 1 << SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P },
                salt: salt.to_vec(),
            },
            cipher: Cipher { name: "nacl/secretbox".into(), nonce: nonce.to_vec() },
            ciphertext,
        };
        let json = serde_json::to_vec(&sealed).expect("the sealed key serialises");
        pem::encode_string(ENCRYPTED_LABEL, LineEnding::LF, &json).expect("PEM encoding of bytes never fails")
    }

    /// The public key as PKIX PEM (`PUBLIC KEY`), what verifiers are given.
    pub fn public_pem(&self) -> String {
        self.public_key().to_pem()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey { key: VerifyingKey::from(&self.key) }
    }

    /// The ASN.1 DER ECDSA signature of SHA-256(`message`), deterministic (RFC 6979).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// Reads a private key from `text` (the file `name`): cosign's encrypted format, opened with `passphrase`, or
    /// unencrypted PKCS#8 PEM. A passphrase is never part of a message.
    pub fn from_pem(text: &[u8], passphrase: Option<&[u8]>, name: &str) -> Result<PrivateKey> {
        let bad = |problem: &str| Error::BadInput { input: name.to_string(), problem: problem.to_string() };
        let (label, body) = pem::decode_vec(text).map_err(|_| bad("not a PEM private key"))?;
        let der = match label {
            "PRIVATE KEY" => body,
            ENCRYPTED_LABEL | ENCRYPTED_LABEL_V1 => {
                let passphrase = passphrase.ok_or_else(|| bad("the key is encrypted and no passphrase was given"))?;
                open(&body, passphrase).map_err(|problem| bad(&problem))?
            }
            other => {
                let problem = format!(
                    "a PEM `{}`, not a private key (PRIVATE KEY or {ENCRYPTED_LABEL})",
                    crate::error::display_text(other, 64)
                );
                return Err(bad(&problem));
            }
        };
        let key = SigningKey::from_pkcs8_der(&der).map_err(|_| bad("not an ECDSA P-256 private key"))?;
        Ok(PrivateKey { key })
    }
}

/// A public key: what signatures are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// Reads a public key (PKIX PEM `PUBLIC KEY`, P-256) from `text` (the file `name`).
    pub fn from_pem(text: &str, name: &str) -> Result<PublicKey> {
        let key = VerifyingKey::from_public_key_pem(text).map_err(|_| Error::BadInput {
            input: name.to_string(),
            problem: "not a PEM ECDSA P-256 public key".into(),
        })?;
        Ok(PublicKey { key })
    }

    /// PKIX PEM (`PUBLIC KEY`), as cosign and skopeo write `.pub` files.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("a P-256 public key encodes")
    }

    /// Whether `der_signature` is this key's ECDSA signature (ASN.1 DER) of SHA-256(`message`).
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> bool {
        Signature::from_der(der_signature).is_ok_and(|signature| self.key.verify(message, &signature).is_ok())
    }

    /// The key's fingerprint for reports: the sha256 of its PKIX DER (what `openssl pkey -pubin -outform DER |
    /// sha256sum` prints), stable whatever the PEM's line breaks.
    pub fn fingerprint(&self) -> Digest {
        Digest::of(self.key.to_public_key_der().expect("a P-256 public key encodes").as_bytes())
    }
}

/// Opens a sealed key: the scrypt parameters within bounds, then the secretbox under the derived key.
fn open(json: &[u8], passphrase: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let sealed: Sealed = serde_json::from_slice(json).map_err(|e| format!("not a cosign encrypted key: {e}"))?;
    if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
        return Err("not a cosign encrypted key: only scrypt and nacl/secretbox are used".into());
    }
    let KdfParams { n, r, p } = sealed.kdf.params;
    if !n.is_power_of_two() || n < 2 {
        return Err(format!("scrypt N = {n} is not a power of two"));
    }
    let memory = 128u64.saturating_mul(r as u64).saturating_mul(n).saturating_mul(p as u64);
    if memory > MAX_SCRYPT_MEMORY {
        return Err(format!(
            "its scrypt parameters ask for {} MiB, more than the {} MiB allowed",
            memory >> 20,
            MAX_SCRYPT_MEMORY >> 20
        ));
    }
    let nonce: [u8; NONCE_LEN] =
        sealed.cipher.nonce.as_slice().try_into().map_err(|_| format!("the nonce is not {NONCE_LEN} bytes"))?;
    let secret = derive(passphrase, &sealed.kdf.salt, n.trailing_zeros() as u8, r, p)?;
    XSalsa20Poly1305::new(&secret.into())
        .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
        .map_err(|_| "the passphrase is wrong, or the key is corrupt".to_string())
}

fn derive(passphrase: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> std::result::Result<[u8; 32], String> {
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| format!("invalid scrypt parameters: {e}"))?;
    let mut secret = [0u8; 32];
    scrypt::scrypt(passphrase, salt, &params, &mut secret).map_err(|e| format!("scrypt: {e}"))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_key_opens_with_its_passphrase_only() {
        let key = PrivateKey::generate();
        let pem = key.to_encrypted_pem(b"correct horse");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{pem}");
        let opened = PrivateKey::from_pem(pem.as_bytes(), Some(b"correct horse"), "k.key").unwrap();
        assert_eq!(opened.public_pem(), key.public_pem());
        let wrong = PrivateKey::from_pem(pem.as_bytes(), Some(b"battery staple"), "k.key").err().unwrap();
        assert_eq!(wrong.to_string(), "`k.key`: the passphrase is wrong, or the key is corrupt");
        let none = PrivateKey::from_pem(pem.as_bytes(), None, "k.key").err().unwrap();
        assert!(none.to_string().contains("no passphrase"), "{none}");
    }

    #[test]
    fn the_sealed_json_has_cosigns_fields() {
        let pem = PrivateKey::generate().to_encrypted_pem(b"");
        let (_, json) = pem::decode_vec(pem.as_bytes()).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["kdf"]["name"], "scrypt");
        assert_eq!(value["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
        assert_eq!(value["cipher"]["name"], "nacl/secretbox");
        assert!(value["ciphertext"].is_string() && value["kdf"]["salt"].is_string());
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_any_work() {
        let json = br#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AAAA"},
            "cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAA"}"#;
        let pem = pem::encode_string(ENCRYPTED_LABEL, LineEnding::LF, json).unwrap();
        let err = PrivateKey::from_pem(pem.as_bytes(), Some(b"x"), "k.key").err().unwrap();
        assert!(err.to_string().contains("MiB allowed"), "{err}");
    }

    #[test]
    fn a_key_from_skopeos_generate_sigstore_key_opens_to_its_public_key() {
        // Made by Debian trixie's skopeo 1.18 (`skopeo generate-sigstore-key`): PEM `ENCRYPTED COSIGN PRIVATE KEY`,
        // scrypt N = 2^16.
        let private = include_bytes!("../../tests/data/keys/skopeo-1.18.private");
        let public = include_str!("../../tests/data/keys/skopeo-1.18.pub");
        let opened = PrivateKey::from_pem(private, Some(b"correct horse battery staple"), "skopeo.private").unwrap();
        assert_eq!(opened.public_key(), PublicKey::from_pem(public, "skopeo.pub").unwrap());
    }

    #[test]
    fn pkcs8_keys_load_and_other_pem_is_refused() {
        let key = PrivateKey::generate();
        let pkcs8 = key.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let loaded = PrivateKey::from_pem(pkcs8.as_bytes(), None, "k.pem").unwrap();
        assert_eq!(loaded.public_pem(), key.public_pem());
        let public = PrivateKey::from_pem(key.public_pem().as_bytes(), None, "k.pub").err().unwrap();
        assert!(public.to_string().contains("not a private key"), "{public}");
        assert_eq!(PublicKey::from_pem(&key.public_pem(), "k.pub").unwrap(), key.public_key());
        let private = PublicKey::from_pem(&pkcs8, "k.pem").err().unwrap();
        assert_eq!(private.to_string(), "`k.pem`: not a PEM ECDSA P-256 public key");
    }

    #[test]
    fn signatures_are_deterministic_der_and_verify_only_for_their_key_and_message() {
        let key = PrivateKey::generate();
        let signature = key.sign(b"payload");
        assert_eq!(key.sign(b"payload"), signature, "RFC 6979 signatures are the same every time");
        assert_ne!(key.sign(b"payloaD"), signature);
        // ASN.1 DER: a SEQUENCE of two INTEGERs, 8 to 72 bytes for P-256.
        assert_eq!(signature[0], 0x30);
        assert_eq!(signature[1] as usize, signature.len() - 2);
        let public = key.public_key();
        assert!(public.verify(b"payload", &signature));
        assert!(!public.verify(b"payloaD", &signature));
        assert!(!PrivateKey::generate().public_key().verify(b"payload", &signature));
        let mut flipped = signature.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(!public.verify(b"payload", &flipped));
        assert!(!public.verify(b"payload", b"not DER"));
    }

    #[test]
    fn a_skopeo_signature_verifies_with_the_skopeo_key() {
        // Debian trixie's skopeo 1.18 signed this payload with the key of tests/data/keys/skopeo-1.18.private while
        // pushing to a registry (tests/data/signatures/README.md); the signature is its layer's annotation.
        let public = PublicKey::from_pem(include_str!("../../tests/data/keys/skopeo-1.18.pub"), "skopeo.pub").unwrap();
        let payload = include_bytes!("../../tests/data/signatures/skopeo-1.18/payload.json");
        let signature = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            "MEQCIHIKIIRxeMkPkSog0At5WHLJPC3cnkLVXIDfgvM2dsMmAiA90cPFQAf4IqL+x0pXV2CGaXTdRB9uNdp3aXi7OPqrIQ==",
        )
        .unwrap();
        assert!(public.verify(payload, &signature));
        assert!(!public.verify(&payload[1..], &signature));
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_der_public_key_as_openssl_prints_it() {
        // `openssl pkey -pubin -in tests/data/keys/skopeo-1.18.pub -outform DER | sha256sum`
        const OPENSSL: &str = "540643cae52572c2013f726e167b9f9326175d5d6ef54da4897135dde706010a";
        let pem = include_str!("../../tests/data/keys/skopeo-1.18.pub");
        let key = PublicKey::from_pem(pem, "skopeo.pub").unwrap();
        let der = pem::decode_vec(pem.as_bytes()).unwrap().1;
        assert_eq!(der.len(), 91);
        assert_eq!(key.fingerprint(), Digest::of(&der));
        assert_eq!(key.fingerprint().hex(), OPENSSL);
        assert_eq!(PublicKey::from_pem(&key.to_pem(), "again").unwrap().fingerprint(), key.fingerprint());
        assert_ne!(PrivateKey::generate().public_key().fingerprint(), key.fingerprint());
    }
}
