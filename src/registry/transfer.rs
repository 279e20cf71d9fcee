//! Reading what a registry sends, bounded: a minimum pace against trickles, and blobs held to their declared size.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::error::MAX_QUOTED_TEXT;

/// The slowest average pace a transfer may keep, in bytes per second, beyond a first `ClientOptions::timeout`: a
/// server that trickles a byte at a time never trips the idle limit, so every exchange also has an overall deadline
/// of `timeout + bytes / MIN_TRANSFER_RATE` (a 4 MiB manifest: 30 s + 256 s; a 64 MiB chunk: 30 s + 68 min).
pub const MIN_TRANSFER_RATE: u64 = 16 << 10;

/// A body reader that fails when the transfer falls behind [`MIN_TRANSFER_RATE`] on average once `grace` has
/// passed: ureq's per-read limit ends a stall, this ends a trickle (a byte now and then, each read in time).
pub(crate) struct Paced<R> {
    inner: R,
    started: Instant,
    received: u64,
    grace: Duration,
}

impl<R> Paced<R> {
    pub(crate) fn new(inner: R, grace: Duration) -> Paced<R> {
        Paced { inner, started: Instant::now(), received: 0, grace }
    }
}

impl<R: std::io::Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let allowed = self.grace.saturating_add(Duration::from_secs(self.received / MIN_TRANSFER_RATE));
        if self.started.elapsed() > allowed {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "timed out: {} bytes came in {} s, slower than {} KiB/s",
                    self.received,
                    self.started.elapsed().as_secs(),
                    MIN_TRANSFER_RATE >> 10
                ),
            ));
        }
        let n = self.inner.read(buf)?;
        self.received += n as u64;
        Ok(n)
    }
}

/// A blob's body, held to the size its descriptor declares: it ends there, and fails if the registry sends more
/// (found by reading one byte past the end) or ends early. An endless body cannot fill a disk or spin a reader.
pub(crate) struct BlobReader<R> {
    inner: Paced<R>,
    remaining: u64,
    size: u64,
    /// `host/repository: blob sha256:...`, for errors.
    what: String,
    timeout: Duration,
}

impl<R: std::io::Read> Read for BlobReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Error as IoError, ErrorKind};
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe).map_err(|e| self.explain(e))? {
                0 => Ok(0),
                _ => Err(IoError::new(
                    ErrorKind::InvalidData,
                    format!(
                        "{}: the registry sends more than the {} bytes its descriptor declares",
                        self.what, self.size
                    ),
                )),
            };
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want]).map_err(|e| self.explain(e))?;
        if n == 0 {
            return Err(IoError::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "{}: the registry's answer ends after {} of the {} bytes its descriptor declares",
                    self.what,
                    self.size - self.remaining,
                    self.size
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl<R: Read> BlobReader<R> {
    /// `inner`, held to `size` bytes; `what` (`host/repository: blob sha256:...`) names it in errors, and `timeout`
    /// is both the grace before the pace counts and the idle limit quoted when a read times out.
    pub(crate) fn new(inner: R, size: u64, what: String, timeout: Duration) -> BlobReader<R> {
        BlobReader { inner: Paced::new(inner, timeout), remaining: size, size, what, timeout }
    }
}

impl<R> BlobReader<R> {
    /// Names the registry and the blob in a read error, and says plainly when it is a timeout.
    fn explain(&self, error: io::Error) -> io::Error {
        let kind = error.kind();
        let text = match ureq::Error::from(error) {
            ureq::Error::Timeout(_) => {
                format!("timed out waiting for data (nothing for {} s)", self.timeout.as_secs_f64())
            }
            ureq::Error::Io(e) => e.to_string(),
            other => other.to_string(),
        };
        let kind = if text.starts_with("timed out") { io::ErrorKind::TimedOut } else { kind };
        io::Error::new(kind, format!("{}: {}", self.what, crate::error::display_text(&text, MAX_QUOTED_TEXT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(body: &'static [u8], size: u64) -> BlobReader<&'static [u8]> {
        BlobReader::new(body, size, "r/a: blob x".into(), Duration::from_secs(30))
    }

    #[test]
    fn blob_bodies_end_at_the_declared_size_and_fail_when_longer_or_shorter() {
        use std::io::Read;
        let mut exact = Vec::new();
        blob(b"0123456789", 10).read_to_end(&mut exact).unwrap();
        assert_eq!(exact, b"0123456789");
        let longer = blob(b"0123456789", 4).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(longer.to_string().contains("more than the 4 bytes"), "{longer}");
        let shorter = blob(b"0123", 10).read_to_end(&mut Vec::new()).unwrap_err();
        assert!(shorter.to_string().contains("after 4 of the 10 bytes"), "{shorter}");
    }

    #[test]
    fn a_trickle_slower_than_the_minimum_pace_times_out() {
        use std::io::Read;
        let mut paced = Paced::new(&b"abc"[..], Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let error = paced.read(&mut [0; 1]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
