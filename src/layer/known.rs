//! What this machine already knows for certain about layer blobs: which tar each decompresses to, because it wrote
//! the blob or decompressed it to check. With `--previous`, a blob it knows is checked by its digest alone, while it
//! is copied, instead of being decompressed again: on the bench rootfs that decompression was a third of a rebuild's
//! CPU. containers/image keeps the same fact (a blob's "uncompressed digest") in its blob-info cache for the same
//! reason.
//!
//! It also knows the tars of layer outlines (`outlines/min-<size>/<hex>`, see [`crate::layer::outline`]): a rebuild
//! learns an unchanged layer's diff_id from its outline, without hashing its tar.
//!
//! One small file per blob, `layers/sha256/<hex>`, holding the diff_id, the sniffed media type and the uncompressed
//! size; written whole to a temporary file and renamed, so that concurrent runs and a crash leave only whole entries.
//! The cache is an optimisation: an entry that cannot be written or read is as if absent, and an entry is used only
//! when it agrees with the diff_id the previous image's config claims (any disagreement falls back to
//! decompressing). Entries are only ever written from facts this process established, never copied from an image,
//! so a hostile image cannot plant one; the blob's own digest is still checked on every use.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::oci::media_type::MediaType;
use crate::source::VerifiedLayer;

/// An entry is three short fields; anything longer is not one of ours.
const MAX_ENTRY: u64 = 1024;

/// The cache of layer facts: a directory, or none (nothing recorded, nothing known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownLayers {
    dir: Option<PathBuf>,
}

/// What a layer blob decompresses to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownLayer {
    pub diff_id: Digest,
    /// The OCI media type of the compression its bytes show.
    pub media_type: MediaType,
    pub uncompressed_size: u64,
}

/// What the tar of a layer outline is (see [`crate::layer::outline`]): its diff_id and size, as this process hashed
/// them from the tar itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownTar {
    pub diff_id: Digest,
    pub size: u64,
}

impl KnownLayer {
    /// What reading a layer established.
    pub fn of(read: &VerifiedLayer) -> KnownLayer {
        KnownLayer {
            diff_id: read.diff_id.clone(),
            media_type: read.stored_media_type.clone(),
            uncompressed_size: read.uncompressed_size,
        }
    }
}

impl KnownLayers {
    /// The cache kept in `dir` (created when the first entry is written).
    pub fn at(dir: impl Into<PathBuf>) -> KnownLayers {
        KnownLayers { dir: Some(dir.into()) }
    }

    /// No cache: every previous blob is decompressed to be checked.
    pub fn none() -> KnownLayers {
        KnownLayers { dir: None }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn entry(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("layers").join("sha256").join(digest.hex()))
    }

    /// What the blob `digest` decompresses to, if this machine established it before.
    pub fn get(&self, digest: &Digest) -> Option<KnownLayer> {
        read_entry(&self.entry(digest)?)
    }

    /// Records that the blob `digest` decompresses to `layer`. Failing to is not an error: the next rebuild then
    /// decompresses the blob to check it, as if there were no cache.
    pub fn record(&self, digest: &Digest, layer: &KnownLayer) {
        if let Some(path) = self.entry(digest) {
            write_entry(&path, layer);
        }
    }

    /// Outlines are kept apart by the rule that makes them, which names the files whose data they leave out.
    fn outline_entry(&self, outline: &Digest) -> Option<PathBuf> {
        let rule = format!("min-{}", crate::tar::file_digests::MIN_SIZE);
        Some(self.dir.as_ref()?.join("outlines").join(rule).join(outline.hex()))
    }

    /// The tar whose outline is `outline`, if this machine wrote or hashed it before.
    pub fn tar_of(&self, outline: &Digest) -> Option<KnownTar> {
        read_entry(&self.outline_entry(outline)?)
    }

    /// Records that the tar whose outline is `outline` is `tar`, as hashed from its bytes by this process.
    pub fn record_tar(&self, outline: &Digest, tar: &KnownTar) {
        if let Some(path) = self.outline_entry(outline) {
            write_entry(&path, tar);
        }
    }
}

fn read_entry<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let file = fs::File::open(path).ok()?;
    let mut text = Vec::new();
    file.take(MAX_ENTRY).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes an entry whole, unless it already says the same.
fn write_entry<T: Serialize + serde::de::DeserializeOwned + PartialEq>(path: &Path, fact: &T) {
    if read_entry::<T>(path).as_ref() == Some(fact) {
        return;
    }
    let write = || -> std::io::Result<()> {
        let dir = path.parent().expect("an entry is in a directory");
        fs::create_dir_all(dir)?;
        let mut temp = tempfile::Builder::new().prefix(".entry-").tempfile_in(dir)?;
        temp.write_all(&serde_json::to_vec(fact).expect("an entry serialises"))?;
        temp.persist(path)?;
        Ok(())
    };
    let _ = write();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(text: &str) -> KnownLayer {
        KnownLayer { diff_id: Digest::of(text.as_bytes()), media_type: MediaType::OciLayerGzip, uncompressed_size: 3 }
    }

    #[test]
    fn a_recorded_fact_is_read_back_and_replaced_by_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownLayers::at(dir.path());
        let blob = Digest::of(b"blob");
        assert_eq!(known.get(&blob), None);
        known.record(&blob, &layer("a"));
        assert_eq!(known.get(&blob), Some(layer("a")));
        known.record(&blob, &layer("b"));
        assert_eq!(known.get(&blob), Some(layer("b")));
        let entries = fs::read_dir(dir.path().join("layers/sha256")).unwrap().count();
        assert_eq!(entries, 1, "no temporary file is left beside the entry");
    }

    #[test]
    fn no_cache_knows_nothing_and_an_unreadable_entry_is_absent() {
        let blob = Digest::of(b"blob");
        KnownLayers::none().record(&blob, &layer("a"));
        assert_eq!(KnownLayers::none().get(&blob), None);
        let dir = tempfile::tempdir().unwrap();
        let known = KnownLayers::at(dir.path());
        fs::create_dir_all(dir.path().join("layers/sha256")).unwrap();
        fs::write(dir.path().join("layers/sha256").join(blob.hex()), b"{\"diff_id\":").unwrap();
        assert_eq!(known.get(&blob), None);
        fs::write(dir.path().join("layers/sha256").join(blob.hex()), vec![b' '; 4096]).unwrap();
        assert_eq!(known.get(&blob), None);
    }

    #[test]
    fn a_cache_in_a_directory_that_cannot_be_made_is_silently_unused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let known = KnownLayers::at(&file);
        let blob = Digest::of(b"blob");
        known.record(&blob, &layer("a"));
        assert_eq!(known.get(&blob), None);
    }
}
