//! The rootfs entry model shared by every reader and writer: one file system object with all its attributes.

use std::collections::BTreeMap;

// The tar reader names entries in its errors through here.

/// The longest path or link target accepted: Linux's PATH_MAX, the longest name any engine can create or resolve
/// (a longer one fails with ENAMETOOLONG when the layer is unpacked).
pub const MAX_PATH_LEN: usize = 4096;

/// The longest xattr name: Linux's XATTR_NAME_MAX (setxattr(2) fails with ERANGE past it).
pub const MAX_XATTR_NAME_LEN: usize = 255;

/// The largest xattr value: Linux's XATTR_SIZE_MAX (setxattr(2) fails with E2BIG past it).
pub const MAX_XATTR_VALUE_LEN: usize = 64 << 10;

/// The most bytes of xattr names of one entry, each counted with its NUL: Linux's XATTR_LIST_MAX, the most that
/// listxattr(2) can return for one file.
pub const MAX_XATTR_NAMES_LEN: usize = 64 << 10;

/// The most bytes of xattrs (names and values) of one entry. Linux bounds each value, not their sum (ext4 keeps all
/// of an inode's xattrs in one 4 KiB block); four maximal values is far above any real file, and keeps the PAX
/// header a layer entry is written with well under the 1 MiB the tar reader accepts.
pub const MAX_XATTR_BYTES: usize = 256 << 10;

/// The earliest mtime accepted: 0000-01-01T00:00:00Z. The image config's `created` is the newest mtime, and RFC
/// 3339 (which config.md requires, and skopeo, umoci and Go's time.Parse enforce) has four-digit years.
pub const MIN_MTIME: i64 = -62_167_219_200;

/// The latest mtime accepted: 9999-12-31T23:59:59Z, the last second RFC 3339 can write (see [`MIN_MTIME`]).
pub const MAX_MTIME: i64 = 253_402_300_799;

/// What kind of object an entry is, with the data that only that kind has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
    },
    Directory,
    Symlink {
        target: Vec<u8>,
    },
    /// A second name for an earlier entry; `target` is that entry's path.
    Hardlink {
        target: Vec<u8>,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
}

impl EntryKind {
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::File { .. } => "regular file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink { .. } => "symlink",
            EntryKind::Hardlink { .. } => "hardlink",
            EntryKind::CharDevice { .. } => "character device",
            EntryKind::BlockDevice { .. } => "block device",
            EntryKind::Fifo => "fifo",
        }
    }
}

/// A stream of rootfs entries, each followed by its data: what the tar reader and the directory walker both are.
pub trait EntrySource {
    fn next_entry(&mut self) -> Result<Option<Entry>, crate::error::Error>;
    /// The current entry's content (empty for anything but a regular file).
    fn data(&mut self) -> Box<dyn std::io::Read + '_>;
    /// Records the digests of large files' data as they pass, for a second read of the same tar (see
    /// [`crate::tar::file_digests`]); a source that is not a tar records nothing.
    fn record_file_digests(&mut self, slot: crate::tar::file_digests::DigestSlot) {
        let _ = slot;
    }
    /// The current entry's data, when an earlier read of the same tar recorded it and none of it is read yet.
    fn known_data(&self) -> Option<crate::tar::file_digests::KnownData> {
        None
    }
    /// Whether an earlier read of the same tar recorded its large files' digests.
    fn knows_data(&self) -> bool {
        false
    }
}

/// One file system object. `path` is relative to the rootfs, without a leading `/` or `./` and without a trailing
/// `/`, once [`crate::rootfs::normalize`] has seen it; readers hand over paths as found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (07777).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch; sub-second parts are dropped, as in ustar.
    pub mtime: i64,
    /// Extended attributes by name (`security.capability`, `user.*`, ...), values as raw bytes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// What makes this entry impossible to hold in a layer faithfully, whoever read it: a name or link target
    /// with a NUL byte (every tar reader stops at the NUL, so `..` + NUL + `x` would be read as `..`) or longer
    /// than [`MAX_PATH_LEN`], xattrs past Linux's limits, an mtime outside [`MIN_MTIME`]..=[`MAX_MTIME`].
    pub fn problem(&self) -> Option<String> {
        if self.path.contains(&0) {
            return Some("the name holds a NUL byte".into());
        }
        if self.path.len() > MAX_PATH_LEN {
            return Some(format!("the name is {} bytes long, more than the {MAX_PATH_LEN} allowed", self.path.len()));
        }
        if let EntryKind::Symlink { target } | EntryKind::Hardlink { target } = &self.kind {
            if target.contains(&0) {
                return Some(format!("the {} target holds a NUL byte", self.kind.name()));
            }
            if target.is_empty() {
                return Some(format!("the {} target is empty", self.kind.name()));
            }
            if target.len() > MAX_PATH_LEN {
                return Some(format!(
                    "the {} target is {} bytes long, more than the {MAX_PATH_LEN} allowed",
                    self.kind.name(),
                    target.len()
                ));
            }
        }
        if let Some(problem) = xattrs_problem(&self.xattrs) {
            return Some(problem);
        }
        if !(MIN_MTIME..=MAX_MTIME).contains(&self.mtime) {
            return Some(format!(
                "the mtime {} is outside the years 0000 to 9999 that an image's RFC 3339 times can say",
                self.mtime
            ));
        }
        None
    }

    pub fn size(&self) -> u64 {
        match self.kind {
            EntryKind::File { size } => size,
            _ => 0,
        }
    }
}

/// What is wrong with a set of xattrs, against Linux's limits and [`MAX_XATTR_BYTES`].
pub fn xattrs_problem(xattrs: &BTreeMap<String, Vec<u8>>) -> Option<String> {
    let (mut names, mut total) = (0usize, 0usize);
    for (name, value) in xattrs {
        let shown = crate::error::display_bytes(name.as_bytes());
        if name.is_empty() || name.contains('\0') {
            return Some(format!("the xattr name `{shown}` is empty or holds a NUL byte"));
        }
        if name.len() > MAX_XATTR_NAME_LEN {
            return Some(format!(
                "the xattr name `{}...` is {} bytes long, more than the {MAX_XATTR_NAME_LEN} allowed",
                crate::error::display_bytes(&name.as_bytes()[..32]),
                name.len()
            ));
        }
        if value.len() > MAX_XATTR_VALUE_LEN {
            return Some(format!(
                "the xattr `{shown}` holds {} bytes, more than the {MAX_XATTR_VALUE_LEN} allowed",
                value.len()
            ));
        }
        names += name.len() + 1;
        total += name.len() + value.len();
    }
    if names > MAX_XATTR_NAMES_LEN {
        return Some(format!("the xattr names take {names} bytes, more than the {MAX_XATTR_NAMES_LEN} allowed"));
    }
    if total > MAX_XATTR_BYTES {
        return Some(format!("the xattrs take {total} bytes, more than the {MAX_XATTR_BYTES} allowed"));
    }
    None
}
