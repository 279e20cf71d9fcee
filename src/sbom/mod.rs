//! SBOMs that travel with the image: files the user gives, recognised by content and attached unchanged
//! ([`attached`]). Attaching them as OCI 1.1 referrers of the image is the sinks' part.

pub mod attached;
mod head;

pub use attached::{SbomFile, SbomFormat, recognise};
