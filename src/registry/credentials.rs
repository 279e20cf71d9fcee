//! Registry credentials: given on the command line, or looked up the way Docker, podman and skopeo do (auth files'
//! `auths`, `credHelpers` and `credsStore`). A credential is never printed: its `Debug` hides the secret.

use std::fmt;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::Error;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("secret", &"<hidden>").finish()
    }
}

impl Credentials {
    /// `USER:PASSWORD` as `--creds` takes it.
    pub fn parse(text: &str) -> Result<Credentials, Error> {
        match text.split_once(':') {
            Some((user, secret)) if !user.is_empty() => {
                Ok(Credentials { username: user.to_string(), secret: secret.to_string() })
            }
            _ => Err(Error::Invalid("credentials must be USER:PASSWORD".into())),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.secret);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The auth files consulted, in order: `$REGISTRY_AUTH_FILE`, podman's `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`.
fn auth_files() -> Vec<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    files.extend(env("DOCKER_CONFIG").map(|d| d.join("config.json")));
    files.extend(env("HOME").map(|h| h.join(".docker/config.json")));
    files
}

/// Finds credentials for `host` (`HOST[:PORT]`, `docker.io` for Docker Hub) in the usual auth files.
pub fn lookup(host: &str) -> Result<Option<Credentials>, Error> {
    for file in auth_files() {
        if let Some(found) = lookup_in(&file, host)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn lookup_in(file: &Path, host: &str) -> Result<Option<Credentials>, Error> {
    let Ok(bytes) = std::fs::read(file) else { return Ok(None) };
    let auth: AuthFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("`{}` is not a valid auth file: {e}", file.display())))?;
    // Docker Hub is stored under its v1 URL; other registries under the host, sometimes with a scheme.
    let keys: Vec<String> = if host == "docker.io" {
        vec!["https://index.docker.io/v1/".into(), "docker.io".into(), "index.docker.io".into()]
    } else {
        vec![host.to_string(), format!("https://{host}"), format!("http://{host}")]
    };
    for key in &keys {
        if let Some(helper) = auth.cred_helpers.get(key) {
            return run_helper(helper, key);
        }
    }
    for key in &keys {
        if let Some(entry) = auth.auths.get(key) {
            if let Some(encoded) = &entry.auth {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "`{}`: the auth entry for {key} is not base64 USER:PASSWORD",
                            file.display()
                        ))
                    })?;
                return Credentials::parse(&decoded).map(Some);
            }
            if let (Some(username), Some(secret)) = (&entry.username, &entry.password) {
                return Ok(Some(Credentials { username: username.clone(), secret: secret.clone() }));
            }
        }
    }
    match &auth.creds_store {
        Some(store) => run_helper(store, &keys[0]),
        None => Ok(None),
    }
}

/// Runs `docker-credential-NAME get` with the server on standard input (the docker-credential-helpers protocol).
/// Standard input is an unlinked file holding the server, not a pipe: a helper that exits without reading it would
/// otherwise make the write raise SIGPIPE, which ends this process without a word (main restores its default action).
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{name}");
    let input = (|| {
        let mut file = tempfile::tempfile()?;
        file.write_all(server.as_bytes())?;
        file.seek(std::io::SeekFrom::Start(0))?;
        Ok::<_, std::io::Error>(file)
    })()
    .map_err(|e| Error::Invalid(format!("cannot prepare the input of the credential helper `{program}`: {e}")))?;
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::from(input))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Invalid(format!("cannot run the credential helper `{program}`: {e}")))?;
    let output =
        child.wait_with_output().map_err(|e| Error::Invalid(format!("credential helper `{program}` failed: {e}")))?;
    if !output.status.success() {
        // "credentials not found in native keychain" is how helpers say there is nothing stored.
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct HelperReply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout)
        .map_err(|_| Error::Invalid(format!("credential helper `{program}` gave an unreadable answer")))?;
    Ok(Some(Credentials { username: reply.username, secret: reply.secret }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = Credentials::parse("ci:s3cr3t:with:colons").unwrap();
        assert_eq!(c.secret, "s3cr3t:with:colons");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn auth_files_are_read_by_host_and_by_docker_hub_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"},"127.0.0.1:5000":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        assert_eq!(lookup_in(&file, "docker.io").unwrap().unwrap().username, "hub");
        assert_eq!(lookup_in(&file, "127.0.0.1:5000").unwrap().unwrap().secret, "p");
        assert_eq!(lookup_in(&file, "ghcr.io").unwrap(), None);
    }

    #[test]
    fn credential_helpers_are_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-test");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\necho \"{\\\"Username\\\":\\\"$server\\\",\\\"Secret\\\":\\\"x\\\"}\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"credHelpers":{"registry.example:5000":"test"}}"#).unwrap();
        let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
        // SAFETY: tests in this module do not read PATH concurrently.
        unsafe { std::env::set_var("PATH", path) };
        assert_eq!(lookup_in(&file, "registry.example:5000").unwrap().unwrap().username, "registry.example:5000");
    }
}
