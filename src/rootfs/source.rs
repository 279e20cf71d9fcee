//! The rootfs a conversion reads: once, or twice when its package database is read first. Reading a compressed
//! tarball twice would decode it twice, and decoding is the larger part of a rebuild that takes the previous image's
//! blobs (zstd decodes the bench rootfs in 1.2 s on one core), so the first read keeps what it decodes in a temporary
//! file beside the output and the second reads that: an uncompressed tar reads at the speed of the page cache. The
//! file takes the rootfs's uncompressed size on disk until the conversion ends; if it cannot be written (a full
//! disk), the second read decodes the input again.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cleanup::TempFile;
use crate::error::Error;
use crate::progress::Progress;
use crate::rootfs::input::{self, DecodedTee, Rootfs, TeeState};
use crate::tar::file_digests::{DataIndex, DigestSlot};

/// A rootfs given as a path (a tarball, a directory, or a spool of standard input), to be opened once or more.
pub struct RootfsSource {
    path: PathBuf,
    /// How the input is named in messages: the path as given, or `-`.
    name: String,
    /// Where the decoded copy goes (beside the outputs, so on a disk sized for them); none is made without one.
    spool_dir: Option<PathBuf>,
    /// Whether the first read records large files' digests for the second (see [`crate::tar::file_digests`]).
    records_digests: bool,
    decoded: Mutex<Decoded>,
}

/// The decoded copy of a compressed tarball, once a read that another follows made one.
#[derive(Default)]
enum Decoded {
    #[default]
    None,
    /// Being written, or written, by the copying thread of an earlier read.
    Kept { file: TempFile, state: Arc<TeeState>, stem: String, description: String, digests: DigestSlot },
    /// Tried and abandoned: later reads decode the input.
    Abandoned,
}

impl RootfsSource {
    /// The rootfs at `path`, named `name` in messages; a decoded copy, if one is made, goes into `spool_dir`.
    pub fn new(path: &Path, name: &str, spool_dir: &Path) -> RootfsSource {
        RootfsSource::with_spool_dir(path, name, Some(spool_dir))
    }

    /// The rootfs at `path`, named `name` in messages, never copied: for a reader that reads it only once.
    pub fn without_copy(path: &Path, name: &str) -> RootfsSource {
        RootfsSource::with_spool_dir(path, name, None)
    }

    fn with_spool_dir(path: &Path, name: &str, spool_dir: Option<&Path>) -> RootfsSource {
        RootfsSource {
            path: path.to_path_buf(),
            name: name.to_string(),
            spool_dir: spool_dir.map(Path::to_path_buf),
            records_digests: false,
            decoded: Mutex::new(Decoded::None),
        }
    }

    /// The first read of a compressed tarball also records the digests of its large files' data, which the second
    /// read hands to the layers with each file ([`crate::tar::entry::EntrySource::known_data`]). The hashing runs
    /// while the first read waits on decoding, on the core decoding leaves free.
    pub fn recording_file_digests(mut self) -> Self {
        self.records_digests = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_dir(&self) -> bool {
        self.path.is_dir()
    }

    /// Opens the rootfs for a read that another follows: a compressed tarball read for the first time is copied,
    /// decoded, for that next read.
    pub fn open_to_read_again(&self, progress: &Progress) -> Result<Rootfs, Error> {
        let mut decoded = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*decoded, Decoded::None) || self.is_dir() {
            drop(decoded);
            return self.open(progress);
        }
        let made = self.spool_dir.as_ref().map(|dir| (dir, TempFile::new_in(dir, ".rootfs2image-decoded-")));
        let Some((spool_dir, Ok(file))) = made else {
            *decoded = Decoded::Abandoned;
            drop(decoded);
            return self.open(progress);
        };
        let copy = file.file().try_clone().map_err(|e| Error::io("cannot write in", spool_dir, e))?;
        let (mut rootfs, state) = input::open_path_teeing(&self.path, &self.name, progress, DecodedTee::new(copy))?;
        let digests = DigestSlot::default();
        if state.is_some() && self.records_digests {
            rootfs.entries.record_file_digests(Arc::clone(&digests));
        }
        *decoded = match state {
            Some(state) => Decoded::Kept {
                file,
                state,
                stem: rootfs.stem.clone(),
                description: rootfs.description.clone(),
                digests,
            },
            None => Decoded::Abandoned,
        };
        Ok(rootfs)
    }

    /// Opens the rootfs: the decoded copy an earlier read made when it is whole, else the input itself.
    pub fn open(&self, progress: &Progress) -> Result<Rootfs, Error> {
        let decoded = self.decoded.lock().unwrap_or_else(|e| e.into_inner());
        if let Decoded::Kept { file, state, stem, description, digests } = &*decoded {
            if state.wait() {
                // Read through the descriptor made with it, never reopened by name: nothing can swap the file.
                let cannot_read = |e| Error::io("cannot read", file.path(), e);
                let copy = file.file().try_clone().map_err(cannot_read)?;
                let size = copy.metadata().map_err(cannot_read)?.len();
                // The data the first read hashed is read back from this same descriptor, so it is the data hashed.
                let cursor = Arc::new(AtomicU64::new(0));
                let index = match digests.get() {
                    Some(_) => Some(DataIndex {
                        digests: Arc::clone(digests),
                        file: Arc::new(file.file().try_clone().map_err(cannot_read)?),
                        cursor: Some(Arc::clone(&cursor)),
                    }),
                    None => None,
                };
                let reader = Box::new(ReadAt { file: copy, cursor, progress: progress.clone(), counted: 0 });
                let (stem, description) = (stem.clone(), description.clone());
                return Ok(input::open_decoded(reader, size, &self.name, stem, description, index, progress));
            }
        }
        input::open_path(&self.path, &self.name, progress)
    }
}

/// A file read from its start with positioned reads: the copy's descriptors share one offset, left at the end by
/// the thread that wrote it. The position is shared with the tar reader, which moves it past data nobody reads
/// (see [`DataIndex`]); progress counts what was skipped too.
struct ReadAt {
    file: File,
    cursor: Arc<AtomicU64>,
    progress: Progress,
    /// Bytes counted in the progress so far.
    counted: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let position = self.cursor.load(Ordering::Relaxed);
        let n = self.file.read_at(buf, position)?;
        self.cursor.store(position + n as u64, Ordering::Relaxed);
        self.progress.inc(position + n as u64 - self.counted);
        self.counted = position + n as u64;
        Ok(n)
    }
}

impl Drop for RootfsSource {
    /// A copy still being written when the conversion ends early is stopped: nobody will read it.
    fn drop(&mut self) {
        if let Ok(Decoded::Kept { state, .. }) = self.decoded.get_mut() {
            state.stop.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::tar::entry::{Entry, EntryKind};
    use crate::tar::writer::TarWriter;

    /// A tar of `files` small files, zstd-compressed unless `plain`, at `dir/name`.
    fn tarball(dir: &Path, name: &str, files: usize, plain: bool) -> PathBuf {
        let mut tar = TarWriter::new(Vec::new());
        for i in 0..files {
            let data = format!("file {i}\n").repeat(100);
            let entry = Entry {
                path: format!("f{i}").into_bytes(),
                kind: EntryKind::File { size: data.len() as u64 },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Default::default(),
            };
            tar.append(&entry, &mut data.as_bytes()).unwrap();
        }
        let tar = tar.finish().unwrap();
        let bytes = if plain { tar } else { zstd::encode_all(&tar[..], 3).unwrap() };
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(&bytes).unwrap();
        path
    }

    /// The names of the entries of an opened rootfs, reading only the first `limit`.
    fn names(rootfs: &mut Rootfs, limit: usize) -> Vec<Vec<u8>> {
        let mut names = Vec::new();
        while names.len() < limit {
            let Some(entry) = rootfs.entries.next_entry().unwrap() else { break };
            names.push(entry.path.clone());
        }
        names
    }

    #[test]
    fn a_compressed_tarball_read_again_is_read_from_its_decoded_copy_even_after_a_first_read_stopped_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = tarball(dir.path(), "rootfs.tar.zst", 3000, false);
        let source = RootfsSource::new(&path, "rootfs.tar.zst", dir.path());
        let progress = Progress::new(false);
        let mut first = source.open_to_read_again(&progress).unwrap();
        assert_eq!(names(&mut first, 2).len(), 2);
        drop(first);
        // Gone: only the copy can give the second read its entries.
        std::fs::remove_file(&path).unwrap();
        let mut second = source.open(&progress).unwrap();
        assert_eq!(names(&mut second, usize::MAX).len(), 3000);
        assert_eq!((second.stem.as_str(), second.description.as_str()), ("rootfs", "zstd-compressed tar"));
        assert_eq!(second.name, "rootfs.tar.zst");
        drop((second, source));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "the copy is removed with its source: {left:?}");
    }

    #[test]
    fn an_uncompressed_tarball_and_a_reader_without_a_copy_read_the_input_again() {
        let dir = tempfile::tempdir().unwrap();
        let progress = Progress::new(false);
        for (name, plain) in [("plain.tar", true), ("once.tar.zst", false)] {
            let path = tarball(dir.path(), name, 10, plain);
            let source = match plain {
                true => RootfsSource::new(&path, name, dir.path()),
                false => RootfsSource::without_copy(&path, name),
            };
            assert_eq!(names(&mut source.open_to_read_again(&progress).unwrap(), usize::MAX).len(), 10);
            std::fs::remove_file(&path).unwrap();
            let refused = source.open(&progress).err().expect("no copy to read").to_string();
            assert!(refused.contains("no such file"), "{refused}");
        }
    }

    #[test]
    fn a_copy_that_cannot_be_made_leaves_the_second_read_to_decode_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = tarball(dir.path(), "rootfs.tar.zst", 10, false);
        let source = RootfsSource::new(&path, "rootfs.tar.zst", &dir.path().join("missing"));
        let progress = Progress::new(false);
        assert_eq!(names(&mut source.open_to_read_again(&progress).unwrap(), usize::MAX).len(), 10);
        assert_eq!(names(&mut source.open(&progress).unwrap(), usize::MAX).len(), 10);
    }
}
