//! Whiteouts (image-spec layer.md "Whiteouts"): the names by which a layer deletes what the layers below it hold,
//! how a layer's entry is read as one, how one is made, and overlayfs's own markers that delete the same way on an
//! overlay-backed engine. A rootfs may hold none of them; `--base` reads and writes the `.wh.` names.

use std::collections::BTreeMap;

use crate::tar::entry::{Entry, EntryKind};
use crate::tar::path::{file_name, join, parent_of};

/// A file named `.wh.NAME` deletes NAME (with all below it) from the layers below.
pub const PREFIX: &[u8] = b".wh.";

/// A file of this name deletes every child of its directory from the layers below; the directory itself stays.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// What a whiteout entry of a layer deletes from the layers below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whiteout {
    /// `.wh..wh..opq`: every child of this directory.
    Opaque { directory: Vec<u8> },
    /// `.wh.NAME`: this path and all below it.
    Removes { path: Vec<u8> },
}

/// What the entry at `path` (normal form) deletes, if its name is a whiteout.
pub fn read(path: &[u8]) -> Option<Whiteout> {
    let name = file_name(path);
    let parent = parent_of(path);
    // The opaque marker starts with the prefix too, so it is told apart first.
    if name == OPAQUE {
        return Some(Whiteout::Opaque { directory: parent.to_vec() });
    }
    name.strip_prefix(PREFIX).map(|hidden| Whiteout::Removes { path: join(parent, hidden) })
}

/// Whether any component of `path` starts with `.wh.`: image-spec layer.md keeps such names for whiteouts, so no
/// layer can hold one as a file of the rootfs.
pub fn has_whiteout_name(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|component| component.starts_with(PREFIX))
}

/// The whiteout that deletes `path` (normal form): `.wh.NAME` beside it.
pub fn removing(path: &[u8]) -> Entry {
    let mut name = PREFIX.to_vec();
    name.extend_from_slice(file_name(path));
    marker(join(parent_of(path), &name))
}

/// The whiteout that deletes every child of `directory` (normal form, not the root): `.wh..wh..opq` inside it.
pub fn opaque(directory: &[u8]) -> Entry {
    marker(join(directory, OPAQUE))
}

/// A whiteout is an empty regular file; its attributes mean nothing, so they are all zero.
fn marker(path: Vec<u8>) -> Entry {
    Entry { path, kind: EntryKind::File { size: 0 }, mode: 0, uid: 0, gid: 0, mtime: 0, xattrs: BTreeMap::new() }
}

/// Whether `kind` is overlayfs's whiteout on disk: a character device 0/0 (Linux
/// Documentation/filesystems/overlayfs.rst), which an overlay-backed engine unpacking it would obey.
pub fn is_overlay_whiteout(kind: &EntryKind) -> bool {
    matches!(kind, EntryKind::CharDevice { major: 0, minor: 0 })
}

/// Whether `name` (an xattr name) belongs to overlayfs: `trusted.overlay.*` (and `user.overlay.*` for rootless
/// overlay, mounted with `userxattr`) hold overlayfs's own state. `trusted.overlay.opaque` hides the lower layers'
/// children exactly as a `.wh..wh..opq` whiteout does (Linux Documentation/filesystems/overlayfs.rst), so a layer
/// carrying one could hide what the layers below hold.
pub fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_read_back_as_what_they_delete() {
        for path in [&b"etc/passwd"[..], b"top"] {
            let made = removing(path);
            assert_eq!(read(&made.path), Some(Whiteout::Removes { path: path.to_vec() }));
        }
        assert_eq!(removing(b"etc/passwd").path, b"etc/.wh.passwd");
        assert_eq!(opaque(b"srv").path, b"srv/.wh..wh..opq");
        assert_eq!(read(b"srv/.wh..wh..opq"), Some(Whiteout::Opaque { directory: b"srv".to_vec() }));
        assert_eq!(read(b"etc/passwd"), None);
        assert_eq!(read(b".wh.dir/file"), None);
    }

    #[test]
    fn a_whiteout_name_anywhere_in_a_path_counts() {
        assert!(has_whiteout_name(b"etc/.wh.passwd"));
        assert!(has_whiteout_name(b".wh.dir/file"));
        assert!(!has_whiteout_name(b"etc/x.wh.y"));
    }
}
