//! The OCI image model and the documents that carry it (image-spec): media types, descriptors, manifests, indexes,
//! configs, platforms and image references; and the runtime config (runtime-spec) a bundle runs an image with.

pub mod artifact;
pub mod config;
pub mod descriptor;
pub mod document;
pub mod image;
pub mod index;
pub mod manifest;
pub mod media_type;
pub mod platform;
pub mod reference;
pub mod runtime;
