//! Hostile rootfs input and tiny bombs (issue 10): names that smuggle a NUL byte, overlayfs xattrs, times no image
//! can say, and small compressed inputs that would take gigabytes. Each is built here at test time, run through the
//! binary, and must end with exit 1, one line naming the input, the entry and the limit, nothing written, and (for
//! the bombs) the child's peak memory under [`MEMORY_BOUND_MIB`].

mod common;

use common::{Workspace, assert_refused};

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

/// The peak resident memory a conversion may reach on any input: the limits in `entry`, `normalize`,
/// `tar_reader`, `compression` and `packages` keep every structure read from input below it.
const MEMORY_BOUND_MIB: u64 = 300;

const BLOCK: usize = 512;

// ---- raw tar blocks, so that an archive can say what no tar writer would ----

/// One ustar header block with its checksum; `size` in octal unless it does not fit.
fn header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14360000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h
}

fn checksummed(mut h: Vec<u8>) -> Vec<u8> {
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(bytes.len().div_ceil(BLOCK) * BLOCK, 0);
    bytes
}

/// An entry with its data.
fn member(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
    let mut out = checksummed(header(name, typeflag, data.len() as u64));
    out.extend_from_slice(&padded(data.to_vec()));
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    member(name.as_bytes(), b'0', data)
}

fn dir(name: &str) -> Vec<u8> {
    member(name.as_bytes(), b'5', b"")
}

/// A link entry (`1` hardlink, `2` symlink) with a target that fits the ustar field.
fn link(name: &str, typeflag: u8, target: &str) -> Vec<u8> {
    let mut h = header(name.as_bytes(), typeflag, 0);
    h[157..157 + target.len()].copy_from_slice(target.as_bytes());
    checksummed(h)
}

/// One PAX record, `"<length> <key>=<value>\n"`.
fn record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut length = body + body.to_string().len();
    if length.to_string().len() > body.to_string().len() {
        length += 1;
    }
    [format!("{length} ").as_bytes(), key, b"=", value, b"\n"].concat()
}

/// A PAX header (`x` local, `g` global) holding `records`.
fn pax(typeflag: u8, records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
    member(b"PaxHeaders/x", typeflag, &data)
}

fn tar(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = parts.concat();
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

// ---- running the binary ----

/// What a run showed: how it ended, stderr, and peak resident memory in MiB.
struct Outcome {
    status: ExitStatus,
    stderr: String,
    peak_mib: u64,
}

impl Workspace {
    /// Converts `input` to `oci:out`, with `extra` options and environment.
    fn convert(&self, input: &Path, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut args = vec![input.as_os_str()];
        args.extend(["--arch", "amd64", "-o", "oci:out"].iter().chain(extra).map(std::ffi::OsStr::new));
        self.run(&args, env)
    }

    /// Runs the binary with `args` in the workspace and measures its peak RSS (see [`peak_rss_helper`]).
    fn run(&self, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Outcome {
        let spec = serde_json::json!({
            "bin": env!("CARGO_BIN_EXE_rootfs2image"),
            "dir": self.dir.path(),
            "args": args.iter().map(|a| a.to_str().unwrap()).collect::<Vec<_>>(),
            "env": env.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
        });
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "peak_rss_helper", "--nocapture", "--test-threads=1", "-q"])
            .env(HELPER_ENV, spec.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .find_map(|l| l.strip_prefix(HELPER_REPORT))
            .unwrap_or_else(|| panic!("no report from the helper: {stdout}"));
        let (status, kib) = report.split_once(' ').unwrap();
        Outcome {
            status: ExitStatus::from_raw(status.parse().unwrap()),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            peak_mib: kib.parse::<u64>().unwrap() / 1024,
        }
    }

    /// Converts `input` to an OCI layout that must not appear: refused in a line of under 1000 bytes holding every
    /// `expected` piece, nothing new in the workspace. Returns the outcome for further checks.
    fn refused(&self, input: &Path, extra: &[&str], expected: &[&str]) -> Outcome {
        let mut outcome = None;
        assert_refused(&[self.dir.path()], expected, || {
            let out = self.convert(input, extra, &[]);
            let output = Output { status: out.status, stdout: Vec::new(), stderr: out.stderr.clone().into_bytes() };
            outcome = Some(out);
            output
        });
        let out = outcome.unwrap();
        assert!(out.stderr.len() < 1000, "a long line: {}", out.stderr);
        out
    }

    /// As [`Workspace::refused`], and the peak memory stayed under the bound.
    fn refused_within_memory(&self, input: &Path, extra: &[&str], expected: &[&str]) {
        let out = self.refused(input, extra, expected);
        eprintln!("{}: peak RSS {} MiB", input.display(), out.peak_mib);
        assert!(
            out.peak_mib < MEMORY_BOUND_MIB,
            "peak RSS {} MiB >= {MEMORY_BOUND_MIB} MiB for {}: {}",
            out.peak_mib,
            input.display(),
            out.stderr
        );
    }
}

/// Set to a JSON `{bin, dir, args, env}`: [`peak_rss_helper`] runs that command and reports on it.
const HELPER_ENV: &str = "IMGCRAFT_TEST_PEAK_RSS";
const HELPER_REPORT: &str = "peak-rss-report: ";

/// Not a test of its own: the test binary re-runs itself with [`HELPER_ENV`] set to measure one conversion. The
/// peak RSS (ru_maxrss) of a process includes what its parent held when it was spawned, and this test binary
/// builds bombs of hundreds of MiB; spawned from this small helper process, the binary's figure is its own.
#[test]
// The child is reaped by wait4, which std's Child does not know of.
#[allow(clippy::zombie_processes)]
fn peak_rss_helper() {
    let Ok(spec) = std::env::var(HELPER_ENV) else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let mut command = Command::new(spec["bin"].as_str().unwrap());
    command.current_dir(spec["dir"].as_str().unwrap()).env_remove("SOURCE_DATE_EPOCH");
    command.args(spec["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()));
    for pair in spec["env"].as_array().unwrap() {
        command.env(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
    }
    let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child with valid out-pointers; std's Child is not waited on afterwards.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    // The wait status as wait4 gave it, and ru_maxrss (in KiB on Linux).
    println!("{HELPER_REPORT}{status} {}", usage.ru_maxrss);
}

fn base_rootfs() -> Vec<Vec<u8>> {
    vec![dir("etc"), file("etc/hostname", b"device\n")]
}

// ---- finding 1: NUL bytes in names ----

#[test]
fn names_and_link_targets_with_a_nul_byte_are_refused_wherever_they_enter() {
    let ws = Workspace::new();
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        ("pax-dotdot.tar", vec![pax(b'x', &[(b"path", b"..\0")]), file("innocent", b"x")], "NUL"),
        ("pax-inner.tar", vec![pax(b'x', &[(b"path", b"a/..\0x")]), file("innocent", b"x")], "NUL"),
        (
            "pax-symlink.tar",
            vec![pax(b'x', &[(b"linkpath", b"../\0etc")]), link("etc/l", b'2', "innocent")],
            "symlink target holds a NUL",
        ),
        (
            "pax-hardlink.tar",
            vec![pax(b'x', &[(b"linkpath", b"etc/hostname\0x")]), link("etc/h", b'1', "etc/hostname")],
            "hardlink target holds a NUL",
        ),
        ("gnu-long-name.tar", vec![member(b"././@LongLink", b'L', b"..\0/x\0"), file("innocent", b"x")], "NUL"),
        (
            "gnu-long-link.tar",
            vec![member(b"././@LongLink", b'K', b"..\0/x\0"), link("etc/l", b'2', "innocent")],
            "symlink target holds a NUL",
        ),
        (
            "schily-xattr.tar",
            vec![pax(b'x', &[(b"SCHILY.xattr.user.a\0b", b"v")]), file("etc/x", b"x")],
            "xattr name `user.a\\000b`",
        ),
        (
            "libarchive-xattr.tar",
            vec![pax(b'x', &[(b"LIBARCHIVE.xattr.user.a%00b", b"dg")]), file("etc/x", b"x")],
            "xattr name `user.a\\000b`",
        ),
    ];
    for (name, parts, problem) in cases {
        let mut all = base_rootfs();
        all.extend(parts);
        let input = ws.write(name, &tar(&all));
        let out = ws.refused(&input, &[], &[&format!("`{}`", input.display()), problem]);
        assert!(out.stderr.contains("entry `"), "no entry named: {}", out.stderr);
        std::fs::remove_file(input).unwrap();
    }
}

/// Writes `bytes` as a blob of the OCI layout at `layout`, returning its digest and size.
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Replaces the only layer of the uncompressed single-layer image in the layout at `layout` with `tar`, keeping
/// every digest true.
fn replace_layer(layout: &Path, tar: &[u8]) {
    let blob = |digest: &serde_json::Value| layout.join("blobs/sha256").join(&digest.as_str().unwrap()[7..]);
    let mut index = read_json(&layout.join("index.json"));
    let mut manifest = read_json(&blob(&index["manifests"][0]["digest"]));
    let mut config = read_json(&blob(&manifest["config"]["digest"]));
    let (layer, size) = put_blob(layout, tar);
    manifest["layers"][0]["digest"] = layer.clone().into();
    manifest["layers"][0]["size"] = size.into();
    config["rootfs"]["diff_ids"][0] = layer.into();
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = put_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_base_layer_with_a_nul_in_a_name_is_refused() {
    let ws = Workspace::new();
    let good = ws.write("good.tar", &tar(&base_rootfs()));
    let made = ws.convert(&good, &["--compression", "none", "-o", "oci:base"], &[]);
    assert_eq!(made.status.code(), Some(0), "{}", made.stderr);
    let mut hostile = base_rootfs();
    hostile.extend([pax(b'x', &[(b"path", b"etc/..\0x")]), file("etc/innocent", b"x")]);
    replace_layer(&ws.dir.path().join("base"), &tar(&hostile));
    ws.refused(&good, &["--base", "oci:base"], &["oci:base", "entry `etc/..\\000x`", "NUL"]);
}

#[test]
fn a_base_layer_with_an_overlay_xattr_is_refused() {
    // The base's layers go into the image unchanged, so overlayfs's own state in them would hide what lies below.
    let ws = Workspace::new();
    let good = ws.write("good.tar", &tar(&base_rootfs()));
    let made = ws.convert(&good, &["--compression", "none", "-o", "oci:base"], &[]);
    assert_eq!(made.status.code(), Some(0), "{}", made.stderr);
    let mut hostile = base_rootfs();
    hostile.extend([pax(b'x', &[(b"SCHILY.xattr.trusted.overlay.opaque", b"y")]), dir("var")]);
    replace_layer(&ws.dir.path().join("base"), &tar(&hostile));
    ws.refused(&good, &["--base", "oci:base"], &["oci:base", "entry `var`", "trusted.overlay.opaque"]);
}

#[test]
fn a_base_whose_entries_exceed_the_memory_kept_for_names_is_refused() {
    // 12,000 paths of 4,000 bytes, each allowed alone: the base's merged tree keeps every one, so their total is
    // bounded as a rootfs's own entries are.
    let ws = Workspace::new();
    let good = ws.write("good.tar", &tar(&base_rootfs()));
    let made = ws.convert(&good, &["--compression", "none", "-o", "oci:base"], &[]);
    assert_eq!(made.status.code(), Some(0), "{}", made.stderr);
    let stem = "d/".repeat(1990);
    let mut parts = base_rootfs();
    for i in 0..12_000u32 {
        parts.push(pax(b'x', &[(b"path", format!("{stem}{i:08}").as_bytes())]));
        parts.push(file("x", b""));
    }
    replace_layer(&ws.dir.path().join("base"), &tar(&parts));
    drop(parts);
    ws.refused_within_memory(&good, &["--base", "oci:base"], &["oci:base", "64 MiB"]);
}

// ---- finding 4: tiny inputs that would take gigabytes ----

/// A zstd-compressed tar streamed to a file: `write` gets the encoder, so that hundreds of MiB never sit in memory.
fn zstd_tar(ws: &Workspace, name: &str, write: impl FnOnce(&mut dyn Write)) -> PathBuf {
    let path = ws.dir.path().join(name);
    let mut encoder = zstd::stream::write::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    write(&mut encoder);
    encoder.write_all(&[0u8; 2 * BLOCK]).unwrap();
    encoder.finish().unwrap();
    path
}

/// Writes a file entry of `size` bytes made by repeating `line`.
fn repeated_file(out: &mut dyn Write, name: &str, size: u64, line: &[u8]) {
    out.write_all(&checksummed(header(name.as_bytes(), b'0', size))).unwrap();
    let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    out.write_all(&vec![0u8; (BLOCK - (size as usize % BLOCK)) % BLOCK]).unwrap();
}

const DPKG_STATUS: &[u8] = b"Package: big\nStatus: install ok installed\nArchitecture: amd64\n\n";

#[test]
fn a_huge_dpkg_list_file_is_refused_before_it_is_held() {
    let ws = Workspace::new();
    let input = zstd_tar(&ws, "dpkg-list-bomb.tar.zst", |out| {
        out.write_all(&file("var/lib/dpkg/status", DPKG_STATUS)).unwrap();
        repeated_file(out, "var/lib/dpkg/info/big.list", 250 << 20, b"/usr/bin/a\n");
    });
    assert!(std::fs::metadata(&input).unwrap().len() < 100 << 10, "the bomb should be tiny");
    ws.refused_within_memory(&input, &[], &["dpkg-list-bomb.tar.zst", "big.list", "16 MiB"]);
}

#[test]
fn many_database_files_are_refused_past_their_total() {
    let ws = Workspace::new();
    let input = zstd_tar(&ws, "dpkg-many.tar.zst", |out| {
        out.write_all(&file("var/lib/dpkg/status", DPKG_STATUS)).unwrap();
        for i in 0..8 {
            repeated_file(out, &format!("var/lib/dpkg/info/p{i}.list"), 15 << 20, b"/usr/bin/a\n");
        }
    });
    ws.refused_within_memory(&input, &[], &["dpkg-many.tar.zst", "48 MiB accepted together"]);
}

#[test]
fn a_database_listing_millions_of_paths_is_refused_past_the_ownership_limit() {
    let ws = Workspace::new();
    // Three packages, three lists of 1.3 million distinct paths each: under the file and total limits, over the
    // memory the ownership may take.
    let status = b"Package: big0\nStatus: install ok installed\n\nPackage: big1\nStatus: install ok installed\n\n\
        Package: big2\nStatus: install ok installed\n\n";
    let input = zstd_tar(&ws, "dpkg-paths.tar.zst", |out| {
        out.write_all(&file("var/lib/dpkg/status", status)).unwrap();
        for part in 0..3u32 {
            let lines: Vec<u8> = (0..1_300_000u32).flat_map(|i| format!("/p{part}/{i:07}\n").into_bytes()).collect();
            out.write_all(&file(&format!("var/lib/dpkg/info/big{part}.list"), &lines)).unwrap();
        }
    });
    ws.refused_within_memory(&input, &[], &["dpkg-paths.tar.zst", "more paths than the 48 MiB kept in memory"]);
}

#[test]
fn a_path_longer_than_path_max_is_refused_and_shown_cut() {
    let ws = Workspace::new();
    // 1,500 entries with 100 KiB PAX paths: refused at the first, before any is kept.
    let input = zstd_tar(&ws, "long-paths.tar.zst", |out| {
        let long = vec![b'a'; 100 << 10];
        for _ in 0..1500 {
            out.write_all(&pax(b'x', &[(b"path", &long)])).unwrap();
            out.write_all(&file("x", b"")).unwrap();
        }
    });
    ws.refused_within_memory(
        &input,
        &[],
        &["long-paths.tar.zst", "aaa... (102400 bytes)", "more than the 4096 allowed"],
    );
}

#[test]
fn entries_past_the_memory_kept_for_names_are_refused() {
    // Paths of 4,000 bytes, each allowed alone: the normaliser keeps every one, so their total is bounded.
    let ws = Workspace::new();
    let input = zstd_tar(&ws, "many-long-paths.tar.zst", |out| {
        let stem = "d/".repeat(1990);
        for i in 0..40_000u32 {
            let path = format!("{stem}{i:08}");
            out.write_all(&pax(b'x', &[(b"path", path.as_bytes())])).unwrap();
            out.write_all(&file("x", b"")).unwrap();
        }
    });
    ws.refused_within_memory(&input, &["--layers", "single"], &["many-long-paths.tar.zst", "64 MiB"]);
    // Several layers keep a record of every path too (where it went, the directories each layer holds).
    let layered = ["--layers", "paths", "--layer", "odd=**/*[13579]", "--layer", "even=**/*[02468]"];
    ws.refused_within_memory(&input, &layered, &["many-long-paths.tar.zst", "64 MiB"]);
}

#[test]
fn a_rootfs_near_every_limit_at_once_stays_within_memory() {
    // A package database just under the ownership limit, split over 64 packages, then entries with 4,000-byte
    // paths until the normaliser's limit: the ownership, the normaliser's and the layers' records all at once.
    let ws = Workspace::new();
    let input = zstd_tar(&ws, "combined.tar.zst", |out| {
        let status: Vec<u8> =
            (0..64).flat_map(|i| format!("Package: big{i}\nStatus: install ok installed\n\n").into_bytes()).collect();
        out.write_all(&file("var/lib/dpkg/status", &status)).unwrap();
        for part in 0..64 {
            let lines: Vec<u8> = (0..9500).flat_map(|i| format!("/p{part:02}/{i:05}\n").into_bytes()).collect();
            out.write_all(&file(&format!("var/lib/dpkg/info/big{part}.list"), &lines)).unwrap();
        }
        let stem = "d/".repeat(1990);
        for i in 0..40_000u32 {
            out.write_all(&pax(b'x', &[(b"path", format!("{stem}{i:08}").as_bytes())])).unwrap();
            out.write_all(&file("x", b"")).unwrap();
        }
    });
    ws.refused_within_memory(&input, &["--layers", "packages"], &["combined.tar.zst", "64 MiB"]);
}

#[test]
fn deep_directories_carried_by_many_layers_are_refused_past_the_layer_records_limit() {
    // 2,000 nested directories (4 MB of paths), then one file in each of 60 layers: every layer would carry all
    // 2,000 as parent stubs.
    let ws = Workspace::new();
    let input = zstd_tar(&ws, "deep.tar.zst", |out| {
        let mut path = String::new();
        for _ in 0..2000 {
            path.push_str(if path.is_empty() { "d" } else { "/d" });
            out.write_all(&pax(b'x', &[(b"path", path.as_bytes())])).unwrap();
            out.write_all(&dir("d")).unwrap();
        }
        for i in 0..60 {
            let file_path = format!("{path}/f{i:02}");
            out.write_all(&pax(b'x', &[(b"path", file_path.as_bytes())])).unwrap();
            out.write_all(&file("f", b"x")).unwrap();
        }
    });
    let mut args: Vec<String> = vec!["--layers".into(), "paths".into()];
    for i in 0..60 {
        args.extend(["--layer".into(), format!("l{i:02}=**/f{i:02}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ws.refused_within_memory(&input, &args, &["deep.tar.zst", "the layers keep more than 64 MiB"]);
}

#[test]
fn global_pax_headers_and_xattrs_past_linux_limits_are_refused() {
    let ws = Workspace::new();
    let value = vec![b'v'; 60 << 10];
    let mut global = Vec::new();
    for i in 0..16 {
        global.push(pax(b'g', &[(format!("SCHILY.xattr.user.g{i}").as_bytes(), &value)]));
    }
    let mut parts = base_rootfs();
    parts.extend(global);
    for i in 0..1000 {
        parts.push(file(&format!("etc/f{i}"), b""));
    }
    let input = ws.write("global.tar.zst", &zstd(&tar(&parts)));
    ws.refused_within_memory(&input, &[], &["global.tar.zst", "global PAX headers", "65536 accepted"]);

    let big_value = vec![b'v'; (64 << 10) + 1];
    type Records = Vec<(Vec<u8>, Vec<u8>)>;
    let cases: Vec<(&str, Records, &str)> = vec![
        ("xattr-value.tar", vec![(b"SCHILY.xattr.user.v".to_vec(), big_value)], "more than the 65536 allowed"),
        (
            "xattr-name.tar",
            vec![([b"SCHILY.xattr.user.".to_vec(), vec![b'n'; 300]].concat(), b"v".to_vec())],
            "more than the 255 allowed",
        ),
        (
            "xattr-total.tar",
            (0..5).map(|i| (format!("SCHILY.xattr.user.t{i}").into_bytes(), vec![b'v'; 60 << 10])).collect(),
            "more than the 262144 allowed",
        ),
    ];
    for (name, records, problem) in cases {
        let records: Vec<(&[u8], &[u8])> = records.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let mut parts = base_rootfs();
        parts.push(pax(b'x', &records));
        parts.push(file("etc/x", b"x"));
        let input = ws.write(name, &tar(&parts));
        ws.refused(&input, &[], &[name, "entry `etc/x`", problem]);
        std::fs::remove_file(input).unwrap();
    }
}

/// Rewrites the LZMA2 dictionary size of an xz stream's first block to 4 GiB, fixing the block header's CRC.
fn with_huge_dictionary(mut xz: Vec<u8>) -> Vec<u8> {
    let start = 12; // the stream header
    let size = (xz[start] as usize + 1) * 4;
    let flags = xz[start + 1];
    let mut at = start + 2;
    let skip_vli = |at: &mut usize| {
        while xz[*at] & 0x80 != 0 {
            *at += 1;
        }
        *at += 1;
    };
    for bit in [0x40, 0x80] {
        if flags & bit != 0 {
            skip_vli(&mut at);
        }
    }
    assert_eq!(xz[at], 0x21, "the first filter should be LZMA2");
    assert_eq!(xz[at + 1], 1, "LZMA2 has one byte of properties");
    xz[at + 2] = 40; // dictionary size code 40: 4 GiB - 1
    let crc = crc32fast::hash(&xz[start..start + size - 4]);
    xz[start + size - 4..start + size].copy_from_slice(&crc.to_le_bytes());
    xz
}

#[test]
fn an_xz_stream_declaring_a_4_gib_dictionary_is_refused_within_memory() {
    let ws = Workspace::new();
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
    encoder.write_all(&tar(&base_rootfs())).unwrap();
    let xz = with_huge_dictionary(encoder.finish().unwrap());
    let input = ws.write("dict.tar.xz", &xz);
    ws.refused_within_memory(&input, &[], &["dict.tar.xz", "more than 128 MiB to decode"]);
}

#[test]
fn a_zstd_frame_declaring_a_2_gib_window_is_refused_within_memory() {
    let ws = Workspace::new();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.write_all(&tar(&base_rootfs())).unwrap();
    let mut frame = encoder.finish().unwrap();
    // Frame_Header_Descriptor without Single_Segment: the next byte is the Window_Descriptor (RFC 8878 3.1.1.1.2).
    assert_eq!(frame[4] & 0x20, 0, "a streamed frame has a window descriptor");
    frame[5] = 21 << 3; // 2^(10 + 21) bytes
    let input = ws.write("window.tar.zst", &frame);
    ws.refused_within_memory(&input, &[], &["window.tar.zst", "window larger than the 128 MiB accepted"]);
}

#[test]
fn a_zstd_stream_cut_before_any_data_is_reported_as_truncated_not_empty() {
    let ws = Workspace::new();
    let whole = zstd(&tar(&base_rootfs()));
    for cut in [6, 9, 12] {
        let input = ws.write("cut.tar.zst", &whole[..cut]);
        let out = ws.refused(&input, &[], &["cut.tar.zst", "zstd"]);
        assert!(!out.stderr.contains("empty input"), "{}", out.stderr);
        assert!(out.stderr.contains("truncated") || out.stderr.contains("corrupt"), "{}", out.stderr);
    }
}

// ---- finding 6: overlayfs xattrs ----

#[test]
fn overlay_xattrs_are_refused_naming_the_entry_and_the_xattr() {
    let ws = Workspace::new();
    for xattr in ["trusted.overlay.opaque", "trusted.overlay.redirect", "user.overlay.opaque"] {
        let mut parts = base_rootfs();
        let key = format!("SCHILY.xattr.{xattr}");
        parts.push(pax(b'x', &[(key.as_bytes(), b"y")]));
        parts.push(dir("d"));
        let input = ws.write("overlay.tar", &tar(&parts));
        ws.refused(&input, &[], &["overlay.tar", "entry `d`", &format!("`{xattr}`"), "overlayfs"]);
    }
}

#[test]
fn overlay_xattrs_in_a_directory_rootfs_are_refused() {
    let ws = Workspace::new();
    let root = ws.dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hostname"), "device\n").unwrap();
    std::fs::create_dir(root.join("d")).unwrap();
    if let Err(e) = xattr::set(root.join("d"), "user.overlay.opaque", b"y") {
        eprintln!("skipped: this file system takes no user xattrs ({e})");
        return;
    }
    ws.refused(&root, &[], &["rootfs`", "entry `d`", "`user.overlay.opaque`", "overlayfs"]);
}

// ---- finding 7: times ----

#[test]
fn times_outside_years_0000_to_9999_are_refused() {
    let ws = Workspace::new();
    for (name, mtime, problem) in [
        ("future.tar", &b"1000000000000000"[..], "outside the years 0000 to 9999"),
        ("past.tar", &b"-100000000000"[..], "outside the years 0000 to 9999"),
        ("wrap.tar", &b"-9223372036854775808.5"[..], "mtime"),
        ("overflow.tar", &b"99999999999999999999"[..], "mtime"),
    ] {
        let mut parts = base_rootfs();
        parts.push(pax(b'x', &[(b"mtime", mtime)]));
        parts.push(file("etc/t", b"t"));
        let input = ws.write(name, &tar(&parts));
        ws.refused(&input, &[], &[name, "entry `etc/t`", problem]);
    }
    // A GNU base-256 mtime of -2^87: too negative for 64 bits.
    let mut h = header(b"etc/t", b'0', 0);
    h[136..148].copy_from_slice(&[0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut parts = base_rootfs();
    parts.push(checksummed(h));
    let input = ws.write("base256.tar", &tar(&parts));
    ws.refused(&input, &[], &["base256.tar", "mtime"]);

    let input = ws.write("ok.tar", &tar(&base_rootfs()));
    let out = ws.refused(&input, &["--source-date-epoch", "1000000000000000"], &["source-date-epoch", "9999"]);
    assert!(!out.stderr.contains("panicked"));
    let out = ws.convert(&input, &[], &[("SOURCE_DATE_EPOCH", "-1e3")]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let out = ws.convert(&input, &[], &[("SOURCE_DATE_EPOCH", "253402300800")]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("SOURCE_DATE_EPOCH"), "{}", out.stderr);
}

// ---- also from the issue ----

#[test]
fn a_device_major_beyond_32_bits_is_refused() {
    let ws = Workspace::new();
    let mut h = header(b"dev/sda", b'4', 0);
    // GNU base-256: 2^32 + 8, which a cast to 32 bits would turn into 8.
    h[329..337].copy_from_slice(&[0x80, 0, 0, 0x01, 0, 0, 0, 0x08]);
    let mut parts = base_rootfs();
    parts.push(dir("dev"));
    parts.push(checksummed(h));
    let input = ws.write("major.tar", &tar(&parts));
    ws.refused(&input, &[], &["major.tar", "entry `dev/sda`", "beyond 32 bits"]);
}

#[test]
fn hardlinks_into_a_replaced_directory_and_entries_below_a_file_are_refused() {
    let ws = Workspace::new();
    let replaced = vec![dir("d"), file("d/f", b"x"), file("d", b"now a file"), link("l", b'1', "d/f")];
    let input = ws.write("replaced.tar", &tar(&replaced));
    ws.refused(&input, &[], &["replaced.tar", "entry `l`", "`d/f` is not an earlier file"]);

    let below_file = vec![file("f", b"x"), file("f/g", b"y")];
    let input = ws.write("below-file.tar", &tar(&below_file));
    ws.refused(&input, &[], &["below-file.tar", "entry `f/g`", "parent `f` is a regular file"]);

    let below_symlink = vec![link("etc", b'2', "/tmp"), file("etc/passwd", b"y")];
    let input = ws.write("below-symlink.tar", &tar(&below_symlink));
    ws.refused(&input, &[], &["below-symlink.tar", "entry `etc/passwd`", "parent `etc` is a symlink"]);

    // A directory that replaces a file may hold entries again.
    let fine = vec![file("d", b"x"), dir("d"), file("d/f", b"y"), link("l", b'1', "d/f")];
    let input = ws.write("fine.tar", &tar(&fine));
    let out = ws.convert(&input, &[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
}
