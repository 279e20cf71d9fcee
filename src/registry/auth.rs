//! Registry authentication challenges (RFC 7235 `WWW-Authenticate`) and the bearer-token flow of the distribution
//! spec's token authentication (docker/distribution docs/spec/auth/token.md).
//!
//! Both parsers read what a registry (or whoever answers in its place) chose to send: they are pure, bounded in the
//! input they look at and in what they keep, and public so that fuzz targets can drive them directly.

use std::collections::BTreeMap;

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
}
