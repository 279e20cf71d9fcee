//! Keys made by `rootfs2image keygen` work with the real signing tools: Debian trixie's skopeo 1.18 (bookworm's is
//! built without sigstore), from the tree scripts/setup-test-env.sh makes, signs an image with the private key
//! while pushing it to a real docker-registry, and a `sigstoreSigned` policy holding the public key accepts that
//! image and refuses an unsigned one and one checked against another key.
//! The signature image the library makes (`sign::signature`) is accepted by that policy, and refused under another
//! key's.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, fixtures, run, shared_registry};

/// A directory inside the trixie tree (its skopeo sees only the tree), removed when dropped.
struct InTree {
    tree: PathBuf,
    name: String,
}

impl InTree {
    fn new() -> InTree {
        let tree = PathBuf::from(std::env::var("IMGCRAFT_TRIXIE").expect("IMGCRAFT_TRIXIE: source env.sh"));
        let dir = tempfile::Builder::new().prefix("imgcraft-signing-").tempdir_in(tree.join("tmp")).unwrap();
        let name = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        std::mem::forget(dir);
        InTree { tree, name }
    }

    /// The path on the host of `file` inside this directory.
    fn host(&self, file: &str) -> PathBuf {
        self.tree.join("tmp").join(&self.name).join(file)
    }

    /// The path the tree's skopeo sees.
    fn inside(&self, file: &str) -> String {
        format!("/tmp/{}/{file}", self.name)
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        Command::new("chroot").arg(&self.tree).arg("skopeo").args(args).output().unwrap()
    }
}

impl Drop for InTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.tree.join("tmp").join(&self.name));
    }
}

fn image(dir: &Path, label: &str) -> PathBuf {
    let archive = dir.join(format!("{label}.tar"));
    run(bin()
        .arg(fixtures().join("rootfs-amd64.tar"))
        .args(["--arch", "amd64", "-q", "--label"])
        .arg(format!("test={label}"))
        .arg("-o")
        .arg(format!("oci-archive:{}", archive.display())));
    archive
}

#[test]
fn skopeo_signs_with_a_keygen_key_and_a_policy_with_its_public_key_accepts_only_that_signature() {
    let registry = shared_registry();
    let t = InTree::new();
    std::fs::write(t.host("pass"), "a passphrase\n").unwrap();
    for prefix in ["release", "other"] {
        run(bin().current_dir(t.host("")).args([
            "keygen",
            "--output-prefix",
            prefix,
            "--sign-passphrase-file",
            "pass",
        ]));
    }
    let signed = image(&t.host(""), "signed");
    let unsigned = image(&t.host(""), "unsigned");
    let repo = format!("{registry}/signing/{}", t.name.to_lowercase());
    std::fs::create_dir_all(t.host("registries.d")).unwrap();
    std::fs::write(
        t.host("registries.d/local.yaml"),
        format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let policy = |key: &str| {
        format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{registry}": [{{"type": "sigstoreSigned", "keyPath": "{}"}}]}}, "oci-archive": {{"": [{{"type": "insecureAcceptAnything"}}]}}}}}}"#,
            t.inside(key)
        )
    };
    std::fs::write(t.host("policy.json"), policy("release.pub")).unwrap();
    std::fs::write(t.host("policy-other.json"), policy("other.pub")).unwrap();

    let out = t.skopeo(&[
        "--registries.d",
        &t.inside("registries.d"),
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        &t.inside("release.key"),
        "--sign-passphrase-file",
        &t.inside("pass"),
        &format!("oci-archive:{}", t.inside(signed.file_name().unwrap().to_str().unwrap())),
        &format!("docker://{repo}:signed"),
    ]);
    assert!(out.status.success(), "signing with a keygen key failed: {}", String::from_utf8_lossy(&out.stderr));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci-archive:{}", unsigned.display()))
        .arg(format!("docker://{repo}:unsigned")));

    let verify = |policy: &str, tag: &str| {
        t.skopeo(&[
            "--policy",
            &t.inside(policy),
            "--registries.d",
            &t.inside("registries.d"),
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--remove-signatures",
            &format!("docker://{repo}:{tag}"),
            &format!("oci:{}:{tag}", t.inside("out")),
        ])
    };
    let accepted = verify("policy.json", "signed");
    assert!(accepted.status.success(), "the signed image was refused: {}", String::from_utf8_lossy(&accepted.stderr));
    let unsigned = verify("policy.json", "unsigned");
    assert!(!unsigned.status.success() && String::from_utf8_lossy(&unsigned.stderr).contains("no signature exists"));
    let other = verify("policy-other.json", "signed");
    assert!(
        !other.status.success() && String::from_utf8_lossy(&other.stderr).contains("invalid signature"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn skopeo_accepts_the_signature_image_the_library_makes_for_its_key_only() {
    use imgcraft::blobs::BlobStore;
    use imgcraft::oci::artifact::signature_tag;
    use imgcraft::sign::key::PrivateKey;
    use imgcraft::sign::signature::sign_manifest;

    let registry = shared_registry();
    let t = InTree::new();
    let repo = format!("{registry}/signing/library-{}", t.name.to_lowercase());
    let pushed = common::json(&run(bin()
        .arg(fixtures().join("rootfs-amd64.tar"))
        .args(["--arch", "amd64", "--json", "-o"])
        .arg(format!("docker://{repo}:signed"))));
    let digest: imgcraft::digest::Digest = pushed["manifest_digest"].as_str().unwrap().parse().unwrap();

    // The signature image, as a sink would publish it: here through an OCI layout and skopeo.
    let (key, other) = (PrivateKey::generate(), PrivateKey::generate());
    let layout = t.host("layout");
    let blobs = BlobStore::open(&layout).unwrap();
    let signatures = sign_manifest(&blobs, None, &key, &format!("{repo}:signed"), &digest).unwrap();
    let mut descriptor = serde_json::to_value(&signatures.manifest.as_ref().unwrap().descriptor).unwrap();
    descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "sig"});
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    run(Command::new("skopeo")
        .args(["copy", "-q", "--preserve-digests", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:sig", layout.display()))
        .arg(format!("docker://{repo}:{}", signature_tag(&digest))));

    std::fs::write(t.host("release.pub"), key.public_pem()).unwrap();
    std::fs::write(t.host("other.pub"), other.public_pem()).unwrap();
    std::fs::create_dir_all(t.host("registries.d")).unwrap();
    std::fs::write(
        t.host("registries.d/local.yaml"),
        format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    for (name, key) in [("policy.json", "release.pub"), ("policy-other.json", "other.pub")] {
        let policy = format!(
            r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{registry}": [{{"type": "sigstoreSigned", "keyPath": "{}"}}]}}}}}}"#,
            t.inside(key)
        );
        std::fs::write(t.host(name), policy).unwrap();
    }
    let verify = |policy: &str| {
        t.skopeo(&[
            "--policy",
            &t.inside(policy),
            "--registries.d",
            &t.inside("registries.d"),
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--remove-signatures",
            &format!("docker://{repo}:signed"),
            &format!("oci:{}:signed", t.inside("out")),
        ])
    };
    let accepted = verify("policy.json");
    assert!(accepted.status.success(), "skopeo refused our signature: {}", String::from_utf8_lossy(&accepted.stderr));
    let other = verify("policy-other.json");
    assert!(
        !other.status.success() && String::from_utf8_lossy(&other.stderr).contains("invalid signature"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}
