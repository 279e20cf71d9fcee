//! Unpacking an image into a directory: every layer, read through [`crate::source`] (bounded, digests and diff_ids
//! checked), applied in order by [`apply`] through the handles of [`root`], which never follow a link a layer made;
//! [`accounts`] then reads the unpacked rootfs's own users and groups. The runtime bundle
//! ([`crate::sink::bundle`]) is built on it.

pub mod accounts;
mod apply;
mod at;
pub mod root;

use std::path::Path;

use crate::error::{Error, Result};
use crate::progress::{CountingReader, Progress};
use crate::source::{SourceImage, VerifiedLayer};

/// What was left out because the unpacking user has no privilege.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Unprivileged {
    /// Device nodes written as empty regular files (mknod needs CAP_MKNOD).
    pub devices: u64,
    /// Entries whose owner stayed the unpacking user's.
    pub owners: u64,
    /// `security.*` and `trusted.*` xattrs not set (they need CAP_SYS_ADMIN or CAP_SETFCAP).
    pub xattrs: u64,
}

/// What unpacking an image did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Unpacked {
    /// Each layer as read and checked, bottom first.
    pub layers: Vec<VerifiedLayer>,
    /// Entries created or updated (whiteouts not counted).
    pub entries: u64,
    /// What an unprivileged unpack left out.
    pub left_out: Unprivileged,
}

/// Applies every layer of `image` into `rootfs`, an empty directory this run made. `unprivileged`: owners, device
/// nodes and privileged xattrs are left out (counted) instead of refused, for a user without root.
pub fn unpack_image(image: &SourceImage, rootfs: &Path, unprivileged: bool, progress: &Progress) -> Result<Unpacked> {
    let root = root::Root::open(rootfs).map_err(|e| Error::io("cannot open", rootfs, e))?;
    let mut applier = apply::Applier::new(root, unprivileged);
    let total = image.image.layers.iter().map(|l| l.descriptor.size).sum();
    progress.start(Some(total), &format!("unpacking {}", image.reference));
    let mut layers = Vec::new();
    for layer in &image.image.layers {
        let name = format!("{} layer {}", image.reference, layer.descriptor.digest);
        let read = image.read_layer_through(
            layer,
            |raw| CountingReader::new(raw, progress.clone()),
            |decoded| applier.apply_layer(decoded, &name),
        )?;
        layers.push(read);
    }
    applier.finish()?;
    Ok(Unpacked { layers, entries: applier.entries, left_out: applier.left_out.clone() })
}
