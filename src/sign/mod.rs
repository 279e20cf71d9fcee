//! The supply chain's signatures, in the formats cosign, skopeo and podman read: keys ([`key`]), the simple-signing
//! payload ([`payload`]) and the signature image at `sha256-<hex>.sig` ([`signature`]), DSSE envelopes ([`dsse`]),
//! SLSA provenance statements ([`provenance`]) and the attestation image at `sha256-<hex>.att` ([`attestation`]);
//! [`attached`] is the shape both images share. Documents and images only: where they are published, and the
//! registry I/O, belong to the sinks.

pub mod attached;
pub mod attestation;
pub mod dsse;
pub mod key;
pub mod payload;
pub mod provenance;
pub mod signature;
