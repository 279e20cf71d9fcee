//! Applying layers onto a directory by the rules an engine applies them with (image-spec layer.md, "Applying
//! Changesets"): a whiteout `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq` every child the layers below
//! gave its directory, a later entry replaces an earlier one (a directory over a directory only updates it), and
//! every attribute the entry carries is set: owner, mode with setuid/setgid/sticky, xattrs (file capabilities
//! included, set after the owner, which clears them), mtime. Directories get their mode and mtime last, innermost
//! first, as creating a child changes its directory's mtime. Every name is reached through [`Root`], so an entry
//! whose way goes through a symlink, a `..`, a whiteout reaching out, or a hardlink to outside is refused.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use super::Unprivileged;
use super::at::{self, borrow};
use super::root::{Blocked, Root};
use crate::error::{Error, Remedy, Result};
use crate::rootfs::normalize::MAX_HELD_BYTES;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::path::{PathProblem, file_name, join, normal_path, shown_name};
use crate::tar::reader::{TarReader, input_fault};
use crate::tar::whiteout::{self, Whiteout};

pub struct Applier {
    root: Root,
    unprivileged: bool,
    /// Mode and mtime of each directory an entry described, set at the end.
    directories: BTreeMap<Vec<u8>, (u32, i64)>,
    /// Bytes of names held for the whole unpack (the directories') and for the layer being applied (its paths).
    held: u64,
    layer_held: u64,
    pub entries: u64,
    pub left_out: Unprivileged,
}

impl Applier {
    /// Applies onto `root`. `unprivileged`: the owners, devices and privileged xattrs that need root are left out
    /// (counted in [`Applier::left_out`]) instead of refused.
    pub fn new(root: Root, unprivileged: bool) -> Applier {
        Applier {
            root,
            unprivileged,
            directories: BTreeMap::new(),
            held: 0,
            layer_held: 0,
            entries: 0,
            left_out: Unprivileged::default(),
        }
    }

    /// Applies one layer's decoded tar stream; `layer` names the image and the layer in errors.
    pub fn apply_layer(&mut self, decoded: &mut dyn Read, layer: &str) -> Result<()> {
        let mut reader = TarReader::new(decoded, layer, "layer");
        // image-spec: a whiteout hides only what the layers below hold, never an entry of its own layer.
        let mut this_layer: HashSet<Vec<u8>> = HashSet::new();
        self.layer_held = 0;
        while let Some(entry) = reader.next_entry()? {
            let refuse =
                |problem: String| Error::BadEntry { input: layer.to_string(), entry: shown_name(&entry.path), problem };
            let path = match normal_path(&entry.path) {
                Ok(path) => path,
                Err(PathProblem::Escapes) => return Err(refuse("the name climbs out of the root".into())),
                Err(PathProblem::DotDot) => return Err(refuse("the name has a `..` component".into())),
            };
            if let Some(xattr) = entry.xattrs.keys().find(|x| whiteout::is_overlay_xattr(x)) {
                return Err(refuse(format!(
                    "it carries the xattr `{}`, overlayfs's own state, which can hide what other layers hold",
                    crate::error::display_text(xattr, 255)
                )));
            }
            if whiteout::is_overlay_whiteout(&entry.kind) {
                return Err(refuse("a 0/0 character device is overlayfs's whiteout, not a file".into()));
            }
            self.count(path.len() as u64, false)?;
            match whiteout::read(&path) {
                Some(Whiteout::Opaque { directory }) => {
                    self.clear_directory(&directory, &this_layer).map_err(|b| refuse(b.to_string()))?;
                    continue;
                }
                Some(Whiteout::Removes { path: hidden }) => {
                    let name = file_name(&hidden);
                    // `.wh..wh.*` names are aufs's own bookkeeping (`.wh..wh.plnk`), which engines skip too.
                    if name.starts_with(whiteout::PREFIX) {
                        continue;
                    }
                    if name.is_empty() || name == b"." || name == b".." {
                        return Err(refuse("the whiteout names no file of its directory".into()));
                    }
                    if !this_layer.contains(&hidden) {
                        self.remove(&hidden).map_err(|b| refuse(b.to_string()))?;
                    }
                    continue;
                }
                None => {}
            }
            if whiteout::has_whiteout_name(&path) {
                return Err(refuse("a directory on its way has a `.wh.` name, which layers keep for whiteouts".into()));
            }
            self.place(&entry, &path, &mut reader, &refuse)?;
            this_layer.insert(path);
            self.entries += 1;
        }
        Ok(())
    }

    /// Counts bytes of names kept in memory against the bound: for the whole unpack (a directory's attributes) or
    /// for this layer only (its paths).
    fn count(&mut self, bytes: u64, whole_unpack: bool) -> Result<()> {
        *(if whole_unpack { &mut self.held } else { &mut self.layer_held }) += bytes + 48;
        if self.held + self.layer_held > MAX_HELD_BYTES {
            return Err(Error::Invalid(format!(
                "the image's layers hold more than {} MiB of names, the most an unpack keeps in memory",
                MAX_HELD_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// Creates (or, for a directory over a directory, updates) the object `entry` describes at `path`.
    fn place<R: Read>(
        &mut self,
        entry: &Entry,
        path: &[u8],
        reader: &mut TarReader<R>,
        refuse: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        let blocked = |b: Blocked| refuse(b.to_string());
        let failed = |what: &str, e: io::Error| refuse(format!("cannot {what}: {e}"));
        if path.is_empty() {
            // The root itself: only a directory, whose attributes are set like any other's.
            if entry.kind != EntryKind::Directory {
                return Err(refuse(format!("the root is a directory, not a {}", entry.kind.name())));
            }
            let root = self.root.handle().try_clone_to_owned().map_err(|e| failed("open the root", e))?;
            self.set_owner_and_xattrs(&root, entry, refuse)?;
            self.directories.insert(Vec::new(), (entry.mode, entry.mtime));
            return Ok(());
        }
        let parent = self.root.parent(path, true).map_err(blocked)?;
        let dir = borrow(&parent);
        let name = file_name(path);
        let existing = match at::stat(dir, name) {
            Ok(st) => Some(at::kind(&st)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => return Err(failed("read what is there", e)),
        };
        let keep = existing == Some(libc::S_IFDIR) && entry.kind == EntryKind::Directory;
        if existing.is_some() && !keep {
            at::remove_tree(dir, name).map_err(|e| failed("replace what an earlier layer put there", e))?;
            self.root.forget();
            self.forget_directories(path);
        }
        let mode = entry.mode & 0o7777;
        match &entry.kind {
            EntryKind::Directory => {
                if !keep {
                    at::mkdir(dir, name, 0o700).map_err(|e| failed("create the directory", e))?;
                }
                let fd = at::open_dir(dir, name).map_err(|e| failed("open the directory", e))?;
                self.set_owner_and_xattrs(&fd, entry, refuse)?;
                self.count(path.len() as u64, true)?;
                self.directories.insert(path.to_vec(), (mode, entry.mtime));
                return Ok(());
            }
            EntryKind::File { .. } => {
                let fd = at::open(dir, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
                    .map_err(|e| failed("create the file", e))?;
                let mut file = std::fs::File::from(fd);
                io::copy(&mut reader.data(), &mut file).map_err(|e| match input_fault(&e) {
                    Some(problem) => refuse(problem.to_string()),
                    None => failed("write the file", e),
                })?;
                let fd = OwnedFd::from(file);
                self.set_owner_and_xattrs_in_order(&fd, entry, mode, refuse)?;
                return at::set_mtime(borrow(&fd), b"", entry.mtime).map_err(|e| failed("set the mtime", e));
            }
            EntryKind::Hardlink { target } => return self.link(target, &parent, name, refuse),
            EntryKind::Symlink { target } => {
                at::symlink(target, dir, name).map_err(|e| failed("create the symlink", e))?;
            }
            EntryKind::Fifo => {
                at::mknod(dir, name, libc::S_IFIFO | 0o600, 0).map_err(|e| failed("create the fifo", e))?
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                let kind =
                    if matches!(entry.kind, EntryKind::CharDevice { .. }) { libc::S_IFCHR } else { libc::S_IFBLK };
                match at::mknod(dir, name, kind | 0o600, libc::makedev(*major, *minor)) {
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) && self.unprivileged => {
                        // As umoci does when rootless: the node is kept as an empty file of its name and mode.
                        at::open(dir, name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)
                            .map_err(|e| failed("create the file standing for the device", e))?;
                        self.left_out.devices += 1;
                    }
                    Err(e) => return Err(failed("create the device node", e).with_remedy(Remedy::RunPrivileged)),
                    Ok(()) => {}
                }
            }
        }
        self.set_owner(dir, name, entry, refuse)?;
        if !matches!(entry.kind, EntryKind::Symlink { .. }) {
            at::chmod(dir, name, mode).map_err(|e| failed("set the mode", e))?;
        }
        for (key, value) in &entry.xattrs {
            self.set_xattr(key, at::set_xattr(dir, name, key, value), refuse)?;
        }
        at::set_mtime(dir, name, entry.mtime).map_err(|e| failed("set the mtime", e))
    }

    /// A regular file's owner, mode and xattrs, in the order that keeps them all: chown clears setuid, setgid
    /// and `security.capability`, so it goes first.
    fn set_owner_and_xattrs_in_order(
        &mut self,
        fd: &OwnedFd,
        entry: &Entry,
        mode: u32,
        refuse: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        self.set_owner(borrow(fd), b"", entry, refuse)?;
        at::fchmod(borrow(fd), mode).map_err(|e| refuse(format!("cannot set the mode: {e}")))?;
        for (key, value) in &entry.xattrs {
            self.set_xattr(key, at::fset_xattr(borrow(fd), key, value), refuse)?;
        }
        Ok(())
    }

    /// A directory's owner and xattrs (its mode and mtime come at the end).
    fn set_owner_and_xattrs(&mut self, fd: &OwnedFd, entry: &Entry, refuse: &dyn Fn(String) -> Error) -> Result<()> {
        self.set_owner(borrow(fd), b"", entry, refuse)?;
        for (key, value) in &entry.xattrs {
            self.set_xattr(key, at::fset_xattr(borrow(fd), key, value), refuse)?;
        }
        Ok(())
    }

    fn set_owner(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
        refuse: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        if self.unprivileged {
            self.left_out.owners += 1;
            return Ok(());
        }
        let id = |n: u64| u32::try_from(n).ok().filter(|&n| n != u32::MAX);
        let (Some(uid), Some(gid)) = (id(entry.uid), id(entry.gid)) else {
            return Err(refuse(format!("the owner {}:{} is beyond what Linux can hold", entry.uid, entry.gid)));
        };
        at::chown(dir, name, uid, gid).map_err(|e| {
            let error = refuse(format!("cannot set the owner {uid}:{gid}: {e}"));
            if e.raw_os_error() == Some(libc::EPERM) { error.with_remedy(Remedy::RunPrivileged) } else { error }
        })
    }

    fn set_xattr(&mut self, key: &str, result: io::Result<()>, refuse: &dyn Fn(String) -> Error) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if self.unprivileged
                    && !key.starts_with("user.")
                    && matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP)) =>
            {
                self.left_out.xattrs += 1;
                Ok(())
            }
            Err(e) => Err(refuse(format!("cannot set the xattr `{}`: {e}", crate::error::display_text(key, 255)))),
        }
    }

    /// A hardlink `name` in `dir` to the earlier entry `target`, reached from the root like any path.
    fn link(&mut self, target: &[u8], dir: &OwnedFd, name: &[u8], refuse: &dyn Fn(String) -> Error) -> Result<()> {
        let shown = shown_name(target);
        let target = match normal_path(target) {
            Ok(target) if !target.is_empty() => target,
            Ok(_) => return Err(refuse("a hardlink to the root".into())),
            Err(PathProblem::Escapes) => return Err(refuse(format!("a hardlink to `{shown}`, outside the root"))),
            Err(PathProblem::DotDot) => return Err(refuse(format!("a hardlink to `{shown}`, through `..`"))),
        };
        let target_dir = match self.root.parent(&target, false) {
            Ok(fd) => fd,
            Err(Blocked::Missing(_)) => {
                return Err(refuse(format!("a hardlink to `{shown}`, which no earlier entry made")));
            }
            Err(b) => return Err(refuse(format!("a hardlink to `{shown}`: {b}"))),
        };
        let target_name = file_name(&target);
        match at::stat(borrow(&target_dir), target_name) {
            Ok(st) if at::kind(&st) == libc::S_IFDIR => {
                return Err(refuse(format!("a hardlink to the directory `{shown}`")));
            }
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(refuse(format!("a hardlink to `{shown}`, which no earlier entry made")));
            }
            Err(e) => return Err(refuse(format!("a hardlink to `{shown}`: {e}"))),
        }
        at::link(borrow(&target_dir), target_name, borrow(dir), name)
            .map_err(|e| refuse(format!("cannot link to `{shown}`: {e}")))
    }

    /// Removes `path` and all below it (a whiteout); nothing there is fine.
    fn remove(&mut self, path: &[u8]) -> std::result::Result<(), Blocked> {
        let parent = match self.root.parent(path, false) {
            Err(Blocked::Missing(_) | Blocked::NotDirectory(_)) => return Ok(()),
            other => other?,
        };
        at::remove_tree(borrow(&parent), file_name(path)).map_err(Blocked::Io)?;
        self.root.forget();
        self.forget_directories(path);
        Ok(())
    }

    /// Removes every child of `directory` that the layers below gave it (an opaque whiteout), keeping what this
    /// layer put there.
    fn clear_directory(&mut self, directory: &[u8], keep: &HashSet<Vec<u8>>) -> std::result::Result<(), Blocked> {
        let fd = if directory.is_empty() {
            self.root.handle().try_clone_to_owned().map_err(Blocked::Io)?
        } else {
            let parent = match self.root.parent(directory, false) {
                Err(Blocked::Missing(_) | Blocked::NotDirectory(_)) => return Ok(()),
                other => other?,
            };
            let name = file_name(directory);
            match at::open_dir(borrow(&parent), name) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)) => {
                    // The marker's own path goes through a symlink there: refused like any entry's.
                    if at::stat(borrow(&parent), name).is_ok_and(|st| at::kind(&st) == libc::S_IFLNK) {
                        return Err(Blocked::Symlink(directory.to_vec()));
                    }
                    // Nothing there, or not a directory: no children to hide.
                    return Ok(());
                }
                Err(e) => return Err(Blocked::Io(e)),
            }
        };
        self.clear_below(&fd, directory, keep)?;
        self.root.forget();
        Ok(())
    }

    fn clear_below(
        &mut self,
        fd: &OwnedFd,
        directory: &[u8],
        keep: &HashSet<Vec<u8>>,
    ) -> std::result::Result<(), Blocked> {
        use std::os::fd::AsRawFd;
        for child in at::names(fd.as_raw_fd()).map_err(Blocked::Io)? {
            let path = join(directory, &child);
            if !keep.contains(&path) {
                at::remove_tree(borrow(fd), &child).map_err(Blocked::Io)?;
                self.forget_directories(&path);
                continue;
            }
            // A directory of this layer keeps only what this layer put in it.
            if let Ok(inner) = at::open_dir(borrow(fd), &child) {
                self.clear_below(&inner, &path, keep)?;
            }
        }
        Ok(())
    }

    /// Drops the directory attributes kept for `path` and below: it was removed.
    fn forget_directories(&mut self, path: &[u8]) {
        self.directories.remove(path);
        let mut below = path.to_vec();
        below.push(b'/');
        let mut end = path.to_vec();
        end.push(b'/' + 1);
        let doomed: Vec<Vec<u8>> = self.directories.range(below..end).map(|(p, _)| p.clone()).collect();
        for path in doomed {
            self.directories.remove(&path);
        }
    }

    /// Sets every directory's mode and mtime, innermost first (a child sorts after its parent). Call once, after
    /// the last layer.
    pub fn finish(&mut self) -> Result<()> {
        let directories = std::mem::take(&mut self.directories);
        for (path, (mode, mtime)) in directories.iter().rev() {
            let fail = |e: io::Error| Error::BadEntry {
                input: "the unpacked rootfs".into(),
                entry: shown_name(path),
                problem: format!("cannot set the directory's mode and mtime: {e}"),
            };
            if path.is_empty() {
                at::fchmod(self.root.handle(), *mode).map_err(fail)?;
                at::set_mtime(self.root.handle(), b"", *mtime).map_err(fail)?;
                continue;
            }
            let parent = self.root.parent(path, false).map_err(|b| fail(io::Error::other(b.to_string())))?;
            let name = file_name(path);
            // fchmodat follows a symlink: only what is still the directory recorded is touched.
            if !at::stat(borrow(&parent), name).is_ok_and(|st| at::kind(&st) == libc::S_IFDIR) {
                continue;
            }
            at::chmod(borrow(&parent), name, *mode).map_err(fail)?;
            at::set_mtime(borrow(&parent), name, *mtime).map_err(fail)?;
        }
        Ok(())
    }
}
