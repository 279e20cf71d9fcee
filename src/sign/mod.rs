//! The supply chain's keys: ECDSA P-256 key pairs in the formats cosign, skopeo and podman read (see [`key`]).

pub mod key;
