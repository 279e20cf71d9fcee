//! The HTTP agent every exchange with one registry goes through: the certificates it trusts, whether it verifies them,
//! and what each connection is held to (the limits of [`super::limits`], redirects without credentials).

use std::path::Path;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, DefaultConnector};

use super::limits::Limits;
use super::transfer::MIN_TRANSFER_RATE;
use crate::error::Error;

/// Debian's bundle of the system's trusted CAs (`update-ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// An agent trusting the system's CAs and those in `cert_dir` (`*.crt`, PEM), verifying certificates unless
/// `tls_verify` is off. `timeout` is the idle limit of every connection, and a request of `largest_request` bytes
/// must be sent within it plus the time [`MIN_TRANSFER_RATE`] allows.
pub(crate) fn agent(
    tls_verify: bool,
    cert_dir: Option<&Path>,
    timeout: Duration,
    largest_request: u64,
) -> Result<ureq::Agent, Error> {
    let mut certs = Vec::new();
    let mut files = vec![std::path::PathBuf::from(SYSTEM_CA_BUNDLE)];
    if let Some(dir) = cert_dir {
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
    let tls = TlsConfig::builder().root_certs(roots).disable_verification(!tls_verify).build();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        // Only connecting is ureq's to time: `Limits` keeps the idle limit on each read and write and the budget for
        // an answer's headers; `Paced` adds the overall pace for answers, and the request body (at most one chunk)
        // must go at MIN_TRANSFER_RATE too.
        .timeout_connect(Some(timeout))
        .max_redirects(5)
        // Blob GETs may be redirected to object storage: credentials stay with the registry.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .user_agent(concat!("rootfs2image/", env!("CARGO_PKG_VERSION")))
        .build();
    let limits = Limits {
        idle: timeout,
        send: timeout.saturating_add(Duration::from_secs(largest_request / MIN_TRANSFER_RATE)),
    };
    Ok(ureq::Agent::with_parts(config, DefaultConnector::new().chain(limits), DefaultResolver::default()))
}
