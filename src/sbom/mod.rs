//! SBOMs that travel with the image: files the user gives, recognised by content and attached unchanged
//! ([`attached`]), and documents written from what a conversion knows ([`mod@generate`]: the file list collected as the
//! rootfs streams, [`inventory`], and the package data layering already reads), in SPDX 2.3 (`spdx`) or CycloneDX
//! 1.6 (`cyclonedx`), with licences as SPDX expressions ([`license`]) and package URLs ([`purl`]).
//! Attaching them as OCI 1.1 referrers of the image is the sinks' part.

pub mod attached;
mod cyclonedx;
pub mod generate;
mod head;
pub mod inventory;
pub mod license;
pub mod purl;
mod spdx;

pub use attached::{SbomFile, SbomFormat, recognise};
pub use generate::{GeneratedFormat, SbomSubject, generate};
pub use inventory::{FileInventory, Hashing};
