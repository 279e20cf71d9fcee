//! `keygen`: a new ECDSA P-256 key pair for signing images: `PREFIX.key`, encrypted in cosign's format (what
//! `skopeo copy --sign-by-sigstore-private-key` and `cosign sign --key` read), readable by its owner only, and
//! `PREFIX.pub`, the public key verifiers are given. Existing files are never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sign::key::PrivateKey;

#[derive(Clone, Debug, Serialize)]
pub struct KeygenReport {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
}

/// Writes a new key pair beside `prefix`, the private key sealed under `passphrase`.
pub fn keygen(prefix: &Path, passphrase: &[u8]) -> Result<KeygenReport> {
    let with = |extension: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(extension);
        PathBuf::from(name)
    };
    let (private_path, public_path) = (with(".key"), with(".pub"));
    for path in [&private_path, &public_path] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::Invalid(format!("`{}` exists: a key is never overwritten", path.display())));
        }
    }
    let key = PrivateKey::generate();
    write_new(&private_path, key.to_encrypted_pem(passphrase).as_bytes(), 0o600)?;
    if let Err(err) = write_new(&public_path, key.public_pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&private_path);
        return Err(err);
    }
    Ok(KeygenReport { private_key: private_path, public_key: public_path })
}

/// Creates `path`, which must not exist, with `mode` from the start (a private key is never readable by others,
/// not even for a moment); a file left half written is removed.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(path);
        return Err(Error::io("cannot write", path, e));
    }
    Ok(())
}
