//! Reading a blob of an image someone else made: found only where it must live (a regular file inside the layout,
//! a regular-file member of the archive), read only up to the size its descriptor declares (failing short of it or
//! past it), and checked against its digest; a layer is also sniffed, decoded and checked against the config's
//! diff_id. `inspect`, `diff`, `index`, `push` and `--base` all read blobs through here, so one rule holds for all.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::digest::{Digest, DigestReader};
use crate::error::{Error, Result};
use crate::layer::compress::LayerCompression;
use crate::oci::descriptor::Descriptor;
use crate::oci::media_type::MediaType;
use crate::rootfs::decode::{InputCompression, SNIFF_LEN};

/// A reader that yields exactly `declared` bytes: it fails if the inner stream ends before them, and fails instead
/// of yielding a byte past them, so an endless stream (`/dev/zero`, a stalled-then-flooding server) costs at most
/// the declared size.
pub struct Bounded<R> {
    inner: R,
    remaining: u64,
    declared: u64,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R, declared: u64) -> Self {
        Bounded { inner, remaining: declared, declared }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // One byte past the declared end tells a blob that is longer than its descriptor from one that is not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("it holds more than the {} bytes its descriptor declares", self.declared),
                )),
            };
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it ends after {} of the {} bytes its descriptor declares",
                    self.declared - self.remaining,
                    self.declared
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Why a file of a layout cannot be read. The messages say nothing about what a symlink points at.
#[derive(Debug)]
pub enum LayoutRefusal {
    Missing,
    /// A symlink, a FIFO, a device, a directory, or a path through a symlinked directory.
    NotRegular,
    Io(io::Error),
}

impl std::fmt::Display for LayoutRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutRefusal::Missing => write!(f, "it is missing"),
            LayoutRefusal::NotRegular => write!(f, "it is not a regular file inside the layout"),
            LayoutRefusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Opens `member` (`index.json`, `blobs/sha256/<hex>`) of the layout at `root`, one component at a time with
/// `O_NOFOLLOW`, so that neither the file nor a directory on the way may be a symlink leading out of the layout;
/// the file is opened with `O_NONBLOCK` (a FIFO cannot stall the open) and checked with `fstat` on the opened
/// handle, not on the path, so it cannot be swapped between the check and the read. Returns the file and its size.
pub fn open_in_layout(root: &Path, member: &str) -> std::result::Result<(File, u64), LayoutRefusal> {
    let parts: Vec<&str> = member.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(LayoutRefusal::NotRegular);
    }
    let root = CString::new(root.as_os_str().as_bytes()).map_err(|_| LayoutRefusal::Missing)?;
    // The layout root itself is the user's choice and may be reached through a symlink.
    let mut dir = open_at(libc::AT_FDCWD, &root, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let (last, dirs) = parts.split_last().expect("split yields at least one part");
    for name in dirs {
        let name = CString::new(*name).map_err(|_| LayoutRefusal::NotRegular)?;
        dir = open_at(fd_of(&dir), &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
    }
    let name = CString::new(*last).map_err(|_| LayoutRefusal::NotRegular)?;
    let file = open_at(fd_of(&dir), &name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)?;
    let file = File::from(file);
    let meta = file.metadata().map_err(LayoutRefusal::Io)?;
    if !meta.file_type().is_file() {
        return Err(LayoutRefusal::NotRegular);
    }
    Ok((file, meta.len()))
}

fn fd_of(fd: &OwnedFd) -> libc::c_int {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

fn open_at(dir: libc::c_int, name: &CString, flags: libc::c_int) -> std::result::Result<OwnedFd, LayoutRefusal> {
    // SAFETY: openat with a valid, NUL-terminated name; the returned descriptor is owned by us alone.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT) => LayoutRefusal::Missing,
            // ELOOP: the last component is a symlink; ENOTDIR: a directory on the way is not one (or is a symlink).
            Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
                LayoutRefusal::NotRegular
            }
            _ => LayoutRefusal::Io(e),
        });
    }
    // SAFETY: `fd` was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads a whole small document (manifest, config) of at most `limit` bytes, refusing a larger declared size
/// before reading anything, and checks its size and digest.
pub fn read_document(reader: impl Read, descriptor: &Descriptor, limit: u64, image: &str) -> Result<Vec<u8>> {
    check_document_size(descriptor, limit, image)?;
    let mut bytes = Vec::with_capacity(descriptor.size as usize);
    Bounded::new(reader, descriptor.size)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::bad_image(image, format!("blob {}: {e}", descriptor.digest)))?;
    let digest = Digest::of(&bytes);
    if digest != descriptor.digest {
        return Err(corrupt(image, &descriptor.digest, &digest));
    }
    Ok(bytes)
}

/// Refuses a document whose descriptor declares more than `limit` bytes, before it is opened.
pub fn check_document_size(descriptor: &Descriptor, limit: u64, image: &str) -> Result<()> {
    if descriptor.size > limit {
        return Err(Error::bad_image(
            image,
            format!(
                "blob {} declares {} bytes, more than the {limit} a document may have",
                descriptor.digest, descriptor.size
            ),
        ));
    }
    Ok(())
}

fn corrupt(image: &str, declared: &Digest, got: &Digest) -> Error {
    Error::bad_image(image, format!("blob {declared} has digest {got}: it is corrupt"))
}

/// What reading one layer found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifiedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: MediaType,
    pub uncompressed_size: u64,
    /// How the blob is compressed, sniffed from its bytes.
    #[serde(skip)]
    pub compression: LayerCompression,
}

/// Reads one layer blob (`raw`, not yet bounded) within its descriptor: sniffs its compression, decodes it, gives
/// the decoded tar stream to `consume` (which may read any part of it), then checks the blob's size and digest and
/// the decoded stream's digest against `diff_id`. A compression no engine reads is refused.
pub fn read_layer(
    raw: impl Read + Send,
    descriptor: &Descriptor,
    diff_id: Option<&Digest>,
    image: &str,
    consume: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<VerifiedLayer> {
    let digest = &descriptor.digest;
    let bad = |problem: String| Error::bad_image(image, format!("layer {digest}: {problem}"));
    let mut raw = DigestReader::new(Bounded::new(raw, descriptor.size));
    let mut head = [0u8; SNIFF_LEN];
    let got = read_up_to(&mut raw, &mut head).map_err(|e| bad(e.to_string()))?;
    let sniffed = InputCompression::sniff(&head[..got]).map_err(bad)?;
    let compression = match sniffed {
        InputCompression::Gzip => LayerCompression::Gzip,
        InputCompression::Zstd => LayerCompression::Zstd,
        InputCompression::None => LayerCompression::None,
        other => return Err(bad(format!("it is {other}-compressed, which no engine reads"))),
    };
    let (decoded_digest, uncompressed_size) = {
        let chained = io::Cursor::new(head[..got].to_vec()).chain(&mut raw);
        let mut decoded = DigestReader::new(sniffed.decoder(chained));
        consume(&mut decoded)?;
        io::copy(&mut decoded, &mut io::sink()).map_err(|e| bad(format!("it does not decompress: {e}")))?;
        decoded.finish()
    };
    io::copy(&mut raw, &mut io::sink()).map_err(|e| bad(e.to_string()))?;
    let (got_digest, size) = raw.finish();
    if &got_digest != digest {
        return Err(corrupt(image, digest, &got_digest));
    }
    if let Some(expected) = diff_id.filter(|&expected| expected != &decoded_digest) {
        return Err(bad(format!("it decompresses to {decoded_digest}, but the config says {expected}")));
    }
    Ok(VerifiedLayer {
        digest: got_digest,
        diff_id: decoded_digest,
        size,
        media_type: descriptor.media_type.clone(),
        uncompressed_size,
        compression,
    })
}

/// Fills `buf` as far as the reader goes (a sniffing read that may meet the end early).
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_reader_yields_exactly_the_declared_bytes() {
        let mut out = Vec::new();
        Bounded::new(&b"abc"[..], 3).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let long = Bounded::new(io::repeat(0), 1000).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::InvalidData);
        let short = Bounded::new(&b"ab"[..], 3).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        // What a registry's endless or short blob body meets (the registry client does not bound it again).
        let longer = Bounded::new(&b"0123456789"[..], 4).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(longer.to_string().contains("more than the 4 bytes"), "{longer}");
        let shorter = Bounded::new(&b"0123"[..], 10).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(shorter.to_string().contains("after 4 of the 10 bytes"), "{shorter}");
    }

    #[test]
    fn layout_files_must_be_regular_files_inside_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(root.join("blobs/sha256/ok"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("blobs/sha256/link")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("blobs/out")).unwrap();
        assert_eq!(open_in_layout(root, "blobs/sha256/ok").unwrap().1, 1);
        assert!(matches!(open_in_layout(root, "blobs/sha256/link"), Err(LayoutRefusal::NotRegular)));
        assert!(matches!(open_in_layout(root, "blobs/out/passwd"), Err(LayoutRefusal::NotRegular)));
        assert!(matches!(open_in_layout(root, "blobs/sha256/none"), Err(LayoutRefusal::Missing)));
        assert!(matches!(open_in_layout(root, "blobs/../x"), Err(LayoutRefusal::NotRegular)));
        assert!(matches!(open_in_layout(root, "blobs"), Err(LayoutRefusal::NotRegular)));
    }
}
