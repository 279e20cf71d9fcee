//! The time limits of a registry connection once it is open, kept where ureq reads and writes it: an idle limit on
//! every read and write, a budget for an answer's status line and headers, and one for sending a whole request.
//!
//! ureq 3.2 is the last release that builds with Rust 1.75 (`package.rust-version`), and its own phase timeouts do not
//! give these: each restarts on every read or write (3.4.1 fixed that, #1194), so a registry trickling its headers a
//! byte at a time never times out, and it has no per-read or per-write limit (3.5.0's `timeout_per_read`). So the
//! agent sets only ureq's connect timeout, and this transport, chained after TLS (it sees plain HTTP/1.1), owns the
//! rest. The pace of an answer's body is [`super::transfer::Paced`]'s.

use std::time::{Duration, Instant};

use ureq::Timeout;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// Makes every connection of an agent a [`Limited`] one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// No read or write may wait longer, and an answer's status line and headers must all come within it.
    pub idle: Duration,
    /// How long sending one request, headers and body, may take.
    pub send: Duration,
}

impl Connector<Box<dyn Transport>> for Limits {
    type Out = Limited;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Limited>, ureq::Error> {
        Ok(chained.map(|inner| Limited { inner, limits: *self, phase: Phase::Answering { since: Instant::now() } }))
    }
}

/// Where the exchange on a connection is, as its reads and writes show it.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Writing a request, since `since`.
    Sending { since: Instant },
    /// Waiting for the answer's headers, since the request was sent.
    Answering { since: Instant },
    /// Reading the answer's body.
    Body,
}

/// A connection held to [`Limits`]. Timeouts are reported with ureq's reasons: `RecvResponse` for an answer's
/// headers, `RecvBody` for its body, `SendBody` for the request.
#[derive(Debug)]
pub(crate) struct Limited {
    inner: Box<dyn Transport>,
    limits: Limits,
    phase: Phase,
}

impl Transport for Limited {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), ureq::Error> {
        let now = Instant::now();
        let since = match self.phase {
            Phase::Sending { since } => since,
            Phase::Answering { .. } | Phase::Body => now,
        };
        self.phase = Phase::Sending { since };
        let deadline = (since + self.limits.send).min(now + self.limits.idle);
        self.inner.transmit_output(amount, next_timeout(deadline, now, Timeout::SendBody)?)
    }

    fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
        let now = Instant::now();
        if let Phase::Sending { .. } = self.phase {
            self.phase = Phase::Answering { since: now };
        }
        let timeout = match self.phase {
            Phase::Answering { since } => next_timeout(since + self.limits.idle, now, Timeout::RecvResponse)?,
            Phase::Sending { .. } | Phase::Body => next_timeout(now + self.limits.idle, now, Timeout::RecvBody)?,
        };
        let progressed = self.inner.await_input(timeout)?;
        if let Phase::Answering { .. } = self.phase {
            if headers_complete(self.inner.buffers().input()) {
                self.phase = Phase::Body;
            }
        }
        Ok(progressed)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// The wait left until `deadline`, or the timeout itself when none is left (ureq would wait a second for a zero).
fn next_timeout(deadline: Instant, now: Instant, reason: Timeout) -> Result<NextTimeout, ureq::Error> {
    match deadline.checked_duration_since(now) {
        Some(left) if !left.is_zero() => Ok(NextTimeout { after: left.into(), reason }),
        _ => Err(ureq::Error::Timeout(reason)),
    }
}

/// Whether the input holds the blank line that ends an answer's headers (RFC 9112 section 2.2 allows a bare LF).
fn headers_complete(input: &[u8]) -> bool {
    input.windows(2).any(|w| w == b"\n\n") || input.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::DefaultConnector;

    use super::*;

    /// GETs from a one-shot loopback server that writes `parts`, sleeping `gap` before each; returns the body read
    /// through an agent held to a one-second idle limit, and how long it took.
    fn fetch(parts: &'static [&'static [u8]], gap: Duration) -> (Result<usize, ureq::Error>, Duration) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0; 4096]);
            for part in parts {
                std::thread::sleep(gap);
                if stream.write_all(part).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        let limits = Limits { idle: Duration::from_secs(1), send: Duration::from_secs(1) };
        let agent = ureq::Agent::with_parts(
            ureq::Agent::config_builder().build(),
            DefaultConnector::new().chain(limits),
            DefaultResolver::default(),
        );
        let started = Instant::now();
        let result = agent.get(&url).call().and_then(|answer| {
            let mut body = Vec::new();
            answer.into_body().into_reader().read_to_end(&mut body).map_err(ureq::Error::from)?;
            Ok(body.len())
        });
        (result, started.elapsed())
    }

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n";

    #[test]
    fn a_body_that_keeps_coming_may_take_longer_than_the_idle_limit() {
        let (result, took) = fetch(&[HEAD, b"a", b"b", b"c", b"d", b"e", b"f"], Duration::from_millis(400));
        assert_eq!(result.unwrap(), 6);
        assert!(took > Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn a_body_that_stalls_times_out_after_the_idle_limit() {
        let (result, took) = fetch(&[HEAD, b"a"], Duration::ZERO);
        assert!(matches!(result, Err(ureq::Error::Timeout(Timeout::RecvBody))), "{result:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    #[test]
    fn headers_trickled_in_time_each_still_time_out_as_a_whole() {
        let (result, took) =
            fetch(&[b"HTTP/1.1 200 OK\r\n", b"a: b\r\n", b"c: d\r\n", b"e: f\r\n"], Duration::from_millis(400));
        assert!(matches!(result, Err(ureq::Error::Timeout(Timeout::RecvResponse))), "{result:?}");
        assert!(took < Duration::from_secs(3), "took {took:?}");
    }

    #[test]
    fn headers_end_at_the_first_blank_line_with_or_without_carriage_returns() {
        assert!(headers_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"));
        assert!(headers_complete(b"HTTP/1.1 200 OK\ncontent-length: 0\n\n"));
        assert!(!headers_complete(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n"));
    }

    #[test]
    fn a_deadline_already_past_is_a_timeout_not_a_wait() {
        let now = Instant::now();
        assert!(matches!(
            next_timeout(now, now, Timeout::RecvResponse),
            Err(ureq::Error::Timeout(Timeout::RecvResponse))
        ));
        let next = next_timeout(now + Duration::from_secs(2), now, Timeout::RecvBody).unwrap();
        assert_eq!(*next.after, Duration::from_secs(2));
        assert_eq!(next.reason, Timeout::RecvBody);
    }
}
