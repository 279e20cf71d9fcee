//! Nothing left behind. Every temporary path a run makes (the staging directory, an archive or a layout being
//! written beside its destination, a partial blob in an existing layout, spooled standard input) is created here,
//! registered while it lives and locked (`flock`) by its run. SIGINT, SIGTERM and SIGHUP are blocked in every thread
//! from the start of `main` and taken by one thread with `sigwait`, which removes every registered path and exits
//! with 128 + the signal's number, as shells do. A run killed outright (SIGKILL, a power cut) still leaves its
//! paths behind: the next run that writes into the same directory removes those of them whose lock is free.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// A leftover whose lock is free is removed only when it has not changed for this long: the lock is taken right
/// after the path is made, and this covers that instant, so a path another run is just creating is never removed.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// The signals that end a run with its temporary paths removed.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

struct Registry {
    next: u64,
    paths: BTreeMap<u64, PathBuf>,
    /// Directories already searched for leftovers by this run.
    swept: Option<HashSet<PathBuf>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { next: 0, paths: BTreeMap::new(), swept: None });

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Blocks the signals in this thread (and so in every thread it starts later) and starts the thread that waits
/// for them. Call first thing in `main`, before any other thread exists.
pub fn install() {
    // SAFETY: plain libc signal-set calls on a local set; pthread_sigmask changes only this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: sigwait on a set of signals blocked in every thread.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                end_run(signal);
            }
        }
    });
    if spawned.is_err() {
        // Without the waiting thread the signals must keep their default action, or Ctrl-C would do nothing.
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

/// Removes every registered path and exits. The registry stays locked until the exit, so no path can be created
/// (every creation registers under the same lock) or committed (renamed into place) meanwhile.
fn end_run(signal: libc::c_int) -> ! {
    let registry = registry();
    for path in registry.paths.values() {
        remove(path);
    }
    std::process::exit(128 + signal);
}

/// Removes a file or a whole directory. Other threads of the run may still be writing into a directory being
/// removed, so a directory is tried a few times.
fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            for _ in 0..10 {
                if fs::remove_dir_all(path).is_ok() || !path.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// A registered path: removed when a signal ends the run while this lives.
struct Registration {
    id: u64,
}

impl Registration {
    /// Makes something with `create` and registers the path it returns, both under the registry's lock, so a
    /// signal cannot fall between the two. `dir` is first searched, once per run, for leftovers of dead runs named
    /// with `prefix`.
    fn create<T>(dir: &Path, prefix: &str, create: impl FnOnce() -> io::Result<(T, PathBuf)>) -> io::Result<(T, Self)> {
        sweep_once(dir, prefix);
        let mut registry = registry();
        let (made, path) = create()?;
        let id = registry.next;
        registry.next += 1;
        registry.paths.insert(id, path);
        Ok((made, Registration { id }))
    }

    /// Runs `commit` (a rename into place) under the registry's lock and, if it succeeds, forgets the path.
    fn commit<T>(&self, commit: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let mut registry = registry();
        let done = commit()?;
        registry.paths.remove(&self.id);
        Ok(done)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().paths.remove(&self.id);
    }
}

/// Removes the leftovers of dead runs named `prefix*` from `dir`, the first time this run asks for that pair.
/// Making a temporary path here does it for that path's kind; a directory holding several kinds asks for the others.
pub fn sweep_once(dir: &Path, prefix: &str) {
    assert!(!prefix.is_empty(), "an empty prefix would sweep every file of the directory");
    let first_here = registry().swept.get_or_insert_with(HashSet::new).insert(dir.join(prefix));
    if first_here {
        sweep(dir, prefix);
    }
}

/// Takes the exclusive lock on `file` without waiting; false when another open file holds it.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own; the lock goes with the open file.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Removes the entries of `dir` named `prefix*` that no live run holds: their lock can be taken and they have not
/// changed for [`STALE_AFTER`]. Symlinks are never followed or removed.
fn sweep(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().as_encoded_bytes().starts_with(prefix.as_bytes()) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if !(meta.is_dir() || meta.is_file()) {
            continue;
        }
        let recent = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .map_or(true, |age| age < STALE_AFTER);
        if recent {
            continue;
        }
        let Ok(handle) = open_no_follow(&path) else { continue };
        if try_lock(&handle) {
            remove(&path);
        }
    }
}

fn open_no_follow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
}

/// A temporary directory, registered and locked while it lives; removed when dropped unless renamed into place.
pub struct TempDir {
    path: PathBuf,
    _lock: File,
    registration: Registration,
    armed: bool,
}

impl TempDir {
    /// Makes `dir/prefixXXXXXX`, after removing this kind's leftovers of dead runs from `dir`.
    pub fn new_in(dir: &Path, prefix: &str) -> io::Result<TempDir> {
        let ((path, lock), registration) = Registration::create(dir, prefix, || {
            let path = tempfile::Builder::new().prefix(prefix).tempdir_in(dir)?.keep();
            let lock = File::open(&path).map_err(|e| {
                let _ = fs::remove_dir(&path);
                e
            })?;
            try_lock(&lock);
            Ok(((path.clone(), lock), path))
        })?;
        Ok(TempDir { path, _lock: lock, registration, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the directory to `to`; on failure it stays (and is removed when dropped).
    pub fn rename_to(&mut self, to: &Path) -> io::Result<()> {
        self.registration.commit(|| fs::rename(&self.path, to))?;
        self.armed = false;
        Ok(())
    }

    /// Swaps this directory with the existing directory `to` in one step (renameat2 `RENAME_EXCHANGE`), so that
    /// `to` is never missing: what was at `to` is then this temporary directory, removed when it is dropped. Where
    /// the file system cannot exchange, `to` is first renamed to a temporary name of its own (removed likewise).
    pub fn exchange_with(&mut self, to: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput);
        let (from, to_c) = (c(&self.path)?, c(to)?);
        // SAFETY: two valid NUL-terminated paths.
        let exchanged = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to_c.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if exchanged == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) {
            return Err(e);
        }
        let parent = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let prefix = format!("{}old-", self.path.file_name().and_then(|n| n.to_str()).unwrap_or(".rootfs2image-"));
        let mut old = TempDir::new_in(parent, &prefix)?;
        fs::rename(to, &old.path)?;
        if let Err(e) = self.rename_to(to) {
            // Put the old one back: a failed replacement leaves what was there.
            let _ = old.rename_to(to);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A temporary file, registered and locked while it lives; removed when dropped unless persisted.
pub struct TempFile {
    path: PathBuf,
    file: File,
    registration: Registration,
    armed: bool,
}

impl TempFile {
    /// Makes `dir/prefixXXXXXX`, after removing this kind's leftovers of dead runs from `dir`.
    pub fn new_in(dir: &Path, prefix: &str) -> io::Result<TempFile> {
        let ((path, file), registration) = Registration::create(dir, prefix, || {
            let (file, path) = tempfile::Builder::new().prefix(prefix).tempfile_in(dir)?.into_parts();
            let path = path.keep().map_err(|e| e.error)?;
            try_lock(&file);
            Ok(((path.clone(), file), path))
        })?;
        Ok(TempFile { path, file, registration, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Renames the file to `to`, replacing what is there.
    pub fn persist(mut self, to: &Path) -> io::Result<()> {
        self.registration.commit(|| fs::rename(&self.path, to))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Registers a path made elsewhere (a hard link about to be renamed into place) for as long as the guard lives.
pub struct Tracked {
    path: PathBuf,
    registration: Registration,
    armed: bool,
}

impl Tracked {
    /// Runs `create`, which makes `dir/name`, and registers it; `name` starts with `prefix`, the kind whose
    /// leftovers are removed from `dir` first.
    pub fn create(
        dir: &Path,
        prefix: &str,
        name: &str,
        create: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<Tracked> {
        assert!(!prefix.is_empty() && name.starts_with(prefix), "a tracked path is named with its kind's prefix");
        let path = dir.join(name);
        let ((), registration) = Registration::create(dir, prefix, || create(&path).map(|()| ((), path.clone())))?;
        Ok(Tracked { path, registration, armed: true })
    }

    pub fn persist(mut self, to: &Path) -> io::Result<()> {
        self.registration.commit(|| fs::rename(&self.path, to))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leftover_is_removed_only_when_its_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let stale = dir.path().join(".test-kind-stale");
        let live = dir.path().join(".test-kind-live");
        fs::create_dir(&stale).unwrap();
        fs::create_dir(&live).unwrap();
        for path in [&stale, &live] {
            File::open(path).unwrap().set_modified(old).unwrap();
        }
        let held = File::open(&live).unwrap();
        assert!(try_lock(&held));
        let made = TempDir::new_in(dir.path(), ".test-kind-").unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(made.path().exists());
        let path = made.path().to_path_buf();
        drop(made);
        assert!(!path.exists());
    }
}
