//! Rebuilds with `--previous` (issue 14): a layer whose content the previous image already holds takes that image's
//! blob instead of being compressed again, and the output is byte for byte what a build that compresses everything
//! writes, whatever the compression, the thread count, or the state of the previous image: a previous image made at
//! another level, with a blob corrupt or missing, or with a config that lies about a layer's content, is passed
//! over (with a warning for what is wrong) and never copied unchecked.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workspace, json};
use serde_json::Value;

/// Packages of the test rootfs; each owns one file large enough for its layer to be worth reusing (over 1 MiB).
const PACKAGES: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// Compressible but not trivially so: words from a small vocabulary in a pseudo-random order.
fn text(seed: u32, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "rootfs ", "layer ", "image ", "yocto ", "package ", "blob ", "digest ", "tar\n", "zstd ", "gzip ", "oci ",
        "x ",
    ];
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.extend_from_slice(WORDS[(state % 12) as usize].as_bytes());
        if state % 7 == 0 {
            out.extend_from_slice(format!("{state:x} ").as_bytes());
        }
    }
    out.truncate(len);
    out
}

/// A rootfs directory with a dpkg database owning one 1.5 MiB file per package, and some unowned files; `changed`
/// names the package whose file has a line appended.
fn rootfs(ws: &Workspace, name: &str, changed: Option<&str>) -> PathBuf {
    let root = ws.path(name);
    let info = root.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/hostname"), "device\n").unwrap();
    fs::write(root.join("etc/unowned.txt"), text(99, 300_000)).unwrap();
    let mut status = String::new();
    for (i, package) in PACKAGES.iter().enumerate() {
        let dir = root.join("usr/share").join(package);
        fs::create_dir_all(&dir).unwrap();
        let mut data = text(i as u32 + 1, 1_500_000 + i * 100_000);
        if changed == Some(*package) {
            data.extend_from_slice(b"\n# changed\n");
        }
        fs::write(dir.join("data"), data).unwrap();
        fs::write(
            info.join(format!("{package}.list")),
            format!("/usr\n/usr/share\n/usr/share/{package}\n/usr/share/{package}/data\n"),
        )
        .unwrap();
        status.push_str(&format!(
            "Package: {package}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\nInstalled-Size: {}\n\n",
            1500 + i * 100
        ));
    }
    fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    // Same mtimes in every tree, so that trees built apart differ only where a package changed.
    let mut stack = vec![root.clone()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        let time =
            fs::FileTimes::new().set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000));
        fs::File::open(&path).unwrap().set_times(time).unwrap();
    }
    root
}

/// Converts `input` into the layout `out` (tag `t`) with `extra` options; the `--json` report.
fn convert(ws: &Workspace, input: &Path, out: &str, extra: &[&str]) -> (Value, String) {
    run_convert(ws.cmd(), ws, input, out, extra)
}

/// [`convert`], keeping facts about layer blobs in the workspace's `cache`.
fn convert_cached(ws: &Workspace, input: &Path, out: &str, extra: &[&str]) -> (Value, String) {
    let mut command = ws.cmd();
    command.env("IMGCRAFT_CACHE_DIR", ws.path("cache"));
    run_convert(command, ws, input, out, extra)
}

fn run_convert(mut command: Command, ws: &Workspace, input: &Path, out: &str, extra: &[&str]) -> (Value, String) {
    command.arg(input).args([
        "--layers",
        "packages",
        "--arch",
        "amd64",
        "-o",
        &format!("oci:{out}:t", out = ws.path(out).display()),
        "--json",
    ]);
    command.args(extra);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    (json(&String::from_utf8_lossy(&output.stdout)), stderr)
}

fn layout_ref(ws: &Workspace, name: &str) -> String {
    format!("oci:{}:t", ws.path(name).display())
}

/// Every file of a layout, by path, with its bytes: two layouts are the same image written the same way.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            found.push((path.strip_prefix(dir).unwrap().display().to_string(), fs::read(&path).unwrap()));
        }
    }
    found.sort();
    found
}

fn assert_same_layout(ws: &Workspace, a: &str, b: &str) {
    let (a_files, b_files) = (files(&ws.path(a)), files(&ws.path(b)));
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a_files), names(&b_files), "{a} and {b} hold other files");
    for ((name, a_bytes), (_, b_bytes)) in a_files.iter().zip(&b_files) {
        assert!(a_bytes == b_bytes, "{name} differs between {a} and {b}");
    }
}

/// The layer blobs of a layout's image, bottom first, with the diff_id of each.
fn layer_blobs(ws: &Workspace, name: &str) -> Vec<(PathBuf, String)> {
    let dir = ws.path(name);
    let (_, manifest, config) = documents(&dir);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        .map(|(layer, diff_id)| {
            (blob_path(&dir, layer["digest"].as_str().unwrap()), diff_id.as_str().unwrap().to_string())
        })
        .collect()
}

/// Where a layout keeps the blob `digest`.
fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// A layout's index.json, its image's manifest and config.
fn documents(dir: &Path) -> (Value, Value, Value) {
    let read = |path: PathBuf| json(&fs::read_to_string(path).unwrap());
    let index = read(dir.join("index.json"));
    let manifest = read(blob_path(dir, index["manifests"][0]["digest"].as_str().unwrap()));
    let config = read(blob_path(dir, manifest["config"]["digest"].as_str().unwrap()));
    (index, manifest, config)
}

/// The unchanged rootfs, a cold build of it (its report) and the same build as the layout `previous`.
fn built_twice(ws: &Workspace) -> (PathBuf, Value) {
    let v1 = rootfs(ws, "v1", None);
    let (cold, _) = convert(ws, &v1, "cold", &[]);
    convert(ws, &v1, "previous", &[]);
    (v1, cold)
}

#[test]
fn a_rebuild_takes_every_unchanged_blob_and_writes_what_a_cold_build_writes() {
    let ws = Workspace::new();
    let v1 = rootfs(&ws, "v1", None);
    let v2 = rootfs(&ws, "v2", Some("charlie"));
    for compression in ["gzip", "zstd", "none"] {
        let c = ["--compression", compression];
        let (built, _) = convert(&ws, &v1, &format!("{compression}-v1"), &c);
        let layers = built["layers"].as_array().unwrap().len();
        assert_eq!(layers, PACKAGES.len() + 1, "{built}");
        let (cold, _) = convert(&ws, &v2, &format!("{compression}-cold"), &c);
        for threads in ["1", "2"] {
            let out = format!("{compression}-rebuilt-{threads}");
            let previous = layout_ref(&ws, &format!("{compression}-v1"));
            let (rebuilt, stderr) =
                convert(&ws, &v2, &out, &[&c[..], &["--previous", &previous, "--threads", threads]].concat());
            assert_eq!(
                rebuilt["manifest_digest"], cold["manifest_digest"],
                "{compression}, {threads} threads: {rebuilt}"
            );
            // Every package layer but charlie's is taken; the top layer (etc, the database) is under 1 MiB and is
            // compressed whatever the previous image holds.
            assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 1, "{compression}, {threads} threads: {rebuilt}");
            assert_eq!(rebuilt["reused_layers"], layers - 1, "{rebuilt}");
            assert!(!stderr.contains("warning"), "{stderr}");
            assert!(rebuilt.get("warnings").is_none(), "{rebuilt}");
            assert_same_layout(&ws, &format!("{compression}-cold"), &out);
        }
    }
}

#[test]
fn a_previous_image_made_at_another_level_is_compressed_afresh_without_a_warning() {
    let ws = Workspace::new();
    let v1 = rootfs(&ws, "v1", None);
    convert(&ws, &v1, "fast", &["--compression-level", "1"]);
    let (cold, _) = convert(&ws, &v1, "cold", &[]);
    let (rebuilt, stderr) = convert(&ws, &v1, "rebuilt", &["--previous", &layout_ref(&ws, "fast")]);
    assert_eq!(rebuilt["blobs_taken"], 0, "{rebuilt}");
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_same_layout(&ws, "cold", "rebuilt");
    // zstd's first frame is not gzip's first block: nothing taken across compressions either.
    let (zstd, _) = convert(&ws, &v1, "zstd", &["--compression", "zstd", "--previous", &layout_ref(&ws, "cold")]);
    assert_eq!(zstd["blobs_taken"], 0, "{zstd}");
}

#[test]
fn corrupt_missing_and_misdescribed_previous_blobs_are_compressed_afresh_with_a_warning_each() {
    let ws = Workspace::new();
    let (v1, cold) = built_twice(&ws);
    let blobs = layer_blobs(&ws, "previous");
    // alpha's blob: one byte flipped in the middle; bravo's: gone.
    let mut corrupt = fs::read(&blobs[0].0).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    fs::write(&blobs[0].0, corrupt).unwrap();
    fs::remove_file(&blobs[1].0).unwrap();
    let (rebuilt, stderr) = convert(&ws, &v1, "rebuilt", &["--previous", &layout_ref(&ws, "previous")]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 2, "{rebuilt}");
    assert_same_layout(&ws, "cold", "rebuilt");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("rootfs2image: warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    let digest = |path: &Path| path.file_name().unwrap().to_str().unwrap().to_string();
    for (warning, (blob, _)) in warnings.iter().zip(&blobs) {
        assert!(warning.contains(&layout_ref(&ws, "previous")), "{warning}");
        assert!(warning.contains(&digest(blob)), "{warning}");
        assert!(warning.ends_with("not reused, compressed afresh"), "{warning}");
    }
    assert_eq!(rebuilt["warnings"].as_array().unwrap().len(), 2, "{rebuilt}");
}

#[test]
fn a_previous_config_that_swaps_two_layers_contents_gets_neither_blob_taken() {
    let ws = Workspace::new();
    let (v1, cold) = built_twice(&ws);
    // Rewrite the previous image so that its config claims alpha's blob holds bravo's tar and the other way round:
    // blobs and digests all consistent, only the claim is false.
    let dir = ws.path("previous");
    let put = |bytes: &[u8]| {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        fs::write(blob_path(&dir, &digest), bytes).unwrap();
        (digest, bytes.len())
    };
    let (mut index, mut manifest, mut config) = documents(&dir);
    let diff_ids = config["rootfs"]["diff_ids"].as_array_mut().unwrap();
    diff_ids.swap(0, 1);
    let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_size.into();
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = manifest_digest.into();
    index["manifests"][0]["size"] = manifest_size.into();
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let (rebuilt, stderr) = convert(&ws, &v1, "rebuilt", &["--previous", &layout_ref(&ws, "previous")]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 2, "{rebuilt}");
    assert_same_layout(&ws, "cold", "rebuilt");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    for warning in warnings {
        assert!(warning.contains("decompresses to"), "{warning}");
    }
}

/// The cache entry of the blob at `blob` in the cache at `cache`, if there is one.
fn cache_entry(cache: &Path, blob: &Path) -> Option<Value> {
    let path = cache.join("layers/sha256").join(blob.file_name().unwrap());
    Some(json(&fs::read_to_string(path).ok()?))
}

#[test]
fn blobs_this_machine_wrote_are_checked_by_digest_alone_and_a_corrupt_one_is_still_refused() {
    let ws = Workspace::new();
    let v1 = rootfs(&ws, "v1", None);
    let v2 = rootfs(&ws, "v2", Some("charlie"));
    convert_cached(&ws, &v1, "previous", &[]);
    // Every layer written is recorded with the tar it holds.
    let blobs = layer_blobs(&ws, "previous");
    for (blob, diff_id) in &blobs {
        let entry = cache_entry(&ws.path("cache"), blob).unwrap_or_else(|| panic!("{} not recorded", blob.display()));
        assert_eq!(entry["diff_id"], diff_id.as_str(), "{entry}");
    }
    let (cold, _) = convert(&ws, &v2, "cold", &[]);
    let previous = layout_ref(&ws, "previous");
    let (rebuilt, stderr) = convert_cached(&ws, &v2, "rebuilt", &["--previous", &previous]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 1, "{rebuilt}");
    assert_eq!(rebuilt["blobs_known"], PACKAGES.len() - 1, "{rebuilt}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_same_layout(&ws, "cold", "rebuilt");
    // Without the cache the same blobs are taken, each decompressed to be checked.
    let (uncached, _) = convert(&ws, &v2, "uncached", &["--previous", &previous]);
    assert_eq!(uncached["blobs_taken"], PACKAGES.len() - 1, "{uncached}");
    assert_eq!(uncached["blobs_known"], 0, "{uncached}");
    // A blob the cache knows is still checked against its digest as it is copied: alpha's, one byte flipped.
    let mut corrupt = fs::read(&blobs[0].0).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    fs::write(&blobs[0].0, corrupt).unwrap();
    let (rebuilt, stderr) = convert_cached(&ws, &v2, "rebuilt-corrupt", &["--previous", &previous]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 2, "{rebuilt}");
    assert_eq!(rebuilt["blobs_known"], PACKAGES.len() - 2, "{rebuilt}");
    assert_same_layout(&ws, "cold", "rebuilt-corrupt");
    let alpha = blobs[0].0.file_name().unwrap().to_str().unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("corrupt") && stderr.contains(alpha), "{stderr}");
}

#[test]
fn a_cache_entry_that_disagrees_with_the_previous_config_is_passed_over_and_corrected() {
    let ws = Workspace::new();
    let (v1, cold) = built_twice(&ws);
    let blobs = layer_blobs(&ws, "previous");
    // The cache says alpha's blob holds bravo's tar: not what the config claims, so alpha's blob is decompressed.
    let cache = ws.path("cache/layers/sha256");
    fs::create_dir_all(&cache).unwrap();
    let entry = |diff_id: &str| {
        format!(
            r#"{{"diff_id":"{diff_id}","media_type":"application/vnd.oci.image.layer.v1.tar+gzip","uncompressed_size":1}}"#
        )
    };
    fs::write(cache.join(blobs[0].0.file_name().unwrap()), entry(&blobs[1].1)).unwrap();
    fs::write(cache.join(blobs[1].0.file_name().unwrap()), entry(&blobs[1].1)).unwrap();
    let (rebuilt, stderr) = convert_cached(&ws, &v1, "rebuilt", &["--previous", &layout_ref(&ws, "previous")]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len(), "{rebuilt}");
    assert_eq!(rebuilt["blobs_known"], 1, "only bravo's blob was known: {rebuilt}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_same_layout(&ws, "cold", "rebuilt");
    // What decompressing alpha's blob established replaced the wrong entry.
    assert_eq!(cache_entry(&ws.path("cache"), &blobs[0].0).unwrap()["diff_id"], blobs[0].1.as_str());
}

/// `dir` as the gzip-compressed tarball `name`: the first read of a compressed rootfs keeps what it decodes for the
/// second, and records its large files' digests.
fn tarball(ws: &Workspace, dir: &Path, name: &str) -> PathBuf {
    let out = ws.path(name);
    let status = Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "--owner=0", "--group=0", "-czf"])
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    out
}

/// The outline entries of the cache at `cache`, each with the diff_id it gives.
fn outline_entries(cache: &Path) -> Vec<(PathBuf, String)> {
    let Ok(dir) = fs::read_dir(cache.join("outlines/min-16384")) else { return Vec::new() };
    let mut entries: Vec<(PathBuf, String)> = dir
        .map(|e| e.unwrap().path())
        .map(|path| {
            let diff_id = json(&fs::read_to_string(&path).unwrap())["diff_id"].as_str().unwrap_or("").to_string();
            (path, diff_id)
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn unchanged_layers_are_recognised_by_their_outline_and_a_wrong_entry_does_no_harm() {
    let ws = Workspace::new();
    let v1_dir = rootfs(&ws, "v1", None);
    let v1 = tarball(&ws, &v1_dir, "v1.tar.gz");
    let v2 = tarball(&ws, &rootfs(&ws, "v2", Some("charlie")), "v2.tar.gz");
    let (cold, _) = convert(&ws, &v2, "cold", &[]);
    // A cold build from a directory records no outline: nothing recorded its files' digests.
    convert_cached(&ws, &v1_dir, "from-directory", &[]);
    assert!(outline_entries(&ws.path("cache")).is_empty());
    // A cold build from the tarball records each layer's outline with the layer's diff_id.
    convert_cached(&ws, &v1, "previous", &[]);
    let blobs = layer_blobs(&ws, "previous");
    let mut recorded: Vec<String> = outline_entries(&ws.path("cache")).into_iter().map(|(_, d)| d).collect();
    let mut diff_ids: Vec<String> = blobs.iter().map(|(_, diff_id)| diff_id.clone()).collect();
    recorded.sort();
    diff_ids.sort();
    assert_eq!(recorded, diff_ids);
    let previous = layout_ref(&ws, "previous");
    let (rebuilt, stderr) = convert_cached(&ws, &v2, "rebuilt", &["--previous", &previous]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    assert_eq!(rebuilt["layers_recognised"], blobs.len() - 1, "every layer but charlie's: {rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 1, "{rebuilt}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_same_layout(&ws, "cold", "rebuilt");
    assert_eq!(outline_entries(&ws.path("cache")).len(), blobs.len() + 1, "charlie's new layer is recorded too");

    // Alpha's entry torn, bravo's giving another size, delta's giving charlie's old diff_id: the first two are as if
    // absent; delta's layer takes no blob (its tar does not begin as charlie's old blob does) and is compressed,
    // which hashes it and corrects the entry. The output is the cold build's all the same.
    let entry_of =
        |diff_id: &str| outline_entries(&ws.path("cache")).into_iter().find(|(_, d)| d == diff_id).unwrap().0;
    let (alpha, bravo, delta) = (entry_of(&blobs[0].1), entry_of(&blobs[1].1), entry_of(&blobs[3].1));
    fs::write(&alpha, b"{\"diff_id\":").unwrap();
    let bravo_entry = json(&fs::read_to_string(&bravo).unwrap());
    let wrong_size =
        format!(r#"{{"diff_id":"{}","size":{}}}"#, blobs[1].1, bravo_entry["size"].as_u64().unwrap() + 512);
    fs::write(&bravo, wrong_size).unwrap();
    let delta_entry = json(&fs::read_to_string(&delta).unwrap());
    let wrong_tar = format!(r#"{{"diff_id":"{}","size":{}}}"#, blobs[2].1, delta_entry["size"]);
    fs::write(&delta, wrong_tar).unwrap();
    let (rebuilt, stderr) = convert_cached(&ws, &v2, "rebuilt-again", &["--previous", &previous]);
    assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{rebuilt}");
    // Charlie's new layer was recorded by the rebuild before.
    assert_eq!(rebuilt["layers_recognised"], blobs.len() - 2, "all but alpha's and bravo's: {rebuilt}");
    assert_eq!(rebuilt["blobs_taken"], PACKAGES.len() - 2, "alpha and bravo, hashed: {rebuilt}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_same_layout(&ws, "cold", "rebuilt-again");
    assert_eq!(json(&fs::read_to_string(&delta).unwrap()), delta_entry, "delta's entry is corrected");
    assert_eq!(json(&fs::read_to_string(&alpha).unwrap())["diff_id"], blobs[0].1.as_str(), "alpha's is rewritten");
}

#[test]
fn a_rebuild_from_outlines_writes_what_a_cold_build_writes_whatever_the_threads_or_the_compression() {
    let ws = Workspace::new();
    let v1 = tarball(&ws, &rootfs(&ws, "v1", None), "v1.tar.gz");
    let v2 = tarball(&ws, &rootfs(&ws, "v2", Some("charlie")), "v2.tar.gz");
    // zstd:chunked is the compression whose layers are put together again entry by entry from the outline.
    for (compression, threads) in [("gzip", &["1", "2"][..]), ("zstd:chunked", &["2"][..])] {
        let c = ["--compression", compression];
        let name = compression.replace(':', "-");
        let (built, _) = convert_cached(&ws, &v1, &format!("{name}-v1"), &c);
        let layers = built["layers"].as_array().unwrap().len();
        // The same rootfs converted again, with the cache recording outlines or without it, at 1 and 2 threads:
        // the same image, byte for byte.
        let (plain, _) = convert(&ws, &v1, &format!("{name}-v1-plain"), &c);
        assert_eq!(built["manifest_digest"], plain["manifest_digest"], "{compression}");
        for threads in ["1", "2"] {
            let extra = [&c[..], &["--threads", threads]].concat();
            let (again, _) = convert_cached(&ws, &v1, &format!("{name}-v1-{threads}"), &extra);
            assert_eq!(again["manifest_digest"], plain["manifest_digest"], "{compression}, {threads} threads");
            assert_same_layout(&ws, &format!("{name}-v1-plain"), &format!("{name}-v1-{threads}"));
        }
        let (cold, _) = convert(&ws, &v2, &format!("{name}-cold"), &c);
        for &threads in threads {
            let out = format!("{name}-rebuilt-{threads}");
            let previous = layout_ref(&ws, &format!("{name}-v1"));
            let extra = [&c[..], &["--previous", &previous, "--threads", threads]].concat();
            let (rebuilt, stderr) = convert_cached(&ws, &v2, &out, &extra);
            let what = format!("{compression}, {threads} threads: {rebuilt}");
            assert_eq!(rebuilt["manifest_digest"], cold["manifest_digest"], "{what}");
            // Charlie's changed layer is recorded by the first rebuild, and recognised by every later one: an outline
            // says nothing of compression.
            let recognised = rebuilt["layers_recognised"].as_u64().unwrap() as usize;
            let first = compression == "gzip" && threads == "1";
            assert_eq!(recognised, if first { layers - 1 } else { layers }, "{what}");
            // zstd:chunked layers are always compressed afresh (their table of contents is written as they are).
            let taken = if compression == "zstd:chunked" { 0 } else { PACKAGES.len() - 1 };
            assert_eq!(rebuilt["blobs_taken"], taken, "{what}");
            assert!(stderr.is_empty(), "{stderr}");
            assert_same_layout(&ws, &format!("{name}-cold"), &out);
        }
    }
}

#[test]
fn the_cache_is_under_xdg_cache_home_else_home_and_an_empty_setting_keeps_none() {
    let ws = Workspace::new();
    let v1 = rootfs(&ws, "v1", None);
    let layers = PACKAGES.len() + 1;
    let entries = |dir: PathBuf| fs::read_dir(dir.join("imgcraft/layers/sha256")).map_or(0, Iterator::count);
    let mut command = ws.cmd();
    command.env_remove("IMGCRAFT_CACHE_DIR").env("XDG_CACHE_HOME", ws.path("xdg"));
    run_convert(command, &ws, &v1, "out-xdg", &[]);
    assert_eq!(entries(ws.path("xdg")), layers);
    let mut command = ws.cmd();
    command.env_remove("IMGCRAFT_CACHE_DIR").env_remove("XDG_CACHE_HOME").env("HOME", ws.path("home"));
    run_convert(command, &ws, &v1, "out-home", &[]);
    assert_eq!(entries(ws.path("home/.cache")), layers);
    let mut command = ws.cmd();
    command.env("IMGCRAFT_CACHE_DIR", "").env("XDG_CACHE_HOME", ws.path("none")).env("HOME", ws.path("none"));
    run_convert(command, &ws, &v1, "out-none", &[]);
    assert!(!ws.path("none").exists());
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
