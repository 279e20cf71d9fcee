//! Issue 13 end to end, from the user's side: what a conversion attaches (a generated SBOM, the provenance, a
//! signature) travels with the image through `push`, `copy` and `index`, and `verify` finds it again; `attach` adds an
//! SBOM to a layout, an archive and a registry image without changing its digest or losing what was there; archives
//! carrying attachments still load into Docker and podman; the same inputs and key give the same bytes; every bad
//! SBOM or key is refused in one line with nothing written; and generated SBOMs pass the reference validators.
//! tests/signing.rs covers the interplay with skopeo's signature policy, tests/hostile_registry.rs a registry that
//! refuses the artifact. Without the `engine-tests` feature only what needs no registry, engine or validator runs.
#![cfg_attr(not(feature = "engine-tests"), allow(dead_code, unused_imports))]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::{Workspace, assert_refused, fixtures, json, run};

const SPDX_TYPE: &str = "application/spdx+json";
const CYCLONEDX_TYPE: &str = "application/vnd.cyclonedx+json";
const IN_TOTO_TYPE: &str = "application/vnd.in-toto+json";

/// A key pair from `rootfs2image keygen`, sealed under the passphrase in `pass`.
struct Keys {
    key: PathBuf,
    public: PathBuf,
    pass: PathBuf,
}

fn keygen(ws: &Workspace, prefix: &str) -> Keys {
    let pass = ws.write(&format!("{prefix}.pass"), b"correct horse battery\n");
    run(ws.cmd().args(["keygen", "--output-prefix", prefix, "--sign-passphrase-file"]).arg(&pass));
    Keys { key: ws.path(&format!("{prefix}.key")), public: ws.path(&format!("{prefix}.pub")), pass }
}

impl Keys {
    /// `--sign-key` and its passphrase file.
    fn args(&self) -> Vec<String> {
        ["--sign-key", &self.key.display().to_string(), "--sign-passphrase-file", &self.pass.display().to_string()]
            .map(str::to_string)
            .to_vec()
    }
}

/// Converts the fixture `rootfs` (a file under the fixtures, or a path) with `args`; returns the `--json` report.
fn convert(ws: &Workspace, rootfs: &Path, args: &[String]) -> Value {
    json(&run(ws.cmd().arg(rootfs).args(["--json", "-q"]).args(args)))
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

/// `inspect --json` of `reference`.
fn inspect(ws: &Workspace, reference: &str) -> Value {
    json(&run(ws.cmd().args(["inspect", "--json", reference])))
}

/// The manifest digests of attachments as reports list them (inspect's, verify's referrers).
fn digests<'a>(attachments: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    attachments.into_iter().map(|a| a["digest"].as_str().unwrap().to_string()).collect()
}

/// Every attachment a report lists.
fn all(attachments: &Value) -> &[Value] {
    attachments.as_array().unwrap()
}

/// The attachments of `report` with this artifact type.
fn of_type<'a>(attachments: &'a Value, artifact_type: &str) -> Vec<&'a Value> {
    attachments.as_array().unwrap().iter().filter(|a| a["artifact_type"] == artifact_type).collect()
}

/// Where an attachment sits: `referrer`, or its tag (`sha256-<hex>.sig`, `.att`).
fn placements(attachments: &Value) -> BTreeSet<String> {
    attachments
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let placement = a["placement"].as_str().unwrap();
            placement.rsplit_once('.').map_or(placement, |(_, suffix)| suffix).to_string()
        })
        .collect()
}

fn verify(ws: &Workspace, reference: &str, key: &Path) -> Output {
    ws.cmd().args(["verify", "--json", "--key"]).arg(key).arg(reference).output().unwrap()
}

/// `verify --json`, which must have found a valid signature by `key`.
fn verified(ws: &Workspace, reference: &str, key: &Path) -> Value {
    let out = verify(ws, reference, key);
    assert!(out.status.success(), "verify {reference}: {}", String::from_utf8_lossy(&out.stderr));
    let report = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(report["verified"], true, "{report}");
    report
}

/// A repository of the shared registry no other run has used.
#[cfg(feature = "engine-tests")]
fn repository(ws: &Workspace, name: &str) -> String {
    let unique = ws.dir.path().file_name().unwrap().to_string_lossy().to_lowercase().replace('.', "");
    format!("{}/supply-chain/{name}-{unique}", common::shared_registry())
}

/// An SPDX 2.3 document as OE-core writes one for an image (trimmed).
const SPDX: &str = r#"{
  "SPDXID": "SPDXRef-DOCUMENT",
  "creationInfo": {"created": "2026-11-01T00:00:00Z", "creators": ["Tool: OpenEmbedded Core create-spdx.bbclass"]},
  "dataLicense": "CC0-1.0",
  "documentNamespace": "http://spdx.org/spdxdoc/core-image-minimal-qemux86-64-4711",
  "name": "core-image-minimal-qemux86-64",
  "packages": [{"SPDXID": "SPDXRef-Image-core-image-minimal", "downloadLocation": "NOASSERTION", "name": "core-image-minimal"}],
  "spdxVersion": "SPDX-2.3"
}
"#;

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(feature = "engine-tests")]
#[test]
fn a_signed_image_keeps_its_sbom_provenance_and_signature_through_push_and_copy() {
    let ws = Workspace::new();
    let keys = keygen(&ws, "release");
    let repo = repository(&ws, "carried");
    let layout = format!("oci:{}:1", ws.path("layout").display());
    let mut args = strings(&["--arch", "amd64", "--sbom", "generate", "--provenance", "--tag"]);
    args.extend([format!("{repo}:1"), "-o".into(), layout.clone()]);
    args.extend(keys.args());
    let converted = convert(&ws, &fixtures().join("rootfs-amd64.tar"), &args);
    let digest = converted["manifest_digest"].as_str().unwrap();

    let local = inspect(&ws, &layout);
    assert_eq!(local["manifest_digest"], digest);
    let attached = &local["attachments"];
    assert_eq!(of_type(attached, SPDX_TYPE).len(), 1, "{attached}");
    assert_eq!(of_type(attached, IN_TOTO_TYPE).len(), 1, "{attached}");
    assert_eq!(placements(attached), strings(&["att", "referrer", "sig"]).into_iter().collect(), "{attached}");
    // What the conversion reported attaching is what the layout holds (its signature aside, listed as written).
    assert!(digests(all(&converted["attachments"])).is_subset(&digests(all(attached))), "{converted}");

    // `push` carries every attachment along; `verify` finds the signature made for this name, the SBOM and the
    // provenance, and the signed attestation.
    run(ws.cmd().args(["push", &layout, &format!("docker://{repo}:1")]));
    let report = verified(&ws, &format!("docker://{repo}:1"), &keys.public);
    assert_eq!(report["manifest_digest"], digest);
    assert_eq!(report["signatures"][0]["docker_reference"], format!("{repo}:1"), "{report}");
    assert_eq!(report["attestations"][0]["valid"], true, "{report}");
    let referrers = &report["referrers"];
    let artifacts = of_type(attached, SPDX_TYPE).into_iter().chain(of_type(attached, IN_TOTO_TYPE));
    assert_eq!(digests(all(referrers)), digests(artifacts), "{report}");

    // `copy` from the registry into an archive brings back the same attachments, byte for byte (same digests).
    let archive = format!("oci-archive:{}", ws.path("copied.tar").display());
    run(ws.cmd().args(["copy", &format!("docker://{repo}:1"), &archive]));
    let copied = inspect(&ws, &archive);
    assert_eq!(copied["manifest_digest"], digest);
    assert_eq!(digests(all(&copied["attachments"])), digests(all(attached)), "{copied}");
    verified(&ws, &archive, &keys.public);
}

#[cfg(feature = "engine-tests")]
#[test]
fn an_index_is_signed_with_each_of_its_images_and_each_image_keeps_its_sbom() {
    let ws = Workspace::new();
    let keys = keygen(&ws, "release");
    let repo = repository(&ws, "index");
    let mut sboms = BTreeSet::new();
    let mut sources = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layout = format!("oci:{}:1", ws.path(arch).display());
        let rootfs = fixtures().join(format!("rootfs-{arch}.tar"));
        convert(&ws, &rootfs, &strings(&["--arch", arch, "--sbom", "generate", "-o", &layout]));
        let sbom = of_type(&inspect(&ws, &layout)["attachments"], SPDX_TYPE)[0]["digest"].as_str().unwrap().to_string();
        sboms.insert(sbom);
        sources.push(layout);
    }
    let mut command = ws.cmd();
    command.args(["index", "--json"]).args(&sources).arg("-o").arg(format!("docker://{repo}:multi")).args(keys.args());
    let index = json(&run(&mut command));

    let top = verified(&ws, &format!("docker://{repo}:multi"), &keys.public);
    assert_eq!(top["manifest_digest"], index["index_digest"], "{top}");
    let mut found = BTreeSet::new();
    for child in index["manifests"].as_array().unwrap() {
        let child_ref = format!("docker://{repo}@{}", child["digest"].as_str().unwrap());
        let report = verified(&ws, &child_ref, &keys.public);
        let listed = of_type(&report["referrers"], SPDX_TYPE);
        assert_eq!(listed.len(), 1, "{child_ref}: {report}");
        found.insert(listed[0]["digest"].as_str().unwrap().to_string());
        // inspect lists the same SBOM, after reading every blob of the image and its attachments.
        let inspected = inspect(&ws, &child_ref);
        assert_eq!(digests(of_type(&inspected["attachments"], SPDX_TYPE)), digests(listed), "{inspected}");
    }
    assert_eq!(found, sboms);
}

#[cfg(feature = "engine-tests")]
#[test]
fn attach_adds_an_sbom_beside_what_was_attached_and_never_changes_the_digest() {
    let ws = Workspace::new();
    let repo = repository(&ws, "attach");
    let sbom = ws.write("core-image-minimal.rootfs.spdx.json", SPDX.as_bytes());
    let destinations = [
        format!("oci:{}:1", ws.path("layout").display()),
        format!("oci-archive:{}", ws.path("image.tar").display()),
        format!("docker://{repo}:1"),
    ];
    let mut args = strings(&["--arch", "amd64", "--provenance", "--tag", "imgcraft-test/attach:1"]);
    for destination in &destinations {
        args.extend(["-o".to_string(), destination.clone()]);
    }
    let digest = convert(&ws, &fixtures().join("rootfs-amd64.tar"), &args)["manifest_digest"].clone();
    for destination in &destinations {
        let before = inspect(&ws, destination);
        assert_eq!(before["manifest_digest"], digest, "{destination}");
        assert_eq!(of_type(&before["attachments"], IN_TOTO_TYPE).len(), 1, "{destination}: {before}");
        let attach = || {
            let report = json(&run(ws.cmd().args(["attach", "--json", destination, "--sbom"]).arg(&sbom)));
            assert_eq!(report["manifest_digest"], digest, "{destination}: {report}");
            let after = inspect(&ws, destination);
            assert_eq!(after["manifest_digest"], digest, "{destination}");
            assert_eq!(digests(all(&after["attachments"])), digests(all(&report["attachments"])), "{destination}");
            after
        };
        let after = attach();
        let added: Vec<&Value> = of_type(&after["attachments"], SPDX_TYPE);
        assert_eq!(added.len(), 1, "{destination}: {after}");
        assert_eq!(added[0]["layers"][0]["digest"].as_str().unwrap(), sha256(SPDX.as_bytes()));
        assert_eq!(added[0]["layers"][0]["title"], "core-image-minimal.rootfs.spdx.json");
        assert!(digests(all(&before["attachments"])).is_subset(&digests(all(&after["attachments"]))), "{destination}");
        assert_eq!(
            digests(all(&after["attachments"])).len(),
            digests(all(&before["attachments"])).len() + 1,
            "{destination}"
        );
        // The same SBOM again: listed once.
        let again = attach();
        assert_eq!(digests(all(&again["attachments"])), digests(all(&after["attachments"])), "{destination}: {again}");
    }
    // The archive is still one image that skopeo reads by the name it was given.
    let inspected = json(&run(Command::new("skopeo")
        .args(["inspect"])
        .arg(format!("oci-archive:{}:docker.io/imgcraft-test/attach:1", ws.path("image.tar").display()))));
    assert_eq!(inspected["Digest"], digest);
}

#[cfg(feature = "engine-tests")]
#[test]
fn archives_carrying_attachments_load_and_run_in_docker_and_podman() {
    use common::Engine;

    let ws = Workspace::new();
    let keys = keygen(&ws, "release");
    let sbom = ws.write("image.spdx.json", SPDX.as_bytes());
    let tag = "imgcraft-test/supply-chain:1";
    let oci = ws.path("o.tar");
    let mut args = strings(&["--arch", "amd64", "--provenance", "--sbom", "generate", "--tag", tag, "--sbom"]);
    args.push(sbom.display().to_string());
    args.extend(["-o".into(), format!("oci-archive:{}", oci.display())]);
    args.extend(["-o".into(), format!("docker-archive:{}", ws.path("d.tar").display())]);
    args.extend(keys.args());
    let digest = convert(&ws, &fixtures().join("rootfs-amd64.tar"), &args)["manifest_digest"].clone();
    for archive in ["o.tar", "d.tar"] {
        let reference = format!(
            "{}:{}",
            if archive == "o.tar" { "oci-archive" } else { "docker-archive" },
            ws.path(archive).display()
        );
        assert_eq!(of_type(&inspect(&ws, &reference)["attachments"], SPDX_TYPE).len(), 2, "{reference}");
        for engine in [Engine::Docker, Engine::Podman] {
            let loaded = engine.load(&ws.path(archive));
            let name = engine.name(tag);
            assert!(loaded.contains(&name), "{engine:?} {archive}: {loaded}");
            assert_eq!(engine.script(&name, "echo loaded; uname -m"), "loaded\nx86_64\n", "{engine:?} {archive}");
            engine.remove(&name);
        }
    }
    let inspected =
        json(&run(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}:docker.io/{tag}", oci.display()))));
    assert_eq!(inspected["Digest"], digest);
}

#[test]
fn the_same_inputs_and_key_give_byte_identical_attachments_and_signatures() {
    let ws = Workspace::new();
    let keys = keygen(&ws, "release");
    let sbom = ws.write("image.spdx.json", SPDX.as_bytes());
    let index = |name: &str, threads: &[&str]| {
        let mut args =
            strings(&["--arch", "amd64", "--sbom", "generate", "--provenance", "--tag", "registry.example.com/app:1"]);
        args.extend(["--sbom".to_string(), sbom.display().to_string(), "-o".into()]);
        args.push(format!("oci:{}:1", ws.path(name).display()));
        args.extend(strings(threads));
        args.extend(keys.args());
        convert(&ws, &fixtures().join("rootfs-amd64.tar"), &args);
        std::fs::read(ws.path(name).join("index.json")).unwrap()
    };
    let first = index("a", &[]);
    let second = index("b", &[]);
    let one_thread = index("c", &["--threads", "1"]);
    let listed = json(&String::from_utf8(first.clone()).unwrap());
    // The image, two SBOMs, the provenance, its signed attestation and the signature: all of them compared.
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 6, "{listed}");
    assert_eq!(String::from_utf8(second).unwrap(), String::from_utf8(first.clone()).unwrap());
    assert_eq!(String::from_utf8(one_thread).unwrap(), String::from_utf8(first).unwrap());
}

/// A workspace with an existing layout (`existing`, tag 1) that refused runs must leave as it was.
fn with_existing_layout() -> Workspace {
    let ws = Workspace::new();
    convert(&ws, &fixtures().join("rootfs-amd64.tar"), &strings(&["--arch", "amd64", "-o", "oci:existing:1"]));
    ws
}

/// Converts with `args`, to a new layout and into the existing one, and asserts both runs are refused in one line
/// naming each of `words`, with neither destination changed.
fn assert_conversion_refused(ws: &Workspace, args: &[String], words: &[&str], env: &[(&str, Option<&str>)]) -> String {
    let mut line = String::new();
    for output in ["oci:new:1", "oci:existing:2"] {
        line = assert_refused(&[&ws.path("new"), &ws.path("existing")], words, || {
            let mut command = ws.cmd();
            command.arg(fixtures().join("rootfs-amd64.tar")).args(["--arch", "amd64", "-q", "-o", output]).args(args);
            for (name, value) in env {
                match value {
                    Some(value) => command.env(name, value),
                    None => command.env_remove(name),
                };
            }
            command.output().unwrap()
        });
    }
    assert!(!ws.listing().iter().any(|n| n.starts_with(".rootfs2image-")), "left behind: {:?}", ws.listing());
    line
}

#[test]
fn sboms_that_are_not_sboms_are_refused_in_one_line_naming_the_file() {
    let ws = with_existing_layout();
    let text = ws.write("notes.txt", b"this is the release's SBOM, honest\n");
    let broken = ws.write("broken.spdx.json", br#"{"spdxVersion": "SPDX-2.3", "name": "#);
    let other = ws.write("package.json", br#"{"name": "left-pad", "version": "1.3.0"}"#);
    let members = common::tar::archive(&[common::tar::Entry::file("README", b"not an SPDX document\n")]);
    let archive = ws.write("image.spdx.tar.zst", &zstd::encode_all(&members[..], 3).unwrap());
    for file in [&text, &broken, &other, &archive, &ws.path("missing.spdx.json")] {
        let shown = file.display().to_string();
        assert_conversion_refused(&ws, &strings(&["--sbom", &shown]), &[&shown], &[]);
    }
}

#[test]
fn keys_that_do_not_open_are_refused_before_any_work_without_the_passphrase() {
    let ws = with_existing_layout();
    let keys = keygen(&ws, "release");
    let not_a_key = ws.write("release.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let shown = not_a_key.display().to_string();
    assert_conversion_refused(
        &ws,
        &strings(&["--tag", "registry.example.com/app:1", "--sign-key", &shown]),
        &[&shown],
        &[],
    );

    let key = keys.key.display().to_string();
    let wrong = "Tr0ub4dor&3-wrong";
    let wrong_file = ws.write("wrong.pass", format!("{wrong}\n").as_bytes());
    let args = strings(&["--tag", "registry.example.com/app:1", "--sign-key", &key, "--sign-passphrase-file"]);
    for (args, env) in
        [([args.clone(), vec![wrong_file.display().to_string()]].concat(), None), (args[..4].to_vec(), Some(wrong))]
    {
        let line = assert_conversion_refused(&ws, &args, &[&key, "passphrase"], &[("IMGCRAFT_SIGN_PASSPHRASE", env)]);
        assert!(!line.contains(wrong), "the passphrase is shown: {line}");
    }
    assert_conversion_refused(
        &ws,
        &args[..4],
        &[&key, "passphrase", "IMGCRAFT_SIGN_PASSPHRASE"],
        &[("IMGCRAFT_SIGN_PASSPHRASE", None)],
    );
}

#[test]
fn signing_a_layout_without_a_name_asks_for_one_and_verify_refuses_an_unsigned_image() {
    let ws = with_existing_layout();
    let keys = keygen(&ws, "release");
    let mut args = strings(&["--sbom", "generate"]);
    args.extend(keys.args());
    assert_conversion_refused(&ws, &args, &["--tag"], &[]);

    let public = keys.public.display().to_string();
    assert_refused(&[&ws.path("existing")], &["oci:existing:1", "no valid signature", &public], || {
        ws.cmd().args(["verify", "oci:existing:1", "--key", &public]).output().unwrap()
    });
}

/// The attached SBOM of `artifact_type` in the layout at `dir` (tag 1), read back through inspect's digests.
fn attached_sbom(ws: &Workspace, dir: &Path, artifact_type: &str) -> Vec<u8> {
    let report = inspect(ws, &format!("oci:{}:1", dir.display()));
    let artifact = of_type(&report["attachments"], artifact_type);
    assert_eq!(artifact.len(), 1, "{report}");
    let blob = artifact[0]["layers"][0]["digest"].as_str().unwrap();
    std::fs::read(dir.join("blobs/sha256").join(blob.trim_start_matches("sha256:"))).unwrap()
}

#[cfg(feature = "engine-tests")]
#[test]
fn generated_sboms_of_a_dpkg_rootfs_pass_the_spdx_and_cyclonedx_validators() {
    let ws = Workspace::new();
    let tree = common::packages().join("dpkg/v1");
    let owners_tsv = std::fs::read_to_string(common::packages().join("dpkg/v1.owners.tsv")).unwrap();
    for format in ["spdx", "cyclonedx"] {
        let layout = ws.path(format);
        let args = strings(&["--arch", "amd64", "--sbom", "generate", "--sbom-format", format, "--tag", "app:1", "-o"]);
        convert(&ws, &tree, &[args, vec![format!("oci:{}:1", layout.display())]].concat());
    }
    let spdx = attached_sbom(&ws, &ws.path("spdx"), SPDX_TYPE);
    let file = ws.write("sbom.spdx.json", &spdx);
    let out = Command::new("pyspdxtools").arg("-i").arg(&file).output().expect("pyspdxtools (pip install spdx-tools)");
    assert!(
        out.status.success(),
        "pyspdxtools: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let document = json(&String::from_utf8(spdx).unwrap());
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    // Every package of the dpkg database is in it, with its version and package URL, and a file with its sha256.
    let owners: BTreeSet<&str> = owners_tsv.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    let packages = all(&document["packages"]);
    let named: BTreeSet<&str> = packages
        .iter()
        .filter(|p| p["versionInfo"].is_string() && p["externalRefs"][0]["referenceLocator"].is_string())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(owners.is_subset(&named), "{owners:?} not all in {named:?}");
    let hello = all(&document["files"]).iter().find(|f| f["fileName"] == "./usr/bin/hello").expect("usr/bin/hello");
    let checksum =
        all(&hello["checksums"]).iter().find(|c| c["algorithm"] == "SHA256").unwrap()["checksumValue"].clone();
    assert_eq!(
        format!("sha256:{}", checksum.as_str().unwrap()),
        sha256(&std::fs::read(tree.join("usr/bin/hello")).unwrap())
    );

    let cyclonedx = attached_sbom(&ws, &ws.path("cyclonedx"), CYCLONEDX_TYPE);
    let file = ws.write("sbom.cdx.json", &cyclonedx);
    let script = "import sys\n\
                  from cyclonedx.schema import SchemaVersion\n\
                  from cyclonedx.validation.json import JsonStrictValidator\n\
                  error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
                  sys.exit(str(error) if error else 0)\n";
    let out = Command::new("python3").args(["-c", script]).arg(&file).output().unwrap();
    assert!(out.status.success(), "cyclonedx validator: {}", String::from_utf8_lossy(&out.stderr));
    let bom = json(&String::from_utf8(cyclonedx).unwrap());
    assert_eq!(bom["specVersion"], "1.6");
    let components: BTreeSet<&str> = all(&bom["components"])
        .iter()
        .filter(|c| c["purl"].as_str().is_some_and(|purl| purl.starts_with("pkg:deb/debian/")))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(owners.is_subset(&components), "{owners:?} not all in {components:?}");
}
