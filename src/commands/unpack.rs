//! `rootfs2image unpack IMAGE DIR`: any image (a layout, an archive, a registry) into an OCI runtime bundle that
//! runc or crun runs, the way `umoci unpack` makes one, without a daemon.

use std::path::Path;

use crate::error::Result;
use crate::oci::reference::ImageRef;
use crate::registry::ClientOptions;
use crate::sink::bundle::{self, BundleOptions, BundleReport};

/// Unpacks `image` into the bundle `dir`; `registry` says how to reach a `docker://` image.
pub fn unpack(image: &ImageRef, dir: &Path, options: &BundleOptions, registry: &ClientOptions) -> Result<BundleReport> {
    bundle::check_destination(dir, options.replace, &dir.display().to_string())?;
    let source = crate::source::open_with(image, registry)?;
    let (prepared, report) = bundle::prepare(&source, dir, options)?;
    prepared.commit()?;
    options.progress.finish();
    Ok(report)
}
