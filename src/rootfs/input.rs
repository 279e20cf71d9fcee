//! Opening a rootfs: a tarball (compression recognised by its first bytes), standard input (`-`) or a directory.
//! Decoding runs on its own thread, ahead of the tar reader, so that decompression and layer writing overlap.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};

use crate::error::Error;
use crate::progress::{CountingReader, Progress};
use crate::rootfs::decode::{InputCompression, SNIFF_LEN};
use crate::rootfs::directory::DirectoryReader;
use crate::tar::reader::TarReader;

pub use crate::tar::entry::EntrySource;

/// An opened rootfs.
pub struct Rootfs {
    /// How the input is named in messages: the path as given, or `-` for standard input.
    pub name: String,
    /// What the input turned out to be, for messages (`zstd-compressed tar`, `directory`).
    pub description: String,
    /// A name for default output files: the file name without its tar and compression suffixes.
    pub stem: String,
    pub entries: Box<dyn EntrySource>,
}

/// Opens `spec`: `-` for standard input, a directory, or a tar file (compressed or not).
pub fn open(spec: &str, progress: &Progress) -> Result<Rootfs, Error> {
    if spec == "-" {
        let stdin = io::stdin();
        progress.start(None, "converting standard input");
        return open_stream(Box::new(CountingReader::new(stdin, progress.clone())), "-", "rootfs".into());
    }
    open_path(Path::new(spec), spec, progress)
}

/// Opens the tarball or directory at `path`, named `name` in messages (a spool of standard input is named `-`).
pub fn open_path(path: &Path, name: &str, progress: &Progress) -> Result<Rootfs, Error> {
    let spec = name;
    let path = path.to_path_buf();
    let meta = std::fs::metadata(&path).map_err(|e| Error::BadInput {
        input: spec.to_string(),
        problem: match e.kind() {
            io::ErrorKind::NotFound => "no such file or directory".into(),
            _ => format!("cannot open: {e}"),
        },
    })?;
    let stem = if name == "-" { "rootfs".to_string() } else { file_stem(&path) };
    if meta.is_dir() {
        progress.start(None, &format!("converting {spec}"));
        return Ok(Rootfs {
            name: spec.to_string(),
            description: "directory".into(),
            stem,
            entries: Box::new(DirectoryReader::new(&path, progress.clone())),
        });
    }
    let file = File::open(&path)
        .map_err(|e| Error::BadInput { input: spec.to_string(), problem: format!("cannot open: {e}") })?;
    progress.start(Some(meta.len()), &format!("converting {}", stem));
    open_stream(Box::new(CountingReader::new(file, progress.clone())), spec, stem)
}

fn open_stream(mut raw: Box<dyn Read + Send>, name: &str, stem: String) -> Result<Rootfs, Error> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut raw)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::BadInput { input: name.to_string(), problem: format!("cannot read: {e}") })?;
    if head.is_empty() {
        return Err(Error::BadInput { input: name.to_string(), problem: "empty input: not a tar archive".into() });
    }
    let compression =
        InputCompression::sniff(&head).map_err(|problem| Error::BadInput { input: name.to_string(), problem })?;
    let rejoined: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(raw));
    let decoded = ReadAhead::spawn(compression.decoder(rejoined));
    let description = match compression {
        InputCompression::None => "tar".to_string(),
        other => format!("{other}-compressed tar"),
    };
    Ok(Rootfs {
        name: name.to_string(),
        description,
        stem,
        entries: Box::new(TarReader::new(decoded, name, compression)),
    })
}

/// `core-image-minimal-qemuarm64.rootfs.tar.zst` -> `core-image-minimal-qemuarm64.rootfs`.
fn file_stem(path: &Path) -> String {
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "rootfs".into());
    for suffix in [".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2", ".tgz", ".txz", ".tzst", ".tbz2", ".tar"] {
        if let Some(stem) = name.strip_suffix(suffix).filter(|stem| !stem.is_empty()) {
            return stem.to_string();
        }
    }
    name
}

/// Reads a stream on a separate thread, a bounded number of chunks ahead.
struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
    failed: Option<(io::ErrorKind, String)>,
}

impl ReadAhead {
    const CHUNK: usize = 256 * 1024;
    const AHEAD: usize = 16;

    fn spawn(mut reader: Box<dyn Read + Send>) -> ReadAhead {
        let (sender, chunks) = mpsc::sync_channel(Self::AHEAD);
        std::thread::spawn(move || {
            loop {
                let mut chunk = vec![0u8; Self::CHUNK];
                match reader.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        if sender.send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        return;
                    }
                }
            }
        });
        ReadAhead { chunks, current: Vec::new(), position: 0, failed: None }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        while self.position == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Ok(Err(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
