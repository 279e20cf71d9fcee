//! Replays every input the fuzzer found (`tests/data/fuzz/TARGET/*`, kept by hand from `fuzz/artifacts/` as
//! scripts/fuzz.sh says) through its target's harness (`fuzz/src/lib.rs`, included by path), so that a crash or
//! limit breach once found stays fixed. Hostile rootfs inputs listed in `tests/data/fuzz/REFUSED` must also be
//! refused by the tool.

mod common;
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The per-input time scripts/fuzz.sh gives libFuzzer (`-timeout`), doubled for a loaded test machine.
const TIME_LIMIT: Duration = Duration::from_secs(20);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz")
}

fn refused() -> Vec<String> {
    std::fs::read_to_string(data_dir().join("REFUSED"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The kept inputs of `target`, as `target/name`, sorted.
fn inputs(target: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(data_dir().join(target)) else { return Vec::new() };
    let mut names: Vec<String> =
        dir.map(|e| format!("{target}/{}", e.unwrap().file_name().to_string_lossy())).collect();
    names.sort();
    names
}

/// Runs `harness` on `input` (a path under tests/data/fuzz) and checks that it ends in time.
fn replay_one(input: &str, harness: fn(&[u8], &Path)) {
    let data = std::fs::read(data_dir().join(input)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let start = Instant::now();
    harness(&data, work.path());
    let took = start.elapsed();
    assert!(took < TIME_LIMIT, "{input}: took {took:?}, more than {TIME_LIMIT:?}");
}

fn replay(target: &str, harness: fn(&[u8], &Path)) {
    for input in inputs(target).iter() {
        eprintln!("replaying {input}");
        replay_one(input, harness);
    }
}

fn harness_of(target: &str) -> fn(&[u8], &Path) {
    match target {
        "tar_normalize" => |d, _| harness::tar_normalize(d),
        "decompress" => |d, _| harness::decompress(d),
        "pkgdata" => harness::pkgdata,
        "packages" => |d, _| harness::packages(d),
        "reference" => |d, _| harness::reference(d),
        "oci_documents" => |d, _| harness::oci_documents(d),
        "registry_auth" => |d, _| harness::registry_auth(d),
        "inspect_archive" => harness::inspect_archive,
        "docker_manifest_json" => harness::docker_manifest_json,
        "inspect_layout" => harness::inspect_layout,
        other => panic!("no harness for fuzz target `{other}`"),
    }
}

#[test]
fn every_kept_input_belongs_to_a_fuzz_target() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(targets.join(format!("{name}.rs")).is_file(), "tests/data/fuzz/{name}: no such fuzz target");
            harness_of(&name);
        }
    }
    for input in refused() {
        assert!(data_dir().join(&input).is_file(), "tests/data/fuzz/REFUSED names `{input}`, which is not kept");
    }
}

#[test]
fn tar_inputs_found_by_fuzzing_are_read_or_refused_cleanly() {
    replay("tar_normalize", harness_of("tar_normalize"));
}

#[test]
fn compressed_inputs_found_by_fuzzing_are_decoded_or_refused_cleanly() {
    replay("decompress", harness_of("decompress"));
}

#[test]
fn package_databases_found_by_fuzzing_are_read_or_refused_cleanly() {
    replay("pkgdata", harness_of("pkgdata"));
    replay("packages", harness_of("packages"));
}

#[test]
fn references_and_documents_found_by_fuzzing_parse_stably_or_are_refused() {
    replay("reference", harness_of("reference"));
    replay("oci_documents", harness_of("oci_documents"));
    replay("registry_auth", harness_of("registry_auth"));
}

#[test]
fn images_found_by_fuzzing_are_inspected_or_refused_cleanly() {
    replay("inspect_archive", harness_of("inspect_archive"));
    replay("docker_manifest_json", harness_of("docker_manifest_json"));
    replay("inspect_layout", harness_of("inspect_layout"));
}

/// What a user sees for a kept input given to the built tool: it converts (or inspects) it, or refuses it with exit
/// status 1 and one line of printable text on stderr, leaving nothing at the destination.
fn assert_converted_or_refused(input: &str, args: &[&str], destination: Option<&Path>) {
    let output = common::bin().args(args).output().unwrap();
    match output.status.code() {
        Some(0) => {}
        Some(1) => {
            eprintln!("{input}: refused");
            common::assert_refused(&[], &[], || output);
            if let Some(destination) = destination {
                assert!(!destination.exists(), "{input}: refused, yet {} was written", destination.display());
            }
        }
        other => panic!("{input}: exit status {other:?} (a crash?)\n{}", String::from_utf8_lossy(&output.stderr)),
    }
}

#[test]
fn the_tool_converts_or_refuses_every_kept_rootfs_and_pkgdata_and_inspects_or_refuses_every_kept_archive() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    for input in ["tar_normalize", "decompress"].iter().flat_map(|t| inputs(t)) {
        let file = data_dir().join(&input);
        let args = ["--arch", "amd64", "-o", &format!("oci:{}", out.display()), file.to_str().unwrap()];
        assert_converted_or_refused(&input, &args, Some(&out));
        let _ = std::fs::remove_dir_all(&out);
    }
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "fuzz\n").unwrap();
    for input in inputs("pkgdata").into_iter() {
        let pkgdata = work.path().join("pkgdata");
        let _ = std::fs::remove_dir_all(&pkgdata);
        std::fs::create_dir_all(pkgdata.join("runtime")).unwrap();
        std::fs::copy(data_dir().join(&input), pkgdata.join("runtime/busybox")).unwrap();
        let args = ["--arch", "amd64", "--pkgdata", pkgdata.to_str().unwrap(), "-o", &format!("oci:{}", out.display())];
        assert_converted_or_refused(&input, &[&args[..], &[rootfs.to_str().unwrap()]].concat(), Some(&out));
        let _ = std::fs::remove_dir_all(&out);
    }
    for input in inputs("inspect_archive").into_iter() {
        let file = data_dir().join(&input);
        for transport in ["oci-archive", "docker-archive"] {
            assert_converted_or_refused(&input, &["inspect", &format!("{transport}:{}", file.display())], None);
        }
    }
}

/// Found by fuzzing references (tests/data/fuzz/reference/library-prefix-of-a-nested-name): `library/library/r`
/// went into `docker save`'s RepoTags as `library/r`, which `docker load` reads as another repository.
#[test]
fn a_docker_archive_names_a_nested_library_repository_as_given() {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "fuzz\n").unwrap();
    let archive = work.path().join("image.tar");
    let destination = format!("docker-archive:{}:library/library/r:1", archive.display());
    common::run(common::bin().args(["--arch", "amd64", "-o", &destination]).arg(&rootfs));
    let manifest = common::run(std::process::Command::new("tar").arg("-xOf").arg(&archive).arg("manifest.json"));
    assert!(manifest.contains(r#""RepoTags":["library/library/r:1"]"#), "{manifest}");
}

/// The hostile rootfs inputs the fuzzer found (a NUL in a name, a decoder memory bomb): each is refused.
#[test]
fn hostile_findings_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let listed = refused();
    assert!(!listed.is_empty(), "tests/data/fuzz/REFUSED lists nothing");
    for input in listed {
        let target = input.split('/').next().unwrap();
        assert!(["tar_normalize", "decompress"].contains(&target), "{input}: not a rootfs input");
        let file = data_dir().join(&input);
        let args = ["--arch", "amd64", "-o", &format!("oci:{}", out.display()), file.to_str().unwrap()];
        let output = common::bin().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{input}: not refused");
        assert_converted_or_refused(&input, &args, Some(&out));
        assert!(!out.exists(), "{input}: left {} behind", out.display());
    }
}
