//! Content digests: the only module that touches sha256, so every digest goes through one door.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A `sha256:<hex>` content digest (image-spec descriptor.md; only sha256 is written, as every engine expects).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(hasher: Sha256) -> Digest {
        Digest { hex: hex::encode(hasher.finalize()) }
    }

    /// The 64 hex digits, as used for blob file names.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::Invalid(format!("unsupported digest `{s}`: only sha256 is supported")))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Error::Invalid(format!("malformed digest `{s}`")));
        }
        Ok(Digest { hex: hex.to_string() })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// sha256 fed piece by piece, for digests kept by the thousand (one per file of a rootfs), where a [`Digest`]'s
/// text would take three times the memory.
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(Sha256::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

/// A writer that hashes and counts everything passing through it to the inner writer.
pub struct DigestWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> DigestWriter<W> {
    pub fn new(inner: W) -> Self {
        DigestWriter { inner, hasher: Sha256::new(), written: 0 }
    }

    /// The inner writer, to tell it something other than bytes (where a tar entry's data begins); bytes written to
    /// it directly would escape the digest.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer, the digest and the byte count of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.written)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R) -> Self {
        DigestReader { inner, hasher: Sha256::new(), read: 0 }
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.read)
    }

    /// The inner reader back, with the digest and length of what was read through it.
    pub fn into_parts(self) -> (R, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.read)
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The sha256 of a whole file, read on its own thread while the caller does other work (the provenance's digest of
/// an input that is being converted at the same time).
pub struct FileHash {
    path: std::path::PathBuf,
    thread: std::thread::JoinHandle<std::io::Result<Digest>>,
}

impl FileHash {
    pub fn start(path: std::path::PathBuf) -> FileHash {
        let reading = path.clone();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&reading)?;
            let mut reader = DigestReader::new(std::io::BufReader::with_capacity(1 << 20, file));
            std::io::copy(&mut reader, &mut std::io::sink())?;
            Ok(reader.finish().0)
        });
        FileHash { path, thread }
    }

    /// Waits for the digest.
    pub fn finish(self) -> crate::error::Result<Digest> {
        let outcome = self.thread.join().unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread failed")));
        outcome.map_err(|e| crate::error::Error::io("cannot read", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_well_known_sha256() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn writer_and_reader_agree_with_one_shot_digest() {
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(b"hello world").unwrap();
        let (bytes, digest, n) = w.finish();
        assert_eq!((digest.clone(), n), (Digest::of(b"hello world"), 11));
        let mut r = DigestReader::new(&bytes[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish(), (digest, 11));
    }

    #[test]
    fn parsing_rejects_other_algorithms_and_bad_hex() {
        assert!("sha512:abc".parse::<Digest>().is_err());
        assert!("sha256:XYZ".parse::<Digest>().is_err());
        let d = Digest::of(b"x");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }
}
