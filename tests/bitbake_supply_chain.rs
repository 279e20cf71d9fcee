//! meta-imgcraft's supply chain under a real BitBake (tests/bitbake/run.py, as in tests/bitbake.rs): the image's SBOM
//! from create-spdx (stand-ins in tests/bitbake/classes that write what OE-core's create-spdx-2.2 and -3.0 write, where
//! and when they write it), the provenance naming the build, and the signature of do_imgcraft_push, read back from the
//! deployed layout and archive and checked with `rootfs2image verify`.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::bitbake::{Build, PV, inspect};
use common::{bin, fixtures, run, run_failing, shared_registry};

/// A manifest attached to an image, as its layout's (or archive's) index.json lists it.
#[derive(Debug)]
struct Attached {
    artifact_type: String,
    /// Its one layer.
    content: Vec<u8>,
}

/// The OCI layout of an output: the directory itself, or the archive unpacked into `scratch`.
fn layout_of(output: &Path, scratch: &Path) -> PathBuf {
    let output = std::fs::canonicalize(output).unwrap();
    if output.is_dir() {
        return output;
    }
    std::fs::create_dir_all(scratch).unwrap();
    run(Command::new("tar").arg("-xf").arg(&output).arg("-C").arg(scratch));
    scratch.to_owned()
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout.join("blobs").join(digest.replacen(':', "/", 1));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The OCI 1.1 artifacts that index.json lists for `subject`: each names it as its subject and holds one layer.
fn attachments(layout: &Path, subject: &str) -> Vec<Attached> {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut found = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let Some(artifact_type) = entry["artifactType"].as_str() else { continue };
        let manifest: Value = serde_json::from_slice(&blob(layout, entry["digest"].as_str().unwrap())).unwrap();
        if manifest["subject"]["digest"] != subject {
            continue;
        }
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{manifest}");
        let content = blob(layout, layers[0]["digest"].as_str().unwrap());
        found.push(Attached { artifact_type: artifact_type.to_owned(), content });
    }
    found
}

/// The attachments whose artifact type mentions `kind` (`spdx`, `in-toto`).
fn of_kind<'a>(attached: &'a [Attached], kind: &str) -> Vec<&'a Attached> {
    attached.iter().filter(|a| a.artifact_type.contains(kind)).collect()
}

fn manifest_digest(output: &Path) -> String {
    let output = std::fs::canonicalize(output).unwrap();
    let kind = if output.is_dir() { "oci" } else { "oci-archive" };
    inspect(&format!("{kind}:{}", output.display()))["manifest_digest"].as_str().unwrap().to_owned()
}

/// The git revision of the checkout meta-imgcraft is in, the one its provenance dependency must name.
fn layer_revision() -> String {
    let repo = env!("CARGO_MANIFEST_DIR");
    run(Command::new("git").args(["-C", repo, "rev-parse", "HEAD"])).trim().to_owned()
}

#[test]
fn spdx_3_sbom_is_attached_to_the_deployed_image_after_create_spdx_writes_it_and_the_digest_stays() {
    // create-spdx-3.0 writes the SBOM after do_image_complete: do_imgcraft_attach_sbom attaches it to what was
    // deployed, in the archive and in the layout alike.
    let build = Build::new(
        "spdx3",
        "qemux86-64",
        &fixtures().join("rootfs-amd64.tar"),
        &[r#"INHERIT += "create-spdx-3.0""#, r#"IMGCRAFT_OUTPUTS = "archive layout""#, r#"IMGCRAFT_PROVENANCE = "1""#],
    );
    let spdx = std::fs::read(build.linked("spdx.json")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let archive = build.archive();
    let digest = manifest_digest(&archive);
    for (name, output) in [("archive", archive.clone()), ("layout", build.linked("oci"))] {
        assert_eq!(manifest_digest(&output), digest, "{name}");
        let attached = attachments(&layout_of(&output, &scratch.path().join(name)), &digest);
        let sboms = of_kind(&attached, "spdx");
        assert_eq!(sboms.len(), 1, "{name}: {attached:?}");
        assert!(sboms[0].content == spdx, "{name}: the attached SBOM is not the deployed one byte for byte");
    }

    // With the attachments beside it, skopeo reads the image by its name, as the layer's README says: the archive's
    // ref.name is IMGCRAFT_TAG in full, the layout's the tag alone.
    let tag = build.tag.rsplit_once(':').unwrap().1;
    for (name, reference) in [
        ("archive", format!("oci-archive:{}:docker.io/{}", archive.display(), build.tag)),
        ("layout", format!("oci:{}:{tag}", build.linked("oci").display())),
    ] {
        let summary: Value = serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &reference]))).unwrap();
        assert_eq!(summary["Digest"], digest.as_str(), "{name}: {summary}");
    }
    let unnamed = run_failing(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", archive.display())));
    let said = String::from_utf8_lossy(&unnamed.stderr);
    assert!(said.contains("more than one image"), "skopeo without the image's name: {said}");

    // What do_image_imgcraft made, before the SBOM existed: the same image, with its provenance and no SBOM.
    let built = Path::new(build.var("imgdeploydir")).join(std::fs::read_link(&archive).unwrap());
    assert_eq!(manifest_digest(&built), digest, "attaching changed the image's manifest");
    let attached = attachments(&layout_of(&built, &scratch.path().join("built")), &digest);
    assert!(of_kind(&attached, "spdx").is_empty(), "{attached:?}");

    // The provenance names the build: its parameters and the layers' git revisions.
    let provenance = of_kind(&attached, "in-toto");
    assert_eq!(provenance.len(), 1, "{attached:?}");
    let statement: Value = serde_json::from_slice(&provenance[0].content).unwrap();
    assert!(statement["predicateType"].as_str().unwrap().starts_with("https://slsa.dev/provenance/"), "{statement}");
    let build = &statement["predicate"]["buildDefinition"];
    let parameters = &build["externalParameters"]["buildParameters"];
    assert_eq!(parameters["MACHINE"], "qemux86-64", "{statement}");
    assert_eq!(parameters["IMAGE"], "imgcraft-test-image", "{statement}");
    assert_eq!(parameters["TUNE_PKGARCH"], "x86-64-v3", "{statement}");
    assert!(parameters.get("DISTRO").is_none(), "an unset DISTRO is left out: {statement}");
    let revision = layer_revision();
    let layer = build["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"].as_str().is_some_and(|n| n.starts_with("meta-imgcraft")))
        .unwrap_or_else(|| panic!("no meta-imgcraft layer in {statement}"));
    assert_eq!(layer["digest"]["gitCommit"], revision.as_str(), "{statement}");
}

#[test]
fn spdx_2_2_archive_goes_into_the_image_as_it_is_built_and_the_image_is_the_one_without_sboms() {
    // create-spdx-2.2 (scarthgap) writes its .spdx.tar.zst during do_rootfs: do_image_imgcraft attaches it whole, with
    // the SBOM rootfs2image generates beside it.
    let rootfs = fixtures().join("rootfs-amd64.tar");
    let build = Build::new(
        "spdx22",
        "qemux86-64",
        &rootfs,
        &[r#"INHERIT += "create-spdx-2.2""#, r#"IMGCRAFT_SBOM = "create-spdx generate""#],
    );
    let archive = build.archive();
    let digest = manifest_digest(&archive);
    let scratch = tempfile::tempdir().unwrap();
    let attached = attachments(&layout_of(&archive, scratch.path()), &digest);
    let deployed = std::fs::read(build.linked("spdx.tar.zst")).unwrap();
    assert!(attached.iter().any(|a| a.content == deployed), "the .spdx.tar.zst is not attached whole: {attached:?}");
    let generated: Vec<Value> = attached.iter().filter_map(|a| serde_json::from_slice(&a.content).ok()).collect();
    assert!(generated.iter().any(|g| g["spdxVersion"] == "SPDX-2.3"), "no generated SPDX 2.3 SBOM: {attached:?}");
    assert!(of_kind(&attached, "in-toto").is_empty(), "the provenance is attached only when asked for: {attached:?}");

    // Without SBOMs (and the provenance off by default): nothing attached, and the same image.
    let plain = Build::new("plain", "qemux86-64", &rootfs, &[r#"IMGCRAFT_SBOM = """#]);
    let plain_archive = plain.archive();
    assert_eq!(manifest_digest(&plain_archive), digest);
    assert!(attachments(&layout_of(&plain_archive, &scratch.path().join("plain")), &digest).is_empty());
}

#[test]
fn the_push_task_signs_with_the_key_and_carries_the_sbom_and_no_log_holds_the_passphrase() {
    let registry = shared_registry();
    let keys = tempfile::tempdir().unwrap();
    let passphrase = "bitbake-sign-s3cret-passphrase";
    let passphrase_file = keys.path().join("passphrase");
    std::fs::write(&passphrase_file, format!("{passphrase}\n")).unwrap();
    let prefix = keys.path().join("release");
    run(bin().arg("keygen").arg("--output-prefix").arg(&prefix).arg("--sign-passphrase-file").arg(&passphrase_file));
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));

    let destination = format!("docker://{registry}/imgcraft-bitbake-test/signed:{PV}");
    let build = Build::with_task(
        "signed",
        "qemux86-64",
        &fixtures().join("rootfs-amd64.tar"),
        &[
            r#"INHERIT += "create-spdx-3.0""#,
            r#"IMGCRAFT_PROVENANCE = "1""#,
            &format!("IMGCRAFT_PUSH_REF = \"{destination}\""),
            r#"IMGCRAFT_PUSH_ARGS = "--tls-verify=false""#,
            &format!("IMGCRAFT_SIGN_KEY = \"{}\"", key.display()),
            &format!("IMGCRAFT_SIGN_PASSPHRASE_FILE = \"{}\"", passphrase_file.display()),
        ],
        Some("imgcraft_push"),
    );
    let deployed = manifest_digest(&build.archive());
    let verified = run(bin().args(["verify", "--json", "--tls-verify=false", &destination, "--key"]).arg(&public));
    let report: Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["manifest_digest"], deployed.as_str(), "{report}");
    let types: Vec<&str> =
        report["referrers"].as_array().unwrap().iter().filter_map(|r| r["artifact_type"].as_str()).collect();
    assert!(types.iter().any(|t| t.contains("spdx")), "the pushed image carries no SBOM: {report}");
    assert!(types.iter().any(|t| t.contains("in-toto")), "the pushed image carries no provenance: {report}");

    // Another key refuses it: the signature is by this key.
    let other = keys.path().join("other");
    run(bin().arg("keygen").arg("--output-prefix").arg(&other).arg("--sign-passphrase-file").arg(&passphrase_file));
    run_failing(bin().args(["verify", "--tls-verify=false", &destination, "--key"]).arg(other.with_extension("pub")));

    // The passphrase went from its file to rootfs2image and nowhere else.
    let builddir = PathBuf::from(build.var("builddir"));
    let grep = Command::new("grep").args(["-rlF", passphrase]).arg(&builddir).output().unwrap();
    assert!(grep.stdout.is_empty(), "the passphrase is in {}", String::from_utf8_lossy(&grep.stdout));
}

#[test]
fn the_provenance_and_the_signing_key_stay_out_of_task_signatures_while_what_changes_the_image_does_not() {
    // A builder that signs and one without the key share sstate; a commit to a layer or another DISTRO_VERSION reruns
    // no image (the provenance describes the build that made it). What changes the image reruns it, and then the SBOM
    // is attached again.
    let rootfs = fixtures().join("rootfs-amd64.tar");
    let conf = [r#"INHERIT += "create-spdx-3.0""#, r#"IMGCRAFT_PROVENANCE = "1""#];
    let neutral = Build::rebuilt(
        "signatures",
        "qemux86-64",
        &rootfs,
        &conf,
        &[
            r#"IMGCRAFT_PROVENANCE_PARAMS = "MACHINE BUILD_HOST=elsewhere""#,
            r#"DISTRO_VERSION = "9.9""#,
            r#"IMGCRAFT_SIGN_KEY = "/elsewhere/release.key""#,
            r#"IMGCRAFT_SIGN_PASSPHRASE_FILE = "/elsewhere/release.passphrase""#,
        ],
    );
    assert_eq!(neutral.rebuilt_tasks(), Vec::<&str>::new());
    // Turning the provenance off takes it out of the image's attachments: that reruns the image too.
    let changes =
        [r#"IMGCRAFT_CMD = "/bin/true""#, r#"IMGCRAFT_SBOM = "create-spdx generate""#, r#"IMGCRAFT_PROVENANCE = "0""#];
    for line in changes {
        let changed = Build::rebuilt("signatures", "qemux86-64", &rootfs, &conf, &[line]);
        let tasks = changed.rebuilt_tasks();
        for task in ["do_image_imgcraft", "do_imgcraft_attach_sbom"] {
            assert!(tasks.contains(&task), "{line}: {tasks:?}");
        }
    }
}
