//! Shared test harness: the built binary, fixture paths, command runners, and file-tree snapshots that compare
//! every attribute the converter promises to keep.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod tar;

use sha2::{Digest, Sha256};

/// The names in a directory (hidden ones included), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rootfs2image"))
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail; returns its output.
pub fn run_failing(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(!output.status.success(), "{command:?} succeeded but should have failed");
    output
}

/// One file system object's attributes, as the converter must preserve them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attrs {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub rdev: Option<(u32, u32)>,
    pub link: Option<Vec<u8>>,
    pub content: Option<String>,
    /// For files with several names: the first name of the group (byte order).
    pub hardlink_group: Option<Vec<u8>>,
}

/// Every entry under `root` (the root itself excluded), keyed by relative path bytes.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Attrs> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry.unwrap();
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
        let meta = std::fs::symlink_metadata(path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        if !ft.is_dir() && meta.nlink() > 1 {
            inodes.entry((meta.dev(), meta.ino())).or_default().push(rel.clone());
        }
        let mut xattrs = BTreeMap::new();
        for name in xattr::list(path).unwrap() {
            if let Some(value) = xattr::get(path, &name).unwrap() {
                xattrs.insert(name.to_string_lossy().into_owned(), value);
            }
        }
        let rdev =
            (ft.is_char_device() || ft.is_block_device()).then(|| (libc::major(meta.rdev()), libc::minor(meta.rdev())));
        out.insert(
            rel,
            Attrs {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: meta.mtime(),
                xattrs,
                rdev,
                link: ft.is_symlink().then(|| std::fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec()),
                content: ft.is_file().then(|| hex::encode(Sha256::digest(std::fs::read(path).unwrap()))),
                hardlink_group: None,
            },
        );
    }
    for mut group in inodes.into_values() {
        group.sort();
        for path in &group {
            out.get_mut(path).unwrap().hardlink_group = Some(group[0].clone());
        }
    }
    out
}

/// Asserts two snapshots are equal, listing every difference readably.
pub fn assert_same_tree(expected: &BTreeMap<Vec<u8>, Attrs>, actual: &BTreeMap<Vec<u8>, Attrs>) {
    let mut problems = Vec::new();
    for (path, want) in expected {
        let shown = String::from_utf8_lossy(path);
        match actual.get(path) {
            None => problems.push(format!("missing: {shown}")),
            Some(got) if got != want => problems.push(format!("differs: {shown}\n  want {want:?}\n  got  {got:?}")),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        problems.push(format!("unexpected: {}", String::from_utf8_lossy(path)));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

/// The fixture directory made by scripts/make-fixtures.sh.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("IMGCRAFT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"));
    assert!(
        dir.join("rootfs-amd64.tar").is_file(),
        "fixtures missing in {}: run scripts/make-fixtures.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// The Docker client, pointed at the test engine that scripts/setup-test-env.sh starts.
pub fn docker() -> Command {
    assert!(
        std::env::var("DOCKER_HOST").is_ok(),
        "DOCKER_HOST unset: source the env.sh that scripts/setup-test-env.sh writes"
    );
    let mut c = Command::new(std::env::var("DOCKER").unwrap_or_else(|_| "docker".into()));
    c.args(["--log-level", "error"]);
    c
}

/// A container engine as the tests drive it: load an archive, run a command in an image with no network, inspect
/// and remove the image.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn command(self) -> Command {
        match self {
            Engine::Docker => docker(),
            Engine::Podman => Command::new("podman"),
        }
    }

    /// The name the engine lists an image tagged `tag` under.
    pub fn name(self, tag: &str) -> String {
        match self {
            Engine::Docker => tag.to_string(),
            Engine::Podman => format!("docker.io/{tag}"),
        }
    }

    pub fn load(self, archive: &Path) -> String {
        run(self.command().args(["load", "-i"]).arg(archive))
    }

    /// Runs `args` in `image` with no network; `platform` (`linux/arm64`) picks an emulated architecture.
    pub fn run(self, image: &str, platform: Option<&str>, args: &[&str]) -> String {
        let mut c = self.command();
        c.args(["run", "--rm", "--network", "none"]);
        if let Some(platform) = platform {
            c.args(["--platform", platform]);
        }
        run(c.arg(image).args(args))
    }

    /// Runs a shell script in `image` (its /bin/sh).
    pub fn script(self, image: &str, script: &str) -> String {
        self.run(image, None, &["/bin/sh", "-c", script])
    }

    /// How many layers the engine stores for `image`.
    pub fn layer_count(self, image: &str) -> usize {
        let out = run(self.command().args(["image", "inspect", "-f", "{{len .RootFS.Layers}}", image]));
        out.trim().parse().unwrap()
    }

    pub fn remove(self, image: &str) {
        run(self.command().args(["rmi", image]));
    }
}

/// A temporary directory for one test's inputs and outputs, removed when dropped.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}
