//! imgcraft: turn a root filesystem (a tarball or a directory) into exact, reproducible OCI container images.
//!
//! Data flows one way, one folder per stage:
//! [`rootfs`] (open, sniff, decode, walk, normalise) -> [`tar`] (the entry model, reading and writing tar)
//! -> [`layer`] (canonical tar -> [`digest`] -> compression -> [`blobs`]), split by [`layering`]
//! -> [`oci`] (the image model and its documents) -> [`sink`] (layout, archive, registry).
//! [`source`] reads images back into the same model, every blob confined, bounded and verified; [`registry`] speaks
//! the distribution API for both; [`sign`] holds the supply chain's keys and [`sbom`] its bills of materials.
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

pub use error::{Error, Result};
