//! A gzip writer that compresses on every core in the style of pigz, with output that is byte-identical whatever the
//! number of threads.
//!
//! The stream is cut into fixed 128 KiB blocks. Each block is deflated on its own with the previous block's last
//! 32 KiB as the dictionary and ends with a sync flush (the last one with a final block), so the deflate streams
//! concatenate into one valid stream. CRCs are computed per block and combined in order. A block's bytes depend only
//! on its data, its dictionary and the level, never on scheduling.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::layer::compress::FinishWrite;
use crate::layer::compress::pool::CompressionPool;
use crate::tar::writer::TarOutput;

const BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: a dictionary larger than this is never used.
const DICTIONARY_SIZE: usize = 32 * 1024;

/// RFC 1952 header with no file name and mtime 0 (nothing about the host or the time leaks into a layer).
/// OS 255 = unknown, as Go's compress/gzip writes.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

struct Deflated {
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
}

enum Pending {
    Ready(io::Result<Deflated>),
    Waiting(Receiver<io::Result<Deflated>>),
}

pub struct ParallelGzipWriter<W: Write> {
    out: W,
    level: u32,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    crc: crc32fast::Hasher,
    workers: Option<Arc<CompressionPool>>,
    pending: VecDeque<Pending>,
    max_pending: usize,
    header_written: bool,
    length: u64,
}

impl<W: Write> ParallelGzipWriter<W> {
    /// `threads` <= 1 compresses on the calling thread; the output is the same either way.
    pub fn new(out: W, level: u32, threads: usize) -> Self {
        Self::build(out, level, (threads > 1).then(|| CompressionPool::new(threads)), threads.max(1) * 3)
    }

    /// A writer whose blocks are compressed by a shared pool; at most `threads + 1` of its blocks are in flight.
    pub fn with_pool(out: W, level: u32, pool: Arc<CompressionPool>) -> Self {
        let max_pending = pool.threads() + 1;
        Self::build(out, level, Some(pool), max_pending)
    }

    fn build(out: W, level: u32, workers: Option<Arc<CompressionPool>>, max_pending: usize) -> Self {
        ParallelGzipWriter {
            out,
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            crc: crc32fast::Hasher::new(),
            workers,
            pending: VecDeque::new(),
            max_pending,
            header_written: false,
            length: 0,
        }
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let dictionary = std::mem::take(&mut self.dictionary);
        if !last {
            self.dictionary = data[data.len().saturating_sub(DICTIONARY_SIZE)..].to_vec();
        }
        let pending = match &self.workers {
            Some(workers) => {
                let level = self.level;
                Pending::Waiting(workers.submit(move || deflate_block(&data, &dictionary, last, level))?)
            }
            None => Pending::Ready(deflate_block(&data, &dictionary, last, self.level)),
        };
        self.pending.push_back(pending);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.pop_front() else {
            return Ok(());
        };
        let deflated = match pending {
            Pending::Ready(result) => result?,
            Pending::Waiting(reply) => reply.recv().map_err(|_| io::Error::other("a gzip worker thread died"))??,
        };
        if !self.header_written {
            self.out.write_all(&GZIP_HEADER)?;
            self.header_written = true;
        }
        self.out.write_all(&deflated.bytes)?;
        self.crc.combine(&deflated.crc);
        Ok(())
    }

    /// Ends the stream (final block, CRC and length trailer) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let crc = self.crc.clone();
        // RFC 1952: ISIZE is the input length modulo 2^32.
        let length = self.length as u32;
        self.out.write_all(&crc.finalize().to_le_bytes())?;
        self.out.write_all(&length.to_le_bytes())?;
        self.workers.take();
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.length += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> TarOutput for ParallelGzipWriter<W> {}

impl<W: Write> FinishWrite<W> for ParallelGzipWriter<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

/// The bytes every stream of this writer begins with when its data begins with `head` and is at least one block
/// long: the header and the first block, which depend only on that block and the level (no dictionary yet). A blob
/// made with another level or another deflate gives other bytes, which is how `--previous` tells that a previous
/// layer was not compressed the way this run would compress it.
pub fn leading_bytes(head: &[u8], level: u32) -> io::Result<Option<Vec<u8>>> {
    if head.len() < BLOCK_SIZE {
        return Ok(None);
    }
    let first = deflate_block(&head[..BLOCK_SIZE], &[], false, level)?;
    let mut bytes = GZIP_HEADER.to_vec();
    bytes.extend_from_slice(&first.bytes);
    Ok(Some(bytes))
}

/// Deflates one block. A fresh `Compress` each time: reusing one after `reset()` gave different bytes from run to
/// run (flate2 1.1 on zlib-rs).
fn deflate_block(data: &[u8], dictionary: &[u8], last: bool, level: u32) -> io::Result<Deflated> {
    let mut compress = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        compress.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut bytes = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress.compress_vec(&data[consumed..], &mut bytes, flush).map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        let room_left = bytes.len() < bytes.capacity();
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError if !last && all_in && room_left => break,
            _ => bytes.reserve(bytes.capacity().max(4096)),
        }
    }
    // Blocks wait in a queue until written: keep only what they hold.
    bytes.shrink_to_fit();
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Ok(Deflated { bytes, crc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], threads: usize, level: u32, chunk: usize) -> Vec<u8> {
        let mut w = ParallelGzipWriter::new(Vec::new(), level, threads);
        for piece in data.chunks(chunk.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x1234_5678u32;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 3 == 0 { (state % 7) as u8 } else { b"the rootfs layer "[i % 17] }
            })
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn output_is_identical_for_one_two_and_four_threads() {
        let data = sample(BLOCK_SIZE * 5 + 777);
        let one = gzip(&data, 1, 6, 10_000);
        assert_eq!(gzip(&data, 2, 6, 65_536), one);
        assert_eq!(gzip(&data, 4, 6, 1_000_000), one);
        assert_eq!(gunzip(&one), data);
    }

    #[test]
    fn empty_and_exact_block_multiples_decode() {
        for len in [0, 1, BLOCK_SIZE, BLOCK_SIZE * 2] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, 2, 6, 4096)), data, "length {len}");
        }
    }

    #[test]
    fn every_level_decodes_and_gzip_accepts_it() {
        let data = sample(300_000);
        for level in [0, 1, 9] {
            assert_eq!(gunzip(&gzip(&data, 2, level, 50_000)), data, "level {level}");
        }
    }

    #[test]
    fn leading_bytes_are_what_a_stream_of_any_length_begins_with() {
        let data = sample(BLOCK_SIZE * 3);
        for level in [1, 6] {
            let leading = leading_bytes(&data, level).unwrap().unwrap();
            for len in [BLOCK_SIZE, BLOCK_SIZE + 1, BLOCK_SIZE * 3] {
                assert!(gzip(&data[..len], 2, level, 70_000).starts_with(&leading), "level {level} length {len}");
            }
        }
        let other = leading_bytes(&data, 1).unwrap().unwrap();
        assert!(!gzip(&data, 1, 6, 4096).starts_with(&other));
        assert_eq!(leading_bytes(&data[..BLOCK_SIZE - 1], 6).unwrap(), None);
    }

    #[test]
    fn header_has_no_name_and_zero_mtime() {
        let bytes = gzip(b"x", 1, 6, 1);
        assert_eq!(&bytes[..10], &GZIP_HEADER);
    }
}
