//! A zstd writer for layers written side by side: the stream is cut into 512 KiB blocks, each compressed on a shared
//! [`CompressionPool`] into an independent zstd frame (with its content size and checksum); the frames, concatenated
//! in order, are one valid zstd stream (RFC 8878 section 3.1; every decoder reads concatenated frames). Unlike
//! libzstd's own multithreading, each frame needs only a small context, so dozens of layers can be open at once.
//! The bytes depend only on the data and the level.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use crate::layer::compress::FinishWrite;
use crate::layer::compress::pool::CompressionPool;
use crate::tar::writer::TarOutput;

/// Small enough that dozens of open layers each holding a partial block stay cheap, large enough that frames
/// compress nearly as well as one stream.
const BLOCK_SIZE: usize = 512 << 10;

pub struct ParallelZstdWriter<W: Write> {
    out: W,
    level: i32,
    block: Vec<u8>,
    pool: Arc<CompressionPool>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    /// Whether any frame was written: an empty stream still needs one (empty) frame.
    wrote_frame: bool,
}

impl<W: Write> ParallelZstdWriter<W> {
    pub fn with_pool(out: W, level: i32, pool: Arc<CompressionPool>) -> Self {
        let max_pending = pool.threads() + 1;
        ParallelZstdWriter {
            out,
            level,
            block: Vec::new(),
            pool,
            pending: VecDeque::new(),
            max_pending,
            wrote_frame: false,
        }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        let data = std::mem::take(&mut self.block);
        let level = self.level;
        self.pending.push_back(self.pool.submit(move || compress_frame(&data, level))?);
        self.wrote_frame = true;
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        // Frames already done are written now rather than held until this layer gets more data.
        while let Some(Ok(frame)) = self.pending.front().map(|reply| reply.try_recv()) {
            self.pending.pop_front();
            self.out.write_all(&frame?)?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(reply) = self.pending.pop_front() {
            let frame = reply.recv().map_err(|_| io::Error::other("a zstd worker thread died"))??;
            self.out.write_all(&frame)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || !self.wrote_frame {
            self.dispatch()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }
}

/// The first frame of every stream of this writer whose data begins with `head` and is at least one block long
/// (see `gzip::leading_bytes` for what `--previous` does with it).
pub fn leading_bytes(head: &[u8], level: i32) -> io::Result<Option<Vec<u8>>> {
    if head.len() < BLOCK_SIZE {
        return Ok(None);
    }
    compress_frame(&head[..BLOCK_SIZE], level).map(Some)
}

fn compress_frame(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.include_checksum(true)?;
    compressor.include_contentsize(true)?;
    let mut frame = compressor.compress(data)?;
    // Frames wait in a queue until written; the buffer was sized for the worst case.
    frame.shrink_to_fit();
    Ok(frame)
}

impl<W: Write> Write for ParallelZstdWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The block grows as data comes: a small layer holds only what it has.
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> TarOutput for ParallelZstdWriter<W> {}

impl<W: Write> FinishWrite<W> for ParallelZstdWriter<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_concatenate_into_one_stream_identical_for_any_pool() {
        let data: Vec<u8> = (0..(BLOCK_SIZE * 2 + 999)).map(|i| (i % 251) as u8 ^ (i / 7777) as u8).collect();
        let write = |threads| {
            let mut w = ParallelZstdWriter::with_pool(Vec::new(), 3, CompressionPool::new(threads));
            for chunk in data.chunks(100_000) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap()
        };
        let one = write(1);
        assert_eq!(write(3), one);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
        let leading = leading_bytes(&data, 3).unwrap().unwrap();
        assert!(one.starts_with(&leading));
        assert!(!one.starts_with(&leading_bytes(&data, 9).unwrap().unwrap()));
        let empty = ParallelZstdWriter::with_pool(Vec::new(), 3, CompressionPool::new(1)).finish().unwrap();
        assert!(!empty.is_empty());
        assert_eq!(zstd::decode_all(&empty[..]).unwrap(), b"");
    }
}
