//! `rootfs2image keygen`: the key pair a user signs images with. The private key is in cosign's encrypted format
//! (checked field by field here; the crate's unit tests open it again) and readable by its owner only; nothing is
//! ever overwritten, and a missing passphrase is one line.

mod common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use common::{Workspace, assert_refused, bin, run};

#[test]
fn keygen_writes_an_encrypted_private_key_for_its_owner_only_and_a_public_key() {
    let ws = Workspace::new();
    let pass = ws.write("pass", b"correct horse\n");
    run(bin()
        .current_dir(ws.dir.path())
        .args(["keygen", "--output-prefix", "release", "--sign-passphrase-file"])
        .arg(&pass));
    let private = std::fs::read_to_string(ws.path("release.key")).unwrap();
    let public = std::fs::read_to_string(ws.path("release.pub")).unwrap();
    let mode = |name: &str| std::fs::metadata(ws.path(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("release.key"), mode("release.pub")), (0o600, 0o644));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n") && public.ends_with("-----END PUBLIC KEY-----\n"));
    let body: String = private.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{private}");
    let json: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(body).unwrap()).unwrap();
    assert_eq!(json["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
    let bytes = |v: &serde_json::Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    assert_eq!((bytes(&json["kdf"]["salt"]).len(), bytes(&json["cipher"]["nonce"]).len()), (32, 24));
    // A P-256 PKCS#8 key (about 138 bytes) sealed with secretbox's 16-byte tag, and no passphrase in the file.
    assert!(bytes(&json["ciphertext"]).len() > 100);
    assert!(!private.contains("correct horse"));
    // The environment is the other source of the passphrase.
    run(bin().current_dir(ws.dir.path()).env("IMGCRAFT_SIGN_PASSPHRASE", "").args([
        "keygen",
        "--output-prefix",
        "other",
    ]));
    assert!(ws.path("other.key").is_file() && ws.path("other.pub").is_file());
}

#[test]
fn keygen_never_overwrites_a_key_and_needs_a_passphrase() {
    let ws = Workspace::new();
    let pass = ws.write("pass", b"x\n");
    let existing = ws.write("release.pub", b"someone's public key\n");
    assert_refused(&[&existing, &ws.path("release.key")], &["release.pub", "never overwritten"], || {
        bin()
            .current_dir(ws.dir.path())
            .args(["keygen", "--output-prefix", "release", "--sign-passphrase-file"])
            .arg(&pass)
            .output()
            .unwrap()
    });
    assert_refused(&[&ws.path("new.key"), &ws.path("new.pub")], &["passphrase", "IMGCRAFT_SIGN_PASSPHRASE"], || {
        bin()
            .current_dir(ws.dir.path())
            .env_remove("IMGCRAFT_SIGN_PASSPHRASE")
            .args(["keygen", "--output-prefix", "new"])
            .output()
            .unwrap()
    });
}
