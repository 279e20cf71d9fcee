//! SBOMs that travel with the image: files the user gives, recognised by content and attached unchanged
//! ([`attached`]), and what a generated SBOM is written from: the file list collected as the rootfs streams
//! ([`inventory`]), licences as SPDX expressions ([`license`]) and package URLs ([`purl`]). Attaching them as OCI 1.1
//! referrers of the image is the sinks' part.

pub mod attached;
mod head;
pub mod inventory;
pub mod license;
pub mod purl;

pub use attached::{SbomFile, SbomFormat, recognise};
pub use inventory::{FileInventory, Hashing};
