//! imgcraft: turn a root filesystem (a tarball or a directory) into exact, reproducible OCI container images.
//!
//! Data flows one way, one module per step:
//! [`input`] (open, sniff, decode) -> [`tar_reader`] / [`directory`] (rootfs entries) -> [`normalize`] (policy)
//! -> [`layer`] ([`tar_writer`] -> [`digest`] -> [`compression`] -> [`blobs`]) -> [`image`] (documents)
//! -> [`sink`] (OCI layout, archive). [`convert`] wires the pipeline; [`source`] reads images back for [`inspect`],
//! every blob through [`blob_read`] (confined, bounded by its descriptor, verified). [`cleanup`] removes a run's
//! temporary paths when a signal ends it, and a dead run's leftovers.

pub mod arch;
pub mod base;
pub mod blob_read;
pub mod blobs;
pub mod cleanup;
pub mod compression;
pub mod compression_pool;
pub mod convert;
pub mod copy;
pub mod diff;
pub mod digest;
pub mod directory;
pub mod entry;
pub mod error;
pub mod finish_write;
pub mod image;
pub mod index;
pub mod input;
pub mod inspect;
pub mod layer;
pub mod layer_set;
pub mod layering;
pub mod normalize;
pub mod packages;
pub mod parallel_gzip;
pub mod parallel_zstd;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod sink;
pub mod source;
pub mod tar_reader;
pub mod tar_writer;

pub use error::{Error, Result};
