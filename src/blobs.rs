//! A content-addressed blob directory (`blobs/sha256/<hex>`, image-spec image-layout.md). Every blob is written to
//! a temporary name in the same directory and renamed to its digest only when complete, so a reader never sees a
//! partial blob under a digest name.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::cleanup::{self, TempFile};
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};

/// Names of blobs being written (image-layout.md leaves names other than digests to the writer).
const PARTIAL_PREFIX: &str = ".partial-";
/// Names of blobs being hard-linked in from another store.
const IMPORT_PREFIX: &str = ".import-";

/// Anything that serves blobs by digest: a store on disk, an image read from a layout, an archive or a registry.
/// Sinks and pushes read blobs through it without knowing where they come from.
pub trait BlobSource: Sync {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn io::Read + Send + '_>>;

    /// The blob from byte `offset` on; sources that can seek do better than reading up to it.
    fn open_blob_at(&self, digest: &Digest, offset: u64) -> Result<Box<dyn io::Read + Send + '_>> {
        let mut reader = self.open_blob(digest)?;
        read_past(&mut reader, offset).map_err(|e| Error::Invalid(format!("cannot read blob {digest}: {e}")))?;
        Ok(reader)
    }
}

/// Reads and drops the next `n` bytes of `reader`: how a stream that cannot seek reaches an offset.
pub fn read_past(reader: &mut dyn io::Read, n: u64) -> io::Result<()> {
    io::copy(&mut io::Read::take(reader, n), &mut io::sink()).map(drop)
}

pub struct BlobStore {
    /// The layout root: the directory holding `blobs/`.
    root: PathBuf,
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob directory of the layout rooted at `root`.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        Ok(BlobStore { root: root.to_path_buf(), dir })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the store holds the blob as a regular file. A symlink at the blob's name (an existing layout is the
    /// user's, but may come from elsewhere) does not count: the blob is written again, and the rename into place
    /// replaces the link itself, never what it points to.
    pub fn contains(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.path(digest)).is_ok_and(|m| m.file_type().is_file())
    }

    /// Starts a blob whose digest is known only at the end.
    /// Its temporary file is registered with [`cleanup`], so a signal or a later run removes it if the run dies.
    pub fn writer(&self) -> Result<BlobWriter> {
        cleanup::sweep_once(&self.dir, IMPORT_PREFIX);
        let temp = TempFile::new_in(&self.dir, PARTIAL_PREFIX)
            .map_err(|e| Error::io("cannot create a blob in", &self.dir, e))?;
        let file = temp.file().try_clone().map_err(|e| Error::io("cannot create a blob in", &self.dir, e))?;
        Ok(BlobWriter {
            writer: DigestWriter::new(BufWriter::with_capacity(128 << 10, file)),
            temp,
            dir: self.dir.clone(),
        })
    }

    /// Stores a small blob (a config, a manifest) given whole.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let mut writer = self.writer()?;
        writer.write_all(bytes).map_err(|e| Error::io("cannot write a blob in", &self.dir, e))?;
        writer.commit()
    }

    /// Puts the blob `digest` of `from` into this store: a hardlink where the file system allows, else a copy.
    pub fn import(&self, from: &BlobStore, digest: &Digest) -> Result<()> {
        let target = self.path(digest);
        if self.contains(digest) {
            return Ok(());
        }
        cleanup::sweep_once(&self.dir, PARTIAL_PREFIX);
        let source = from.path(digest);
        let name = format!("{IMPORT_PREFIX}{}-{}", std::process::id(), digest.hex());
        let linked = cleanup::Tracked::create(&self.dir, IMPORT_PREFIX, &name, |temp| {
            let _ = fs::remove_file(temp);
            fs::hard_link(&source, temp)
        });
        if let Ok(linked) = linked {
            return linked.persist(&target).map_err(|e| Error::io("cannot store blob", &target, e));
        }
        // Another file system: copied through a partial blob, checked against its digest on the way.
        let mut writer = self.writer()?;
        io::copy(&mut from.open_file(digest)?, &mut writer)
            .map_err(|e| Error::io("cannot copy blob to", &self.dir, e))?;
        let (copied, _) = writer.commit()?;
        if &copied != digest {
            return Err(Error::io(
                "cannot copy blob to",
                &target,
                io::Error::other(format!("the copy has digest {copied}")),
            ));
        }
        Ok(())
    }

    /// Streams the blob `digest` of `size` bytes that `from` (named `source` in messages) serves into this store,
    /// refusing it unless its bytes have that digest and size. A blob the store holds already is not read again.
    pub fn copy_checked(
        &self,
        from: &dyn BlobSource,
        digest: &Digest,
        size: u64,
        source: &dyn fmt::Display,
    ) -> Result<()> {
        if self.contains(digest) {
            return Ok(());
        }
        let mut reader = from.open_blob(digest)?;
        let mut writer = self.writer()?;
        io::copy(&mut reader, &mut writer)
            .map_err(|e| Error::bad_image(source, format!("cannot copy blob {digest}: {e}")))?;
        writer.flush().map_err(|e| Error::io("cannot write", &self.dir, e))?;
        let (got, got_size) = writer.commit()?;
        if &got != digest || got_size != size {
            return Err(Error::bad_image(source, format!("blob {digest} is corrupt (read {got}, {got_size} bytes)")));
        }
        Ok(())
    }

    /// The digests of every complete blob in the store.
    pub fn digests(&self) -> Result<Vec<Digest>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io("cannot read", &self.dir, e))?;
        let mut digests: Vec<Digest> =
            entries.filter_map(|e| format!("sha256:{}", e.ok()?.file_name().to_str()?).parse().ok()).collect();
        digests.sort();
        Ok(digests)
    }

    pub fn open_file(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| Error::io("cannot open blob", &path, e))
    }
}

impl BlobSource for BlobStore {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn io::Read + Send + '_>> {
        Ok(Box::new(self.open_file(digest)?))
    }

    fn open_blob_at(&self, digest: &Digest, offset: u64) -> Result<Box<dyn io::Read + Send + '_>> {
        use std::io::Seek;
        let mut file = self.open_file(digest)?;
        file.seek(io::SeekFrom::Start(offset)).map_err(|e| Error::io("cannot read blob", self.path(digest), e))?;
        Ok(Box::new(file))
    }
}

/// Blobs made here (signatures, in a store) in front of an image's own (read from where it is), for a push that adds
/// a few small blobs to an image it streams from elsewhere.
pub struct Overlay<'a> {
    pub front: &'a BlobStore,
    pub back: &'a dyn BlobSource,
}

impl BlobSource for Overlay<'_> {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn io::Read + Send + '_>> {
        if self.front.contains(digest) { self.front.open_blob(digest) } else { self.back.open_blob(digest) }
    }

    fn open_blob_at(&self, digest: &Digest, offset: u64) -> Result<Box<dyn io::Read + Send + '_>> {
        if self.front.contains(digest) {
            self.front.open_blob_at(digest, offset)
        } else {
            self.back.open_blob_at(digest, offset)
        }
    }
}

/// A reader whose bytes are also written to a blob as they are read: a blob copied while it is checked.
pub struct CopyingReader<'a, R> {
    pub inner: R,
    pub copy: &'a mut BlobWriter,
}

impl<R: io::Read> io::Read for CopyingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A blob being written; dropped without [`BlobWriter::commit`], its temporary file is removed.
pub struct BlobWriter {
    writer: DigestWriter<BufWriter<File>>,
    temp: TempFile,
    dir: PathBuf,
}

impl BlobWriter {
    /// Flushes, names the blob by its digest and returns the digest and size.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let (buffered, digest, size) = self.writer.finish();
        let file = buffered.into_inner().map_err(|e| Error::io("cannot write blob in", &self.dir, e.into_error()))?;
        // Blobs are content for every user of the layout, not private temporary files (tempfile makes them 0600).
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("cannot chmod", self.temp.path(), e))?;
        drop(file);
        let target = self.dir.join(digest.hex());
        self.temp.persist(&target).map_err(|e| Error::io("cannot store blob", &target, e))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_digest_and_partial_ones_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (digest, size) = store.put(b"{}").unwrap();
        assert_eq!((digest.clone(), size), (Digest::of(b"{}"), 2));
        assert_eq!(fs::read(store.path(&digest)).unwrap(), b"{}");
        let mut abandoned = store.writer().unwrap();
        abandoned.write_all(b"half").unwrap();
        drop(abandoned);
        let names: Vec<_> =
            fs::read_dir(dir.path().join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(digest.hex())]);
    }
}
