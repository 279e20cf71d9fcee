//! zstd:chunked layers (issue 14) with real clients: v1 and v2 of the dpkg fixture (v2 with one file of libc6
//! changed) pushed to a docker-registry, pulled by podman with partial pulls enabled (Debian bookworm's 4.3 from the
//! host, trixie's 5.x from the tree tests/common/trixie.rs names), the bytes of every blob request counted in the
//! registry's access log: v2 costs the TOC (and, for 5.x, the tar-split) of libc6's layer and the frames of the one
//! changed file, as `diff` predicts, where a plain zstd image costs the whole layer; the container sees the change.
//! Also: thread counts never change the bytes, both annotation sets survive every sink, `--base` and `--previous`,
//! and a name JSON cannot hold is refused in one line.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::layered::{Built, args, build};
use common::partial_pull::{PartialPodman, Podman, tail};
use common::{RegistryConfig, TestRegistry, Workspace, assert_refused, bin, fixtures, json, packages, run};

/// The file v2 changes: a configuration file of libc6, whose layer is the fixture's largest.
const CHANGED: &str = "usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules-extra.conf";
const CHANGE: &str = "# imgcraft v2\n";

/// Annotations every zstd:chunked layer carries: 1.43's pair (bookworm's podman) and 1.44+'s three.
const TOC_ANNOTATIONS: [&str; 5] = [
    "io.containers.zstd-chunked.manifest-checksum",
    "io.containers.zstd-chunked.manifest-position",
    "io.github.containers.zstd-chunked.manifest-checksum",
    "io.github.containers.zstd-chunked.manifest-position",
    "io.github.containers.zstd-chunked.tarsplit-position",
];

/// v1 (the dpkg fixture) and v2 (a copy with [`CHANGED`] appended to), as rootfs directories.
struct Versions {
    work: Workspace,
}

impl Versions {
    fn new() -> Versions {
        let work = Workspace::new();
        run(Command::new("cp").arg("-a").arg(packages().join("dpkg/v1")).arg(work.path("v2")));
        let changed = work.path("v2").join(CHANGED);
        let mut text = std::fs::read_to_string(&changed).unwrap();
        text.push_str(CHANGE);
        std::fs::write(&changed, text).unwrap();
        Versions { work }
    }

    fn tree(&self, version: &str) -> PathBuf {
        match version {
            "v1" => packages().join("dpkg/v1"),
            _ => self.work.path("v2"),
        }
    }

    /// `version` built with `--layers packages` and `compression` into a layout of its own.
    fn build(&self, version: &str, compression: &str, extra: &[&str]) -> Built {
        let mut options =
            args(&["--layers", "packages", "--compression", compression, "--source-date-epoch", "1700000000"]);
        options.extend(args(extra));
        build(&self.tree(version), &options)
    }
}

/// The annotations of each layer of `built`'s manifest.
fn layer_annotations(manifest: &serde_json::Value) -> Vec<serde_json::Value> {
    manifest["layers"].as_array().unwrap().iter().map(|l| l["annotations"].clone()).collect()
}

fn assert_chunked(manifest: &serde_json::Value) {
    for (layer, annotations) in manifest["layers"].as_array().unwrap().iter().zip(layer_annotations(manifest)) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd", "{manifest}");
        for key in TOC_ANNOTATIONS {
            assert!(annotations[key].is_string(), "layer without {key}: {manifest}");
        }
    }
}

/// What one podman pulling v1 then v2 of `repository` fetched: blob bytes and requests of each pull, and v2's
/// debug log.
struct Pulls {
    v1: (u64, usize),
    v2: (u64, usize),
    v2_log: String,
}

fn pull_both(podman: &PartialPodman, registry: &TestRegistry, repository: &str) -> Pulls {
    let image = |version: &str| format!("{}/{repository}:{version}", registry.addr);
    let mark = registry.log_lines();
    podman.pull(&image("v1"));
    let v1 = registry.blob_bytes_since(mark);
    let mark = registry.log_lines();
    let v2_log = podman.pull(&image("v2"));
    Pulls { v1, v2: registry.blob_bytes_since(mark), v2_log }
}

/// v1 and v2 built with `compression`, pushed to `registry` as `repository:v1` and `:v2`.
fn push_both(versions: &Versions, registry: &TestRegistry, compression: &str, repository: &str) -> (Built, Built) {
    let (v1, v2) = (versions.build("v1", compression, &[]), versions.build("v2", compression, &[]));
    for (built, tag) in [(&v1, "v1"), (&v2, "v2")] {
        run(bin().args(["push", &built.reference(), &format!("docker://{}/{repository}:{tag}", registry.addr)]));
    }
    (v1, v2)
}

/// The whole check with one podman: its v2 pull is partial, costs what `diff` says (less the tar-split when the
/// client does not fetch it) and a small part of what the plain zstd image costs it, and runs with the change.
fn fetches_only_the_changed_file(podman: Podman, port: u16, fetches_tar_split: bool) {
    let registry = TestRegistry::start(RegistryConfig { port: Some(port), ..RegistryConfig::default() });
    let versions = Versions::new();
    let (v1, v2) = push_both(&versions, &registry, "zstd:chunked", "chunked");
    assert_chunked(&v2.manifest());
    push_both(&versions, &registry, "zstd", "plain");
    let diff = json(&run(bin().args(["diff", "--json", &v1.reference(), &v2.reference()])));
    let new_layers = diff["new_layers"].as_array().unwrap();
    assert_eq!(new_layers.len(), 1, "only libc6's layer changes: {diff}");
    assert_eq!(new_layers[0]["packages"], serde_json::json!(["libc6"]), "{diff}");
    let changed_layer = new_layers[0]["digest"].as_str().unwrap();

    let chunked_podman = PartialPodman::new(podman.clone());
    let chunked = pull_both(&chunked_podman, &registry, "chunked");
    assert!(
        chunked.v2_log.contains(&format!("Retrieved partial blob {changed_layer}")),
        "podman did not pull {changed_layer} partially:\n{}",
        tail(&chunked.v2_log)
    );
    let plain_podman = PartialPodman::new(podman);
    let plain = pull_both(&plain_podman, &registry, "plain");

    // What the client fetched for v2's blobs: the config, then the TOC (and tar-split) and the changed file.
    let config = v2.manifest()["config"]["size"].as_u64().unwrap();
    let fetched = chunked.v2.0 - config;
    let layer =
        v2.manifest()["layers"].as_array().unwrap().iter().find(|l| l["digest"] == changed_layer).unwrap().clone();
    let tar_split: u64 = layer["annotations"]["io.github.containers.zstd-chunked.tarsplit-position"]
        .as_str()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let predicted = diff["partial_download_bytes"].as_u64().unwrap() - if fetches_tar_split { 0 } else { tar_split };
    // Tolerance: a multi-range answer's part headers (about 90 bytes a part), and gaps a client merges ranges over.
    let tolerance = 2048 + predicted / 50;
    assert!(
        fetched.abs_diff(predicted) <= tolerance,
        "podman fetched {fetched} bytes of layer blobs for v2, diff predicted {predicted} (± {tolerance}): {diff}"
    );
    let image_bytes = diff["total_bytes"].as_u64().unwrap();
    assert!(fetched * 20 < image_bytes, "v2 cost {fetched} bytes of a {image_bytes}-byte image");
    assert!(
        chunked.v2.0 * 10 < plain.v2.0,
        "zstd:chunked v2 cost {} bytes, plain zstd v2 {}: no partial pull?",
        chunked.v2.0,
        plain.v2.0
    );
    // v1 came through the TOCs too: a range request per layer for the TOC, then the files.
    assert!(chunked.v1.1 >= 2 * v1.manifest()["layers"].as_array().unwrap().len(), "v1 requests: {:?}", chunked.v1);
    eprintln!(
        "v1 {} bytes in {} requests; v2 {} bytes in {} requests (diff predicted {predicted} + config {config}); \
         plain zstd v2 {} bytes",
        chunked.v1.0, chunked.v1.1, chunked.v2.0, chunked.v2.1, plain.v2.0
    );

    let image = format!("{}/chunked:v2", registry.addr);
    let seen =
        chunked_podman.run(&image, &["/bin/busybox", "tail", "-c", &CHANGE.len().to_string(), &format!("/{CHANGED}")]);
    assert_eq!(seen, CHANGE);
    // Files taken from v1 and fetched for v2 keep the image's owners and times.
    let stat = chunked_podman
        .run(&image, &["/bin/busybox", "stat", "-c", "%Y %u %a", "/usr/bin/hello", &format!("/{CHANGED}")]);
    assert_eq!(stat, "1700000000 0 755\n1700000000 0 644\n");
}

#[test]
fn bookworm_podman_fetches_only_the_changed_file_as_diff_predicts() {
    fetches_only_the_changed_file(Podman::Host, 5140, false);
}

#[test]
fn trixie_podman_5_fetches_only_the_changed_file_as_diff_predicts() {
    let tree = PathBuf::from(std::env::var("IMGCRAFT_TRIXIE").expect("IMGCRAFT_TRIXIE: source env.sh"));
    assert!(
        tree.join("usr/bin/podman").is_file(),
        "no podman in {}: scripts/setup-trixie-tools.sh installs it",
        tree.display()
    );
    fetches_only_the_changed_file(Podman::Chroot(tree), 5141, true);
}

#[test]
fn any_thread_count_gives_the_same_bytes_which_every_reader_verifies() {
    let versions = Versions::new();
    let one = versions.build("v1", "zstd:chunked", &["--threads", "1"]);
    let two = versions.build("v1", "zstd:chunked", &["--threads", "2"]);
    assert_eq!(one.report["manifest_digest"], two.report["manifest_digest"]);
    assert_chunked(&one.manifest());
    // inspect decompresses every layer as plain zstd and checks its diff_id against the config.
    run(bin().args(["inspect", &one.reference()]));
    run(Command::new("skopeo").args(["inspect", &format!("oci:{}:img", one.layout().display())]));
}

#[test]
fn every_sink_base_and_previous_keep_the_table_of_contents() {
    let registry = TestRegistry::start(RegistryConfig { port: Some(5142), ..RegistryConfig::default() });
    let versions = Versions::new();
    let work = &versions.work;
    let v1 = versions.build("v1", "zstd:chunked", &[]);
    // Written straight to the registry and an archive, then copied from the registry to a layout and pushed on.
    let pushed = format!("docker://{}/direct:v1", registry.addr);
    let out = json(&run(bin().current_dir(work.dir.path()).args([
        versions.tree("v1").to_str().unwrap(),
        "--layers",
        "packages",
        "--compression",
        "zstd:chunked",
        "--source-date-epoch",
        "1700000000",
        "--json",
        "-o",
        &pushed,
        "-o",
        "oci-archive:v1.tar",
    ])));
    assert_eq!(out["manifest_digest"], v1.report["manifest_digest"]);
    run(bin().current_dir(work.dir.path()).args(["copy", &pushed, "oci:copied:v1"]));
    run(bin().current_dir(work.dir.path()).args([
        "push",
        "oci-archive:v1.tar",
        &format!("docker://{}/again:v1", registry.addr),
    ]));
    let copied = json(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:v1", work.path("copied").display()),
    ])));
    assert_eq!(copied, v1.manifest());
    let again = json(&run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/again:v1", registry.addr),
    ])));
    assert_eq!(again, v1.manifest());

    // --previous keeps v1's grouping and spools each layer (for main's blob reuse, which zstd:chunked layers do not
    // take): written again from the spool, the layers are byte for byte a cold build's.
    let previous = versions.build("v2", "zstd:chunked", &["--previous", &v1.reference()]);
    assert_chunked(&previous.manifest());
    let cold = versions.build("v2", "zstd:chunked", &[]);
    assert_eq!(previous.report["manifest_digest"], cold.report["manifest_digest"]);
    // --base copies v1's layers and writes only what differs, chunked.
    let on_base = versions.build("v2", "zstd:chunked", &["--base", &v1.reference()]);
    let manifest = on_base.manifest();
    assert_chunked(&manifest);
    let (layers, base) = (layer_annotations(&manifest), layer_annotations(&v1.manifest()));
    assert!(layers.len() > base.len(), "{manifest}");
    assert_eq!(layers[..base.len()], base[..], "the base's layers are kept as they are");
    run(bin().args(["inspect", &on_base.reference()]));
}

#[test]
fn a_name_json_cannot_hold_is_refused_naming_the_entry() {
    let ws = Workspace::new();
    let out = ws.path("out");
    // The fixture holds a file whose name is not UTF-8 (scripts/make-fixtures.sh).
    assert_refused(&[&out], &["zstd:chunked", "not UTF-8"], || {
        ws.cmd()
            .arg(fixtures().join("rootfs-amd64.tar"))
            .args(["--compression", "zstd:chunked", "-o"])
            .arg(format!("oci:{}", out.display()))
            .output()
            .unwrap()
    });
}

#[test]
fn diff_refuses_a_toc_that_does_not_match_its_digest_naming_image_and_layer() {
    let versions = Versions::new();
    let v1 = versions.build("v1", "zstd:chunked", &[]);
    let v2 = versions.build("v2", "zstd:chunked", &[]);
    // v2's manifest with one layer's TOC position moved by a byte, written as a new manifest the index names.
    let mut manifest = v2.manifest();
    let layer = &mut manifest["layers"][1];
    let key = "io.github.containers.zstd-chunked.manifest-position";
    let position = layer["annotations"][key].as_str().unwrap().to_string();
    let (offset, rest) = position.split_once(':').unwrap();
    layer["annotations"][key] = format!("{}:{rest}", offset.parse::<u64>().unwrap() + 1).into();
    let digest = layer["digest"].as_str().unwrap().to_string();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = imgcraft::digest::Digest::of(&bytes).to_string();
    std::fs::write(v2.blob(&manifest_digest), &bytes).unwrap();
    let index_path = v2.layout().join("index.json");
    let mut index = json(&std::fs::read_to_string(&index_path).unwrap());
    index["manifests"][0]["digest"] = manifest_digest.into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    assert_refused(&[], &[&v2.reference(), &digest, "table of contents does not match"], || {
        bin().args(["diff", &v1.reference(), &v2.reference()]).output().unwrap()
    });
}

#[test]
fn diff_of_images_on_a_registry_fetches_their_tables_of_contents_not_their_layers() {
    let registry = TestRegistry::start(RegistryConfig::default());
    let versions = Versions::new();
    let (v1, v2) = push_both(&versions, &registry, "zstd:chunked", "diffed");
    let local = json(&run(bin().args(["diff", "--json", &v1.reference(), &v2.reference()])));
    let pushed = |tag: &str| format!("docker://{}/diffed:{tag}", registry.addr);
    let mark = registry.log_lines();
    let remote = json(&run(bin().args(["diff", "--json", &pushed("v1"), &pushed("v2")])));
    let (bytes, requests) = registry.blob_bytes_since(mark);
    for key in ["download_bytes", "partial_download_bytes", "total_bytes"] {
        assert_eq!(remote[key], local[key], "{key}: {remote} against {local}");
    }
    // The old image's layers and the new ones are asked for from their tables of contents on: the registry sends the
    // configs and those tails, not the layers.
    let total = local["total_bytes"].as_u64().unwrap();
    assert!(bytes * 10 < total, "{bytes} bytes in {requests} requests for images of {total} bytes: {}", registry.log());
    assert!(registry.log().contains("\" 206 "), "no range was answered: {}", registry.log());
}
