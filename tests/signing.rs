//! Keys made by `rootfs2image keygen` work with the real signing tools: Debian trixie's skopeo 1.18 (bookworm's is
//! built without sigstore), from the tree scripts/setup-test-env.sh makes, signs an image with the private key
//! while pushing it to a real docker-registry, and a `sigstoreSigned` policy holding the public key accepts that
//! image and refuses an unsigned one and one checked against another key.
//! The signature image the library makes (`sign::signature`) is accepted by that policy, and refused under another
//! key's. `rootfs2image verify` accepts skopeo's signature. An image rootfs2image signs while pushing it, with its SBOM
//! and provenance attached, is accepted by skopeo and by `verify`; an unsigned one, another key's and a tag moved to
//! another manifest are refused by both.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::trixie::InTree;
use common::{bin, fixtures, run, shared_registry};

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

    // rootfs2image verify reads skopeo's signature as skopeo does.
    let report = common::json(&run(bin()
        .args(["verify", "--json", "--key"])
        .arg(t.host("release.pub"))
        .arg(format!("docker://{repo}:signed"))));
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["signatures"][0]["docker_reference"], format!("{repo}:signed"));
    common::assert_refused(&[], &["no valid signature", "other.pub"], || {
        bin()
            .args(["verify", "--key"])
            .arg(t.host("other.pub"))
            .arg(format!("docker://{repo}:signed"))
            .output()
            .unwrap()
    });
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

#[test]
fn what_rootfs2image_signs_while_pushing_is_accepted_by_skopeo_and_verify_and_nothing_else_is() {
    let registry = shared_registry();
    let t = InTree::new();
    std::fs::write(t.host("pass"), "correct horse\n").unwrap();
    for prefix in ["release", "other"] {
        run(bin().current_dir(t.host("")).args([
            "keygen",
            "--output-prefix",
            prefix,
            "--sign-passphrase-file",
            "pass",
        ]));
    }
    t.trust(&registry, &["release.pub", "other.pub"]);
    let sbom = t.host("core-image-minimal.rootfs.spdx.json");
    std::fs::write(&sbom, SPDX).unwrap();
    let repo = format!("{registry}/signing/cli-{}", t.name.to_lowercase());
    let convert = |label: &str, destination: &str, signed: bool| {
        let mut command = bin();
        command.arg(fixtures().join("rootfs-amd64.tar")).args(["--arch", "amd64", "--json", "--label"]);
        command.arg(format!("test={label}")).arg("-o").arg(destination);
        if signed {
            command.arg("--sbom").arg(&sbom).args(["--provenance-param", "MACHINE=qemux86-64", "--sign-key"]);
            command.arg(t.host("release.key")).arg("--sign-passphrase-file").arg(t.host("pass"));
        }
        common::json(&run(&mut command))["manifest_digest"].as_str().unwrap().to_string()
    };
    let digest = convert("signed", &format!("docker://{repo}:signed"), true);
    // Attaching changes nothing in the image itself.
    let plain = convert("signed", &format!("oci-archive:{}", t.host("plain.tar").display()), false);
    assert_eq!(digest, plain);
    convert("unsigned", &format!("docker://{repo}:unsigned"), false);

    let pulled = |key: &str, tag: &str| t.pull_verified(key, &format!("docker://{repo}:{tag}"));
    let accepted = pulled("release.pub", "signed");
    assert!(accepted.status.success(), "skopeo refused: {}", String::from_utf8_lossy(&accepted.stderr));
    let unsigned = pulled("release.pub", "unsigned");
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("no signature exists"), "{unsigned:?}");
    let other = pulled("other.pub", "signed");
    assert!(String::from_utf8_lossy(&other.stderr).contains("invalid signature"), "{other:?}");

    let verify = |key: &str, tag: &str| {
        bin()
            .args(["verify", "--json", "--key"])
            .arg(t.host(key))
            .arg(format!("docker://{repo}:{tag}"))
            .output()
            .unwrap()
    };
    let report = common::json(&String::from_utf8(verify("release.pub", "signed").stdout).unwrap());
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["manifest_digest"], digest.as_str());
    assert_eq!(report["signatures"][0]["docker_reference"], format!("{repo}:signed"));
    assert_eq!(report["attestations"][0]["valid"], true, "{report}");
    assert_eq!(report["attestations"][0]["predicate_type"], "https://slsa.dev/provenance/v1");
    let types: Vec<&str> =
        report["referrers"].as_array().unwrap().iter().map(|r| r["artifact_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["application/spdx+json", "application/vnd.in-toto+json"], "{report}");
    for (key, tag) in [("other.pub", "signed"), ("release.pub", "unsigned")] {
        let out = verify(key, tag);
        assert_eq!(out.status.code(), Some(1), "verify {tag} with {key}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no valid signature"));
    }

    // distribution 2.8 has no referrers API: the fallback tag's index lists the SBOM and the provenance, and the SBOM
    // comes back byte for byte.
    let hex = digest.trim_start_matches("sha256:");
    let listed = common::json(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}:sha256-{hex}"))));
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["manifests"][0]["artifactType"], "application/spdx+json");
    let sbom_blob = report["referrers"][0]["layers"][0]["digest"].as_str().unwrap();
    let fetched = run(Command::new("curl")
        .args(["-sf"])
        .arg(format!("http://{registry}/v2/{}/blobs/{sbom_blob}", repo.split_once('/').unwrap().1)));
    assert_eq!(fetched.as_bytes(), SPDX.as_bytes());

    // The tag moved to another manifest: its signature does not follow.
    convert("moved", &format!("docker://{repo}:signed"), false);
    let moved = pulled("release.pub", "signed");
    assert!(String::from_utf8_lossy(&moved.stderr).contains("no signature exists"), "{moved:?}");
    assert_eq!(verify("release.pub", "signed").status.code(), Some(1));
}

/// An SPDX 2.3 document as OE-core writes one for an image (trimmed).
const SPDX: &str = r#"{
  "SPDXID": "SPDXRef-DOCUMENT",
  "creationInfo": {"created": "2026-11-01T00:00:00Z", "creators": ["Tool: OpenEmbedded Core create-spdx.bbclass"]},
  "dataLicense": "CC0-1.0",
  "documentNamespace": "http://spdx.org/spdxdoc/core-image-minimal-qemux86-64-0123",
  "name": "core-image-minimal-qemux86-64",
  "packages": [{"SPDXID": "SPDXRef-Image-core-image-minimal", "downloadLocation": "NOASSERTION", "name": "core-image-minimal"}],
  "spdxVersion": "SPDX-2.3"
}
"#;

#[test]
fn an_index_pushed_with_a_key_is_signed_with_each_of_its_images() {
    let registry = shared_registry();
    let t = InTree::new();
    std::fs::write(t.host("pass"), "an index passphrase\n").unwrap();
    run(bin().current_dir(t.host("")).args(["keygen", "--output-prefix", "release", "--sign-passphrase-file", "pass"]));
    t.trust(&registry, &["release.pub"]);
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let archive = t.host(&format!("{arch}.tar"));
        let report = common::json(&run(bin()
            .arg(fixtures().join("rootfs-amd64.tar"))
            .args(["--arch", arch, "--no-arch-check", "--sbom", "generate", "--json", "-o"])
            .arg(format!("oci-archive:{}", archive.display()))));
        children.push(report["manifest_digest"].as_str().unwrap().to_string());
    }
    let repo = format!("{registry}/signing/index-{}", t.name.to_lowercase());
    let index = common::json(&run(bin()
        .args(["index", "--json", "--sign-key"])
        .arg(t.host("release.key"))
        .arg("--sign-passphrase-file")
        .arg(t.host("pass"))
        .arg(format!("oci-archive:{}", t.host("amd64.tar").display()))
        .arg(format!("oci-archive:{}", t.host("arm64.tar").display()))
        .arg("-o")
        .arg(format!("docker://{repo}:1"))));
    let verify = |reference: &str| {
        common::json(&run(bin().args(["verify", "--json", "--key"]).arg(t.host("release.pub")).arg(reference)))
    };
    let top = verify(&format!("docker://{repo}:1"));
    assert_eq!(top["verified"], true, "{top}");
    assert_eq!(top["manifest_digest"], index["index_digest"]);
    for child in &children {
        let report = verify(&format!("docker://{repo}@{child}"));
        assert_eq!(report["verified"], true, "{report}");
        assert_eq!(report["signatures"][0]["docker_reference"], format!("{repo}:1"));
        // Each image's generated SBOM came along into the index's repository.
        assert_eq!(report["referrers"][0]["artifact_type"], "application/spdx+json", "{report}");
    }
    let pulled = t.pull_verified("release.pub", &format!("docker://{repo}:1"));
    assert!(pulled.status.success(), "skopeo refused the signed index: {}", String::from_utf8_lossy(&pulled.stderr));
}
