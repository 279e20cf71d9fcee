//! Entry paths as bytes: the normal form every layer entry takes, the looser form package lists are read in,
//! taking a path apart and joining it, hashing all its ancestors in one pass, and showing one in an error.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// How many bytes of a name an error message shows: a hostile name may be a megabyte long.
const SHOWN_NAME_LEN: usize = 200;

/// Why a path has no normal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// More `..` components than names before them: the path climbs out of the root.
    Escapes,
    /// A `..` component that stays inside the root.
    DotDot,
}

/// The normal form of layer entries: drops leading `/` and `./`, empty and `.` components and a trailing `/`.
/// `..` is refused: no rootfs needs it, and resolving it lexically would be wrong where a component is a symlink.
pub fn normal_path(path: &[u8]) -> Result<Vec<u8>, PathProblem> {
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

/// A path in the normal form of layer entries, or `None` if it has a `..` component.
pub fn normal_form(path: &[u8]) -> Option<Vec<u8>> {
    normal_path(path).ok()
}

/// A path as package databases list it (`/usr/bin/x`, `./usr/bin/x`, `usr/bin/x/`) without its leading `/` and
/// `./` and its trailing `/`: the normal form for the paths such lists hold, borrowed rather than rebuilt.
pub fn listed_form(path: &[u8]) -> &[u8] {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            break;
        }
    }
    while let Some(rest) = p.strip_suffix(b"/") {
        p = rest;
    }
    if p == b"." { b"" } else { p }
}

/// The directory holding `path` (normal form), empty for a path at the root.
pub fn parent_of(path: &[u8]) -> &[u8] {
    path.iter().rposition(|&b| b == b'/').map(|i| &path[..i]).unwrap_or(b"")
}

/// The last component of `path` (normal form).
pub fn file_name(path: &[u8]) -> &[u8] {
    path.iter().rposition(|&b| b == b'/').map(|i| &path[i + 1..]).unwrap_or(path)
}

/// `name` inside `parent` (normal form; an empty parent is the root).
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut path = parent.to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// A name for an error message: escaped as [`crate::error::display_bytes`] does, cut after [`SHOWN_NAME_LEN`] bytes.
pub fn shown_name(name: &[u8]) -> String {
    if name.len() <= SHOWN_NAME_LEN {
        return crate::error::display_bytes(name);
    }
    format!("{}... ({} bytes)", crate::error::display_bytes(&name[..SHOWN_NAME_LEN]), name.len())
}

/// A keyed hash of paths that gives the hashes of all the ancestors of a path in one pass over its bytes (SipHash
/// is streaming: written piece by piece up to each `/`, it gives the hash of that prefix). Looking each ancestor up
/// in a map instead would hash its whole prefix, which costs time quadratic in the path's length (a 4,096-byte path
/// may have 2,048 components) for every entry.
#[derive(Default)]
pub struct PathHasher(RandomState);

impl PathHasher {
    pub fn hash(&self, path: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(path);
        hasher.finish()
    }

    /// `(length, hash)` of each proper ancestor of `path` (`a`, `a/b` for `a/b/c`), outermost first.
    pub fn ancestors(&self, path: &[u8]) -> Vec<(usize, u64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_paths_take_the_normal_form() {
        assert_eq!(listed_form(b"/usr/bin/x"), b"usr/bin/x");
        assert_eq!(listed_form(b"./usr/bin/"), b"usr/bin");
        assert_eq!(listed_form(b"/."), b"");
        assert_eq!(listed_form(b"/"), b"");
    }

    #[test]
    fn a_path_splits_into_parent_and_name_and_joins_back() {
        for (path, parent, name) in [(&b"a/b/c"[..], &b"a/b"[..], &b"c"[..]), (b"top", b"", b"top")] {
            assert_eq!((parent_of(path), file_name(path)), (parent, name));
            assert_eq!(join(parent, name), path);
        }
    }

    #[test]
    fn ancestor_hashes_are_the_hashes_of_the_prefixes() {
        let hasher = PathHasher::default();
        let ancestors = hasher.ancestors(b"a/bc/d");
        assert_eq!(ancestors, [(1, hasher.hash(b"a")), (4, hasher.hash(b"a/bc"))]);
    }
}
