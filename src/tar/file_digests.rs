//! The sha256 of each large regular file's data in a tar stream, by the offset where the data starts.
//!
//! A rootfs read twice (see [`crate::rootfs::source`]) has them recorded by its first read, which is bound by
//! decoding on one core and leaves the other free to hash. The second read then hands each file's digest and place
//! to the layers, which describe themselves by their outline (see [`crate::layer::outline`]) instead of hashing and
//! spooling every byte again: on the bench rootfs that hashing and spooling was half of a rebuild's second pass.

use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use crate::digest::Hasher;

/// Files smaller than this are not recorded: their bytes cost less to carry than a record, and most of a rootfs's
/// bytes are in larger files (94% of the bench rootfs's bytes are in the 18% of its files at or above it).
pub const MIN_SIZE: u64 = 16 << 10;

/// The most files recorded, 40 bytes each: a rootfs with more files of [`MIN_SIZE`] or more (16 GiB of them at
/// least) has the rest unrecorded, and the layers holding them are hashed as if nothing was recorded.
pub const MAX_FILES: usize = 1 << 20;

/// The digests a whole read recorded, sorted by data offset.
#[derive(Debug, Default)]
pub struct FileDigests {
    entries: Vec<(u64, [u8; 32])>,
}

impl FileDigests {
    /// The digest of the data starting at `offset`, if recorded.
    pub fn get(&self, offset: u64) -> Option<[u8; 32]> {
        let index = self.entries.binary_search_by_key(&offset, |(at, _)| *at).ok()?;
        Some(self.entries[index].1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where recorded digests are published once a read reaches the end of the archive; a read that stops early or
/// fails publishes nothing, so that a partial record is never taken for a whole one.
pub type DigestSlot = Arc<OnceLock<FileDigests>>;

/// Records digests as a tar reader passes over the data, whether the data is read or skipped.
pub(crate) struct DigestRecorder {
    digests: FileDigests,
    /// The file being hashed: where its data starts, bytes still to come, the hash so far.
    current: Option<(u64, u64, Hasher)>,
    slot: DigestSlot,
}

impl DigestRecorder {
    pub fn new(slot: DigestSlot) -> DigestRecorder {
        DigestRecorder { digests: FileDigests::default(), current: None, slot }
    }

    /// A regular file's data of `size` bytes starts at `offset`.
    pub fn file(&mut self, offset: u64, size: u64) {
        self.current = None;
        if size >= MIN_SIZE && self.digests.entries.len() < MAX_FILES {
            self.current = Some((offset, size, Hasher::new()));
        }
    }

    /// The next bytes of the current file's data.
    pub fn data(&mut self, bytes: &[u8]) {
        let Some((_, left, hasher)) = &mut self.current else { return };
        let n = bytes.len().min(*left as usize);
        hasher.update(&bytes[..n]);
        *left -= n as u64;
        if *left == 0 {
            let (offset, _, hasher) = self.current.take().expect("matched above");
            self.digests.entries.push((offset, hasher.finish()));
        }
    }

    /// The end of the archive: every file was passed over.
    pub fn publish(self) {
        let _ = self.slot.set(self.digests);
    }
}

/// One file's data a second read knows: its digest, and where it lies in `file`, the tar both reads read.
#[derive(Clone, Debug)]
pub struct KnownData {
    pub digest: [u8; 32],
    pub offset: u64,
    pub size: u64,
    pub file: Arc<File>,
}

/// What a second read of the same tar knows of its data: the digests the first read published, and the file.
#[derive(Clone, Debug)]
pub struct DataIndex {
    pub digests: DigestSlot,
    pub file: Arc<File>,
    /// The position the tar is read at in `file`, when it is read there with positioned reads and nothing between
    /// (no buffer, no read-ahead): data nobody reads is then skipped by moving it, without being read.
    pub cursor: Option<Arc<AtomicU64>>,
}

impl DataIndex {
    /// The data of `size` bytes at `offset`, if its digest was recorded.
    pub fn known(&self, offset: u64, size: u64) -> Option<KnownData> {
        if size < MIN_SIZE {
            return None;
        }
        let digest = self.digests.get()?.get(offset)?;
        Some(KnownData { digest, offset, size, file: Arc::clone(&self.file) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_files_wholly_passed_over_are_recorded_and_only_at_the_end() {
        let slot = DigestSlot::default();
        let mut recorder = DigestRecorder::new(Arc::clone(&slot));
        let big = vec![7u8; MIN_SIZE as usize + 5];
        recorder.file(512, big.len() as u64);
        for piece in big.chunks(1000) {
            recorder.data(piece);
        }
        recorder.file(100_000, MIN_SIZE - 1);
        recorder.data(&big[..MIN_SIZE as usize - 1]);
        // A file whose data was not all passed over (the read stopped) is not recorded.
        recorder.file(200_000, MIN_SIZE);
        recorder.data(&big[..10]);
        assert!(slot.get().is_none(), "nothing is published before the end");
        recorder.publish();
        let digests = slot.get().unwrap();
        assert_eq!(digests.len(), 1);
        assert_eq!(crate::digest::Digest::of(&big).hex(), hex::encode(digests.get(512).unwrap()));
        assert_eq!(digests.get(100_000), None);
        assert_eq!(digests.get(200_000), None);
    }
}
