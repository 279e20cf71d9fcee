//! The command line as a user meets it: options, outputs, reproducibility, and every kind of bad input. Inputs are
//! crafted here, with the tests' own tar writer (tests/common/tar.rs, independent of the crate's tar code) or with
//! Python's tarfile for the formats it writes (GNU long names, libarchive xattrs).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::tar::{Entry, Kind, archive};
use common::{Workspace, assert_refused, bin, json, run, run_failing};

/// A small rootfs with a real amd64 ELF binary (the host's `true`), so that the architecture can be detected.
fn sample_rootfs() -> Vec<Entry> {
    vec![
        Entry::dir("."),
        Entry::dir("./bin"),
        Entry::file("bin/true", &std::fs::read("/bin/true").unwrap()).mode(0o755),
        Entry::symlink("./bin/sh", "true"),
        Entry::dir("./etc"),
        Entry::file("./etc/hostname", b"device\n"),
        Entry::file("etc/newer", b"x").mtime(1_800_000_000),
        Entry::new("./etc/hostname.link", Kind::Hardlink("./etc/hostname".into())),
    ]
}

impl Workspace {
    /// Writes `bytes` compressed with a command-line tool (`gzip -n`, `xz`, `zstd`, `bzip2`).
    fn compressed(&self, name: &str, bytes: &[u8], tool: &[&str]) -> PathBuf {
        let mut child =
            Command::new(tool[0]).args(&tool[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(output.status.success());
        self.write(name, &output.stdout)
    }
}

fn convert_json(ws: &Workspace, input: &Path, extra: &[&str]) -> serde_json::Value {
    json(&run(ws.cmd().arg(input).arg("--json").args(extra)))
}

/// The layer of a single-layer `oci:` layout, decompressed (every gzip member: a layer has one per 256 KiB).
fn layer_tar(layout: &Path) -> Vec<u8> {
    let index = json(&std::fs::read_to_string(layout.join("index.json")).unwrap());
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest = json(&std::fs::read_to_string(layout.join("blobs/sha256").join(manifest_digest)).unwrap());
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(layout.join("blobs/sha256").join(layer)).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// GNU tar's verbose listing of a tar, with numeric owners and full times.
fn gnu_listing(ws: &Workspace, tar: &[u8]) -> String {
    let path = ws.write("listing.tar", tar);
    let out = run(Command::new("tar")
        .args(["--numeric-owner", "--full-time", "--xattrs", "--xattrs-include=*", "-tvvf"])
        .arg(&path));
    std::fs::remove_file(path).unwrap();
    // One space between columns, whatever GNU tar's alignment.
    out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n").collect()
}

#[test]
fn help_documents_every_option() {
    let help = run(bin().arg("--help"));
    for flag in [
        "--arch",
        "--output",
        "--tag",
        "--entrypoint",
        "--cmd",
        "--env",
        "--workdir",
        "--user",
        "--label",
        "--annotation",
        "--expose",
        "--volume",
        "--stop-signal",
        "--author",
        "--compression",
        "--compression-level",
        "--source-date-epoch",
        "--json",
        "--quiet",
        "--no-arch-check",
        "inspect",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    let ws = Workspace::new();
    let out = run_failing(ws.cmd().args(["x.tar", "--frobnicate"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run_failing(ws.cmd().args(["x.tar", "--tag", "Not A Name"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run_failing(ws.cmd().args(["x.tar", "-o", "tarball:x"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn threads_compressions_and_reruns_never_change_digests() {
    let ws = Workspace::new();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 % 13).collect();
    let mut entries = sample_rootfs();
    entries.push(Entry::file("data.bin", &big));
    let input = ws.write("rootfs.tar", &archive(&entries));
    for compression in ["gzip", "zstd", "zstd:chunked", "none"] {
        let digests: Vec<serde_json::Value> = ["1", "2", "4", "1"]
            .iter()
            .map(|threads| {
                let v =
                    convert_json(&ws, &input, &["--compression", compression, "--threads", threads, "-o", "oci:out"]);
                v["manifest_digest"].clone()
            })
            .collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{compression}: {digests:?}");
    }
}

#[test]
fn standard_input_gives_the_same_image_as_the_file() {
    let ws = Workspace::new();
    let bytes = archive(&sample_rootfs());
    let input = ws.compressed("rootfs.tar.zst", &bytes, &["zstd", "-q", "-c"]);
    let from_file = convert_json(&ws, &input, &["-o", "oci:a"]);
    let from_stdin =
        json(&run(ws.cmd().args(["-", "--json", "-o", "oci:b"]).stdin(std::fs::File::open(&input).unwrap())));
    assert_eq!(from_file["manifest_digest"], from_stdin["manifest_digest"]);
}

#[test]
fn default_output_is_named_after_the_input_and_the_detected_architecture() {
    let ws = Workspace::new();
    let input =
        ws.compressed("core-image-minimal-qemux86-64.rootfs.tar.gz", &archive(&sample_rootfs()), &["gzip", "-n", "-c"]);
    let summary = convert_json(&ws, &input, &[]);
    assert_eq!(summary["architecture"], "amd64");
    assert_eq!(summary["platform_source"], "detected from `bin/true`");
    let expected = ws.path("core-image-minimal-qemux86-64.rootfs-amd64.oci.tar");
    assert!(expected.is_file(), "{:?}", ws.listing());
    assert_eq!(summary["outputs"][0], format!("oci-archive:{}", expected.display()));
}

#[test]
fn json_summary_has_the_documented_fields() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    let v = convert_json(&ws, &input, &["--arch", "amd64", "-o", "oci:out:1.0"]);
    for key in ["manifest_digest", "config_digest", "architecture", "variant", "layers", "outputs"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let layer = &v["layers"][0];
    for key in ["digest", "diff_id", "size", "media_type"] {
        assert!(layer.get(key).is_some(), "layer lacks {key}: {layer}");
    }
    assert_eq!(layer["media_type"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let blob = ws.path("out/blobs/sha256").join(layer["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    assert_eq!(std::fs::metadata(blob).unwrap().len(), layer["size"].as_u64().unwrap());
}

#[test]
fn a_mismatching_arch_is_refused_naming_a_binary_unless_overridden() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    assert_refused(&[&ws.path("out")], &["`bin/true` is amd64", "--no-arch-check"], || {
        ws.cmd().arg(&input).args(["--arch", "arm64", "-o", "oci:out"]).output().unwrap()
    });
    let v = convert_json(&ws, &input, &["--arch", "aarch64", "--no-arch-check", "-o", "oci:out"]);
    assert_eq!((v["architecture"].as_str(), v["variant"].as_str()), (Some("arm64"), Some("v8")));
}

#[test]
fn an_unknown_architecture_is_one_line_and_exit_1() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    assert_refused(&[], &["unknown architecture `sparc`: use one of amd64, arm64"], || {
        ws.cmd().arg(&input).args(["--arch", "sparc", "-o", "oci:out"]).output().unwrap()
    });
}

#[test]
fn zstd_chunked_into_a_docker_archive_is_refused_naming_both_and_leaves_the_archive_as_it_was() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    let existing = ws.write("image.tar", b"an archive already there");
    assert_refused(&[&existing, &ws.path("image.oci.tar")], &["zstd:chunked", "docker-archive:", "image.tar"], || {
        ws.cmd()
            .arg(&input)
            .args([
                "--compression",
                "zstd:chunked",
                "-o",
                "oci-archive:image.oci.tar",
                "-o",
                "docker-archive:image.tar",
            ])
            .output()
            .unwrap()
    });
    // Plain zstd has no annotations to lose: the same outputs are written.
    convert_json(&ws, &input, &["--compression", "zstd", "-o", "docker-archive:plain.tar"]);
    assert!(ws.path("plain.tar").is_file());
}

#[test]
fn a_rootfs_without_binaries_needs_arch() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&[Entry::file("etc/hostname", b"x")]));
    assert_refused(&[], &["give --arch"], || ws.cmd().arg(&input).args(["-o", "oci:out"]).output().unwrap());
    let v = convert_json(&ws, &input, &["--arch", "armv7ahf", "-o", "oci:out"]);
    assert_eq!((v["architecture"].as_str(), v["variant"].as_str()), (Some("arm"), Some("v7")));
}

#[test]
fn config_options_land_in_the_image_config_and_manifest() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    run(ws.cmd().arg(&input).args([
        "-q",
        "-o",
        "oci:out",
        "--entrypoint",
        r#"["/bin/app","--serve"]"#,
        "--cmd",
        "--port 'eighty eight'",
        "--env",
        "A=1",
        "--env",
        "B=two=2",
        "--workdir",
        "/srv",
        "--user",
        "1000:1000",
        "--label",
        "org.example=yes",
        "--annotation",
        "org.opencontainers.image.version=1.2",
        "--expose",
        "80",
        "--expose",
        "53/udp",
        "--volume",
        "/data",
        "--stop-signal",
        "SIGINT",
        "--author",
        "Team <t@example.com>",
    ]));
    let v = json(&run(ws.cmd().args(["inspect", "--json", "oci:out"])));
    let c = &v["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/app", "--serve"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--port", "eighty eight"]));
    assert_eq!(c["Env"], serde_json::json!(["A=1", "B=two=2"]));
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Labels"]["org.example"], "yes");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"53/udp": {}, "80/tcp": {}}));
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(v["author"], "Team <t@example.com>");
    assert_eq!(v["annotations"]["org.opencontainers.image.version"], "1.2");
    assert_eq!(v["annotations"]["org.opencontainers.image.created"], "2027-01-15T08:00:00Z");
}

#[test]
fn source_date_epoch_sets_created_and_clamps_newer_mtimes() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    // Unset: the newest mtime (etc/newer, 1800000000) is the creation time and nothing is clamped.
    let v = convert_json(&ws, &input, &["-o", "oci:plain"]);
    assert_eq!(json(&run(ws.cmd().args(["inspect", "--json", "oci:plain"])))["created"], "2027-01-15T08:00:00Z");
    assert!(gnu_listing(&ws, &layer_tar(&ws.path("plain"))).contains("2027-01-15 08:00:00 etc/newer"));
    // From the environment, as Yocto passes it.
    let clamped =
        json(&run(ws.cmd().env("SOURCE_DATE_EPOCH", "1750000000").arg(&input).args(["--json", "-o", "oci:clamped"])));
    assert_eq!(clamped["created"], "2025-06-15T15:06:40Z");
    let listing = gnu_listing(&ws, &layer_tar(&ws.path("clamped")));
    assert!(listing.contains("2025-06-15 15:06:40 etc/newer"), "{listing}");
    assert!(listing.contains("2023-11-14 22:13:20 etc/hostname"), "{listing}");
    assert_ne!(v["manifest_digest"], clamped["manifest_digest"]);
    // The flag wins over the environment.
    let flag = json(&run(ws.cmd().env("SOURCE_DATE_EPOCH", "1750000000").arg(&input).args([
        "--json",
        "--source-date-epoch",
        "0",
        "-o",
        "oci:zero",
    ])));
    assert_eq!(flag["created"], "1970-01-01T00:00:00Z");
}

#[test]
fn the_layer_is_canonical_tar_with_hardlinks_and_no_root_entry() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    run(ws.cmd().arg(&input).args(["-q", "-o", "oci:out"]));
    let listing = gnu_listing(&ws, &layer_tar(&ws.path("out")));
    let names: Vec<&str> = listing.lines().map(|l| l.rsplit_once(' ').unwrap().1).collect();
    assert_eq!(names, ["bin/", "bin/true", "true", "etc/", "etc/hostname", "etc/newer", "etc/hostname"], "{listing}");
    assert!(listing.contains("etc/hostname.link link to etc/hostname"), "{listing}");
    assert!(listing.contains("bin/sh -> true"), "{listing}");
    assert!(listing.lines().all(|l| l.contains(" 0/0 ")), "{listing}");
}

#[test]
fn duplicate_paths_are_kept_in_order_so_the_last_wins_on_extraction() {
    let ws = Workspace::new();
    let input = ws
        .write("rootfs.tar", &archive(&[Entry::file("etc/motd", b"first\n"), Entry::file("./etc/motd", b"second\n")]));
    run(ws.cmd().arg(&input).args(["-q", "--arch", "amd64", "-o", "oci:out"]));
    let layer = ws.write("layer.tar", &layer_tar(&ws.path("out")));
    let root = ws.path("extracted");
    std::fs::create_dir(&root).unwrap();
    run(Command::new("tar").arg("-xf").arg(&layer).arg("-C").arg(&root));
    assert_eq!(std::fs::read_to_string(root.join("etc/motd")).unwrap(), "second\n");
}

#[test]
fn gnu_long_names_pax_and_libarchive_xattrs_and_v3_capabilities_are_read() {
    let ws = Workspace::new();
    let long = format!("usr/{}/{}", "d".repeat(120), "f".repeat(120));
    let script = format!(
        r#"
import tarfile, io
cap_v3 = bytes([0x01,0,0,0x03, 0,0x20,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,0, 0xe8,0x03,0,0]).decode('utf-8', 'surrogateescape')
with tarfile.open('{gnu}', 'w', format=tarfile.GNU_FORMAT) as t:
    i = tarfile.TarInfo('{long}'); i.size = 2; i.mtime = 1700000000; i.uid = 5; i.gid = 6
    t.addfile(i, io.BytesIO(b'hi'))
    l = tarfile.TarInfo('short'); l.type = tarfile.LNKTYPE; l.linkname = '{long}'
    t.addfile(l)
with tarfile.open('{pax}', 'w', format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo('ping'); i.size = 0; i.mode = 0o755; i.mtime = 1700000000
    i.pax_headers = {{'LIBARCHIVE.xattr.user.note': 'aGVsbG8', 'SCHILY.xattr.user.other': 'x'}}
    t.addfile(i)
    c = tarfile.TarInfo('cap'); c.size = 0; c.mtime = 1700000000; c.uid = 4000000
    c.pax_headers = {{'SCHILY.xattr.security.capability': cap_v3}}
    t.addfile(c)
"#,
        gnu = ws.path("gnu.tar").display(),
        pax = ws.path("pax.tar").display(),
    );
    run(Command::new("python3").arg("-c").arg(script));
    run(ws.cmd().arg(ws.path("gnu.tar")).args(["-q", "--arch", "amd64", "-o", "oci:gnu"]));
    let listing = gnu_listing(&ws, &layer_tar(&ws.path("gnu")));
    assert!(listing.contains(&format!("5/6 2 2023-11-14 22:13:20 {long}")), "{listing}");
    assert!(listing.contains(&format!("short link to {long}")), "{listing}");

    run(ws.cmd().arg(ws.path("pax.tar")).args(["-q", "--arch", "amd64", "-o", "oci:pax"]));
    let layer = layer_tar(&ws.path("pax"));
    let listing = gnu_listing(&ws, &layer);
    assert!(listing.contains("x: 5 user.note") && listing.contains("x: 1 user.other"), "{listing}");
    assert!(listing.contains("x: 20 security.capability"), "{listing}");
    assert!(listing.contains("4000000/0"), "{listing}");
    // The capability was v3 (24 bytes, namespace root uid 1000) and must be written as v2 (20 bytes).
    let marker = b"SCHILY.xattr.security.capability=";
    let at = layer.windows(marker.len()).position(|w| w == marker).expect("capability record");
    assert_eq!(
        &layer[at + marker.len()..at + marker.len() + 21],
        &[0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'\n']
    );
}

#[test]
fn writing_into_an_existing_layout_adds_or_replaces_only_that_tag() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    run(ws.cmd().arg(&input).args(["-q", "-o", "oci:lay:one"]));
    run(ws.cmd().arg(&input).args(["-q", "--compression", "zstd", "-o", "oci:lay:two"]));
    let replaced = convert_json(&ws, &input, &["--env", "X=1", "-o", "oci:lay:one"]);
    let index = json(&std::fs::read_to_string(ws.path("lay/index.json")).unwrap());
    let tags: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["two", "one"]);
    assert_eq!(index["manifests"][1]["digest"], replaced["manifest_digest"]);
    for tag in ["one", "two"] {
        run(ws.cmd().args(["inspect", &format!("oci:lay:{tag}")]));
    }
}

#[test]
fn concurrent_writers_to_one_layout_keep_every_tag() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    let children: Vec<_> = (0..4)
        .map(|i| {
            ws.cmd()
                .arg(&input)
                .args(["-q", "--env", &format!("N={i}"), "-o", &format!("oci:shared:t{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let index = json(&std::fs::read_to_string(ws.path("shared/index.json")).unwrap());
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, ["t0", "t1", "t2", "t3"]);
    assert_eq!(ws.listing().iter().filter(|n| n.starts_with('.')).count(), 0, "{:?}", ws.listing());
}

#[test]
fn inspect_reports_a_corrupted_blob() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    let v = convert_json(&ws, &input, &["-o", "oci:out"]);
    run(ws.cmd().args(["inspect", "oci:out"]));
    let layer = v["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = ws.path("out/blobs/sha256").join(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    assert_refused(&[], &[&layer[..12]], || ws.cmd().args(["inspect", "oci:out"]).output().unwrap());
}

/// Converts `input` to `output`, which must be refused naming every `expected` piece, leaving nothing in the
/// workspace but what was there before.
fn assert_conversion_refused(ws: &Workspace, input: &Path, output: &str, expected: &[&str]) {
    assert_refused(&[ws.dir.path()], expected, || {
        ws.cmd().arg(input).args(["--arch", "amd64", "-o", output]).output().unwrap()
    });
}

#[test]
fn broken_and_hostile_tars_are_refused_with_one_clear_line() {
    let ws = Workspace::new();
    let good = archive(&sample_rootfs());
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("empty.tar", vec![], vec!["empty.tar`", "empty input"]),
        ("text.tar", b"hello, I am not a tar archive at all\n".repeat(30), vec!["not a tar archive"]),
        ("cut-in-data.tar", good[..2000].to_vec(), vec!["truncated", "bin/true"]),
        ("no-end.tar", good[..good.len() - 1024].to_vec(), vec!["truncated", "end-of-archive"]),
        (
            "escape.tar",
            archive(&[Entry::file("../etc/passwd", b"x")]),
            vec!["`../etc/passwd`", "climbs out of the root"],
        ),
        (
            "hardlink-out.tar",
            archive(&[Entry::new("x", Kind::Hardlink("../../etc/shadow".into()))]),
            vec!["entry `x`", "outside the root"],
        ),
        (
            "hardlink-missing.tar",
            archive(&[Entry::new("x", Kind::Hardlink("y".into()))]),
            vec!["entry `x`", "not an earlier file"],
        ),
        ("whiteout.tar", archive(&[Entry::file("etc/.wh.passwd", b"")]), vec!["`etc/.wh.passwd`", "whiteout"]),
        (
            "overlay-whiteout.tar",
            archive(&[Entry::new("etc/gone", Kind::Char(0, 0))]),
            vec!["`etc/gone`", "0/0 character device"],
        ),
        ("lz4.tar.lz4", vec![0x04, 0x22, 0x4d, 0x18, 0, 0, 0, 0], vec!["lz4"]),
    ];
    for (name, bytes, expected) in cases {
        let input = ws.write(name, &bytes);
        assert_conversion_refused(&ws, &input, "oci:out", &expected);
        assert_conversion_refused(&ws, &input, "oci-archive:out.tar", &expected);
        std::fs::remove_file(input).unwrap();
    }
    let missing = ws.path("missing.tar");
    assert_conversion_refused(&ws, &missing, "oci:out", &["missing.tar", "no such file"]);
}

#[test]
fn truncated_or_corrupt_compressed_streams_are_refused() {
    let ws = Workspace::new();
    let big: Vec<u8> = (0..400_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut entries = sample_rootfs();
    entries.push(Entry::file("data.bin", &big));
    let tar = archive(&entries);
    for (name, tool) in [
        ("r.tar.gz", &["gzip", "-n", "-c"][..]),
        ("r.tar.xz", &["xz", "-c"][..]),
        ("r.tar.zst", &["zstd", "-q", "-c"][..]),
        ("r.tar.bz2", &["bzip2", "-c"][..]),
    ] {
        let whole = std::fs::read(ws.compressed(name, &tar, tool)).unwrap();
        let truncated = ws.write(name, &whole[..whole.len() * 2 / 3]);
        assert_conversion_refused(&ws, &truncated, "oci-archive:out.tar", &[name]);
        let mut corrupt = whole.clone();
        let at = corrupt.len() / 2;
        corrupt[at] ^= 0x55;
        corrupt[at + 1] ^= 0x55;
        let corrupt = ws.write(name, &corrupt);
        assert_conversion_refused(&ws, &corrupt, "oci:out", &[name]);
        std::fs::remove_file(corrupt).unwrap();
    }
}

#[test]
fn a_failed_run_leaves_existing_destinations_untouched() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    run(ws.cmd().arg(&input).args(["-q", "-o", "oci-archive:image.tar", "-o", "oci:lay:1"]));
    let bad = ws.write("bad.tar", &archive(&[Entry::file("../x", b"")]));
    assert_refused(&[&ws.path("image.tar"), &ws.path("lay/index.json")], &["../x"], || {
        let outputs = ["--arch", "amd64", "-o", "oci-archive:image.tar", "-o", "oci:lay:1"];
        ws.cmd().arg(&bad).args(outputs).output().unwrap()
    });
}

#[test]
fn an_unwritable_destination_is_one_clear_error() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    ws.write("plainfile", b"x");
    for (output, problem) in [("oci-archive:plainfile/image.tar", "plainfile"), ("oci:plainfile", "is not a directory")]
    {
        assert_refused(&[&ws.path("plainfile")], &[problem], || {
            ws.cmd().arg(&input).args(["-o", output]).output().unwrap()
        });
    }
}

#[test]
fn an_index_refuses_two_images_of_one_platform_and_lists_each_platform_once() {
    let ws = Workspace::new();
    let input = ws.write("rootfs.tar", &archive(&sample_rootfs()));
    run(ws.cmd().arg(&input).args(["-q", "-o", "oci:amd:1"]));
    run(ws.cmd().arg(&input).args(["-q", "--arch", "arm64", "--no-arch-check", "-o", "oci-archive:arm.tar"]));
    assert_refused(&[&ws.path("both")], &["are both for linux/amd64"], || {
        ws.cmd().args(["index", "oci:amd:1", "oci:amd:1", "-o", "oci:both"]).output().unwrap()
    });
    let report =
        json(&run(ws.cmd().args(["index", "--json", "oci:amd:1", "oci-archive:arm.tar", "-o", "oci:both:multi"])));
    let index = json(&std::fs::read_to_string(ws.path("both/index.json")).unwrap());
    assert_eq!(index["manifests"][0]["digest"], report["index_digest"]);
    assert_eq!(index["manifests"][0]["mediaType"], "application/vnd.oci.image.index.v1+json");
    let digest = report["index_digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let nested = json(&std::fs::read_to_string(ws.path("both/blobs/sha256").join(digest)).unwrap());
    let archs: Vec<&str> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
}
