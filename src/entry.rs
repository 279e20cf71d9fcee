//! The rootfs entry model shared by every reader and writer: one file system object with all its attributes.

use std::collections::BTreeMap;

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

/// One file system object. `path` is relative to the rootfs, without a leading `/` or `./` and without a trailing
/// `/`, once [`crate::normalize`] has seen it; readers hand over paths as found.
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
    pub fn size(&self) -> u64 {
        match self.kind {
            EntryKind::File { size } => size,
            _ => 0,
        }
    }
}
