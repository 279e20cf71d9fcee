//! Images made by someone else, hostile on purpose: layout blobs that are symlinks to `/dev/zero` or to a secret
//! file, FIFOs, a `blobs/sha256` that leads out of the layout, descriptors whose sizes lie, manifests with too many
//! layers, archives whose members are not regular files. Each is driven through `inspect`, `diff`, `index`,
//! `--base` (and `push`, with the engine tests' registry) and must end with exit 1, one line naming the image and
//! the blob, in bounded time, with nothing written and nothing disclosed. Then: a run ended by SIGINT or SIGTERM
//! leaves nothing behind, and a dead run's leftovers are removed by the next run unless their lock is held.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tar::{Entry, Kind, archive};
use common::{Workspace, assert_refused, bin, listing, run, run_within};

/// Every refusal must come well within this (the old build spun or filled the disk forever).
const BOUND: Duration = Duration::from_secs(30);

/// A tar of regular files: (path, content).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    archive(&files.iter().map(|(path, data)| Entry::file(path, data)).collect::<Vec<_>>())
}

/// Runs `command`, killing it and failing the test if it outlives [`BOUND`].
fn run_bounded(command: &mut Command) -> Output {
    run_within(command, BOUND)
}

impl Workspace {
    /// A small image written by the tool itself as an OCI layout at `name`.
    fn layout(&self, name: &str) -> Layout {
        let rootfs = self.path(&format!("{name}.rootfs.tar"));
        std::fs::write(&rootfs, tar_of(&[("etc/hostname", b"device\n"), ("etc/motd", b"hello\n")])).unwrap();
        let dir = self.path(name);
        run(bin().arg(&rootfs).args(["--arch", "amd64", "-o"]).arg(format!("oci:{}", dir.display())));
        std::fs::remove_file(&rootfs).unwrap();
        Layout::read(dir)
    }
}

/// A layout and the digests of its one image's blobs.
struct Layout {
    dir: PathBuf,
    manifest: String,
    config: String,
    layer: String,
}

impl Layout {
    fn read(dir: PathBuf) -> Layout {
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let manifest = hex(index["manifests"][0]["digest"].as_str().unwrap());
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(&manifest)).unwrap()).unwrap();
        let config = hex(m["config"]["digest"].as_str().unwrap());
        let layer = hex(m["layers"][0]["digest"].as_str().unwrap());
        Layout { dir, manifest, config, layer }
    }

    fn blob(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex)
    }

    fn reference(&self) -> String {
        format!("oci:{}", self.dir.display())
    }

    /// Replaces the manifest (and the index's descriptor of it) with `edit` applied to it.
    fn edit_manifest(&mut self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.blob(&self.manifest)).unwrap()).unwrap();
        edit(&mut m);
        let bytes = serde_json::to_vec(&m).unwrap();
        let digest = sha256_hex(&bytes);
        std::fs::write(self.blob(&digest), &bytes).unwrap();
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        index["manifests"][0]["digest"] = format!("sha256:{digest}").into();
        index["manifests"][0]["size"] = bytes.len().into();
        std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
        self.manifest = digest;
    }
}

fn hex(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap().to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The hostile shapes a layout blob can take.
#[derive(Clone, Copy, Debug)]
enum Shape {
    SymlinkToDevZero,
    Fifo,
    SymlinkToSecret,
}

const SECRET: &str = "TOP-SECRET-CONTENT";
/// The secret file's size: no error may mention it.
const SECRET_SIZE: usize = 12_345;

fn make_hostile(ws: &Workspace, blob: &Path, shape: Shape) {
    std::fs::remove_file(blob).unwrap();
    match shape {
        Shape::SymlinkToDevZero => std::os::unix::fs::symlink("/dev/zero", blob).unwrap(),
        Shape::Fifo => {
            let path = std::ffi::CString::new(blob.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: mkfifo with a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        }
        Shape::SymlinkToSecret => {
            let secret = ws.path("secret");
            let mut content = SECRET.repeat(SECRET_SIZE / SECRET.len() + 1).into_bytes();
            content.truncate(SECRET_SIZE);
            std::fs::write(&secret, content).unwrap();
            std::os::unix::fs::symlink(&secret, blob).unwrap();
        }
    }
}

fn assert_nothing_disclosed(line: &str) {
    assert!(!line.contains(SECRET), "the error shows the secret's content: {line}");
    assert!(!line.contains(&SECRET_SIZE.to_string()), "the error shows the secret's size: {line}");
    assert!(!line.contains("secret"), "the error names the symlink's target: {line}");
}

/// Every command that reads an image, with the destination it would write (if any).
fn readers(ws: &Workspace, image: &str) -> Vec<(&'static str, Command, Option<PathBuf>)> {
    let mut inspect = bin();
    inspect.args(["inspect", image]);
    let index_out = ws.path("index-out.tar");
    let mut index = bin();
    index.args(["index", image, "-o"]).arg(format!("oci-archive:{}", index_out.display()));
    let base_out = ws.path("based");
    let rootfs = ws.path("top.tar");
    std::fs::write(&rootfs, tar_of(&[("srv/new", b"new\n")])).unwrap();
    let mut base = bin();
    base.arg(&rootfs).args(["--arch", "amd64", "--base", image, "-o"]).arg(format!("oci:{}", base_out.display()));
    vec![("inspect", inspect, None), ("index", index, Some(index_out)), ("--base", base, Some(base_out))]
}

/// The destination a reader would write, as the paths a refusal must leave untouched.
fn destinations(destination: &Option<PathBuf>) -> Vec<&Path> {
    destination.iter().map(PathBuf::as_path).collect()
}

fn check_layer_shape(shape: Shape) {
    let ws = Workspace::new();
    let layout = ws.layout("image");
    make_hostile(&ws, &layout.blob(&layout.layer), shape);
    let image = layout.reference();
    for (what, mut command, destination) in readers(&ws, &image) {
        let mut untouched = destinations(&destination);
        untouched.push(ws.dir.path());
        let line =
            assert_refused(&untouched, &[layout.dir.to_str().unwrap(), &layout.layer], || run_bounded(&mut command));
        assert!(line.contains("not a regular file inside the layout"), "{what}: {line}");
        assert_nothing_disclosed(&line);
    }
    // `diff` reads manifests and configs: the same shape on the config blob.
    let other = ws.layout("other");
    make_hostile(&ws, &other.blob(&other.config), shape);
    let line = assert_refused(&[], &[other.dir.to_str().unwrap(), &other.config], || {
        run_bounded(bin().args(["diff", &image, &other.reference()]))
    });
    assert_nothing_disclosed(&line);
}

#[test]
fn a_layout_blob_that_is_a_symlink_to_dev_zero_is_refused_by_every_reader() {
    check_layer_shape(Shape::SymlinkToDevZero);
}

#[test]
fn a_layout_blob_that_is_a_fifo_is_refused_by_every_reader_without_waiting() {
    check_layer_shape(Shape::Fifo);
}

#[test]
fn a_layout_blob_that_is_a_symlink_to_a_secret_discloses_nothing() {
    check_layer_shape(Shape::SymlinkToSecret);
}

#[test]
fn a_blob_directory_leading_out_of_the_layout_is_refused() {
    let ws = Workspace::new();
    let layout = ws.layout("image");
    // The same blobs, outside the layout, reached through a symlinked `blobs/sha256`.
    let outside = ws.path("outside");
    std::fs::rename(layout.dir.join("blobs/sha256"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.dir.join("blobs/sha256")).unwrap();
    for (what, mut command, destination) in readers(&ws, &layout.reference()) {
        let line =
            assert_refused(&destinations(&destination), &[layout.dir.to_str().unwrap(), &layout.manifest], || {
                run_bounded(&mut command)
            });
        assert!(!line.contains("outside"), "{what}: {line}");
    }
}

#[test]
fn a_layer_longer_than_its_descriptor_is_refused_before_it_is_read_by_every_reader() {
    let ws = Workspace::new();
    let layout = ws.layout("image");
    // A sparse terabyte appended to the layer: reading it would take hours; nothing may read past the descriptor.
    let blob = std::fs::OpenOptions::new().append(true).open(layout.blob(&layout.layer)).unwrap();
    blob.set_len(1 << 40).unwrap();
    for (what, mut command, destination) in readers(&ws, &layout.reference()) {
        let line = assert_refused(&destinations(&destination), &[layout.dir.to_str().unwrap(), &layout.layer], || {
            run_bounded(&mut command)
        });
        assert!(line.contains("descriptor says"), "{what}: {line}");
    }
}

#[test]
fn a_descriptor_that_lies_about_a_layer_size_is_refused_by_base_as_by_inspect() {
    let ws = Workspace::new();
    let mut layout = ws.layout("image");
    layout.edit_manifest(|m| {
        let size = m["layers"][0]["size"].as_u64().unwrap();
        m["layers"][0]["size"] = (size - 1).into();
    });
    for (what, mut command, _) in readers(&ws, &layout.reference()) {
        let line = assert_refused(&[], &[layout.dir.to_str().unwrap(), &layout.layer], || run_bounded(&mut command));
        assert!(line.contains("descriptor says"), "{what}: {line}");
    }
}

#[test]
fn too_many_layers_or_too_large_documents_are_refused_before_any_layer_is_read() {
    let ws = Workspace::new();
    let mut layout = ws.layout("image");
    let layer = layout.layer.clone();
    // 600 descriptors of a blob that is not even there: only the count may be looked at.
    layout.edit_manifest(|m| {
        let one = serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", "0".repeat(64)),
            "size": 1u64 << 40,
        });
        m["layers"] = serde_json::Value::Array(vec![one; 600]);
    });
    for (what, mut command, _) in readers(&ws, &layout.reference()) {
        let line = assert_refused(&[], &[layout.dir.to_str().unwrap(), &layout.manifest], || run_bounded(&mut command));
        assert!(line.contains("600 layers, more than the 500"), "{what}: {line}");
    }
    assert!(layout.blob(&layer).exists());
    // 200,000 layers make a manifest past the document limit (4 MiB): refused by its declared size, unread.
    layout.edit_manifest(|m| {
        let one = m["layers"][0].clone();
        m["layers"] = serde_json::Value::Array(vec![one; 200_000]);
    });
    for (what, mut command, _) in readers(&ws, &layout.reference()) {
        let line = assert_refused(&[], &[layout.dir.to_str().unwrap(), &layout.manifest], || run_bounded(&mut command));
        assert!(line.contains("more than the 4194304 a document may have"), "{what}: {line}");
    }
    // An index.json past the document limit (4 MiB), even one of valid JSON, is refused by its size.
    let index = layout.dir.join("index.json");
    let mut padded = std::fs::read(&index).unwrap();
    padded.truncate(padded.len() - 1);
    padded.extend_from_slice(b",\"annotations\":{\"pad\":\"");
    padded.extend(std::iter::repeat(b'x').take(5 << 20));
    padded.extend_from_slice(b"\"}}");
    std::fs::write(&index, padded).unwrap();
    let line = assert_refused(&[], &["index.json"], || run_bounded(bin().args(["inspect", &layout.reference()])));
    assert!(line.contains("larger than the 4194304 bytes"), "{line}");
}

/// An archive holding `layout`'s files, with `hostile` members (name, kind) in place of the blob they name.
fn archive_of(layout: &Path, out: &Path, hostile: &[(String, Kind)]) {
    let mut entries = Vec::new();
    for name in ["oci-layout", "index.json"] {
        entries.push(Entry::file(name, &std::fs::read(layout.join(name)).unwrap()));
    }
    for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        let name = format!("blobs/sha256/{}", blob.file_name().to_str().unwrap());
        match hostile.iter().find(|(n, _)| *n == name) {
            Some((_, kind)) => entries.push(Entry::new(&name, kind.clone())),
            None => entries.push(Entry::file(&name, &std::fs::read(blob.path()).unwrap())),
        }
    }
    std::fs::write(out, archive(&entries)).unwrap();
}

#[test]
fn archive_members_that_are_not_regular_files_are_refused() {
    let ws = Workspace::new();
    let layout = ws.layout("image");
    for kind in
        [Kind::Symlink("/etc/passwd".into()), Kind::Hardlink("/etc/passwd".into()), Kind::Fifo, Kind::Char(1, 5)]
    {
        let archive = ws.path("hostile.tar");
        archive_of(&layout.dir, &archive, &[(format!("blobs/sha256/{}", layout.layer), kind.clone())]);
        let image = format!("oci-archive:{}", archive.display());
        for (what, mut command, destination) in readers(&ws, &image) {
            let line = assert_refused(&destinations(&destination), &[archive.to_str().unwrap(), &layout.layer], || {
                run_bounded(&mut command)
            });
            assert!(line.contains("not a regular file"), "{what} ({kind:?}): {line}");
            assert!(!line.contains("passwd"), "{what}: {line}");
        }
    }
}

#[test]
fn an_archive_that_is_a_fifo_or_a_device_is_refused() {
    let ws = Workspace::new();
    let line = assert_refused(&[], &["/dev/zero"], || run_bounded(bin().args(["inspect", "oci-archive:/dev/zero"])));
    assert!(line.contains("regular file"), "{line}");
    let fifo = ws.path("fifo.tar");
    let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    // Opening a FIFO for reading waits for a writer: the open itself is the bound being tested.
    let _writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo).map(|mut f| f.write_all(&[0; 1024]));
        }
    });
    let line = assert_refused(&[], &[fifo.to_str().unwrap()], || {
        run_bounded(bin().arg("inspect").arg(format!("oci-archive:{}", fifo.display())))
    });
    assert!(line.contains("regular file"), "{line}");
}

#[cfg(feature = "engine-tests")]
#[test]
fn push_refuses_hostile_layout_blobs_and_sends_no_manifest() {
    let registry = std::env::var("IMGCRAFT_REGISTRY").expect("IMGCRAFT_REGISTRY names the test registry");
    for (i, shape) in [Shape::SymlinkToDevZero, Shape::Fifo, Shape::SymlinkToSecret].into_iter().enumerate() {
        let ws = Workspace::new();
        let layout = ws.layout("image");
        make_hostile(&ws, &layout.blob(&layout.layer), shape);
        let target = format!("docker://{registry}/hostile/images-{}:{i}", std::process::id());
        let line = assert_refused(&[], &[layout.dir.to_str().unwrap(), &layout.layer], || {
            run_bounded(bin().args(["push", &layout.reference(), &target]))
        });
        assert_nothing_disclosed(&line);
        // Nothing was published: the tag does not exist.
        let repository =
            target.trim_start_matches("docker://").split_once('/').unwrap().1.replace(&format!(":{i}"), "");
        let status = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://{registry}/v2/{repository}/manifests/{i}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "404", "{shape:?}: the tag exists after a refused push");
    }
}

// ---- Nothing left behind ----

/// A conversion reading a large tar from a pipe the test controls, so it is certainly in progress when signalled.
struct SlowConversion {
    child: Child,
    stdin: std::process::ChildStdin,
}

impl SlowConversion {
    fn start(dir: &Path, output: &str) -> SlowConversion {
        let mut child = bin()
            .current_dir(dir)
            .args(["-", "--arch", "amd64", "--threads", "1", "-o", output])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // A ustar header declaring a 256 MiB file, then its first 8 MiB: the run has a layer well under way.
        let size: u64 = 256 << 20;
        let mut header = [0u8; 512];
        header[..8].copy_from_slice(b"big.bin\0");
        header[100..108].copy_from_slice(b"0000644\0");
        header[108..116].copy_from_slice(b"0000000\0");
        header[116..124].copy_from_slice(b"0000000\0");
        header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        header[136..148].copy_from_slice(b"14540000000\0");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| b as u32).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        stdin.write_all(&header).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for _ in 0..8 {
            stdin.write_all(&chunk).unwrap();
        }
        SlowConversion { child, stdin }
    }

    /// Waits until a staging directory shows up in `dir` (the run is writing), then sends `signal`.
    fn interrupt(mut self, dir: &Path, signal: libc::c_int) -> Output {
        let started = Instant::now();
        while !listing(dir).iter().any(|n| n.starts_with(".rootfs2image-staging-")) {
            assert!(started.elapsed() < BOUND, "no staging directory appeared in {}", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: kill of our own child by its pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, signal) }, 0);
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < BOUND, "the run did not end after the signal");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(self.stdin);
        self.child.wait_with_output().unwrap()
    }
}

#[test]
fn sigint_during_a_conversion_removes_everything_and_exits_130() {
    let ws = Workspace::new();
    let out = ws.path("out");
    std::fs::create_dir(&out).unwrap();
    // An existing destination stays byte for byte as it was.
    let archive = out.join("image.tar");
    std::fs::write(&archive, b"the previous archive").unwrap();
    let before = listing(&out);
    let run = SlowConversion::start(&out, "oci-archive:image.tar");
    let output = run.interrupt(&out, libc::SIGINT);
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(listing(&out), before);
    assert_eq!(std::fs::read(&archive).unwrap(), b"the previous archive");
}

#[test]
fn sigterm_during_a_conversion_into_an_existing_layout_leaves_it_untouched_and_exits_143() {
    let ws = Workspace::new();
    let layout = ws.layout("layout");
    let blobs_before = listing(&layout.dir.join("blobs/sha256"));
    let index_before = std::fs::read(layout.dir.join("index.json")).unwrap();
    let parent_before = listing(ws.dir.path());
    let run = SlowConversion::start(ws.dir.path(), "oci:layout:new");
    let output = run.interrupt(ws.dir.path(), libc::SIGTERM);
    assert_eq!(output.status.code(), Some(143), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(listing(ws.dir.path()), parent_before);
    assert_eq!(listing(&layout.dir.join("blobs/sha256")), blobs_before);
    assert_eq!(std::fs::read(layout.dir.join("index.json")).unwrap(), index_before);
}

/// Makes `dir` look an hour old, past the moment a live run would still be taking its lock.
fn age(dir: &Path) {
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(dir).unwrap().set_modified(old).unwrap();
}

#[test]
fn a_dead_runs_staging_directory_is_removed_by_the_next_run_unless_its_lock_is_held() {
    let ws = Workspace::new();
    let out = ws.path("out");
    std::fs::create_dir(&out).unwrap();
    let dead = out.join(".rootfs2image-staging-dead");
    let live = out.join(".rootfs2image-staging-live");
    for dir in [&dead, &live] {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("blobs/sha256/.partial-x"), vec![0u8; 1 << 20]).unwrap();
        age(dir);
    }
    // The live one's run is still going: it holds the lock.
    let held = std::fs::File::open(&live).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/hostname", b"device\n")])).unwrap();
    run(bin()
        .arg(&rootfs)
        .args(["--arch", "amd64", "-o"])
        .arg(format!("oci-archive:{}", out.join("image.tar").display())));
    assert!(!dead.exists(), "the dead run's staging directory is still there");
    assert!(live.join("blobs/sha256/.partial-x").exists(), "the live run's staging directory was touched");
    assert_eq!(listing(&out), [".rootfs2image-staging-live", "image.tar"]);
    drop(held);
}

#[test]
fn an_existing_destination_layout_whose_index_is_a_symlink_to_dev_zero_is_refused() {
    let ws = Workspace::new();
    let layout = ws.layout("layout");
    let index = layout.dir.join("index.json");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
    let blobs_before = listing(&layout.dir.join("blobs/sha256"));
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/other", b"other\n")])).unwrap();
    let line = assert_refused(&[], &[layout.dir.to_str().unwrap(), "index.json"], || {
        run_bounded(bin().arg(&rootfs).args(["--arch", "amd64", "-o"]).arg(format!("{}:new", layout.reference())))
    });
    assert!(line.contains("not a regular file inside the layout"), "{line}");
    assert_eq!(listing(&layout.dir.join("blobs/sha256")), blobs_before);
    assert_eq!(std::fs::read_link(&index).unwrap(), Path::new("/dev/zero"));
}

#[test]
fn a_dead_runs_partial_blob_in_an_existing_layout_is_removed_by_the_next_run_writing_there() {
    let ws = Workspace::new();
    let layout = ws.layout("layout");
    let blobs = layout.dir.join("blobs/sha256");
    let dead = blobs.join(".partial-dead");
    let live = blobs.join(".partial-live");
    for path in [&dead, &live] {
        std::fs::write(path, vec![0u8; 1 << 20]).unwrap();
        age(path);
    }
    let held = std::fs::File::open(&live).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/other", b"other\n")])).unwrap();
    run(bin().arg(&rootfs).args(["--arch", "amd64", "-o"]).arg(format!("{}:new", layout.reference())));
    assert!(!dead.exists(), "the dead run's partial blob is still there");
    assert!(live.exists(), "the live run's partial blob was removed");
    assert!(!listing(&blobs).iter().any(|n| n.starts_with('.') && n != ".partial-live"), "{:?}", listing(&blobs));
    drop(held);
}

#[test]
fn sighup_during_a_conversion_removes_everything_and_exits_129() {
    let ws = Workspace::new();
    let before = listing(ws.dir.path());
    let run = SlowConversion::start(ws.dir.path(), "oci:image");
    let output = run.interrupt(ws.dir.path(), libc::SIGHUP);
    assert_eq!(output.status.code(), Some(129), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(listing(ws.dir.path()), before);
}

#[test]
fn a_destination_layout_whose_blob_directory_leads_out_is_refused_and_nothing_is_written_there() {
    let ws = Workspace::new();
    let layout = ws.layout("layout");
    let outside = ws.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::remove_dir_all(layout.dir.join("blobs/sha256")).unwrap();
    std::os::unix::fs::symlink(&outside, layout.dir.join("blobs/sha256")).unwrap();
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/other", b"other\n")])).unwrap();
    assert_refused(&[], &[layout.dir.to_str().unwrap(), "blobs/sha256"], || {
        run_bounded(bin().arg(&rootfs).args(["--arch", "amd64", "-o"]).arg(format!("{}:new", layout.reference())))
    });
    assert!(listing(&outside).is_empty(), "blobs were written outside the layout: {:?}", listing(&outside));
}

#[test]
fn a_blob_of_a_destination_layout_that_is_a_symlink_is_written_again_and_its_target_left_alone() {
    let ws = Workspace::new();
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, tar_of(&[("etc/other", b"other\n")])).unwrap();
    // The same rootfs gives the same layer: learn its digest from a layout of its own.
    let json = run(bin()
        .arg(&rootfs)
        .args(["--arch", "amd64", "--json", "-o"])
        .arg(format!("oci:{}", ws.path("probe").display())));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let layer_hex = report["layers"][0]["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_string();
    let layout = ws.layout("layout");
    let outside = ws.path("outside");
    std::fs::write(&outside, b"not the layer\n").unwrap();
    let blob = layout.dir.join("blobs/sha256").join(&layer_hex);
    std::os::unix::fs::symlink(&outside, &blob).unwrap();
    run(bin().arg(&rootfs).args(["--arch", "amd64", "-q", "-o"]).arg(format!("{}:new", layout.reference())));
    assert!(std::fs::symlink_metadata(&blob).unwrap().file_type().is_file(), "the blob is still a symlink");
    assert_eq!(sha256_hex(&std::fs::read(&blob).unwrap()), layer_hex);
    assert_eq!(std::fs::read(&outside).unwrap(), b"not the layer\n");
    run(bin().arg("inspect").arg(format!("{}:new", layout.reference())));
}

#[test]
fn a_docker_save_archive_whose_layer_member_is_a_symlink_is_refused() {
    let ws = Workspace::new();
    let layer = tar_of(&[("etc/hostname", b"device\n")]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["hostile:1"], "Layers": ["abc/layer.tar"]}
    ]))
    .unwrap();
    let saved = archive(&[
        Entry::file("manifest.json", &manifest),
        Entry::file("config.json", &config),
        Entry::symlink("abc/layer.tar", "/dev/zero"),
    ]);
    let archive = ws.path("saved.tar");
    std::fs::write(&archive, saved).unwrap();
    let line = assert_refused(&[], &[archive.to_str().unwrap(), "abc/layer.tar"], || {
        run_bounded(bin().arg("inspect").arg(format!("docker-archive:{}", archive.display())))
    });
    assert!(line.contains("not a regular file"), "{line}");
}
