//! Golden digests: the bytes imgcraft writes for a fixed set of inputs, pinned in `tests/golden/digests.txt`.
//!
//! The inputs are made here, by the tests' own tar writer, from constants alone (no Debian package, no host file), so
//! that the digests are the same on every machine. Each case converts one of them the way users do and records the
//! manifest digest (which covers the config and every layer) and, for archives, the sha256 of the whole file. An
//! output change must be deliberate: in its own commit, saying why, with the file rewritten by
//! `IMGCRAFT_UPDATE_GOLDEN=1 cargo test --test golden`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tar::{Entry, Kind, archive};
use common::{bin, run};
use sha2::{Digest, Sha256};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/digests.txt");

/// Deterministic bytes that compress like real files: words from a small vocabulary chosen by a linear
/// congruential generator, so that layers compress like real files without being all zeros.
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] =
        &["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"];
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.extend(WORDS[(state >> 33) as usize % WORDS.len()].as_bytes());
        out.push(if (state >> 20) % 11 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// An ELF executable's first bytes for `machine` (64-bit little-endian), then some payload: enough for the
/// architecture detector, which reads only the header.
fn elf(machine: u16, seed: u64) -> Vec<u8> {
    let mut head = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    head.extend(2u16.to_le_bytes());
    head.extend(machine.to_le_bytes());
    head.extend(text(seed, 4000));
    head
}

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Which package owns which path in every database the cases write: (name, version, paths).
const PACKAGES: &[(&str, &str, &[&str])] = &[
    ("busybox", "1.36.1-r0", &["bin/busybox", "bin/sh"]),
    ("shadow", "4.13-r1", &["etc/passwd", "etc/group", "usr/bin/passwd", "usr/bin/chpasswd"]),
    ("libdata", "2.1-r0", &["usr/lib/libdata.so.1", "usr/lib/libdata.so"]),
    ("iputils", "20240117-r0", &["usr/bin/ping"]),
];

/// The rootfs every case starts from: every kind of entry and attribute a layer carries.
fn rootfs(machine: u16, libdata_seed: u64) -> Vec<Entry> {
    // cap_net_raw in a v2 `security.capability` (VFS_CAP_REVISION_2, permitted bit 13).
    let capability = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let long = format!("usr/share/doc/{}/README", "a-directory-name-long-enough-to-need-pax-".repeat(3));
    vec![
        Entry::dir("bin"),
        Entry::file("bin/busybox", &elf(machine, 1)).mode(0o755),
        Entry::symlink("bin/sh", "busybox"),
        Entry::dir("dev"),
        Entry::new("dev/initctl", Kind::Fifo).mode(0o600),
        Entry::new("dev/null", Kind::Char(1, 3)).mode(0o666),
        Entry::dir("etc"),
        Entry::file("etc/group", b"root:x:0:\napp:x:1000:\n"),
        Entry::file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"),
        Entry::dir("home"),
        Entry::dir("home/app").owner(1000, 1000).mode(0o700),
        Entry::file("home/app/.profile", b"export PS1='$ '\n").owner(1000, 1000),
        Entry::dir("tmp").mode(0o1777),
        Entry::dir("usr"),
        Entry::dir("usr/bin"),
        // Sorted by name, tar meets chpasswd first: it is the file, passwd the hardlink.
        Entry::file("usr/bin/chpasswd", &text(2, 3000)).mode(0o4755),
        Entry::new("usr/bin/passwd", Kind::Hardlink("usr/bin/chpasswd".into())).mode(0o4755),
        Entry::file("usr/bin/ping", &text(3, 2000)).mode(0o755).xattr("security.capability", &capability),
        Entry::dir("usr/lib"),
        Entry::file("usr/lib/libdata.so.1", &text(libdata_seed, 300_000)).mode(0o755),
        Entry::symlink("usr/lib/libdata.so", "libdata.so.1"),
        Entry::dir("usr/share"),
        Entry::file("usr/share/comment", b"with a user xattr\n").xattr("user.comment", b"kept"),
        Entry::file("usr/share/future", b"from 2033\n").mtime(2_000_000_000),
        Entry::file("usr/share/old", b"from 2020\n").mtime(1_600_000_000),
        Entry::dir("usr/share/doc"),
        Entry::dir(&long[..long.len() - "/README".len()]),
        Entry::file(&long, &text(4, 500)),
        Entry::dir("var"),
        Entry::dir("var/lib"),
    ]
}

/// A package database in dpkg's or opkg's format under `var/lib/TOOL`.
fn database(tool: &str) -> Vec<Entry> {
    let dir = format!("var/lib/{tool}");
    let (state, size_unit) =
        if tool == "dpkg" { ("install ok installed", 1024) } else { ("install user installed", 1) };
    let mut status = String::new();
    let mut entries = vec![Entry::dir(&dir), Entry::dir(&format!("{dir}/info"))];
    for (name, version, paths) in PACKAGES {
        let depends = if *name == "busybox" { String::new() } else { "Depends: busybox\n".to_string() };
        status += &format!(
            "Package: {name}\nVersion: {version}\n{depends}Status: {state}\nArchitecture: amd64\n\
             Installed-Size: {}\n\n",
            paths.len() * 100 * size_unit / 1024
        );
        let mut list = String::new();
        for path in *paths {
            list += &format!("/{path}\n");
        }
        entries.push(Entry::file(&format!("{dir}/info/{name}.list"), list.as_bytes()));
    }
    entries.push(Entry::file(&format!("{dir}/status"), status.as_bytes()));
    entries
}

/// A Yocto PKGDATA_DIR for [`PACKAGES`] and the image manifest naming them.
fn pkgdata(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("pkgdata");
    std::fs::create_dir_all(dir.join("runtime")).unwrap();
    std::fs::create_dir_all(dir.join("runtime-reverse")).unwrap();
    let mut manifest = String::new();
    for (name, version, paths) in PACKAGES {
        let files: Vec<String> = paths.iter().map(|p| format!("\"/{p}\": 100")).collect();
        let rdepends = if *name == "busybox" { String::new() } else { format!("RDEPENDS:{name}: busybox\n") };
        let runtime = format!(
            "PKG:{name}: {name}\nPKGV:{name}: {version}\n{rdepends}PKGSIZE:{name}: {}\nFILES_INFO:{name}: {{{}}}\n",
            paths.len() * 100,
            files.join(", ")
        );
        std::fs::write(dir.join("runtime").join(name), runtime).unwrap();
        std::os::unix::fs::symlink(format!("../runtime/{name}"), dir.join("runtime-reverse").join(name)).unwrap();
        manifest += &format!("{name} core2-64 {version}\n");
    }
    let manifest_path = root.join("image.manifest");
    std::fs::write(&manifest_path, manifest).unwrap();
    (dir, manifest_path)
}

/// Sorted by path, as Yocto's `tar --sort=name` writes: the databases go in among the rest.
fn tarball(dir: &Path, name: &str, mut entries: Vec<Entry>) -> PathBuf {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let path = dir.join(name);
    std::fs::write(&path, archive(&entries)).unwrap();
    path
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The manifest (or index) digest an `oci:` layout's index.json points at for `tag`.
fn layout_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let found = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{}: no manifest tagged {tag}", layout.display()));
    found["digest"].as_str().unwrap().to_string()
}

/// How many layers the manifest tagged `golden` in `layout` has: the layered cases must really be layered.
fn layer_count(layout: &Path) -> usize {
    let digest = layout_digest(layout, "golden");
    let blob = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
    manifest["layers"].as_array().unwrap().len()
}

/// rootfs2image with no environment that could change its output.
fn converter() -> Command {
    let mut command = bin();
    command.env_remove("SOURCE_DATE_EPOCH").arg("-q");
    command
}

/// Every case, converted now: case name -> digest.
fn digests() -> BTreeMap<String, String> {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let plain = tarball(dir, "plain.tar", rootfs(EM_X86_64, 5));
    let mut dpkg_entries = rootfs(EM_X86_64, 5);
    dpkg_entries.extend(database("dpkg"));
    let dpkg = tarball(dir, "dpkg.tar", dpkg_entries);
    let mut dpkg_changed = rootfs(EM_X86_64, 6);
    dpkg_changed.extend(database("dpkg"));
    let dpkg_changed = tarball(dir, "dpkg-changed.tar", dpkg_changed);
    let mut opkg_entries = rootfs(EM_X86_64, 5);
    opkg_entries.extend(database("opkg"));
    let opkg = tarball(dir, "opkg.tar", opkg_entries);
    let arm64 = tarball(dir, "arm64.tar", rootfs(EM_AARCH64, 5));
    // A layer of a dozen gzip members (256 KiB blocks): pins how they are cut and joined.
    let mut big_entries = rootfs(EM_X86_64, 5);
    big_entries.push(Entry::file("usr/share/big", &text(7, 2_500_000)));
    let big = tarball(dir, "big.tar", big_entries);
    let (pkgdata_dir, manifest) = pkgdata(dir);
    // The derived rootfs of --base: a file changed, one added, one removed.
    let mut derived: Vec<Entry> = rootfs(EM_X86_64, 5).into_iter().filter(|e| e.path != "usr/share/old").collect();
    for entry in derived.iter_mut().filter(|e| e.path == "etc/passwd") {
        entry.kind = Kind::File(b"root:x:0:0:root:/root:/bin/sh\n".to_vec());
    }
    derived.push(Entry::file("etc/hostname", b"device\n"));
    let derived = tarball(dir, "derived.tar", derived);

    let s = |p: &Path| p.display().to_string();
    let layout = |name: &str| format!("oci:{}:golden", dir.join(name).display());
    let config: &[&str] = &[
        "--entrypoint",
        "[\"/bin/busybox\",\"sh\"]",
        "--cmd",
        "-c 'echo hello'",
        "--env",
        "LANG=C.UTF-8",
        "--label",
        "org.opencontainers.image.title=golden",
        "--annotation",
        "org.example.note=pinned",
        "--expose",
        "8080/tcp",
        "--volume",
        "/data",
        "--workdir",
        "/home/app",
        "--user",
        "app",
        "--stop-signal",
        "SIGINT",
        "--author",
        "imgcraft tests",
        "--tag",
        "golden/config:1",
    ];
    let epoch: &[&str] = &["--source-date-epoch", "1800000000"];
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("single-gzip", vec![s(&plain), "--arch".into(), "amd64".into()]),
        (
            "single-gzip-level9-1thread",
            vec![
                s(&plain),
                "--arch".into(),
                "amd64".into(),
                "--compression-level".into(),
                "9".into(),
                "--threads".into(),
                "1".into(),
            ],
        ),
        ("single-gzip-members", vec![s(&big), "--arch".into(), "amd64".into()]),
        ("single-zstd", vec![s(&plain), "--arch".into(), "amd64".into(), "--compression".into(), "zstd".into()]),
        ("single-uncompressed-epoch", {
            let mut a = vec![s(&plain), "--arch".into(), "amd64".into(), "--compression".into(), "none".into()];
            a.extend(epoch.iter().map(|s| s.to_string()));
            a
        }),
        ("config-options", {
            let mut a = vec![s(&plain), "--arch".into(), "amd64".into()];
            a.extend(config.iter().map(|s| s.to_string()));
            a
        }),
        ("detected-arm64", vec![s(&arm64)]),
        ("packages-dpkg", vec![s(&dpkg), "--arch".into(), "amd64".into()]),
        ("packages-dpkg-zstd", vec![s(&dpkg), "--arch".into(), "amd64".into(), "--compression".into(), "zstd".into()]),
        (
            "packages-dpkg-zstd-chunked",
            vec![s(&dpkg), "--arch".into(), "amd64".into(), "--compression".into(), "zstd:chunked".into()],
        ),
        ("packages-opkg", vec![s(&opkg), "--arch".into(), "amd64".into()]),
        (
            "packages-pkgdata",
            vec![
                s(&plain),
                "--arch".into(),
                "amd64".into(),
                "--pkgdata".into(),
                s(&pkgdata_dir),
                "--package-manifest".into(),
                s(&manifest),
            ],
        ),
        ("packages-max-layers-2", vec![s(&dpkg), "--arch".into(), "amd64".into(), "--max-layers".into(), "2".into()]),
        (
            "paths-rules",
            vec![
                s(&plain),
                "--arch".into(),
                "amd64".into(),
                "--layer".into(),
                "libs=usr/lib/**".into(),
                "--layer".into(),
                "config=etc/**,home/**".into(),
            ],
        ),
    ];
    let mut found = BTreeMap::new();
    for (name, args) in &cases {
        run(converter().args(args).args(["-o", &layout(name)]));
        found.insert(name.to_string(), layout_digest(&dir.join(name), "golden"));
        let layers = layer_count(&dir.join(name));
        match *name {
            "packages-max-layers-2" => assert_eq!(layers, 2, "{name}"),
            // Four packages (busybox alone at the bottom) and the unowned rest on top.
            n if n.starts_with("packages-") => assert!(layers >= 3, "{name}: {layers} layers"),
            "paths-rules" => assert_eq!(layers, 3, "{name}"),
            _ => assert_eq!(layers, 1, "{name}"),
        }
    }
    // Threads never change the output, on the shared compression pool of a layered image too (gzip and zstd).
    for (case, compression) in
        [("packages-dpkg", "gzip"), ("packages-dpkg-zstd", "zstd"), ("packages-dpkg-zstd-chunked", "zstd:chunked")]
    {
        for threads in ["1", "2"] {
            let name = format!("{case}-threads-{threads}");
            run(converter()
                .args([s(&dpkg).as_str(), "--arch", "amd64", "--compression", compression, "--threads", threads, "-o"])
                .arg(layout(&name)));
            assert_eq!(layout_digest(&dir.join(&name), "golden"), found[case], "{name}");
        }
    }
    // Cases built on earlier outputs.
    run(converter().args([s(&dpkg_changed), "--arch".into(), "amd64".into()]).args([
        "--previous",
        &layout("packages-dpkg"),
        "-o",
        &layout("previous-dpkg"),
    ]));
    found.insert("previous-dpkg".into(), layout_digest(&dir.join("previous-dpkg"), "golden"));
    run(converter().args([s(&derived), "--arch".into(), "amd64".into()]).args([
        "--base",
        &layout("config-options"),
        "-o",
        &layout("base-derived"),
    ]));
    found.insert("base-derived".into(), layout_digest(&dir.join("base-derived"), "golden"));
    // The base's layer, the whiteout of usr/share/old in a layer of its own, then what differs.
    assert_eq!(layer_count(&dir.join("base-derived")), 3, "base-derived");
    run(bin().args(["index", "-o", &layout("index"), &layout("single-gzip"), &layout("detected-arm64")]));
    found.insert("index".into(), layout_digest(&dir.join("index"), "golden"));
    // Archives: the whole file, so that the sinks' own bytes (tar headers, index.json, manifest.json) are pinned.
    for (name, dest) in [
        ("oci-archive", "oci-archive:out.oci.tar:golden/a:1"),
        ("docker-archive", "docker-archive:out.docker.tar:golden/a:1"),
    ] {
        run(converter().current_dir(dir).args([s(&dpkg), "--arch".into(), "amd64".into(), "-o".into(), dest.into()]));
        let file = dest.split(':').nth(1).unwrap();
        found.insert(format!("{name}-file"), sha256(&std::fs::read(dir.join(file)).unwrap()));
    }
    found
}

#[test]
fn every_output_byte_matches_the_golden_digests() {
    let found = digests();
    let text: String = found.iter().map(|(name, digest)| format!("{name} {digest}\n")).collect();
    if std::env::var_os("IMGCRAFT_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, &text).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(GOLDEN).unwrap_or_else(|e| panic!("{GOLDEN}: {e}"));
    let expected: BTreeMap<String, String> = golden
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, digest)| (name.to_string(), digest.to_string()))
        .collect();
    let mut differences = Vec::new();
    for name in expected.keys().chain(found.keys().filter(|k| !expected.contains_key(*k))) {
        let (want, got) = (expected.get(name), found.get(name));
        if want != got {
            differences.push(format!("{name}: golden {want:?}, now {got:?}"));
        }
    }
    assert!(
        differences.is_empty(),
        "output bytes changed (if deliberate: its own commit, saying why, with IMGCRAFT_UPDATE_GOLDEN=1):\n{}",
        differences.join("\n")
    );
}

#[test]
fn the_same_input_gives_the_same_digests_twice() {
    // Guards the golden file itself: a case whose output varied between runs (a time, a random name) would make the
    // golden digests meaningless.
    assert_eq!(digests(), digests());
}
