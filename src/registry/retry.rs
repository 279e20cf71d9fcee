//! The retry policy of registry requests: which failures are retried, how long to wait, and how timeouts are kept
//! from multiplying.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How many times an attempt that timed out is tried again: once, for a pooled connection that died silently; a
/// registry that stalls twice in a row is not waited for a third time.
const TIMEOUT_RETRIES: u32 = 1;

/// The retry policy of every request: up to `attempts` tries with exponential backoff (or the registry's
/// `Retry-After`, honoured up to `longest_wait`, the client's timeout: a registry may not make us wait longer than a
/// silence we would accept), but at most [`TIMEOUT_RETRIES`] retries after a timeout. Giving up after a timeout marks the
/// client stalled.
pub(crate) struct Retry<'a> {
    attempt: u32,
    attempts: u32,
    timeouts: u32,
    delay: Duration,
    stalled: &'a AtomicBool,
    longest_wait: Duration,
}

impl Retry<'_> {
    /// `attempts` tries in all, the first waiting `backoff` and each next twice as long, none longer than
    /// `longest_wait`; `stalled` is set when the policy gives up after a timeout.
    pub(crate) fn new(attempts: u32, backoff: Duration, longest_wait: Duration, stalled: &AtomicBool) -> Retry<'_> {
        Retry { attempt: 1, attempts, timeouts: 0, delay: backoff, stalled, longest_wait }
    }

    /// How many attempts were made so far.
    pub(crate) fn attempts_made(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: waits and says whether to try again.
    pub(crate) fn again(&mut self, timed_out: bool, retry_after: Option<Duration>) -> bool {
        if timed_out {
            self.timeouts += 1;
        }
        if self.attempt >= self.attempts || self.timeouts > TIMEOUT_RETRIES {
            if timed_out {
                self.stalled.store(true, Ordering::SeqCst);
            }
            return false;
        }
        std::thread::sleep(retry_after.unwrap_or(self.delay).min(self.longest_wait));
        self.delay = self.delay.saturating_mul(2);
        self.attempt += 1;
        true
    }
}

/// Whether a failure is a timeout: one of ureq's limits, or a pace or blob read that timed out.
pub(crate) fn timed_out(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}

/// Failures worth another attempt: the connection or the exchange broke, or a limit ran out.
pub(crate) fn retryable(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_)
    )
}
