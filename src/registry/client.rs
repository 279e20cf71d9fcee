//! One registry's HTTP client: scheme selection (HTTPS, plain HTTP only for loopback or when verification is off),
//! authentication on demand (basic or bearer token, re-fetched when the scope changes), and retries with exponential
//! backoff on connection errors, timeouts, 5xx and 429 (honouring `Retry-After` up to the timeout).
//!
//! Requests carry their whole body as bytes so that a retry can resend it; large blobs are cut into chunks upstream.
//!
//! What a registry sends is treated as hostile (tests/hostile_registry.rs plays such registries):
//! - Credentials and tokens are bound to the registry's origin (scheme, host, port, RFC 6454): a request to any other
//!   origin (an upload `Location` elsewhere, a redirect to storage) goes without `Authorization`.
//! - Every answer is read up to a limit: documents to [`MAX_DOCUMENT_LEN`], token answers to
//!   [`super::auth::MAX_TOKEN_REPLY`], blobs to the size their descriptor declares.
//! - Every exchange has timeouts: connecting, waiting for an answer and each read or write may take at most
//!   [`ClientOptions::timeout`] (an idle limit, so a large blob may take long while a stall ends quickly), and a whole
//!   exchange must keep an average pace (see [`super::transfer::MIN_TRANSFER_RATE`]) so that a trickle ends too. A
//!   timeout is retried once at most: with the defaults, one request gives up after about 2 x 30 s, whatever
//!   `attempts` says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http::{Method, StatusCode};

use super::auth::Authorizer;
use super::credentials::Credentials;
pub use super::exchange::Reply;
use super::exchange::{Http, request};
use super::origin::{Origin, same_origin};
use super::retry::{Attempt, Retry, retry_after};
use super::transfer::BlobBody;
use crate::error::{Error, MAX_QUOTED_TEXT, Remedy};
use crate::oci::reference::RegistryRef;

/// How to reach registries: TLS settings and retry policy.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Verify TLS certificates; `false` also allows plain HTTP (as `--tls-verify=false` does for skopeo).
    pub tls_verify: bool,
    /// A directory of extra CA certificates (`*.crt`, PEM), as `--cert-dir`.
    pub cert_dir: Option<std::path::PathBuf>,
    pub credentials: Option<Credentials>,
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff delay; doubled after each failure.
    pub backoff: Duration,
    /// Blobs larger than this are uploaded in `PATCH` chunks of this size (proxies often limit request bodies).
    pub chunk_size: u64,
    /// The longest a registry may stay silent: connecting, waiting for an answer, each read or write of a body.
    pub timeout: Duration,
}

/// The default [`ClientOptions::timeout`]: a registry that sends nothing for 30 s is stalled (Docker waits 30 s to
/// connect; registries answer in well under a second, object storage behind them in a few seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer to a request other than a blob GET (a manifest, an index, an error), in bytes, and the largest
/// image config read from a registry: the one limit on documents read from others ([`crate::oci::document::MAX_DOCUMENT_SIZE`]).
/// A manifest, index or config past it is refused; an error body past it is cut.
pub const MAX_DOCUMENT_LEN: u64 = crate::oci::document::MAX_DOCUMENT_SIZE;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            cert_dir: None,
            credentials: None,
            attempts: 5,
            backoff: Duration::from_millis(250),
            chunk_size: 64 << 20,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A request body. A stream is opened anew for every attempt, so a retry resends it from its start.
pub enum Body<'a, 'r> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a (dyn Fn() -> Result<Box<dyn std::io::Read + Send + 'r>, Error> + Sync)),
}

/// A client of one repository on one registry.
pub struct RegistryClient {
    http: Http,
    /// `https://host` or `http://host`.
    base: String,
    host: String,
    repository: String,
    options: ClientOptions,
    auth: Authorizer,
    /// A request was given up after timeouts: the registry is stalled, and callers should not start over.
    stalled: AtomicBool,
}

impl RegistryClient {
    /// Connects to the registry of `target` (`GET /v2/`) and learns how it wants to be authenticated.
    /// Connects for pushing (`pull,push` rights).
    pub fn connect(target: &RegistryRef, options: ClientOptions) -> Result<RegistryClient, Error> {
        Self::connect_with(target, options, "pull,push")
    }

    /// Connects for reading only (`pull` rights).
    pub fn connect_for_pull(target: &RegistryRef, options: ClientOptions) -> Result<RegistryClient, Error> {
        Self::connect_with(target, options, "pull")
    }

    fn connect_with(
        target: &RegistryRef,
        mut options: ClientOptions,
        actions: &'static str,
    ) -> Result<RegistryClient, Error> {
        if options.credentials.is_none() {
            options.credentials = super::credentials::lookup(&target.domain)?;
        }
        let largest_request = options.chunk_size.max(MAX_DOCUMENT_LEN);
        let agent =
            super::tls::agent(options.tls_verify, options.cert_dir.as_deref(), options.timeout, largest_request)?;
        let host = target.api_host().to_string();
        let mut client = RegistryClient {
            http: Http::new(agent, options.timeout),
            base: format!("https://{host}"),
            host: host.clone(),
            repository: target.repository.clone(),
            auth: Authorizer::new(options.credentials.clone(), options.tls_verify, &target.repository, actions),
            options,
            stalled: AtomicBool::new(false),
        };
        let plain_allowed = target.is_loopback() || !client.options.tls_verify;
        let ping = match client.http.call(Method::GET, &format!("{}/v2/", client.base), &[], None, MAX_DOCUMENT_LEN) {
            Ok(reply) => reply,
            Err(https_error) if plain_allowed => {
                // Docker's rule for insecure and loopback registries: HTTPS first, then plain HTTP.
                client.base = format!("http://{host}");
                let https_failed = format!("HTTPS failed: {}", client.http.describe(&https_error));
                match client.http.call(Method::GET, &format!("{}/v2/", client.base), &[], None, MAX_DOCUMENT_LEN) {
                    Ok(reply) if reply.status.is_success() || reply.status == StatusCode::UNAUTHORIZED => reply,
                    Ok(reply) => {
                        return Err(
                            client.unreachable(&format!("{https_failed}; plain HTTP answered {}", reply.status))
                        );
                    }
                    Err(e) => {
                        return Err(client
                            .unreachable(&format!("{https_failed}; plain HTTP failed: {}", client.http.describe(&e))));
                    }
                }
            }
            Err(e) => return Err(client.unreachable(&client.http.describe(&e))),
        };
        match ping.status.as_u16() {
            200..=299 => {}
            401 => client
                .auth
                .challenged(ping.header("www-authenticate"))
                .map_err(|problem| client.auth_failed(&problem))?,
            404 => return Err(client.fail("this server does not speak the OCI distribution API (GET /v2/ gave 404)")),
            _ => return Err(client.fail(&format!("GET /v2/ answered {}: {}", ping.status, ping.error_text()))),
        }
        Ok(client)
    }

    /// Whether a request was given up after timing out: a caller that would start a whole step over (an upload
    /// session) should not, so that retries never multiply a stall.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    pub fn chunk_size(&self) -> u64 {
        self.options.chunk_size.max(1)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// A URL under this repository: `/v2/<name>/<rest>`.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repository)
    }

    /// Resolves a `Location` header, relative or absolute, against the registry.
    pub fn resolve(&self, location: &str) -> String {
        resolve_location(&self.base, location)
    }

    /// Asks for pull rights on `repository` too, for cross-repository mounts.
    pub fn add_pull_scope(&self, repository: &str) {
        self.auth.add_pull_scope(repository);
    }

    pub fn fail(&self, problem: &str) -> Error {
        Error::Registry {
            registry: self.host.clone(),
            repository: self.repository.clone(),
            problem: problem.to_string(),
        }
    }

    fn unreachable(&self, why: &str) -> Error {
        let error = self.fail(&format!("cannot reach the registry: {why}"));
        // rustls says that it refused the registry's certificate only in its message.
        if why.contains("certificate") || why.contains("UnknownIssuer") {
            error.with_remedy(Remedy::TrustRegistry)
        } else {
            error
        }
    }

    /// An authentication step failed; without credentials, logging in is what to do.
    fn auth_failed(&self, problem: &str) -> Error {
        let error = self.fail(problem);
        if problem == super::auth::LOGIN_NEEDED { error.with_remedy(Remedy::LogIn) } else { error }
    }

    /// Sends a request with retries; `Authorization` goes only to the registry's own origin. The answer's body is
    /// read up to [`MAX_DOCUMENT_LEN`] (see [`Reply::truncated`]); `body` is resent whole on each attempt. An answer
    /// that is still a 5xx or a 429 when no attempt is left is returned for the caller to report.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_, '_>,
    ) -> Result<Reply, Error> {
        // An upload `Location` may name another host (object storage, or a hostile second server): the registry's
        // credentials and tokens are for the registry alone (Docker and containers/image do the same).
        let own_origin = same_origin(url, &self.base);
        let mut renewed = false;
        let attempt = || {
            let mut all_headers = headers.to_vec();
            if own_origin {
                if let Some(value) = self.authorization()? {
                    all_headers.push(("authorization", value));
                }
            }
            let result = match &body {
                Body::Empty => self.http.call(method.clone(), url, &all_headers, None, MAX_DOCUMENT_LEN),
                Body::Bytes(bytes) => self.http.call(method.clone(), url, &all_headers, Some(bytes), MAX_DOCUMENT_LEN),
                Body::Stream(open) => {
                    let mut reader = open()?;
                    self.http.call_streaming(method.clone(), url, &all_headers, &mut *reader, MAX_DOCUMENT_LEN)
                }
            };
            let reply = match result {
                Ok(reply) => reply,
                Err(e) => return Ok(Attempt::Broken(e)),
            };
            if reply.status == StatusCode::UNAUTHORIZED && own_origin && !renewed {
                // A token expires, or the registry wants another scope: fetch a fresh one once.
                renewed = true;
                self.auth.renew(reply.header("www-authenticate")).map_err(|problem| self.auth_failed(&problem))?;
                return Ok(Attempt::Renewed);
            }
            if reply.status == StatusCode::UNAUTHORIZED && !own_origin {
                let elsewhere = Origin::of(url).map(|o| format!("{}:{}", o.host, o.port)).unwrap_or_default();
                return Err(self.fail(&format!(
                    "{method} on another host ({}) the registry sent us to answered 401: the registry's \
                     credentials are not sent to another origin",
                    crate::error::display_text(&elsewhere, MAX_QUOTED_TEXT)
                )));
            }
            if reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS {
                return Ok(Attempt::Busy { retry_after: retry_after(&reply.headers), last: Ok(reply) });
            }
            Ok(Attempt::Done(reply))
        };
        self.retry_policy().run(attempt, |e, gave_up_after| match gave_up_after {
            Some(attempts) => self.unreachable(&format!("{} (after {attempts} attempts)", self.http.describe(e))),
            None => self.unreachable(&self.http.describe(e)),
        })
    }

    /// Opens the blob `digest` for streaming; an answer announcing another length than `size`, the size its
    /// descriptor declares, is refused (the reader is held to `size` by `blob_read::Bounded`, as every blob is).
    /// Redirects to storage are followed without `Authorization`.
    pub fn open_blob(&self, digest: &crate::digest::Digest, size: u64) -> Result<Box<dyn std::io::Read + Send>, Error> {
        self.open_blob_from(digest, size, 0)
    }

    /// Opens the blob `digest` (of `size` bytes) from byte `offset` on, asking for that range (distribution-spec
    /// "Pulling blobs", as a client with zstd:chunked partial pulls does for a table of contents). A registry that
    /// ignores the range and sends the whole blob has what comes before `offset` read and dropped.
    pub fn open_blob_from(
        &self,
        digest: &crate::digest::Digest,
        size: u64,
        offset: u64,
    ) -> Result<Box<dyn std::io::Read + Send>, Error> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut renewed = false;
        let ranged = offset > 0 && offset < size;
        let attempt = || {
            let mut headers: Vec<(&str, String)> =
                self.authorization()?.map(|v| ("authorization", v)).into_iter().collect();
            if ranged {
                headers.push(("range", format!("bytes={offset}-")));
            }
            let request = request(Method::GET, &url, &headers).body(()).map_err(|e| self.fail(&e.to_string()))?;
            let response = match self.http.open(request) {
                Ok(response) => response,
                Err(e) => return Ok(Attempt::Broken(e)),
            };
            let status = response.status();
            if status.is_success() {
                let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
                let partial = ranged && status == StatusCode::PARTIAL_CONTENT;
                let expected = if partial { size - offset } else { size };
                let announced = header("content-length").and_then(|v| v.parse::<u64>().ok());
                if let Some(announced) = announced.filter(|&announced| announced != expected) {
                    return Err(self.fail(&format!(
                        "GET blob {digest}: the registry announces {announced} bytes, but the blob's descriptor \
                         declares {size}{}",
                        if partial { format!(" (from byte {offset} on: {expected})") } else { String::new() }
                    )));
                }
                let wanted = format!("bytes {offset}-{}/", size - 1);
                if partial && !header("content-range").is_some_and(|r| r.starts_with(&wanted)) {
                    return Err(self.fail(&format!(
                        "GET blob {digest} from byte {offset}: the registry's answer does not say it holds that range"
                    )));
                }
                let what = format!("{}/{}: blob {digest}", self.host, self.repository);
                let body = response.into_body().into_reader();
                let mut blob: Box<dyn std::io::Read + Send> = Box::new(BlobBody::new(body, what, self.options.timeout));
                if offset > 0 && !partial {
                    crate::blobs::read_past(&mut blob, offset)
                        .map_err(|e| self.fail(&format!("GET blob {digest}: {e}")))?;
                }
                return Ok(Attempt::Done(blob));
            }
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok());
                self.auth.renew(challenge).map_err(|problem| self.auth_failed(&problem))?;
                return Ok(Attempt::Renewed);
            }
            let answered = self.fail(&format!("GET blob {digest} answered {status}"));
            if status.is_server_error() {
                Ok(Attempt::Busy { retry_after: None, last: Err(answered) })
            } else {
                Err(answered)
            }
        };
        self.retry_policy().run(attempt, |e, _| self.unreachable(&self.http.describe(e)))
    }

    /// The retry policy of one request, from this client's options.
    fn retry_policy(&self) -> Retry<'_> {
        Retry::new(self.options.attempts, self.options.backoff, self.options.timeout, &self.stalled)
    }

    /// The `Authorization` value of the next request to the registry's origin, if it wants one.
    fn authorization(&self) -> Result<Option<String>, Error> {
        self.auth.authorization(&self.http, self.retry_policy()).map_err(|problem| self.auth_failed(&problem))
    }
}

/// distribution spec: a `Location` may be absolute or relative to the registry's base URL.
fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_whether_absolute_or_relative() {
        let base = "https://r.example:5000";
        assert_eq!(
            resolve_location(base, "/v2/a/blobs/uploads/x?_state=1"),
            "https://r.example:5000/v2/a/blobs/uploads/x?_state=1"
        );
        assert_eq!(resolve_location(base, "https://s3.example/upload"), "https://s3.example/upload");
        assert_eq!(resolve_location(base, "v2/a/blobs/uploads/y"), "https://r.example:5000/v2/a/blobs/uploads/y");
    }
}
