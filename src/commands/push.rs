//! `push`: an image written earlier (a layout or an archive, or another registry's) to a registry, its manifest
//! unchanged, each blob streamed from where it is (or mounted, from the same registry) with no copy on disk.

use crate::error::{Error, Result};
use crate::oci::reference::{ImageRef, RegistryRef};
use crate::registry::PushReport;
use crate::sink::{self, Publication, SinkOptions};

/// Pushes the image `source` names to `target`.
pub fn push_image(source: &ImageRef, target: &RegistryRef, options: &SinkOptions) -> Result<PushReport> {
    let mut opened = crate::source::open_with(source, &options.registry)?;
    opened.load_attachments()?;
    let mut publication = Publication::single(opened.image.clone()).ok_or_else(|| {
        Error::bad_image(
            source,
            "this archive has no OCI manifest (a `docker save` from before Docker 25): convert the rootfs again, or \
             load it and push with docker",
        )
    })?;
    // SBOMs, provenance and signatures go along, their blobs streamed from the source like the image's.
    publication.attachments = opened.attachments.clone();
    sink::registry::push(target, &publication, &opened, options)
}
