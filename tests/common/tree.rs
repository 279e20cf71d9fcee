//! File trees as the tests compare them: a directory's names, and snapshots of every attribute the converter
//! promises to keep, compared entry by entry (as umoci's tests unpack and compare trees).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The names in a directory (hidden ones included), sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    names
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
