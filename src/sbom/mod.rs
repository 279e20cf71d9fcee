//! SBOMs that travel with the image: files the user gives, recognised by content and attached unchanged
//! ([`attached`]), and the file list a generated SBOM is written from, collected as the rootfs streams
//! ([`inventory`]). Attaching them as OCI 1.1 referrers of the image is the sinks' part.

pub mod attached;
mod head;
pub mod inventory;

pub use attached::{SbomFile, SbomFormat, recognise};
pub use inventory::{FileInventory, Hashing};
