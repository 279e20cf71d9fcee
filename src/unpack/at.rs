//! The `*at` system calls the unpacker makes, each on a directory handle and one name inside it (never a path with
//! a `/`), none following a symlink in the last component: what keeps every write inside the root.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A name as the kernel takes it; a name with a NUL byte never reaches here (the tar reader refuses it).
fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOFOLLOW)`.
pub fn open(dir: BorrowedFd<'_>, name: &[u8], flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: a valid NUL-terminated name; the returned descriptor is owned by us alone.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode as libc::c_uint)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The directory `name` inside `dir`; fails (ELOOP or ENOTDIR) when it is a symlink or not a directory.
pub fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    open(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// `fstatat` without following a symlink; `name` empty means `dir` itself.
pub fn stat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<libc::stat> {
    let name = c_name(name)?;
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.as_bytes().is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: `st` is written by the kernel before it is read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// The kind bits of `st_mode`.
pub fn kind(st: &libc::stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

pub fn mkdir(dir: BorrowedFd<'_>, name: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a valid NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

pub fn mknod(dir: BorrowedFd<'_>, name: &[u8], mode: libc::mode_t, device: libc::dev_t) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a valid NUL-terminated name.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, device) })
}

pub fn symlink(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let (target, name) = (c_name(target)?, c_name(name)?);
    // SAFETY: valid NUL-terminated strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// A second name for `from_dir/from_name`; with no AT_SYMLINK_FOLLOW, a symlink there is linked, not followed.
pub fn link(from_dir: BorrowedFd<'_>, from_name: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let (from_name, name) = (c_name(from_name)?, c_name(name)?);
    // SAFETY: valid NUL-terminated names.
    check(unsafe { libc::linkat(from_dir.as_raw_fd(), from_name.as_ptr(), dir.as_raw_fd(), name.as_ptr(), 0) })
}

pub fn unlink(dir: BorrowedFd<'_>, name: &[u8], directory: bool) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: a valid NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// Sets the owner of `name` itself (a symlink's own, never its target's).
pub fn chown(dir: BorrowedFd<'_>, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.as_bytes().is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: a valid NUL-terminated name.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) })
}

/// Sets the mode of `name`, which the caller made and knows is no symlink (fchmodat cannot refuse to follow one
/// before Linux 6.6).
pub fn chmod(dir: BorrowedFd<'_>, name: &[u8], mode: libc::mode_t) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: a valid NUL-terminated name.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a descriptor we hold.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

/// Sets the access and modification times of `name` itself (empty: `dir` itself) to `mtime`, to the second.
pub fn set_mtime(dir: BorrowedFd<'_>, name: &[u8], mtime: i64) -> io::Result<()> {
    let name = c_name(name)?;
    let time = libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: 0 };
    let times = [time, time];
    // utimensat takes AT_EMPTY_PATH only from Linux 5.8 on; a name-less call is made on the handle instead.
    if name.as_bytes().is_empty() {
        // SAFETY: a descriptor we hold and two timespecs.
        return check(unsafe { libc::futimens(dir.as_raw_fd(), times.as_ptr()) });
    }
    // SAFETY: a valid NUL-terminated name and two timespecs.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
}

/// Sets an xattr on `name` itself (not following a symlink) through `/proc/self/fd/DIR/NAME`: the directory is
/// reached through its handle, and only the last component is looked up, without following it. Linux has no
/// `setxattrat` before 6.13.
pub fn set_xattr(dir: BorrowedFd<'_>, name: &[u8], key: &str, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        path.push(b'/');
        path.extend_from_slice(name);
    }
    let (path, key) = (c_name(&path)?, c_name(key.as_bytes())?);
    // SAFETY: valid NUL-terminated strings and a buffer of `value.len()` bytes.
    check(unsafe { libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// Sets an xattr on an open file.
pub fn fset_xattr(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let key = c_name(key.as_bytes())?;
    // SAFETY: a descriptor we hold, a NUL-terminated name and a buffer of `value.len()` bytes.
    check(unsafe { libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// Removes `name` from `dir` and, if it is a directory, everything below it, through handles only: a symlink
/// inside is removed, never followed.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match unlink(dir, name, false) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        // EISDIR (Linux) or EPERM (POSIX) when `name` is a directory.
        Err(e) if !matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::EPERM)) => return Err(e),
        Err(_) => {}
    }
    let inner = open_dir(dir, name)?;
    for child in names(inner.as_raw_fd())? {
        remove_tree(borrow(&inner), &child)?;
    }
    unlink(dir, name, true)
}

/// The names in the directory `fd` (without `.` and `..`).
pub fn names(fd: RawFd) -> io::Result<Vec<Vec<u8>>> {
    // fdopendir takes the descriptor over, so it is given a duplicate.
    // SAFETY: dup of a descriptor we hold.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is ours and is handed to the stream, which closedir closes.
    let stream = unsafe { libc::fdopendir(copy) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `copy` is still ours to close.
        unsafe { libc::close(copy) };
        return Err(e);
    }
    // SAFETY: the stream starts at the directory's first entry even if the descriptor was read before.
    unsafe { libc::rewinddir(stream) };
    let mut out = Vec::new();
    loop {
        // SAFETY: errno is cleared to tell the end from an error; the entry is valid until the next readdir.
        let entry = unsafe {
            *libc::__errno_location() = 0;
            libc::readdir(stream)
        };
        if entry.is_null() {
            let errno = unsafe { *libc::__errno_location() };
            // SAFETY: the stream is ours.
            unsafe { libc::closedir(stream) };
            if errno != 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            return Ok(out);
        }
        // SAFETY: d_name is NUL-terminated within the entry.
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
}

/// A borrowed view of a handle we own.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}
