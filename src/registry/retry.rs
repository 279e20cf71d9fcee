//! The retry policy of registry requests: which failures are retried, how long to wait, and how timeouts are kept
//! from multiplying; [`Retry::run`] is the one loop every request goes through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http::HeaderMap;

/// How many times an attempt that timed out is tried again: once, for a pooled connection that died silently; a
/// registry that stalls twice in a row is not waited for a third time.
const TIMEOUT_RETRIES: u32 = 1;

/// The retry policy of every request: up to `attempts` tries with exponential backoff (or the registry's
/// `Retry-After`, honoured up to `longest_wait`, the client's timeout: a registry may not make us wait longer than a
/// silence we would accept), but at most [`TIMEOUT_RETRIES`] retries after a timeout. Giving up after a timeout marks
/// the client stalled.
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

    /// Runs `attempt` until it is [`Attempt::Done`], fails for good, or the policy gives up. An `Err` from `attempt`
    /// ends the request as it is. `broken` says what an exchange that broke comes to: with `None` when another
    /// attempt would not mend it (a malformed request, a refused certificate), with the number of attempts made when
    /// the policy gave up.
    pub(crate) fn run<T, E>(
        mut self,
        mut attempt: impl FnMut() -> Result<Attempt<T, E>, E>,
        broken: impl Fn(&ureq::Error, Option<u32>) -> E,
    ) -> Result<T, E> {
        loop {
            match attempt()? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Renewed => {}
                Attempt::Busy { retry_after, last } => {
                    if !self.again(false, retry_after) {
                        return last;
                    }
                }
                Attempt::Broken(error) if retryable(&error) => {
                    if !self.again(timed_out(&error), None) {
                        return Err(broken(&error, Some(self.attempt)));
                    }
                }
                Attempt::Broken(error) => return Err(broken(&error, None)),
            }
        }
    }

    /// After a failed attempt: waits and says whether to try again.
    fn again(&mut self, timed_out: bool, retry_after: Option<Duration>) -> bool {
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

/// What one attempt of a request came to.
pub(crate) enum Attempt<T, E> {
    /// The request's answer.
    Done(T),
    /// The registry answered that it cannot serve now (a 5xx, or a 429 where the caller retries it), perhaps saying
    /// when to ask again (`Retry-After`); `last` is what the request comes to when no attempt is left.
    Busy { retry_after: Option<Duration>, last: Result<T, E> },
    /// The exchange broke: retried when [`retryable`], counted against [`TIMEOUT_RETRIES`] when it timed out.
    Broken(ureq::Error),
    /// The registry asked for credentials (a 401) and they were renewed: tried again at once, not counted as an
    /// attempt. A caller renews once per request at most, or a registry could keep a request going forever.
    Renewed,
}

/// The wait an answer asks for in `Retry-After`, when it gives it in seconds (RFC 9110 section 10.2.3); an HTTP-date
/// is not read, and the backoff's own wait applies.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether a failure is a timeout: one of ureq's limits, or a pace or blob read that timed out.
fn timed_out(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}

/// Failures worth another attempt: the connection or the exchange broke, or a limit ran out.
fn retryable(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(attempts: u32, stalled: &AtomicBool) -> Retry<'_> {
        Retry::new(attempts, Duration::ZERO, Duration::ZERO, stalled)
    }

    /// Says how a broken exchange ended: refused at once, or given up after so many attempts.
    fn ending(_: &ureq::Error, gave_up_after: Option<u32>) -> String {
        gave_up_after.map_or("refused".to_string(), |n| format!("after {n} attempts"))
    }

    #[test]
    fn busy_answers_are_retried_until_no_attempt_is_left_and_the_last_is_returned() {
        let stalled = AtomicBool::new(false);
        let mut calls = 0;
        let result = retry(3, &stalled).run(
            || {
                calls += 1;
                Ok(Attempt::Busy { retry_after: None, last: Ok::<_, String>(calls) })
            },
            ending,
        );
        assert_eq!(result, Ok(3));
        assert!(!stalled.load(Ordering::SeqCst));
    }

    #[test]
    fn a_timeout_is_retried_once_and_giving_up_marks_the_client_stalled() {
        let stalled = AtomicBool::new(false);
        let mut calls = 0;
        let result = retry(5, &stalled).run(
            || {
                calls += 1;
                Ok::<Attempt<(), String>, _>(Attempt::Broken(ureq::Error::Timeout(ureq::Timeout::RecvResponse)))
            },
            ending,
        );
        assert_eq!((result, calls), (Err("after 2 attempts".to_string()), 2));
        assert!(stalled.load(Ordering::SeqCst));
    }

    #[test]
    fn a_failure_another_attempt_would_not_mend_ends_the_request_at_once() {
        let stalled = AtomicBool::new(false);
        let mut calls = 0;
        let result = retry(5, &stalled).run(
            || {
                calls += 1;
                Ok::<Attempt<(), String>, _>(Attempt::Broken(ureq::Error::BadUri("x".into())))
            },
            ending,
        );
        assert_eq!((result, calls), (Err("refused".to_string()), 1));
        let result = retry(5, &stalled).run(|| Err::<Attempt<(), String>, _>("denied".to_string()), ending);
        assert_eq!(result, Err("denied".to_string()));
    }

    #[test]
    fn renewed_credentials_are_tried_at_once_without_counting_an_attempt() {
        let stalled = AtomicBool::new(false);
        let mut renewed = false;
        let result = retry(1, &stalled).run(
            || {
                if !renewed {
                    renewed = true;
                    return Ok(Attempt::Renewed);
                }
                Ok::<_, String>(Attempt::Done("answer"))
            },
            ending,
        );
        assert_eq!(result, Ok("answer"));
    }

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", " 3 ".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
