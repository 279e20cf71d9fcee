//! A rootfs given as a directory: walked in byte order of names without following symlinks, with lstat attributes,
//! xattrs, device numbers and hardlinks (the first path of an inode is the file, later ones link to it).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, display_bytes};
use crate::progress::{CountingReader, Progress};
use crate::tar::entry::EntrySource;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::reader::InputFault;

pub struct DirectoryReader {
    root: PathBuf,
    input: String,
    walker: walkdir::IntoIter,
    current: Option<PathBuf>,
    inodes: HashMap<(u64, u64), Vec<u8>>,
    progress: Progress,
    /// Sockets cannot be stored in a tar; they are skipped and counted.
    pub skipped_sockets: u64,
}

impl DirectoryReader {
    pub fn new(root: &Path, progress: Progress) -> DirectoryReader {
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()))
            .into_iter();
        DirectoryReader {
            root: root.to_path_buf(),
            input: root.display().to_string(),
            walker,
            current: None,
            inodes: HashMap::new(),
            progress,
            skipped_sockets: 0,
        }
    }

    fn entry_for(&mut self, path: &Path, relative: Vec<u8>) -> Result<Option<Entry>, Error> {
        let bad =
            |problem: String| Error::BadEntry { input: self.input.clone(), entry: display_bytes(&relative), problem };
        let meta = std::fs::symlink_metadata(path).map_err(|e| bad(format!("cannot stat: {e}")))?;
        let file_type = meta.file_type();
        let rdev = meta.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let mut kind = if file_type.is_dir() {
            EntryKind::Directory
        } else if file_type.is_file() {
            EntryKind::File { size: meta.len() }
        } else if file_type.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| bad(format!("cannot read the link: {e}")))?;
            EntryKind::Symlink { target: target.as_os_str().as_bytes().to_vec() }
        } else if file_type.is_char_device() {
            EntryKind::CharDevice { major, minor }
        } else if file_type.is_block_device() {
            EntryKind::BlockDevice { major, minor }
        } else if file_type.is_fifo() {
            EntryKind::Fifo
        } else {
            self.skipped_sockets += 1;
            return Ok(None);
        };
        if !file_type.is_dir() && meta.nlink() > 1 {
            match self.inodes.get(&(meta.dev(), meta.ino())) {
                Some(first) => kind = EntryKind::Hardlink { target: first.clone() },
                None => {
                    self.inodes.insert((meta.dev(), meta.ino()), relative.clone());
                }
            }
        }
        let mut xattrs = BTreeMap::new();
        let names = xattr::list(path).map_err(|e| bad(format!("cannot list xattrs: {e}")))?;
        for name in names {
            let Some(name_text) = name.to_str() else {
                return Err(bad(format!("xattr name `{}` is not UTF-8", display_bytes(name.as_bytes()))));
            };
            if let Some(value) =
                xattr::get(path, &name).map_err(|e| bad(format!("cannot read xattr {name_text}: {e}")))?
            {
                xattrs.insert(name_text.to_string(), value);
            }
        }
        Ok(Some(Entry {
            path: relative,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid() as u64,
            gid: meta.gid() as u64,
            mtime: meta.mtime(),
            xattrs,
        }))
    }
}

impl EntrySource for DirectoryReader {
    fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        loop {
            let Some(next) = self.walker.next() else {
                return Ok(None);
            };
            let dir_entry = next.map_err(|e| Error::BadInput { input: self.input.clone(), problem: e.to_string() })?;
            if dir_entry.depth() == 0 {
                continue;
            }
            let path = dir_entry.path().to_path_buf();
            let relative = path.strip_prefix(&self.root).unwrap_or(&path).as_os_str().as_bytes().to_vec();
            if let Some(entry) = self.entry_for(&path, relative)? {
                self.current = matches!(entry.kind, EntryKind::File { .. }).then_some(path);
                return Ok(Some(entry));
            }
        }
    }

    fn data(&mut self) -> Box<dyn Read + '_> {
        let Some(path) = self.current.take() else {
            return Box::new(io::empty());
        };
        match File::open(&path) {
            Ok(file) => Box::new(MarkReadErrors { inner: CountingReader::new(file, self.progress.clone()), path }),
            Err(e) => Box::new(MarkReadErrors { inner: FailingRead(Some(e)), path }),
        }
    }
}

struct FailingRead(Option<io::Error>);

impl Read for FailingRead {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| io::Error::other("cannot open")))
    }
}

/// Marks read errors as input faults so that they are reported against the input, not the output.
struct MarkReadErrors<R> {
    inner: R,
    path: PathBuf,
}

impl<R: Read> Read for MarkReadErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Interrupted => e,
            _ => io::Error::other(InputFault(format!("cannot read `{}`: {e}", self.path.display()))),
        })
    }
}
