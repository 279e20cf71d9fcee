//! The rootfs policy applied to every entry before it becomes part of a layer: one normal form for paths, refusal of
//! what no layer can represent or what would escape the root, hardlink checks, mtime clamping and xattr fixes.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use crate::error::{Error, display_bytes};
use crate::tar::entry::{Entry, EntryKind, is_overlay_xattr, shown_name};

/// image-spec layer.md: whiteouts are files named `.wh.<name>`; a rootfs holding such a name cannot be a layer.
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// The most bytes of entry records a rootfs may make the conversion keep: each entry counts its path, link target
/// and xattrs plus [`ENTRY_OVERHEAD`]. The normaliser keeps every non-directory path (for hardlink and parent
/// checks) and the layer writer keeps as much again at most (directories and where each path went), so this bounds
/// the memory any input can take; 64 MiB holds a rootfs of half a million entries with 60-byte paths (a large
/// Debian has about 100,000).
pub const MAX_HELD_BYTES: u64 = 64 << 20;

/// What keeping one entry's record costs beyond its bytes: the map node, the allocation's header and rounding.
pub const ENTRY_OVERHEAD: u64 = 64;

/// What an earlier non-directory entry was, as far as later entries care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Earlier {
    Symlink,
    Other(&'static str),
}

/// The non-directory entries still in place, by path, with the [`PathHasher`] hash of each so that the ancestors
/// of a path are checked in one pass over it.
#[derive(Default)]
struct NonDirectories {
    paths: BTreeMap<Vec<u8>, Earlier>,
    /// Hash of each path in `paths` -> how many paths have it (hashes may collide).
    hashes: HashMap<u64, u32>,
    keys: PathHasher,
}

/// A keyed hash of paths that gives the hashes of all the ancestors of a path in one pass over its bytes (SipHash
/// is streaming: written piece by piece up to each `/`, it gives the hash of that prefix). Looking each ancestor up
/// in a map instead would hash its whole prefix, which costs time quadratic in the path's length (a 4,096-byte path
/// may have 2,048 components) for every entry.
#[derive(Default)]
pub(crate) struct PathHasher(RandomState);

impl PathHasher {
    pub(crate) fn hash(&self, path: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(path);
        hasher.finish()
    }

    /// `(length, hash)` of each proper ancestor of `path` (`a`, `a/b` for `a/b/c`), outermost first.
    pub(crate) fn ancestors(&self, path: &[u8]) -> Vec<(usize, u64)> {
        let mut hasher = self.0.build_hasher();
        let mut out = Vec::new();
        let mut start = 0;
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            hasher.write(&path[start..i]);
            start = i;
            out.push((i, hasher.finish()));
        }
        out
    }
}

impl NonDirectories {
    fn hash(&self, path: &[u8]) -> u64 {
        self.keys.hash(path)
    }

    fn contains(&self, path: &[u8]) -> bool {
        self.paths.contains_key(path)
    }

    fn insert(&mut self, path: Vec<u8>, earlier: Earlier) {
        let hash = self.hash(&path);
        if self.paths.insert(path, earlier).is_none() {
            *self.hashes.entry(hash).or_default() += 1;
        }
    }

    fn remove(&mut self, path: &[u8]) {
        if self.paths.remove(path).is_some() {
            let hash = self.hash(path);
            if let Some(count) = self.hashes.get_mut(&hash) {
                *count -= 1;
                if *count == 0 {
                    self.hashes.remove(&hash);
                }
            }
        }
    }

    /// Forgets every path below `dir`: a non-directory replaced it with all it held.
    fn remove_below(&mut self, dir: &[u8]) {
        let mut below = dir.to_vec();
        below.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .paths
            .range(below.clone()..)
            .take_while(|(p, _)| p.starts_with(&below))
            .map(|(p, _)| p.clone())
            .collect();
        for gone in doomed {
            self.remove(&gone);
        }
    }

    /// The outermost ancestor of `path` that is a non-directory, with what it is.
    fn ancestor<'p>(&self, path: &'p [u8]) -> Option<(&'p [u8], Earlier)> {
        if self.hashes.is_empty() {
            return None;
        }
        self.keys
            .ancestors(path)
            .into_iter()
            .filter(|(_, hash)| self.hashes.contains_key(hash))
            .find_map(|(end, _)| self.paths.get(&path[..end]).map(|&earlier| (&path[..end], earlier)))
    }
}

pub struct Normalizer {
    input: String,
    source_date_epoch: Option<i64>,
    /// Path of every earlier non-directory entry still in place (a later directory or non-directory at the same
    /// path or above it replaces it): hardlink targets must be among them, and no entry may sit below one.
    linkable: NonDirectories,
    /// Bytes of records counted against [`MAX_HELD_BYTES`].
    held: u64,
    newest_mtime: Option<i64>,
}

impl Normalizer {
    /// `source_date_epoch`: newer mtimes are clamped to it (reproducible-builds.org's SOURCE_DATE_EPOCH).
    pub fn new(input: &str, source_date_epoch: Option<i64>) -> Normalizer {
        Normalizer {
            input: input.to_string(),
            source_date_epoch,
            linkable: NonDirectories::default(),
            held: 0,
            newest_mtime: None,
        }
    }

    /// The newest mtime of all entries seen (after clamping).
    pub fn newest_mtime(&self) -> Option<i64> {
        self.newest_mtime
    }

    fn refuse(&self, path: &[u8], problem: impl Into<String>) -> Error {
        Error::BadEntry { input: self.input.clone(), entry: shown_name(path), problem: problem.into() }
    }

    /// Returns the entry in normal form, `None` for the root directory itself (a layer describes what is under
    /// the root), or an error naming what cannot go into a layer.
    pub fn normalize(&mut self, mut entry: Entry) -> Result<Option<Entry>, Error> {
        // Readers check this too (base layers are read without a normaliser); here it covers every reader.
        if let Some(problem) = entry.problem() {
            return Err(self.refuse(&entry.path, problem));
        }
        let path = match normal_path(&entry.path) {
            Ok(path) => path,
            Err(PathProblem::Escapes) => {
                return Err(self.refuse(&entry.path, "the path climbs out of the root"));
            }
            Err(PathProblem::DotDot) => {
                return Err(self.refuse(&entry.path, "the path has a `..` component"));
            }
        };
        if path.is_empty() {
            return match entry.kind {
                EntryKind::Directory => Ok(None),
                _ => Err(self.refuse(&entry.path, format!("the root is a {}, not a directory", entry.kind.name()))),
            };
        }
        if path.split(|&b| b == b'/').any(|c| c.starts_with(WHITEOUT_PREFIX)) {
            return Err(self.refuse(
                &path,
                "the name starts with `.wh.`, which container engines read as an overlay whiteout: no layer can hold it",
            ));
        }
        if let Some(name) = entry.xattrs.keys().find(|name| is_overlay_xattr(name)) {
            return Err(self.refuse(
                &path,
                format!(
                    "the xattr `{}` is overlayfs's own state (it can hide the layers below, as a whiteout does): \
                     no layer can hold it",
                    display_bytes(name.as_bytes())
                ),
            ));
        }
        self.held += path.len() as u64 + ENTRY_OVERHEAD;
        if let EntryKind::Symlink { target } | EntryKind::Hardlink { target } = &entry.kind {
            self.held += target.len() as u64;
        }
        self.held += entry.xattrs.iter().map(|(name, value)| (name.len() + value.len()) as u64).sum::<u64>();
        if self.held > MAX_HELD_BYTES {
            return Err(self.refuse(
                &path,
                format!(
                    "the entries so far hold more than {} MiB of names and attributes, the most kept in memory",
                    MAX_HELD_BYTES >> 20
                ),
            ));
        }
        // An entry below a file, device or symlink: engines fail to unpack it ("not a directory"), or would
        // write through the symlink to wherever it points.
        if let Some((parent, earlier)) = self.linkable.ancestor(&path) {
            let what = match earlier {
                Earlier::Symlink => "symlink",
                Earlier::Other(name) => name,
            };
            return Err(self.refuse(
                &path,
                format!("its parent `{}` is a {what} earlier in the archive, not a directory", shown_name(parent)),
            ));
        }
        match &mut entry.kind {
            EntryKind::CharDevice { major: 0, minor: 0 } => {
                return Err(self.refuse(
                    &path,
                    "a 0/0 character device is an overlayfs whiteout, not a file: no layer can hold it",
                ));
            }
            EntryKind::Hardlink { target } => {
                let normal = normal_path(target).map_err(|_| {
                    self.refuse(&path, format!("the hardlink target `{}` is outside the root", display_bytes(target)))
                })?;
                if normal == path {
                    return Err(self.refuse(&path, "the entry is a hardlink to itself"));
                }
                // image-spec layer.md: a hardlink's target must come first in the layer.
                if !self.linkable.contains(&normal) {
                    return Err(self.refuse(
                        &path,
                        format!(
                            "the hardlink target `{}` is not an earlier file of the archive",
                            display_bytes(&normal)
                        ),
                    ));
                }
                *target = normal;
            }
            _ => {}
        }
        if entry.kind == EntryKind::Directory {
            self.linkable.remove(&path);
        } else {
            // A non-directory replaces a directory there with all it held: nothing below it can be linked to.
            self.linkable.remove_below(&path);
            let earlier = match entry.kind {
                EntryKind::Symlink { .. } => Earlier::Symlink,
                ref other => Earlier::Other(other.name()),
            };
            self.linkable.insert(path.clone(), earlier);
        }
        entry.path = path;
        if let Some(epoch) = self.source_date_epoch {
            entry.mtime = entry.mtime.min(epoch);
        }
        self.newest_mtime = Some(self.newest_mtime.map_or(entry.mtime, |m| m.max(entry.mtime)));
        if let Some(capability) = entry.xattrs.get_mut("security.capability") {
            to_v2_capability(capability);
        }
        Ok(Some(entry))
    }
}

/// A path in the normal form of layer entries, or `None` if it has a `..` component.
pub fn normal_form(path: &[u8]) -> Option<Vec<u8>> {
    normal_path(path).ok()
}

enum PathProblem {
    Escapes,
    DotDot,
}

/// Drops leading `/` and `./`, empty and `.` components and a trailing `/`. `..` is refused: no rootfs needs it,
/// and resolving it lexically would be wrong where a component is a symlink.
fn normal_path(path: &[u8]) -> Result<Vec<u8>, PathProblem> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    let mut depth = 0i64;
    let mut dotdot = false;
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                dotdot = true;
                if depth < 0 {
                    return Err(PathProblem::Escapes);
                }
            }
            name => {
                depth += 1;
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    if dotdot { Err(PathProblem::DotDot) } else { Ok(out) }
}

/// VFS_CAP_REVISION_3 capabilities carry the user namespace's root uid; engines apply file capabilities only in
/// the namespace-less v2 form (linux/capability.h), so v3 is rewritten to v2, keeping the effective flag.
fn to_v2_capability(value: &mut Vec<u8>) {
    const REVISION_MASK: u32 = 0xff00_0000;
    const REVISION_2: u32 = 0x0200_0000;
    const REVISION_3: u32 = 0x0300_0000;
    if value.len() != 24 {
        return;
    }
    let magic = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    if magic & REVISION_MASK == REVISION_3 {
        let v2 = (magic & !REVISION_MASK) | REVISION_2;
        value[..4].copy_from_slice(&v2.to_le_bytes());
        value.truncate(20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry { path: path.as_bytes().to_vec(), kind, mode: 0o644, uid: 0, gid: 0, mtime: 100, xattrs: BTreeMap::new() }
    }

    fn file(path: &str) -> Entry {
        entry(path, EntryKind::File { size: 0 })
    }

    fn error(n: &mut Normalizer, e: Entry) -> String {
        n.normalize(e).unwrap_err().to_string()
    }

    #[test]
    fn leading_dot_slash_and_slash_give_one_form() {
        let mut n = Normalizer::new("in.tar", None);
        for p in ["./usr/bin/x", "/usr/bin/x", "usr//bin/./x", "usr/bin/x/"] {
            assert_eq!(n.normalize(file(p)).unwrap().unwrap().path, b"usr/bin/x");
        }
        assert_eq!(n.normalize(entry("./", EntryKind::Directory)).unwrap(), None);
    }

    #[test]
    fn escaping_paths_and_hardlinks_are_refused() {
        let mut n = Normalizer::new("in.tar", None);
        assert_eq!(
            error(&mut n, file("../etc/passwd")),
            "`in.tar`: entry `../etc/passwd`: the path climbs out of the root"
        );
        assert!(error(&mut n, file("a/../b")).contains("`..` component"));
        let link = entry("x", EntryKind::Hardlink { target: b"../../etc/shadow".to_vec() });
        assert!(error(&mut n, link).contains("outside the root"));
    }

    #[test]
    fn hardlinks_need_an_earlier_target_and_are_normalised() {
        let mut n = Normalizer::new("in.tar", None);
        let link = entry("b", EntryKind::Hardlink { target: b"./a".to_vec() });
        assert!(error(&mut n, link.clone()).contains("not an earlier file"));
        n.normalize(file("./a")).unwrap();
        let out = n.normalize(link).unwrap().unwrap();
        assert_eq!(out.kind, EntryKind::Hardlink { target: b"a".to_vec() });
    }

    #[test]
    fn whiteouts_are_refused() {
        let mut n = Normalizer::new("in.tar", None);
        assert!(error(&mut n, file("etc/.wh.passwd")).contains("whiteout"));
        assert!(error(&mut n, entry("dev/x", EntryKind::CharDevice { major: 0, minor: 0 })).contains("whiteout"));
        assert!(n.normalize(entry("dev/null", EntryKind::CharDevice { major: 1, minor: 3 })).is_ok());
    }

    #[test]
    fn mtimes_are_clamped_to_the_epoch_and_the_newest_is_tracked() {
        let mut n = Normalizer::new("in.tar", Some(150));
        let mut newer = file("a");
        newer.mtime = 200;
        assert_eq!(n.normalize(newer).unwrap().unwrap().mtime, 150);
        n.normalize(file("b")).unwrap();
        assert_eq!(n.newest_mtime(), Some(150));
    }

    #[test]
    fn overlay_xattrs_and_names_with_nul_are_refused() {
        let mut n = Normalizer::new("in.tar", None);
        for name in ["trusted.overlay.opaque", "user.overlay.redirect"] {
            let mut d = entry("d", EntryKind::Directory);
            d.xattrs.insert(name.into(), b"y".to_vec());
            let err = error(&mut n, d);
            assert!(err.contains(&format!("`{name}`")) && err.contains("overlayfs"), "{err}");
        }
        assert!(error(&mut n, file("a/..\0x")).contains("NUL"));
        let link = entry("l", EntryKind::Symlink { target: b"..\0".to_vec() });
        assert!(error(&mut n, link).contains("NUL"));
        let mut old = file("old");
        old.mtime = crate::tar::entry::MAX_MTIME + 1;
        assert!(error(&mut n, old).contains("0000 to 9999"));
    }

    #[test]
    fn a_path_replaced_by_a_non_directory_takes_what_was_below_it() {
        let mut n = Normalizer::new("in.tar", None);
        n.normalize(entry("d", EntryKind::Directory)).unwrap();
        n.normalize(file("d/e/f")).unwrap();
        n.normalize(file("d")).unwrap();
        let link = entry("l", EntryKind::Hardlink { target: b"d/e/f".to_vec() });
        assert!(error(&mut n, link).contains("not an earlier file"));
        let err = error(&mut n, file("d/g"));
        assert!(err.contains("its parent `d` is a regular file"), "{err}");
        let deep = format!("{}x", "q/".repeat(2000));
        n.normalize(file("q")).unwrap();
        assert!(error(&mut n, file(&deep)).contains("its parent `q`"));
        n.normalize(entry("d", EntryKind::Directory)).unwrap();
        n.normalize(file("d/g")).unwrap();
        n.normalize(entry("s", EntryKind::Symlink { target: b"/etc".to_vec() })).unwrap();
        assert!(error(&mut n, file("s/passwd")).contains("its parent `s` is a symlink"));
    }

    #[test]
    fn v3_capabilities_become_v2() {
        let mut v3 = vec![0x01, 0, 0, 0x03, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0x03, 0, 0];
        to_v2_capability(&mut v3);
        assert_eq!(v3, vec![0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
