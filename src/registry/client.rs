//! One registry's HTTP client: scheme selection (HTTPS, plain HTTP only for loopback or when verification is off),
//! authentication on demand (basic or bearer token, re-fetched when the scope changes), and retries with exponential
//! backoff on connection errors, timeouts, 5xx and 429 (honouring `Retry-After` up to the timeout).
//!
//! Requests carry their whole body as bytes so that a retry can resend it; large blobs are cut into chunks upstream.
//!
//! What a registry sends is treated as hostile (issue 10):
//! - Credentials and tokens are bound to the registry's origin (scheme, host, port, RFC 6454): a request to any other
//!   origin (an upload `Location` elsewhere, a redirect to storage) goes without `Authorization`.
//! - Every answer is read up to a limit: documents to [`MAX_DOCUMENT_LEN`], token answers to
//!   [`super::auth::MAX_TOKEN_REPLY`], blobs to the size their descriptor declares.
//! - Every exchange has timeouts: connecting, waiting for an answer and each read or write may take at most
//!   [`ClientOptions::timeout`] (an idle limit, so a large blob may take long while a stall ends quickly), and a whole
//!   exchange must keep an average pace (see [`MIN_TRANSFER_RATE`]) so that a trickle ends too. A timeout is retried
//!   once at most: with the defaults, one request gives up after about 2 x 30 s, whatever `attempts` says.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Method, Response, StatusCode};

use super::auth::{Challenge, TokenReply};
use super::credentials::Credentials;
use super::limits::Limits;
use super::origin::{Origin, realm_refusal, same_origin};
use super::retry::{Retry, retryable, timed_out};
use super::transfer::{BlobBody, MIN_TRANSFER_RATE, Paced};
use crate::error::{Error, MAX_QUOTED_TEXT};
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

/// A response's status, headers and (small) body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    /// The body, up to [`MAX_DOCUMENT_LEN`] bytes.
    pub body: Vec<u8>,
    /// The body went on past [`MAX_DOCUMENT_LEN`] and was cut.
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

enum Auth {
    None,
    Basic(String),
    Bearer { challenge: Challenge, token: Option<(String, String)> },
}

pub struct RegistryClient {
    agent: ureq::Agent,
    /// `https://host` or `http://host`.
    base: String,
    host: String,
    repository: String,
    options: ClientOptions,
    auth: Mutex<Auth>,
    /// Extra repositories whose pull right the token must carry (cross-repository mount sources).
    extra_pull: Mutex<Vec<String>>,
    /// `pull,push` to push, `pull` to read.
    actions: &'static str,
    /// A request was given up after timeouts: the registry is stalled, and callers should not start over.
    stalled: std::sync::atomic::AtomicBool,
}

impl RegistryClient {
    /// Connects to the registry of `target` (`GET /v2/`) and learns how it wants to be authenticated.
    /// Connects for pushing (`pull,push` rights).
    /// The retry policy of one request, from this client's options.
    fn retry_policy(&self) -> Retry<'_> {
        Retry::new(self.options.attempts, self.options.backoff, self.options.timeout, &self.stalled)
    }

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
        let agent = build_agent(&options)?;
        let host = target.api_host().to_string();
        let mut client = RegistryClient {
            agent,
            base: format!("https://{host}"),
            host: host.clone(),
            repository: target.repository.clone(),
            options,
            auth: Mutex::new(Auth::None),
            extra_pull: Mutex::new(Vec::new()),
            stalled: std::sync::atomic::AtomicBool::new(false),
            actions,
        };
        let plain_allowed = target.is_loopback() || !client.options.tls_verify;
        let ping = match client.call_once(Method::GET, &format!("{}/v2/", client.base), &[], None) {
            Ok(reply) => reply,
            Err(https_error) if plain_allowed => {
                // Docker's rule for insecure and loopback registries: HTTPS first, then plain HTTP.
                client.base = format!("http://{host}");
                let https_failed = format!("HTTPS failed: {}", client.describe(&https_error));
                match client.call_once(Method::GET, &format!("{}/v2/", client.base), &[], None) {
                    Ok(reply) if reply.status.is_success() || reply.status == StatusCode::UNAUTHORIZED => reply,
                    Ok(reply) => {
                        return Err(
                            client.unreachable(&format!("{https_failed}; plain HTTP answered {}", reply.status))
                        );
                    }
                    Err(e) => {
                        return Err(
                            client.unreachable(&format!("{https_failed}; plain HTTP failed: {}", client.describe(&e)))
                        );
                    }
                }
            }
            Err(e) => return Err(client.unreachable(&client.describe(&e))),
        };
        match ping.status.as_u16() {
            200..=299 => {}
            401 => {
                let challenge = ping.header("www-authenticate").and_then(Challenge::parse).ok_or_else(|| {
                    client.fail("the registry asks for authentication in a way this tool does not support")
                })?;
                let auth = match challenge {
                    Challenge::Basic => {
                        let credentials = client.options.credentials.as_ref().ok_or_else(|| {
                            client.fail("the registry requires a login: give --creds USER:PASSWORD, --creds-stdin, or log in with docker/podman")
                        })?;
                        Auth::Basic(credentials.basic_header())
                    }
                    bearer => Auth::Bearer { challenge: bearer, token: None },
                };
                *client.auth.lock().expect("auth lock") = auth;
            }
            404 => return Err(client.fail("this server does not speak the OCI distribution API (GET /v2/ gave 404)")),
            _ => return Err(client.fail(&format!("GET /v2/ answered {}: {}", ping.status, ping.error_text()))),
        }
        Ok(client)
    }

    /// Whether a request was given up after timing out: a caller that would start a whole step over (an upload
    /// session) should not, so that retries never multiply a stall.
    pub fn stalled(&self) -> bool {
        self.stalled.load(std::sync::atomic::Ordering::SeqCst)
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
        let mut extra = self.extra_pull.lock().expect("scope lock");
        if !extra.iter().any(|r| r == repository) {
            extra.push(repository.to_string());
            if let Auth::Bearer { token, .. } = &mut *self.auth.lock().expect("auth lock") {
                *token = None;
            }
        }
    }

    pub fn fail(&self, problem: &str) -> Error {
        Error::Registry {
            registry: self.host.clone(),
            repository: self.repository.clone(),
            problem: problem.to_string(),
        }
    }

    fn unreachable(&self, why: &str) -> Error {
        self.fail(&format!("cannot reach the registry: {why}"))
    }

    /// Sends a request with retries; `Authorization` goes only to the registry's own origin. The answer's body is
    /// read up to [`MAX_DOCUMENT_LEN`] (see [`Reply::truncated`]); `body` is resent whole on each attempt.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_, '_>,
    ) -> Result<Reply, Error> {
        // An upload `Location` may name another host (object storage, or a hostile second server): the registry's
        // credentials and tokens are for the registry alone (issue 10; Docker and containers/image do the same).
        let own_origin = same_origin(url, &self.base);
        let mut retry = self.retry_policy();
        let mut refreshed_auth = false;
        loop {
            let mut all_headers = headers.to_vec();
            if own_origin {
                if let Some(value) = self.authorization()? {
                    all_headers.push(("authorization", value));
                }
            }
            let result = match &body {
                Body::Empty => self.call_once(method.clone(), url, &all_headers, None),
                Body::Bytes(bytes) => self.call_once(method.clone(), url, &all_headers, Some(bytes)),
                Body::Stream(open) => {
                    let mut reader = open()?;
                    self.call_streaming(method.clone(), url, &all_headers, &mut *reader)
                }
            };
            let retry_after = match &result {
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED && own_origin && !refreshed_auth => {
                    // A token expires, or the registry wants another scope: fetch a fresh one once.
                    refreshed_auth = true;
                    self.refresh(reply)?;
                    continue;
                }
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED && !own_origin => {
                    let elsewhere = Origin::of(url).map(|o| format!("{}:{}", o.host, o.port)).unwrap_or_default();
                    return Err(self.fail(&format!(
                        "{method} on another host ({}) the registry sent us to answered 401: the registry's \
                         credentials are not sent to another origin",
                        crate::error::display_text(&elsewhere, MAX_QUOTED_TEXT)
                    )));
                }
                Ok(reply) if reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS => {
                    reply.header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs)
                }
                Ok(_) => return result.map_err(|e| self.unreachable(&self.describe(&e))),
                Err(e) if retryable(e) => None,
                Err(e) => return Err(self.unreachable(&self.describe(e))),
            };
            let timed_out = result.as_ref().err().is_some_and(timed_out);
            if !retry.again(timed_out, retry_after) {
                let attempts = retry.attempts_made();
                return result
                    .map_err(|e| self.unreachable(&format!("{} (after {attempts} attempts)", self.describe(&e))));
            }
        }
    }

    /// Opens the blob `digest` for streaming; an answer announcing another length than `size`, the size its
    /// descriptor declares, is refused (the reader is held to `size` by `blob_read::Bounded`, as every blob is).
    /// Redirects to storage are followed without `Authorization`.
    pub fn open_blob(&self, digest: &crate::digest::Digest, size: u64) -> Result<Box<dyn std::io::Read + Send>, Error> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut retry = self.retry_policy();
        let mut refreshed_auth = false;
        loop {
            let mut request = http::Request::builder().method(Method::GET).uri(&url);
            if let Some(value) = self.authorization()? {
                request = request.header("authorization", value);
            }
            let request = request.body(()).map_err(|e| self.fail(&e.to_string()))?;
            let error = match self.agent.run(request) {
                Ok(response) if response.status().is_success() => {
                    let announced = response
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if let Some(announced) = announced.filter(|&announced| announced != size) {
                        return Err(self.fail(&format!(
                            "GET blob {digest}: the registry announces {announced} bytes, but the blob's descriptor \
                             declares {size}"
                        )));
                    }
                    let what = format!("{}/{}: blob {digest}", self.host, self.repository);
                    let body = response.into_body().into_reader();
                    return Ok(Box::new(BlobBody::new(body, what, self.options.timeout)));
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !refreshed_auth => {
                    refreshed_auth = true;
                    let (parts, _) = response.into_parts();
                    self.refresh(&Reply {
                        status: parts.status,
                        headers: parts.headers,
                        body: Vec::new(),
                        truncated: false,
                    })?;
                    continue;
                }
                Ok(response) if !response.status().is_server_error() => {
                    return Err(self.fail(&format!("GET blob {digest} answered {}", response.status())));
                }
                Ok(response) => self.fail(&format!("GET blob {digest} answered {}", response.status())),
                Err(e) if !retryable(&e) => return Err(self.unreachable(&self.describe(&e))),
                Err(e) => {
                    let error = self.unreachable(&self.describe(&e));
                    if !retry.again(timed_out(&e), None) {
                        return Err(error);
                    }
                    continue;
                }
            };
            if !retry.again(false, None) {
                return Err(error);
            }
        }
    }

    fn call_streaming(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: &mut (dyn std::io::Read + Send),
    ) -> Result<Reply, ureq::Error> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let response = self.agent.run(request.body(ureq::SendBody::from_reader(body))?)?;
        self.read_reply(response, MAX_DOCUMENT_LEN)
    }

    fn call_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Reply, ureq::Error> {
        self.call_limited(method, url, headers, body, MAX_DOCUMENT_LEN)
    }

    fn call_limited(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
        limit: u64,
    ) -> Result<Reply, ureq::Error> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let response: Response<ureq::Body> = match body {
            Some(bytes) => self.agent.run(request.body(bytes)?)?,
            None => self.agent.run(request.body(())?)?,
        };
        self.read_reply(response, limit)
    }

    /// Reads an answer's body up to `limit` bytes (more is cut and marked), at the pace [`Paced`] demands.
    fn read_reply(&self, response: Response<ureq::Body>, limit: u64) -> Result<Reply, ureq::Error> {
        use std::io::Read;
        let (parts, body) = response.into_parts();
        let mut bytes = Vec::new();
        Paced::new(body.into_reader(), self.options.timeout)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(ureq::Error::from)?;
        let truncated = bytes.len() as u64 > limit;
        bytes.truncate(limit as usize);
        Ok(Reply { status: parts.status, headers: parts.headers, body: bytes, truncated })
    }

    fn authorization(&self) -> Result<Option<String>, Error> {
        let scope = self.scope();
        let mut auth = self.auth.lock().expect("auth lock");
        match &mut *auth {
            Auth::None => Ok(None),
            Auth::Basic(header) => Ok(Some(header.clone())),
            Auth::Bearer { challenge, token } => {
                if let Some((_, value)) = token.as_ref().filter(|(for_scope, _)| *for_scope == scope) {
                    return Ok(Some(format!("Bearer {value}")));
                }
                let fetched = self.fetch_token(challenge, &scope)?;
                *token = Some((scope, fetched.clone()));
                Ok(Some(format!("Bearer {fetched}")))
            }
        }
    }

    /// After a 401: take the new challenge (its scope may be wider) and drop the cached token.
    fn refresh(&self, reply: &Reply) -> Result<(), Error> {
        let mut auth = self.auth.lock().expect("auth lock");
        match (&mut *auth, reply.header("www-authenticate").and_then(Challenge::parse)) {
            (Auth::Bearer { challenge, token }, Some(new @ Challenge::Bearer { .. })) => {
                *challenge = new;
                *token = None;
                Ok(())
            }
            (Auth::None, Some(Challenge::Basic)) | (Auth::Basic(_), Some(Challenge::Basic)) => {
                let credentials = self.options.credentials.as_ref().ok_or_else(|| {
                    self.fail("the registry requires a login: give --creds USER:PASSWORD, --creds-stdin, or log in with docker/podman")
                })?;
                *auth = Auth::Basic(credentials.basic_header());
                Ok(())
            }
            (Auth::None, Some(bearer @ Challenge::Bearer { .. })) => {
                *auth = Auth::Bearer { challenge: bearer, token: None };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The scopes a push needs: push and pull on the repository, pull on mount sources.
    fn scope(&self) -> String {
        let mut scopes = vec![format!("repository:{}:{}", self.repository, self.actions)];
        scopes.extend(self.extra_pull.lock().expect("scope lock").iter().map(|r| format!("repository:{r}:pull")));
        scopes.join(" ")
    }

    /// The token service is where the registry's challenge says (distribution token spec: the client sends its
    /// credentials to that realm, usually another host, such as auth.docker.io for Docker Hub). What keeps this safe:
    /// the realm must be HTTPS, unless it is on a loopback host or TLS verification is off (the rule for registries
    /// themselves), so a registry reached over HTTPS cannot have credentials sent in clear text; redirects from the
    /// realm are followed without `Authorization`; and the token it gives is used on the registry's origin only.
    fn check_realm(&self, realm: &str) -> Result<(), Error> {
        realm_refusal(realm, self.options.tls_verify).map_or(Ok(()), |why| {
            Err(self.fail(&format!(
                "the registry names a token service at `{}`: {why}",
                crate::error::display_text(realm, MAX_QUOTED_TEXT)
            )))
        })
    }

    fn fetch_token(&self, challenge: &Challenge, scope: &str) -> Result<String, Error> {
        let Challenge::Bearer { realm, service, .. } = challenge else { unreachable!("only bearer challenges") };
        self.check_realm(realm)?;
        let separator = if realm.contains('?') { '&' } else { '?' };
        let mut url = format!("{realm}{separator}");
        let mut params: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        if let Some(service) = service {
            params.entry("service").or_default().push(service.clone());
        }
        params.entry("scope").or_default().extend(scope.split(' ').map(str::to_string));
        let query: Vec<String> =
            params.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={}", percent_encode(v)))).collect();
        url.push_str(&query.join("&"));
        let mut headers = Vec::new();
        if let Some(credentials) = &self.options.credentials {
            headers.push(("authorization", credentials.basic_header()));
        }
        let mut retry = self.retry_policy();
        loop {
            let result = self.call_limited(Method::GET, &url, &headers, None, super::auth::MAX_TOKEN_REPLY);
            match &result {
                Ok(reply) if reply.status.is_success() => {
                    if reply.truncated {
                        return Err(self.fail(&format!(
                            "the token service's answer is larger than {} bytes",
                            super::auth::MAX_TOKEN_REPLY
                        )));
                    }
                    return TokenReply::parse(&reply.body).map_err(|problem| self.fail(problem));
                }
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN => {
                    return Err(self.fail(&format!(
                        "the token service refused {} ({}): wrong credentials, or no {scope} right",
                        match &self.options.credentials {
                            Some(c) => format!("user `{}`", crate::error::display_text(&c.username, 256)),
                            None => "anonymous access".into(),
                        },
                        reply.status
                    )));
                }
                Ok(reply) if !reply.status.is_server_error() => {
                    return Err(self.fail(&format!("the token service answered {}", reply.status)));
                }
                Err(e) if !retryable(e) => {
                    return Err(self.fail(&format!("cannot reach the token service: {}", self.describe(e))));
                }
                _ => {}
            }
            if !retry.again(result.as_ref().err().is_some_and(timed_out), None) {
                return Err(match result {
                    Ok(reply) => self.fail(&format!("the token service answered {}", reply.status)),
                    Err(e) => self.fail(&format!("cannot reach the token service: {}", self.describe(&e))),
                });
            }
        }
    }

    /// What went wrong with an exchange, for a message: timeouts say which limit ran out; the text is escaped, since
    /// ureq may quote what the server sent (a `Location`, a status line).
    fn describe(&self, error: &ureq::Error) -> String {
        let seconds = self.options.timeout.as_secs_f64();
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
            other => {
                let text = other.to_string();
                if text.contains("certificate") || text.contains("UnknownIssuer") {
                    format!("{text} (a private CA? give --cert-dir DIR with its .crt, or --tls-verify=false)")
                } else {
                    text
                }
            }
        };
        crate::error::display_text(&text, MAX_QUOTED_TEXT)
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

fn build_agent(options: &ClientOptions) -> Result<ureq::Agent, Error> {
    use ureq::tls::{RootCerts, TlsConfig};
    use ureq::unversioned::resolver::DefaultResolver;
    use ureq::unversioned::transport::{Connector, DefaultConnector};
    let mut certs = Vec::new();
    let mut files = vec![std::path::PathBuf::from("/etc/ssl/certs/ca-certificates.crt")];
    if let Some(dir) = &options.cert_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot read the certificate directory", dir, e))?;
        files.extend(
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "crt")),
        );
    }
    for file in &files {
        let Ok(pem) = std::fs::read(file) else { continue };
        for item in ureq::tls::parse_pem(&pem).flatten() {
            if let ureq::tls::PemItem::Certificate(cert) = item {
                certs.push(cert.to_owned());
            }
        }
    }
    // The system's CA store (Debian's bundle) plus --cert-dir; Mozilla's roots if the system has none.
    let roots = if certs.is_empty() { RootCerts::WebPki } else { RootCerts::from(certs) };
    let tls = TlsConfig::builder().root_certs(roots).disable_verification(!options.tls_verify).build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        // Only connecting is ureq's to time: `Limits` keeps the idle limit on each read and write and the budget for
        // an answer's headers; `Paced` adds the overall pace for answers, and the request body (at most one chunk)
        // must go at MIN_TRANSFER_RATE too.
        .timeout_connect(Some(options.timeout))
        .max_redirects(5)
        // Blob GETs may be redirected to object storage: credentials stay with the registry.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .user_agent(concat!("rootfs2image/", env!("CARGO_PKG_VERSION")))
        .build();
    let limits = Limits {
        idle: options.timeout,
        send: options
            .timeout
            .saturating_add(Duration::from_secs(options.chunk_size.max(MAX_DOCUMENT_LEN) / MIN_TRANSFER_RATE)),
    };
    Ok(ureq::Agent::with_parts(config, DefaultConnector::new().chain(limits), DefaultResolver::default()))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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

    #[test]
    fn token_scopes_are_percent_encoded() {
        assert_eq!(percent_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
