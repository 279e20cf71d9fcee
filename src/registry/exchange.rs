//! One HTTP exchange with a registry or its token service, below authentication and retries: a request sent through
//! the agent, its answer read up to a limit at the pace [`Paced`] demands, and a failed exchange described for a
//! message.

use std::io::Read;
use std::time::Duration;

use ureq::http::{self, Method, Response, StatusCode};

use super::transfer::Paced;
use crate::error::MAX_QUOTED_TEXT;

/// A response's status, headers and (small) body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    /// The body, up to the limit it was read with ([`super::client::MAX_DOCUMENT_LEN`], or
    /// [`super::auth::MAX_TOKEN_REPLY`] from a token service).
    pub body: Vec<u8>,
    /// The body went on past that limit and was cut.
    pub truncated: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The registry's error text (distribution spec: `{"errors":[{"code","message"}]}`), for messages: escaped and
    /// cut to [`MAX_QUOTED_TEXT`] bytes, since it is the registry's to choose.
    pub fn error_text(&self) -> String {
        crate::error::display_text(&self.raw_error_text(), MAX_QUOTED_TEXT)
    }

    fn raw_error_text(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorItem>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorItem {
            code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Errors>(&self.body) {
            Ok(e) if !e.errors.is_empty() => {
                let mut text = String::new();
                for e in &e.errors {
                    if text.len() > MAX_QUOTED_TEXT {
                        break;
                    }
                    let separator = if text.is_empty() { "" } else { "; " };
                    text.push_str(&format!("{separator}{}: {}", e.code, e.message));
                }
                text
            }
            _ => String::from_utf8_lossy(&self.body[..self.body.len().min(MAX_QUOTED_TEXT)]).trim().to_string(),
        }
    }
}

/// The agent exchanges go through, and the idle limit it holds them to (quoted in messages, and the grace before
/// [`Paced`] counts).
pub(crate) struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(agent: ureq::Agent, timeout: Duration) -> Http {
        Http { agent, timeout }
    }

    /// Sends a request with `body` (or none) and reads the answer up to `limit` bytes.
    pub(crate) fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        limit: u64,
    ) -> Result<Reply, ureq::Error> {
        let request = request(method, url, headers);
        let response: Response<ureq::Body> = match body {
            Some(bytes) => self.agent.run(request.body(bytes)?)?,
            None => self.agent.run(request.body(())?)?,
        };
        self.read_reply(response, limit)
    }

    /// Sends a request whose body is read from `body` as it goes, and reads the answer up to `limit` bytes.
    pub(crate) fn call_streaming(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &mut (dyn Read + Send),
        limit: u64,
    ) -> Result<Reply, ureq::Error> {
        let request = request(method, url, headers);
        let response = self.agent.run(request.body(ureq::SendBody::from_reader(body))?)?;
        self.read_reply(response, limit)
    }

    /// Sends a request and returns the answer with its body unread, for a blob read as it streams.
    pub(crate) fn open(&self, request: http::Request<()>) -> Result<Response<ureq::Body>, ureq::Error> {
        self.agent.run(request)
    }

    /// Reads an answer's body up to `limit` bytes (more is cut and marked), at the pace [`Paced`] demands.
    fn read_reply(&self, response: Response<ureq::Body>, limit: u64) -> Result<Reply, ureq::Error> {
        let (parts, body) = response.into_parts();
        let mut bytes = Vec::new();
        Paced::new(body.into_reader(), self.timeout)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(ureq::Error::from)?;
        let truncated = bytes.len() as u64 > limit;
        bytes.truncate(limit as usize);
        Ok(Reply { status: parts.status, headers: parts.headers, body: bytes, truncated })
    }

    /// What went wrong with an exchange, for a message: timeouts say which limit ran out; the text is escaped, since
    /// ureq may quote what the server sent (a `Location`, a status line).
    pub(crate) fn describe(&self, error: &ureq::Error) -> String {
        let seconds = self.timeout.as_secs_f64();
        let text = match error {
            ureq::Error::Timeout(which) => {
                let what = match which {
                    ureq::Timeout::Connect | ureq::Timeout::Resolve => "connecting",
                    ureq::Timeout::RecvResponse => "waiting for an answer",
                    ureq::Timeout::RecvBody => "waiting for data",
                    ureq::Timeout::SendBody | ureq::Timeout::SendRequest => "waiting for the registry to take data",
                    _ => "on the exchange",
                };
                format!("timed out {what} (nothing for {seconds} s)")
            }
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => e.to_string(),
            other => other.to_string(),
        };
        crate::error::display_text(&text, MAX_QUOTED_TEXT)
    }
}

/// A request's method, URL and headers, its body still to come.
pub(crate) fn request(method: Method, url: &str, headers: &[(&str, String)]) -> http::request::Builder {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    request
}
