//! The image model and the OCI documents that carry it (image-spec), platforms and image references.

pub mod image;
pub mod platform;
pub mod reference;
