//! Registry authentication challenges (RFC 7235 `WWW-Authenticate`) and the bearer-token flow of the distribution
//! spec's token authentication (docker/distribution docs/spec/auth/token.md).
//!
//! Both parsers read what a registry (or whoever answers in its place) chose to send: they are pure, bounded in the
//! input they look at and in what they keep, and public so that fuzz targets can drive them directly. [`Authorizer`]
//! holds what a client learnt from the challenges, and fetches the tokens.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ureq::http::{Method, StatusCode};

use super::credentials::Credentials;
use super::exchange::Http;
use super::origin::realm_refusal;
use super::retry::{Attempt, Retry};
use crate::error::MAX_QUOTED_TEXT;

/// The longest `WWW-Authenticate` value read, in bytes. Real challenges are a realm URL, a service and a few scopes
/// (Docker Hub's are under 300 bytes); 8 KiB is also the usual limit of a whole header line in servers and proxies.
pub const MAX_CHALLENGE_LEN: usize = 8 << 10;
/// The most `key=value` parameters read from a challenge (RFC 6750 defines five; registries send three).
pub const MAX_CHALLENGE_PARAMS: usize = 16;
/// The largest token-service answer read, in bytes: a JSON object with a token, its lifetime and perhaps a refresh
/// token. Anything larger is refused unread.
pub const MAX_TOKEN_REPLY: u64 = 1 << 20;
/// The longest token accepted, in bytes. Tokens ride in an `Authorization` header, which servers cap at 8-16 KiB with
/// the rest of the headers; JWTs from Docker Hub, GHCR, ECR and ACR are 1-4 KiB.
pub const MAX_TOKEN_LEN: usize = 16 << 10;

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// Parses the first challenge of a `WWW-Authenticate` value; `None` for an unknown scheme, a bearer challenge with
    /// no realm, or a value longer than [`MAX_CHALLENGE_LEN`].
    pub fn parse(header: &str) -> Option<Challenge> {
        if header.len() > MAX_CHALLENGE_LEN {
            return None;
        }
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => {
                let mut params = parse_params(rest);
                Some(Challenge::Bearer {
                    realm: params.remove("realm").filter(|r| !r.is_empty())?,
                    service: params.remove("service"),
                    scope: params.remove("scope"),
                })
            }
            _ => None,
        }
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas and escaped quotes. At most
/// [`MAX_CHALLENGE_PARAMS`] pairs are read; the first of a repeated key wins.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = text.chars().peekable();
    for _ in 0..MAX_CHALLENGE_PARAMS {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        params.entry(key.trim().to_ascii_lowercase()).or_insert(value);
    }
    params
}

/// The token endpoint's answer: `token` (Docker) or `access_token` (OAuth2).
#[derive(serde::Deserialize)]
pub struct TokenReply {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

impl TokenReply {
    pub fn into_token(self) -> Option<String> {
        self.token.or(self.access_token).filter(|t| !t.is_empty())
    }

    /// The token in a token service's answer, or why there is none usable. The token must fit an `Authorization`
    /// header: at most [`MAX_TOKEN_LEN`] bytes of visible ASCII (RFC 6750 `b64token`, and JWTs, are), so that a
    /// token can never carry a line break into a request.
    pub fn parse(body: &[u8]) -> Result<String, &'static str> {
        if body.len() as u64 > MAX_TOKEN_REPLY {
            return Err("the token service's answer is too large");
        }
        let reply: TokenReply = serde_json::from_slice(body).map_err(|_| "the token service's answer is not JSON")?;
        let token = reply.into_token().ok_or("the token service gave no token")?;
        if token.len() > MAX_TOKEN_LEN {
            return Err("the token service gave a token too long for a header");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token service gave a token with characters a header cannot hold");
        }
        Ok(token)
    }
}

/// Why a request cannot go without credentials none were given for (the client adds [`crate::error::Remedy::LogIn`]).
pub(crate) const LOGIN_NEEDED: &str = "the registry requires a login and no credentials were given or found";

/// How the registry asked to be authenticated, and the token fetched for it.
enum Scheme {
    None,
    Basic(String),
    /// The challenge, and the last token fetched with the scope it was fetched for.
    Bearer {
        challenge: Challenge,
        token: Option<(String, String)>,
    },
}

/// The `Authorization` of one client's requests to its registry: none until the registry asks, then basic
/// credentials or bearer tokens, each token fetched for the scope the client needs. Problems come back as text for the
/// client to put in its errors.
pub(crate) struct Authorizer {
    scheme: Mutex<Scheme>,
    credentials: Option<Credentials>,
    tls_verify: bool,
    repository: String,
    /// `pull,push` to push, `pull` to read.
    actions: &'static str,
    /// Extra repositories whose pull right the token must carry (cross-repository mount sources).
    extra_pull: Mutex<Vec<String>>,
}

impl Authorizer {
    /// For `actions` on `repository`; `tls_verify` as the client's, for the token service's address.
    pub(crate) fn new(
        credentials: Option<Credentials>,
        tls_verify: bool,
        repository: &str,
        actions: &'static str,
    ) -> Authorizer {
        Authorizer {
            scheme: Mutex::new(Scheme::None),
            credentials,
            tls_verify,
            repository: repository.to_string(),
            actions,
            extra_pull: Mutex::new(Vec::new()),
        }
    }

    /// After `GET /v2/` answered 401: learns the scheme its `WWW-Authenticate` header asks for.
    pub(crate) fn challenged(&self, www_authenticate: Option<&str>) -> Result<(), String> {
        let challenge = www_authenticate
            .and_then(Challenge::parse)
            .ok_or("the registry asks for authentication in a way this tool does not support")?;
        let scheme = match challenge {
            Challenge::Basic => Scheme::Basic(self.credentials.as_ref().ok_or(LOGIN_NEEDED)?.basic_header()),
            bearer => Scheme::Bearer { challenge: bearer, token: None },
        };
        *self.scheme.lock().expect("auth lock") = scheme;
        Ok(())
    }

    /// After a 401: take the new challenge (its scope may be wider) and drop the cached token.
    pub(crate) fn renew(&self, www_authenticate: Option<&str>) -> Result<(), String> {
        let mut scheme = self.scheme.lock().expect("auth lock");
        match (&mut *scheme, www_authenticate.and_then(Challenge::parse)) {
            (Scheme::Bearer { challenge, token }, Some(new @ Challenge::Bearer { .. })) => {
                *challenge = new;
                *token = None;
                Ok(())
            }
            (Scheme::None, Some(Challenge::Basic)) | (Scheme::Basic(_), Some(Challenge::Basic)) => {
                let credentials = self.credentials.as_ref().ok_or(LOGIN_NEEDED)?;
                *scheme = Scheme::Basic(credentials.basic_header());
                Ok(())
            }
            (Scheme::None, Some(bearer @ Challenge::Bearer { .. })) => {
                *scheme = Scheme::Bearer { challenge: bearer, token: None };
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Asks for pull rights on `repository` too, for cross-repository mounts.
    pub(crate) fn add_pull_scope(&self, repository: &str) {
        let mut extra = self.extra_pull.lock().expect("scope lock");
        if !extra.iter().any(|r| r == repository) {
            extra.push(repository.to_string());
            if let Scheme::Bearer { token, .. } = &mut *self.scheme.lock().expect("auth lock") {
                *token = None;
            }
        }
    }

    /// The `Authorization` value of the next request to the registry's origin, if it wants one: a token is fetched
    /// through `http` under `retry` when none is held for the scope.
    pub(crate) fn authorization(&self, http: &Http, retry: Retry<'_>) -> Result<Option<String>, String> {
        let scope = self.scope();
        let mut scheme = self.scheme.lock().expect("auth lock");
        match &mut *scheme {
            Scheme::None => Ok(None),
            Scheme::Basic(header) => Ok(Some(header.clone())),
            Scheme::Bearer { challenge, token } => {
                if let Some((_, value)) = token.as_ref().filter(|(for_scope, _)| *for_scope == scope) {
                    return Ok(Some(format!("Bearer {value}")));
                }
                let fetched = self.fetch_token(http, retry, challenge, &scope)?;
                *token = Some((scope, fetched.clone()));
                Ok(Some(format!("Bearer {fetched}")))
            }
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
    fn check_realm(&self, realm: &str) -> Result<(), String> {
        realm_refusal(realm, self.tls_verify).map_or(Ok(()), |why| {
            Err(format!(
                "the registry names a token service at `{}`: {why}",
                crate::error::display_text(realm, MAX_QUOTED_TEXT)
            ))
        })
    }

    fn fetch_token(&self, http: &Http, retry: Retry<'_>, challenge: &Challenge, scope: &str) -> Result<String, String> {
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
        if let Some(credentials) = &self.credentials {
            headers.push(("authorization", credentials.basic_header()));
        }
        retry.run(
            || {
                let reply = match http.call(Method::GET, &url, &headers, None, MAX_TOKEN_REPLY) {
                    Ok(reply) => reply,
                    Err(e) => return Ok(Attempt::Broken(e)),
                };
                if reply.status.is_success() {
                    if reply.truncated {
                        return Err(format!("the token service's answer is larger than {MAX_TOKEN_REPLY} bytes"));
                    }
                    return TokenReply::parse(&reply.body).map(Attempt::Done).map_err(str::to_string);
                }
                if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN {
                    return Err(format!(
                        "the token service refused {} ({}): wrong credentials, or no {scope} right",
                        match &self.credentials {
                            Some(c) => format!("user `{}`", crate::error::display_text(&c.username, 256)),
                            None => "anonymous access".into(),
                        },
                        reply.status
                    ));
                }
                let answered = format!("the token service answered {}", reply.status);
                if reply.status.is_server_error() {
                    Ok(Attempt::Busy { retry_after: None, last: Err(answered) })
                } else {
                    Err(answered)
                }
            },
            |e, _| format!("cannot reach the token service: {}", http.describe(e)),
        )
    }
}

/// A query parameter's value, percent-encoded (RFC 3986 section 2.3: all but unreserved characters).
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
    fn bearer_challenges_parse_with_quoted_commas() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn oversized_or_crowded_challenges_are_bounded() {
        let long = format!(r#"Bearer realm="https://a/{}""#, "x".repeat(MAX_CHALLENGE_LEN));
        assert_eq!(Challenge::parse(&long), None);
        let crowded: String = (0..10_000).map(|i| format!("k{i}=v,")).collect::<String>() + r#"realm="https://a/""#;
        assert_eq!(Challenge::parse(&format!("Bearer {}", &crowded[crowded.len().saturating_sub(8000)..])), None);
        assert_eq!(Challenge::parse(r#"Bearer realm="""#), None);
        assert_eq!(
            Challenge::parse(r#"Bearer realm="https://a/",realm="https://b/""#),
            Some(Challenge::Bearer { realm: "https://a/".into(), service: None, scope: None })
        );
    }

    #[test]
    fn token_answers_are_bounded_and_fit_a_header() {
        assert_eq!(TokenReply::parse(br#"{"token":"abc.def"}"#), Ok("abc.def".into()));
        assert_eq!(TokenReply::parse(br#"{"access_token":"x"}"#), Ok("x".into()));
        assert!(TokenReply::parse(br#"{"token":"a\r\nX-Evil: 1"}"#).is_err());
        assert!(TokenReply::parse(format!(r#"{{"token":"{}"}}"#, "a".repeat(MAX_TOKEN_LEN + 1)).as_bytes()).is_err());
        assert!(TokenReply::parse(br#"{"token":""}"#).is_err());
        assert!(TokenReply::parse(b"<html>").is_err());
    }

    #[test]
    fn token_scopes_are_percent_encoded() {
        assert_eq!(percent_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
