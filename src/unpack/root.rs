//! The directory an image is unpacked into, held by a handle. Every entry's parent is reached from that handle one
//! component at a time with `O_NOFOLLOW | O_DIRECTORY`, so a symlink a layer made (or anything that is not a
//! directory) on the way is refused rather than followed: no entry can write where a link points (umoci's
//! CVE-2021-29136). The rootfs's own files (`/etc/passwd`) are read with openat2's `RESOLVE_IN_ROOT`, where
//! absolute links resolve inside the root as they would in the container, or without following links at all on
//! kernels older than 5.6.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::at;
use crate::tar::path::parent_of;

/// Why a path cannot be reached from the root. Each names the part of the path (normal form) that stopped it.
#[derive(Debug)]
pub enum Blocked {
    /// A component on the way is a symlink: going on would write or read where it points.
    Symlink(Vec<u8>),
    /// A component on the way is neither a directory nor a symlink.
    NotDirectory(Vec<u8>),
    /// What was to be read is not a regular file.
    NotFile(Vec<u8>),
    /// A component on the way does not exist (only when nothing may be created).
    Missing(Vec<u8>),
    Io(io::Error),
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |path: &[u8]| crate::tar::path::shown_name(path);
        match self {
            Blocked::Symlink(at) => {
                write!(f, "`{}` is a symlink, and nothing is written or read through one", shown(at))
            }
            Blocked::NotDirectory(at) => write!(f, "`{}` is not a directory", shown(at)),
            Blocked::NotFile(at) => write!(f, "`{}` is not a regular file", shown(at)),
            Blocked::Missing(at) => write!(f, "`{}` does not exist", shown(at)),
            Blocked::Io(e) => write!(f, "{e}"),
        }
    }
}

pub struct Root {
    fd: OwnedFd,
    /// The directories of the parent resolved last, outermost first, each with its name: a layer lists a
    /// directory's entries together, so the next entry mostly shares them and costs no system call to reach.
    cached: Vec<(Vec<u8>, OwnedFd)>,
}

impl Root {
    /// Opens `path`, a directory this run made (it may be reached through symlinks of the user's own).
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = std::fs::File::open(path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(Root { fd: dir.into(), cached: Vec::new() })
    }

    pub fn handle(&self) -> BorrowedFd<'_> {
        at::borrow(&self.fd)
    }

    /// Drops the cached directories: after a removal, one of them may be gone.
    pub fn forget(&mut self) {
        self.cached.clear();
    }

    /// The directory holding `path` (normal form, not empty). Missing directories on the way are made (mode 0755,
    /// owned by whoever unpacks, as an engine makes them) when `create`; otherwise a missing one is
    /// [`Blocked::Missing`].
    pub fn parent(&mut self, path: &[u8], create: bool) -> Result<OwnedFd, Blocked> {
        let parent = parent_of(path);
        let components: Vec<&[u8]> =
            if parent.is_empty() { Vec::new() } else { parent.split(|&b| b == b'/').collect() };
        let shared = self.cached.iter().zip(&components).take_while(|((name, _), wanted)| name == *wanted).count();
        self.cached.truncate(shared);
        for (i, name) in components.iter().enumerate().skip(shared) {
            let here = self.cached.last().map_or(at::borrow(&self.fd), |(_, fd)| at::borrow(fd));
            let so_far = || components[..=i].join(&b'/');
            let opened = match at::open_dir(here, name) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => match at::mkdir(here, name, 0o755) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(Blocked::Io(e)),
                    _ => at::open_dir(here, name),
                },
                other => other,
            };
            let fd = match opened {
                Ok(fd) => fd,
                Err(e) => return Err(blocked(here, name, e, so_far())),
            };
            self.cached.push((name.to_vec(), fd));
        }
        let last = self.cached.last().map_or(&self.fd, |(_, fd)| fd);
        last.try_clone().map_err(Blocked::Io)
    }

    /// Reads the rootfs's file at `path` (normal form), at most `limit` bytes of it; `None` when there is none.
    /// Symlinks resolve inside the root, as in the container (openat2 `RESOLVE_IN_ROOT`); where the kernel lacks
    /// openat2 none is followed. Only a regular file is read, opened without blocking (a FIFO cannot stall it).
    pub fn read_file(&self, path: &[u8], limit: u64) -> Result<Option<Vec<u8>>, Blocked> {
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let opened = match open_in_root(self.handle(), path, flags) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                // No openat2 (before Linux 5.6, or refused by a seccomp filter): one component at a time.
                let mut walker = Root { fd: self.fd.try_clone().map_err(Blocked::Io)?, cached: Vec::new() };
                let parent = match walker.parent(path, false) {
                    Err(Blocked::Missing(_)) => return Ok(None),
                    other => other?,
                };
                let name = crate::tar::path::file_name(path);
                at::open(at::borrow(&parent), name, flags, 0)
                    .map_err(|e| blocked(at::borrow(&parent), name, e, path.to_vec()))
            }
            Err(e) => Err(Blocked::Io(e)),
            Ok(fd) => Ok(fd),
        };
        let file = match opened {
            Ok(fd) => std::fs::File::from(fd),
            Err(Blocked::Missing(_)) => return Ok(None),
            Err(Blocked::Io(e)) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Ok(None);
            }
            Err(other) => return Err(other),
        };
        if !file.metadata().map_err(Blocked::Io)?.is_file() {
            return Err(Blocked::NotFile(path.to_vec()));
        }
        let mut bytes = Vec::new();
        file.take(limit + 1).read_to_end(&mut bytes).map_err(Blocked::Io)?;
        if bytes.len() as u64 > limit {
            return Err(Blocked::Io(io::Error::other(format!("it is larger than the {limit} bytes read"))));
        }
        Ok(Some(bytes))
    }
}

/// What an open of `name` in `dir` that failed with `e` ran into; `path` is where, in the rootfs.
fn blocked(dir: BorrowedFd<'_>, name: &[u8], e: io::Error, path: Vec<u8>) -> Blocked {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Blocked::Missing(path),
        // ELOOP: `name` is a symlink; ENOTDIR: it is not a directory (or, with O_DIRECTORY, a symlink).
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => match at::stat(dir, name) {
            Ok(st) if at::kind(&st) == libc::S_IFLNK => Blocked::Symlink(path),
            Ok(_) => Blocked::NotDirectory(path),
            Err(e) => Blocked::Io(e),
        },
        _ => Blocked::Io(e),
    }
}

/// openat2 with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`: `..` and absolute symlinks stop at
/// `dir`, and /proc's magic links are refused.
fn open_in_root(dir: BorrowedFd<'_>, path: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = std::ffi::CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; every field is set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
    // SAFETY: a valid NUL-terminated path and an open_how of the size given.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_is_reached_only_through_directories() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let mut root = Root::open(dir.path()).unwrap();
        assert!(matches!(root.parent(b"link/x", true), Err(Blocked::Symlink(at)) if at == b"link"));
        assert!(matches!(root.parent(b"file/x", true), Err(Blocked::NotDirectory(at)) if at == b"file"));
        assert!(matches!(root.parent(b"a/b/c", false), Err(Blocked::Missing(at)) if at == b"a"));
        root.parent(b"a/b/c", true).unwrap();
        assert!(dir.path().join("a/b").is_dir(), "missing directories on the way are made");
        assert!(
            matches!(root.parent(b"link/y", true), Err(Blocked::Symlink(_))),
            "the cache of a/b leads nowhere else"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was made through the link");
    }

    #[test]
    fn only_regular_files_of_the_root_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/big"), vec![b'x'; 100]).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(root.read_file(b"etc/big", 100).unwrap().unwrap().len(), 100);
        assert!(root.read_file(b"etc/big", 99).is_err(), "a file past the bound is refused");
        assert!(root.read_file(b"etc/none", 99).unwrap().is_none());
        assert!(matches!(root.read_file(b"etc", 99), Err(Blocked::NotFile(_))));
    }
}
