//! Origins (RFC 6454: scheme, host, port): credentials are bound to the origin they were given for, and a token
//! service is used only where credentials cannot travel in clear text.

/// A URL's origin (RFC 6454: scheme, host, port), for binding credentials to the registry they are for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// `None` for anything but an absolute `http`/`https` URL with a plain authority (no user info).
    pub(crate) fn of(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, port.parse().ok()?),
            _ => (authority, default_port),
        };
        Some(Origin { scheme, host: host.to_ascii_lowercase(), port })
    }

    pub(crate) fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Why credentials may not be sent to the token service at `realm`, if they may not (see
/// `RegistryClient::check_realm`).
pub(crate) fn realm_refusal(realm: &str, tls_verify: bool) -> Option<&'static str> {
    match Origin::of(realm) {
        None => Some("not an HTTP(S) URL"),
        Some(origin) if origin.scheme == "http" && tls_verify && !origin.is_loopback() => Some(
            "plain HTTP, where credentials would travel in clear text (allowed only for loopback hosts, or with TLS \
             verification off)",
        ),
        Some(_) => None,
    }
}

/// Whether `url` is on the same origin as the registry's `base`.
pub(crate) fn same_origin(url: &str, base: &str) -> bool {
    match (Origin::of(url), Origin::of(base)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let base = "https://r.example:5000";
        assert!(same_origin("https://R.example:5000/v2/a/blobs/uploads/x", base));
        assert!(!same_origin("https://r.example:5001/upload", base));
        assert!(!same_origin("http://r.example:5000/upload", base));
        assert!(!same_origin("https://s3.example/upload", base));
        assert!(!same_origin("https://r.example:5000@evil.example/upload", base));
        assert!(same_origin("https://r.example/x", "https://r.example:443"));
        assert!(same_origin("http://[::1]:5000/x", "http://[::1]:5000"));
        assert!(!same_origin("ftp://r.example:5000/x", base));
        assert!(Origin::of("http://127.0.0.1:9/token").unwrap().is_loopback());
        assert!(!Origin::of("http://auth.example/token").unwrap().is_loopback());
    }

    #[test]
    fn token_realms_must_be_https_unless_loopback_or_unverified() {
        assert_eq!(realm_refusal("https://auth.example/token", true), None);
        assert_eq!(realm_refusal("http://127.0.0.1:5001/token", true), None);
        assert_eq!(realm_refusal("http://localhost/token", true), None);
        assert!(realm_refusal("http://auth.example/token", true).is_some_and(|w| w.contains("clear text")));
        assert_eq!(realm_refusal("http://auth.example/token", false), None);
        assert!(realm_refusal("file:///etc/passwd", false).is_some());
        assert!(realm_refusal("token", false).is_some());
    }
}
