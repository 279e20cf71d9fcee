//! One registry's HTTP client: scheme selection (HTTPS, plain HTTP only for loopback or when verification is off),
//! authentication on demand (basic or bearer token, re-fetched when the scope changes), and retries with exponential
//! backoff on connection errors, timeouts, 5xx and 429 (honouring `Retry-After`).
//!
//! Requests carry their whole body as bytes so that a retry can resend it; large blobs are cut into chunks upstream.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Method, Response, StatusCode};

use super::auth::{Challenge, TokenReply};
use super::credentials::Credentials;
use crate::error::Error;
use crate::reference::RegistryRef;

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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            tls_verify: true,
            cert_dir: None,
            credentials: None,
            attempts: 5,
            backoff: Duration::from_millis(250),
            chunk_size: 64 << 20,
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
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The registry's error text (distribution spec: `{"errors":[{"code","message"}]}`), for messages.
    pub fn error_text(&self) -> String {
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
                e.errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect::<Vec<_>>().join("; ")
            }
            _ => String::from_utf8_lossy(&self.body).chars().take(200).collect::<String>().trim().to_string(),
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
}

const MAX_BODY: u64 = 64 << 20;

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
            actions,
        };
        let plain_allowed = target.is_loopback() || !client.options.tls_verify;
        let ping = match client.call_once(Method::GET, &format!("{}/v2/", client.base), &[], None) {
            Ok(reply) => reply,
            Err(https_error) if plain_allowed => {
                // Docker's rule for insecure and loopback registries: HTTPS first, then plain HTTP.
                client.base = format!("http://{host}");
                let https_failed = format!("HTTPS failed: {}", describe(&https_error));
                match client.call_once(Method::GET, &format!("{}/v2/", client.base), &[], None) {
                    Ok(reply) if reply.status.is_success() || reply.status == StatusCode::UNAUTHORIZED => reply,
                    Ok(reply) => {
                        return Err(
                            client.unreachable(&format!("{https_failed}; plain HTTP answered {}", reply.status))
                        );
                    }
                    Err(e) => {
                        return Err(client.unreachable(&format!("{https_failed}; plain HTTP failed: {}", describe(&e))));
                    }
                }
            }
            Err(e) => return Err(client.unreachable(&describe(&e))),
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

    /// Sends a request with authentication and retries. `body` is resent whole on each attempt.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_, '_>,
    ) -> Result<Reply, Error> {
        let mut delay = self.options.backoff;
        let mut refreshed_auth = false;
        let mut attempt = 1;
        loop {
            let mut all_headers = headers.to_vec();
            if let Some(value) = self.authorization()? {
                all_headers.push(("authorization", value));
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
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED && !refreshed_auth => {
                    // A token expires, or the registry wants another scope: fetch a fresh one once.
                    refreshed_auth = true;
                    self.refresh(reply)?;
                    continue;
                }
                Ok(reply) if reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS => {
                    reply.header("retry-after").and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs)
                }
                Ok(_) => return result.map_err(|e| self.unreachable(&describe(&e))),
                Err(e) if retryable(e) => None,
                Err(e) => return Err(self.unreachable(&describe(e))),
            };
            if attempt >= self.options.attempts {
                return result.map_err(|e| self.unreachable(&format!("{} (after {attempt} attempts)", describe(&e))));
            }
            std::thread::sleep(retry_after.unwrap_or(delay).min(Duration::from_secs(60)));
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Opens a blob for streaming (redirects to storage are followed without the `Authorization` header).
    pub fn open_blob(&self, digest: &crate::digest::Digest) -> Result<Box<dyn std::io::Read + Send>, Error> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut delay = self.options.backoff;
        let mut refreshed_auth = false;
        let mut attempt = 1;
        loop {
            let mut request = http::Request::builder().method(Method::GET).uri(&url);
            if let Some(value) = self.authorization()? {
                request = request.header("authorization", value);
            }
            let request = request.body(()).map_err(|e| self.fail(&e.to_string()))?;
            match self.agent.run(request) {
                Ok(response) if response.status().is_success() => {
                    return Ok(Box::new(response.into_body().into_reader()));
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !refreshed_auth => {
                    refreshed_auth = true;
                    let (parts, _) = response.into_parts();
                    self.refresh(&Reply { status: parts.status, headers: parts.headers, body: Vec::new() })?;
                    continue;
                }
                Ok(response) if !response.status().is_server_error() || attempt >= self.options.attempts => {
                    return Err(self.fail(&format!("GET blob {digest} answered {}", response.status())));
                }
                Err(e) if !retryable(&e) || attempt >= self.options.attempts => {
                    return Err(self.unreachable(&describe(&e)));
                }
                _ => {}
            }
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
            attempt += 1;
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
        let mut response = self.agent.run(request.body(ureq::SendBody::from_reader(body))?)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.body_mut().with_config().limit(MAX_BODY).read_to_vec().unwrap_or_default();
        Ok(Reply { status, headers, body })
    }

    fn call_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let mut response: Response<ureq::Body> = match body {
            Some(bytes) => self.agent.run(request.body(bytes)?)?,
            None => self.agent.run(request.body(())?)?,
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.body_mut().with_config().limit(MAX_BODY).read_to_vec().unwrap_or_default();
        Ok(Reply { status, headers, body })
    }

    fn authorization(&self) -> Result<Option<String>, Error> {
        let scope = self.scope();
        let mut auth = self.auth.lock().expect("auth lock");
        match &mut *auth {
            Auth::None => Ok(None),
            Auth::Basic(header) => Ok(Some(header.clone())),
            Auth::Bearer { challenge, token } => {
                if let Some((for_scope, value)) = token
                    && *for_scope == scope
                {
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

    fn fetch_token(&self, challenge: &Challenge, scope: &str) -> Result<String, Error> {
        let Challenge::Bearer { realm, service, .. } = challenge else { unreachable!("only bearer challenges") };
        let mut url = format!("{realm}?");
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
        let mut delay = self.options.backoff;
        for attempt in 1..=self.options.attempts {
            match self.call_once(Method::GET, &url, &headers, None) {
                Ok(reply) if reply.status.is_success() => {
                    let token: Option<String> =
                        serde_json::from_slice::<TokenReply>(&reply.body).ok().and_then(TokenReply::into_token);
                    return token.ok_or_else(|| self.fail("the token service gave no token"));
                }
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN => {
                    return Err(self.fail(&format!(
                        "the token service refused {} ({}): wrong credentials, or no {scope} right",
                        match &self.options.credentials {
                            Some(c) => format!("user `{}`", c.username),
                            None => "anonymous access".into(),
                        },
                        reply.status
                    )));
                }
                Ok(reply) if !reply.status.is_server_error() || attempt == self.options.attempts => {
                    return Err(self.fail(&format!("the token service answered {}", reply.status)));
                }
                Err(e) if !retryable(&e) || attempt == self.options.attempts => {
                    return Err(self.fail(&format!("cannot reach the token service: {}", describe(&e))));
                }
                _ => {}
            }
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
        Err(self.fail("cannot get a token"))
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
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .max_redirects(5)
        // Blob GETs may be redirected to object storage: credentials stay with the registry.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .user_agent(concat!("rootfs2image/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

fn retryable(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_)
    )
}

fn describe(error: &ureq::Error) -> String {
    let text = error.to_string();
    if text.contains("certificate") || text.contains("UnknownIssuer") {
        format!("{text} (a private CA? give --cert-dir DIR with its .crt, or --tls-verify=false)")
    } else {
        text
    }
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
