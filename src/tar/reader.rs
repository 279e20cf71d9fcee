//! A streaming tar reader: ustar, GNU long names and PAX (local and global) headers, with every declared size and
//! metadata record bounded before anything is allocated.
//!
//! Written here rather than taken from the `tar` crate because the rules that decide what an entry *is* must be
//! exact and in one place: a PAX `size` overrides the ustar size (RUSTSEC-2026-0068), a PAX header applies to the
//! next file entry even across a GNU long-name entry (GHSA-3pv8-6f4r-ffg2), uid/gid/mtime come from PAX when present,
//! xattrs arrive as `SCHILY.xattr.*` or `LIBARCHIVE.xattr.*`, and sparse files are refused.

use std::io::{self, Read};

use crate::error::{Error, display_bytes};
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::file_digests::{DataIndex, DigestRecorder, DigestSlot, KnownData};
use crate::tar::header::{BLOCK, Header, padding};
use crate::tar::path::shown_name;
use crate::tar::pax::{self, Records};

/// The largest PAX header or GNU long name accepted: real ones are a few hundred bytes, and an entry's own limits
/// (path, link target, xattrs: see [`crate::tar::entry`]) keep what a layer writes far below it.
pub const MAX_METADATA: u64 = 1 << 20;
/// The most bytes of records (keys and values) all global PAX headers of an archive may hold together. Global
/// records apply to every later entry, so they are kept for the whole archive; real archives hold none or a
/// comment of a few bytes.
pub const MAX_GLOBAL_PAX: usize = 64 << 10;

/// Marks an `io::Error` raised while reading the input (as opposed to writing the output), with a message that
/// already says what is wrong, so the caller can report it against the input.
#[derive(Debug)]
pub struct InputFault(pub String);

impl std::fmt::Display for InputFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputFault {}

/// Returns the input problem an `io::Error` carries, if it came from reading the input.
pub fn input_fault(err: &io::Error) -> Option<&str> {
    err.get_ref().and_then(|e| e.downcast_ref::<InputFault>()).map(|f| f.0.as_str())
}

pub struct TarReader<R> {
    inner: R,
    input: String,
    compression: String,
    /// Data bytes of the current entry not yet read, then the padding to the next block.
    remaining: u64,
    padding: u64,
    current: Vec<u8>,
    global: Records,
    entries: u64,
    offset: u64,
    /// With [`TarReader::record_file_digests`]: hashes each large file's data as it passes.
    recorder: Option<DigestRecorder>,
    /// With [`TarReader::knowing`]: what an earlier read recorded of this same tar.
    index: Option<DataIndex>,
    /// The current entry's data size, while none of it is read; `None` once any is.
    unread_data: Option<u64>,
}

impl<R: Read> TarReader<R> {
    /// `input` names the source in error messages; `compression` says how it was decoded.
    pub fn new(inner: R, input: &str, compression: impl std::fmt::Display) -> Self {
        TarReader {
            inner,
            input: input.to_string(),
            compression: compression.to_string(),
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            global: Records::new(),
            entries: 0,
            offset: 0,
            recorder: None,
            index: None,
            unread_data: None,
        }
    }

    /// Records the sha256 of every regular file's data of [`crate::tar::file_digests::MIN_SIZE`] bytes or more, published into
    /// `slot` when the end of the archive is reached.
    pub fn record_file_digests(&mut self, slot: DigestSlot) {
        self.recorder = Some(DigestRecorder::new(slot));
    }

    /// A reader of a tar an earlier read recorded digests of (`index`), to tell each file's from
    /// [`TarReader::known_data`].
    pub fn knowing(mut self, index: DataIndex) -> Self {
        self.index = Some(index);
        self
    }

    /// The current entry's data, when an earlier read of this tar recorded its digest and none of it is read yet.
    pub fn known_data(&self) -> Option<KnownData> {
        self.index.as_ref()?.known(self.offset, self.unread_data?)
    }

    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::BadInput { input: self.input.clone(), problem: problem.into() }
    }

    fn bad_entry(&self, path: &[u8], problem: impl Into<String>) -> Error {
        Error::BadEntry { input: self.input.clone(), entry: shown_name(path), problem: problem.into() }
    }

    /// Describes an error of the underlying (decoded) stream.
    fn stream_error(&self, err: io::Error, while_doing: &str) -> Error {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            self.bad(format!("truncated: the data ends {while_doing}"))
        } else if self.compression == "uncompressed" {
            self.bad(format!("read error {while_doing}: {err}"))
        } else {
            self.bad(format!("corrupt {} data {while_doing}: {err}", self.compression))
        }
    }

    fn read_exact_counted(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        if let Some(cursor) = self.index.as_ref().and_then(|index| index.cursor.as_ref()) {
            cursor.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            self.offset += n;
            return Ok(());
        }
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(scratch.len() as u64) as usize;
            self.read_exact_counted(&mut scratch[..chunk])?;
            n -= chunk as u64;
        }
        Ok(())
    }

    /// Skips the rest of the current entry's data, which a recorder still hashes.
    fn skip_data(&mut self, mut n: u64) -> io::Result<()> {
        if self.recorder.is_none() {
            return self.skip(n);
        }
        let mut scratch = [0u8; 64 << 10];
        while n > 0 {
            let chunk = n.min(scratch.len() as u64) as usize;
            self.read_exact_counted(&mut scratch[..chunk])?;
            if let Some(recorder) = &mut self.recorder {
                recorder.data(&scratch[..chunk]);
            }
            n -= chunk as u64;
        }
        Ok(())
    }

    /// Reads the data of an extension header (PAX, GNU long name), bounded.
    fn read_metadata(&mut self, size: u64, what: &str) -> Result<Vec<u8>, Error> {
        if size > MAX_METADATA {
            return Err(self.bad(format!(
                "{what} at offset {} declares {size} bytes, more than the {MAX_METADATA} accepted",
                self.offset - BLOCK as u64
            )));
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_counted(&mut data).map_err(|e| self.stream_error(e, &format!("inside a {what}")))?;
        self.skip(padding(size)).map_err(|e| self.stream_error(e, &format!("inside a {what}")))?;
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker. The previous entry's unread data is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        let while_skipping = format!("inside entry `{}`", shown_name(&self.current));
        self.skip_data(self.remaining).map_err(|e| self.stream_error(e, &while_skipping))?;
        self.skip(self.padding).map_err(|e| self.stream_error(e, &while_skipping))?;
        self.remaining = 0;
        self.padding = 0;
        self.unread_data = None;

        let mut local: Option<Records> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut block = [0u8; BLOCK];
            let after = match self.entries {
                0 => "before the first tar header".to_string(),
                _ => format!("after entry `{}`, before the end-of-archive marker", shown_name(&self.current)),
            };
            match self.read_exact_counted(&mut block) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.entries == 0 && self.offset == 0 => {
                    // Decoders report a stream cut inside its first frame as an end of data: not an empty input.
                    return Err(if self.compression == "uncompressed" {
                        self.bad("empty input: not a tar archive")
                    } else {
                        self.bad(format!(
                            "truncated or corrupt {} data: it ends before the first tar header",
                            self.compression
                        ))
                    });
                }
                Err(e) => return Err(self.stream_error(e, &after)),
            }
            let header = Header::new(block);
            if header.is_zero() {
                if local.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(self.bad("an extended header is followed by the end of the archive, not an entry"));
                }
                self.drain_trailer()?;
                if let Some(recorder) = self.recorder.take() {
                    recorder.publish();
                }
                return Ok(None);
            }
            if !header.checksum_ok() {
                return Err(if self.offset == BLOCK as u64 {
                    self.bad(format!("not a tar archive ({} data with no valid tar header)", self.compression))
                } else {
                    self.bad(format!(
                        "corrupt tar header at offset {} (checksum mismatch) after entry `{}`",
                        self.offset - BLOCK as u64,
                        shown_name(&self.current)
                    ))
                });
            }
            let typeflag = header.typeflag();
            let size =
                header.size().ok_or_else(|| self.bad(format!("malformed size field at offset {}", self.offset)))?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_metadata(size, "PAX header")?;
                    let records = pax::parse(&data).map_err(|p| self.bad(format!("malformed PAX header: {p}")))?;
                    if let Some(key) = records.keys().find(|k| k.starts_with("GNU.sparse.")) {
                        return Err(self.bad(format!(
                            "a PAX sparse file ({key}) is not supported: recreate the tarball without --sparse"
                        )));
                    }
                    if typeflag == b'g' {
                        self.global.extend(records);
                        let held: usize = self.global.iter().map(|(k, v)| k.len() + v.len()).sum();
                        if held > MAX_GLOBAL_PAX {
                            return Err(self.bad(format!(
                                "the global PAX headers hold {held} bytes of records, more than the \
                                 {MAX_GLOBAL_PAX} accepted (they apply to every entry)"
                            )));
                        }
                    } else if local.replace(records).is_some() {
                        return Err(self.bad("two PAX headers describe the same entry"));
                    }
                }
                b'L' | b'K' => {
                    let mut data = self.read_metadata(size, "GNU long name")?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    let slot = if typeflag == b'L' { &mut long_name } else { &mut long_link };
                    if slot.replace(data).is_some() {
                        return Err(self.bad("two GNU long names describe the same entry"));
                    }
                }
                b'V' => {
                    // A volume label describes the archive, not a file.
                    self.read_metadata(size, "volume label")?;
                }
                _ => {
                    let local = local.take().unwrap_or_default();
                    let entry = self.make_entry(&header, size, local, long_name.take(), long_link.take())?;
                    self.current = entry.path.clone();
                    self.entries += 1;
                    return Ok(Some(entry));
                }
            }
        }
    }

    fn make_entry(
        &mut self,
        header: &Header,
        header_size: u64,
        local: Records,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry, Error> {
        let record = |key: &str| local.get(key).or_else(|| self.global.get(key)).cloned();
        let path = match (record("path"), long_name) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => header.path(),
        };
        let link = record("linkpath").or(long_link).unwrap_or_else(|| header.link_name().to_vec());

        let number = |this: &Self, key: &str, field: Option<u64>| -> Result<u64, Error> {
            match record(key) {
                Some(v) => {
                    pax::parse_decimal(&v).ok_or_else(|| this.bad_entry(&path, format!("malformed PAX {key} record")))
                }
                None => field.ok_or_else(|| this.bad_entry(&path, format!("malformed {key} field"))),
            }
        };
        let uid = number(self, "uid", header.uid())?;
        let gid = number(self, "gid", header.gid())?;
        let size = match record("size") {
            Some(v) => pax::parse_decimal(&v).ok_or_else(|| self.bad_entry(&path, "malformed PAX size record"))?,
            None => header_size,
        };
        let mtime = match record("mtime") {
            Some(v) => pax::parse_time(&v).ok_or_else(|| self.bad_entry(&path, "malformed PAX mtime record"))?,
            None => header.mtime().ok_or_else(|| self.bad_entry(&path, "malformed mtime field"))?,
        };
        let mode = header.mode().ok_or_else(|| self.bad_entry(&path, "malformed mode"))?;
        let device = |this: &Self| -> Result<(u32, u32), Error> {
            let major = header.dev_major().ok_or_else(|| this.bad_entry(&path, "bad devmajor"))?;
            let minor = header.dev_minor().ok_or_else(|| this.bad_entry(&path, "bad devminor"))?;
            let fits = |n: u64, what: &str| {
                u32::try_from(n).map_err(|_| this.bad_entry(&path, format!("the device {what} {n} is beyond 32 bits")))
            };
            Ok((fits(major, "major")?, fits(minor, "minor")?))
        };
        let typeflag = header.typeflag();
        let kind = match typeflag {
            // A pre-POSIX tar marks directories only by the trailing slash.
            b'0' | 0 | b'7' if path.ends_with(b"/") && size == 0 => EntryKind::Directory,
            b'0' | 0 | b'7' => EntryKind::File { size },
            b'1' => EntryKind::Hardlink { target: link },
            b'2' => EntryKind::Symlink { target: link },
            b'3' => {
                let (major, minor) = device(self)?;
                EntryKind::CharDevice { major, minor }
            }
            b'4' => {
                let (major, minor) = device(self)?;
                EntryKind::BlockDevice { major, minor }
            }
            b'5' | b'D' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            b'S' => {
                return Err(
                    self.bad_entry(&path, "GNU sparse files are not supported: recreate the tarball without --sparse")
                );
            }
            other => {
                return Err(self.bad_entry(&path, format!("unsupported tar entry type `{}`", display_bytes(&[other]))));
            }
        };
        // Go's archive/tar and the engines built on it treat every type but regular files as header-only, and so
        // does GNU tar when writing; a GNU dumpdir ('D') carries a listing that is skipped.
        let data_size = match (&kind, typeflag) {
            (EntryKind::File { .. }, _) | (_, b'D') => size,
            _ => 0,
        };
        self.remaining = data_size;
        self.padding = padding(data_size);
        if let EntryKind::File { .. } = kind {
            self.unread_data = Some(data_size);
            if let Some(recorder) = &mut self.recorder {
                recorder.file(self.offset, data_size);
            }
        }
        if typeflag == b'D' {
            self.skip(data_size + padding(data_size)).map_err(|e| self.stream_error(e, "inside a GNU dumpdir"))?;
            self.remaining = 0;
            self.padding = 0;
        }

        let xattrs = pax::xattrs(&self.global, &local).map_err(|problem| self.bad_entry(&path, problem))?;
        let entry = Entry { path, kind, mode, uid, gid, mtime, xattrs };
        match entry.problem() {
            Some(problem) => Err(self.bad_entry(&entry.path, problem)),
            None => Ok(entry),
        }
    }

    /// Offset in the (decoded) stream where the current entry's data starts, while none of it has been read.
    pub fn data_offset(&self) -> u64 {
        self.offset
    }

    /// The stream read, at the point this reader reached.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// A reader over the current entry's data.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }

    /// After the end-of-archive marker: read the rest so that the decoder checks its trailer (a gzip CRC, a zstd
    /// checksum), which would otherwise go unchecked.
    fn drain_trailer(&mut self) -> Result<(), Error> {
        io::copy(&mut self.inner, &mut io::sink())
            .map_err(|e| self.stream_error(e, "after the end-of-archive marker"))?;
        Ok(())
    }
}

pub struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(r.remaining.min(usize::MAX as u64) as usize);
        match r.inner.read(&mut buf[..want]) {
            Ok(0) => Err(io::Error::other(InputFault(format!(
                "truncated: the data ends inside entry `{}` ({} bytes missing)",
                shown_name(&r.current),
                r.remaining
            )))),
            Ok(n) => {
                r.remaining -= n as u64;
                r.offset += n as u64;
                r.unread_data = None;
                if let Some(recorder) = &mut r.recorder {
                    recorder.data(&buf[..n]);
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let problem = r.stream_error(e, &format!("inside entry `{}`", shown_name(&r.current)));
                let problem = match problem {
                    Error::BadInput { problem, .. } => problem,
                    other => other.to_string(),
                };
                Err(io::Error::other(InputFault(problem)))
            }
        }
    }
}

impl<R: Read> crate::tar::entry::EntrySource for TarReader<R> {
    fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        TarReader::next_entry(self)
    }
    fn data(&mut self) -> Box<dyn Read + '_> {
        Box::new(TarReader::data(self))
    }
    fn record_file_digests(&mut self, slot: DigestSlot) {
        TarReader::record_file_digests(self, slot)
    }
    fn known_data(&self) -> Option<KnownData> {
        TarReader::known_data(self)
    }
    fn knows_data(&self) -> bool {
        self.index.as_ref().is_some_and(|index| index.digests.get().is_some())
    }
}

#[cfg(test)]
mod tests;
