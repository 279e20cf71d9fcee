//! imgcraft: turn a root filesystem (a tarball or a directory) into exact, reproducible OCI container images.
//!
//! Data flows one way, one folder per stage:
//! [`rootfs`] (open, sniff, decode, walk, normalise) -> [`tar`] (the entry model, reading and writing tar)
//! -> [`layer`] (canonical tar -> [`digest`] -> compression -> [`blobs`]), split by [`layering`]
//! -> [`oci`] (the image model and its documents) -> [`sink`] (layout, archive, registry, runtime bundle).
//! [`source`] reads images back into the same model, every blob confined, bounded and verified; [`registry`] speaks
//! the distribution API for both; [`unpack`] applies an image's layers to a directory, as an engine would, for the
//! runtime bundle. The supply chain: [`attach`] turns an image's SBOMs ([`sbom`]), provenance and signatures
//! ([`sign`]: keys and cosign's formats) into attachments ([`oci::artifact`]) the sinks publish beside it.
//! [`commands`] wires one pipeline per subcommand. [`cleanup`] removes a run's temporary paths when a signal ends it,
//! and a dead run's leftovers.

pub mod attach;
pub mod blobs;
pub mod cleanup;
pub mod commands;
pub mod digest;
pub mod error;
pub mod layer;
pub mod layering;
pub mod oci;
pub mod progress;
pub mod registry;
pub mod rootfs;
pub mod sbom;
pub mod sign;
pub mod sink;
pub mod source;
pub mod tar;
pub mod unpack;

pub use error::{Error, Result};
