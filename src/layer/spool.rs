//! A layer's tar on its way to a temporary file, with `--previous` (see [`crate::layer::reuse`]): hashed into its
//! diff_id and written by a thread of its own, so that the rootfs pass only serialises entries. Hashing and writing
//! 779 MiB of spools was about half of that pass on the bench rootfs, while the second core sat idle.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use crate::digest::{Digest, DigestWriter};
use crate::tar::writer::TarOutput;

/// Bytes handed to the thread at a time.
const CHUNK: usize = 128 << 10;
/// Chunks waiting for the thread, per layer: with 50 layers open, at most 50 * (2 + 1) * 128 KiB are held.
const AHEAD: usize = 2;

pub struct LayerSpool {
    chunk: Vec<u8>,
    sender: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<io::Result<(File, Digest, u64)>>>,
}

impl LayerSpool {
    /// A spool in an unnamed temporary file in `dir`, gone when the file is closed.
    pub fn create(dir: &Path) -> io::Result<LayerSpool> {
        let file = tempfile::tempfile_in(dir)?;
        let (sender, chunks) = mpsc::sync_channel::<Vec<u8>>(AHEAD);
        let worker = std::thread::Builder::new().name("layer-spool".into()).spawn(move || {
            let mut out = DigestWriter::new(file);
            for chunk in chunks {
                out.write_all(&chunk)?;
            }
            Ok(out.finish())
        })?;
        Ok(LayerSpool { chunk: Vec::new(), sender: Some(sender), worker: Some(worker) })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        match self.sender.as_ref().map(|sender| sender.send(chunk)) {
            Some(Ok(())) => Ok(()),
            // The thread stopped on an error of its own: that error is the one to report.
            _ => Err(self.join().err().unwrap_or_else(|| io::Error::other("the layer spool's thread ended early"))),
        }
    }

    fn join(&mut self) -> io::Result<(File, Digest, u64)> {
        self.sender = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the layer spool's thread panicked")),
            None => Err(io::Error::other("the layer spool was already ended")),
        }
    }

    /// Ends the spool: the file holding the tar (its position at the end), the tar's digest and its size.
    pub fn finish(mut self) -> io::Result<(File, Digest, u64)> {
        self.send()?;
        self.join()
    }
}

impl Write for LayerSpool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.chunk.capacity() == 0 {
            self.chunk.reserve_exact(CHUNK);
        }
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Bytes are the thread's once sent; nothing to flush before [`LayerSpool::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TarOutput for LayerSpool {}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    #[test]
    fn a_spool_holds_and_hashes_every_byte_written_in_any_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(3 * CHUNK + 1234)).map(|i| (i * 7 % 251) as u8).collect();
        let mut spool = LayerSpool::create(dir.path()).unwrap();
        for piece in data.chunks(CHUNK / 3 + 17) {
            spool.write_all(piece).unwrap();
        }
        let (mut file, digest, size) = spool.finish().unwrap();
        assert_eq!((digest, size), (Digest::of(&data), data.len() as u64));
        let mut back = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[test]
    fn an_empty_spool_is_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let (file, digest, size) = LayerSpool::create(dir.path()).unwrap().finish().unwrap();
        assert_eq!((digest, size, file.metadata().unwrap().len()), (Digest::of(b""), 0, 0));
    }
}
