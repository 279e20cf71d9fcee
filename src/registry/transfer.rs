//! Reading what a registry sends, bounded: a minimum pace against trickles, and blobs held to their declared size.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::error::MAX_QUOTED_TEXT;

/// The slowest average pace a transfer may keep, in bytes per second, beyond a first `ClientOptions::timeout`: a
/// server that trickles a byte at a time never trips the idle limit, so every exchange also has an overall deadline
/// of `timeout + bytes / MIN_TRANSFER_RATE` (a 4 MiB manifest: 30 s + 256 s; a 64 MiB chunk: 30 s + 68 min).
pub const MIN_TRANSFER_RATE: u64 = 16 << 10;

/// A body reader that fails when the transfer falls behind [`MIN_TRANSFER_RATE`] on average once `grace` has
/// passed: the per-read limit of [`super::limits`] ends a stall, this ends a trickle (a byte now and then, each read in
/// time).
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

/// A blob's body: paced, and its read errors naming the registry and the blob. Its size is not checked here: every
/// blob read goes through `blob_read::Bounded`, which holds it to its descriptor's size.
pub(crate) struct BlobBody<R> {
    inner: Paced<R>,
    /// `host/repository: blob sha256:...`, for errors.
    what: String,
    timeout: Duration,
}

impl<R: Read> Read for BlobBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| self.explain(e))
    }
}

impl<R: Read> BlobBody<R> {
    /// `what` (`host/repository: blob sha256:...`) names the blob in errors, and `timeout` is both the grace before
    /// the pace counts and the idle limit quoted when a read times out.
    pub(crate) fn new(inner: R, what: String, timeout: Duration) -> BlobBody<R> {
        BlobBody { inner: Paced::new(inner, timeout), what, timeout }
    }
}

impl<R> BlobBody<R> {
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

    #[test]
    fn a_trickle_slower_than_the_minimum_pace_times_out() {
        use std::io::Read;
        let mut paced = Paced::new(&b"abc"[..], Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let error = paced.read(&mut [0; 1]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
