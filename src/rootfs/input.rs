//! Opening a rootfs: a tarball (compression recognised by its first bytes), standard input (`-`) or a directory.
//! Decoding runs on its own thread, ahead of the tar reader, so that decompression and layer writing overlap.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::Error;
use crate::progress::{CountingReader, Progress};
use crate::rootfs::decode::{InputCompression, SNIFF_LEN};
use crate::rootfs::directory::DirectoryReader;
use crate::tar::file_digests::DataIndex;
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
        return open_stream(Box::new(CountingReader::new(stdin, progress.clone())), "-", "rootfs".into(), None);
    }
    open_path(Path::new(spec), spec, progress)
}

/// Opens the tarball or directory at `path`, named `name` in messages (a spool of standard input is named `-`).
pub fn open_path(path: &Path, name: &str, progress: &Progress) -> Result<Rootfs, Error> {
    let spec = name;
    let path = path.to_path_buf();
    let meta = metadata(&path, spec)?;
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
    open_stream(Box::new(CountingReader::new(file, progress.clone())), spec, stem, None)
}

/// Opens the tarball at `path` like [`open_path`], copying what it decodes to into `tee` as it is read (and, should
/// the reader stop early, to the end of the input); `None` back when the tarball is not compressed, so that there
/// is nothing to keep.
pub(crate) fn open_path_teeing(
    path: &Path,
    name: &str,
    progress: &Progress,
    tee: DecodedTee,
) -> Result<(Rootfs, Option<Arc<TeeState>>), Error> {
    let size = Some(metadata(path, name)?.len());
    let file = File::open(path)
        .map_err(|e| Error::BadInput { input: name.to_string(), problem: format!("cannot open: {e}") })?;
    let stem = if name == "-" { "rootfs".to_string() } else { file_stem(path) };
    progress.start(size, &format!("converting {}", stem));
    let state = Arc::clone(&tee.state);
    let rootfs = open_stream(Box::new(CountingReader::new(file, progress.clone())), name, stem, Some(tee))?;
    let teeing = rootfs.description != "tar";
    Ok((rootfs, teeing.then_some(state)))
}

/// Opens a tar of `size` bytes decoded earlier from the input named `name` (see [`crate::rootfs::source`]): read as
/// the input itself, with its stem and description, without decoding; `index` is what the first read recorded of it.
/// `decoded` counts its own progress. With an index it is read directly, so that data can be skipped unread;
/// without one, a thread reads ahead.
pub(crate) fn open_decoded(
    decoded: Box<dyn Read + Send>,
    size: u64,
    name: &str,
    stem: String,
    description: String,
    index: Option<DataIndex>,
    progress: &Progress,
) -> Rootfs {
    progress.start(Some(size), &format!("converting {stem}"));
    let entries: Box<dyn EntrySource> = match index {
        Some(index) => Box::new(TarReader::new(decoded, name, &description).knowing(index)),
        None => Box::new(TarReader::new(ReadAhead::spawn(decoded, None), name, &description)),
    };
    Rootfs { name: name.to_string(), stem, entries, description }
}

fn open_stream(
    mut raw: Box<dyn Read + Send>,
    name: &str,
    stem: String,
    tee: Option<DecodedTee>,
) -> Result<Rootfs, Error> {
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
    // An uncompressed tar is read again as it is: nothing to keep.
    let tee = tee.filter(|_| compression != InputCompression::None);
    let decoded = ReadAhead::spawn(compression.decoder(rejoined), tee);
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

/// What is at `path`, or why the input named `name` cannot be opened.
fn metadata(path: &Path, name: &str) -> Result<std::fs::Metadata, Error> {
    std::fs::metadata(path).map_err(|e| Error::BadInput {
        input: name.to_string(),
        problem: match e.kind() {
            io::ErrorKind::NotFound => "no such file or directory".into(),
            _ => format!("cannot open: {e}"),
        },
    })
}

/// `core-image-minimal-qemuarm64.rootfs.tar.zst` -> `core-image-minimal-qemuarm64.rootfs`.
pub(crate) fn file_stem(path: &Path) -> String {
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
    /// Shared with a [`DecodedTee`]'s thread, which writes the same chunks.
    chunks: Receiver<io::Result<Arc<Vec<u8>>>>,
    current: Arc<Vec<u8>>,
    position: usize,
    failed: Option<(io::ErrorKind, String)>,
}

impl ReadAhead {
    const CHUNK: usize = 256 * 1024;
    const AHEAD: usize = 16;
    /// Chunks kept to be reused: those in the channel, those a tee has yet to write, and a few being read.
    const REUSED: usize = 2 * Self::AHEAD + 4;

    fn spawn(mut reader: Box<dyn Read + Send>, mut tee: Option<DecodedTee>) -> ReadAhead {
        let (sender, chunks) = mpsc::sync_channel(Self::AHEAD);
        std::thread::spawn(move || {
            // Once the reader is gone, a tee still copies the rest, unless told to stop.
            let mut reading = true;
            // Chunks sent, oldest first, taken back once nobody else holds them: a new chunk is zeroed first, which
            // was a tenth of this thread's time when it decodes the bench rootfs.
            let mut sent: VecDeque<Arc<Vec<u8>>> = VecDeque::new();
            loop {
                let reused = match sent.front().map(Arc::strong_count) {
                    Some(1) => sent.pop_front().and_then(|chunk| Arc::try_unwrap(chunk).ok()),
                    _ => None,
                };
                let mut chunk = reused.unwrap_or_default();
                chunk.resize(Self::CHUNK, 0);
                // Filled whole (decoders return a little at a time), so that a reused chunk needs no zeroing.
                let mut filled = 0;
                let mut failure = None;
                while filled < chunk.len() {
                    match reader.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if filled > 0 {
                    chunk.truncate(filled);
                    let chunk = Arc::new(chunk);
                    sent.push_back(Arc::clone(&chunk));
                    if sent.len() > Self::REUSED {
                        sent.pop_front();
                    }
                    if let Some(t) = &mut tee {
                        if !t.write(&chunk) {
                            tee = None;
                        }
                    }
                    if reading && sender.send(Ok(chunk)).is_err() {
                        reading = false;
                    }
                    if !reading && tee.as_ref().map_or(true, DecodedTee::stopped) {
                        return;
                    }
                }
                if let Some(e) = failure {
                    let _ = sender.send(Err(e));
                    return;
                }
                if filled == 0 {
                    if let Some(tee) = tee.take() {
                        tee.finish();
                    }
                    return;
                }
            }
        });
        ReadAhead { chunks, current: Arc::default(), position: 0, failed: None }
    }
}

/// Where a decoded input is copied as it is read, by a thread of its own so that decoding does not wait for the
/// disk; and how that went. A copy that fails is abandoned (the next read decodes the input again), never an error
/// of the conversion.
pub(crate) struct DecodedTee {
    sender: Option<SyncSender<TeeMessage>>,
    state: Arc<TeeState>,
}

enum TeeMessage {
    Chunk(Arc<Vec<u8>>),
    /// The input ended: the copy is whole once written.
    End,
}

/// How a [`DecodedTee`] ended, shared with whoever reads the copy.
#[derive(Default)]
pub(crate) struct TeeState {
    /// The copy holds the whole decoded input.
    complete: AtomicBool,
    /// Set when nobody will read the copy: copying stops at the next chunk.
    pub stop: AtomicBool,
    /// Set when the copying thread is done, whether complete or not; waited for through `ended`.
    done: Mutex<bool>,
    ended: Condvar,
}

impl TeeState {
    /// Waits until the copy is done; whether it is whole.
    pub fn wait(&self) -> bool {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.ended.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        self.complete.load(Ordering::Acquire)
    }
}

/// Chunks of decoded input waiting to be written: 4 MiB.
const TEE_AHEAD: usize = 16;

impl DecodedTee {
    pub fn new(mut file: File) -> DecodedTee {
        let state = Arc::<TeeState>::default();
        let (sender, messages) = mpsc::sync_channel(TEE_AHEAD);
        let shared = Arc::clone(&state);
        let spawned = std::thread::Builder::new().name("decoded-copy".into()).spawn(move || {
            let mut whole = false;
            for message in messages {
                match message {
                    TeeMessage::Chunk(chunk) if !shared.stop.load(Ordering::Relaxed) => {
                        if file.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    TeeMessage::Chunk(_) => break,
                    TeeMessage::End => whole = true,
                }
            }
            shared.complete.store(whole, Ordering::Release);
            let mut done = shared.done.lock().unwrap_or_else(|e| e.into_inner());
            *done = true;
            shared.ended.notify_all();
        });
        match spawned {
            Ok(_) => DecodedTee { sender: Some(sender), state },
            Err(_) => {
                // No thread, no copy: whoever waits is told so at once.
                *state.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
                DecodedTee { sender: None, state }
            }
        }
    }

    /// Hands `chunk` to the copying thread; false once copying failed or was stopped.
    fn write(&mut self, chunk: &Arc<Vec<u8>>) -> bool {
        let sent = !self.stopped()
            && self.sender.as_ref().is_some_and(|s| s.send(TeeMessage::Chunk(Arc::clone(chunk))).is_ok());
        if !sent {
            self.sender = None;
        }
        sent
    }

    fn stopped(&self) -> bool {
        self.state.stop.load(Ordering::Relaxed)
    }

    /// The input ended: the copy is whole once the thread has written what it was given. Dropped without this (the
    /// input failing to decode), the copy is not whole.
    fn finish(mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(TeeMessage::End);
        }
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

/// Copies standard input to a temporary file, so that it can be read twice (its package database first).
pub fn spool_stdin(progress: &Progress) -> Result<crate::cleanup::TempFile, Error> {
    progress.message("spooling standard input");
    let tmp = std::env::temp_dir();
    let mut spool = crate::cleanup::TempFile::new_in(&tmp, ".rootfs2image-stdin-")
        .map_err(|e| Error::io("cannot create a spool file in", &tmp, e))?;
    io::copy(&mut io::stdin().lock(), spool.file_mut()).map_err(|e| Error::BadInput {
        input: "-".into(),
        problem: format!("cannot spool standard input to {}: {e}", spool.path().display()),
    })?;
    Ok(spool)
}
