//! A gzip writer that compresses on every core with libdeflate, with output that is byte-identical whatever the
//! number of threads.
//!
//! The stream is cut into fixed 256 KiB blocks and each block becomes a gzip member of its own (RFC 1952 section
//! 2.2: a gzip file is a series of members), deflated independently and ended with its own CRC and length. A
//! member's bytes depend only on its block and the level, never on scheduling.
//!
//! Why members and not one deflate stream: libdeflate (0.7x zlib-rs's CPU time at the same level, and smaller
//! output) compresses whole buffers only, with no preset dictionary, and ends each with a final block at a bit offset
//! it does not report, so its outputs cannot be chained into one stream without decoding them again. Concatenated
//! members are what every layer reader takes: Go's compress/gzip reads them by default (`Reader.Multistream`), and so
//! Docker, containerd, podman and skopeo (containers/image's pgzip) and umoci, as well as gzip, pigz, Python's gzip
//! and flate2's `MultiGzDecoder`; eStargz layers are concatenated members too.
//!
//! Why 256 KiB: a block loses less to having no dictionary than libdeflate gains over zlib (a Debian rootfs of 779
//! MiB: 2.4% smaller than 128 KiB zlib-rs blocks chained by 32 KiB dictionaries), and each member's 18 bytes of
//! header and trailer are 0.007%. 1 MiB blocks were 0.5% smaller still, but with `--layers packages` every open layer
//! holds a block and its members in flight: 52 layers peaked at 137 MB with 1 MiB, 90 MB with 512 KiB, 66 MB with
//! 256 KiB.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use libdeflater::{CompressionLvl, Compressor};

use crate::layer::compress::FinishWrite;
use crate::layer::compress::pool::CompressionPool;
use crate::tar::writer::TarOutput;

const BLOCK_SIZE: usize = 256 * 1024;

/// RFC 1952 header with no file name and mtime 0 (nothing about the host or the time leaks into a layer).
/// OS 255 = unknown, as Go's compress/gzip writes. Every member has the same one.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A member's trailer: CRC-32 and ISIZE, little-endian.
const TRAILER_SIZE: usize = 8;

type Member = io::Result<Vec<u8>>;

pub struct ParallelGzipWriter<W: Write> {
    out: W,
    level: CompressionLvl,
    block: Vec<u8>,
    workers: Option<Arc<CompressionPool>>,
    /// Without workers, blocks are compressed here, on the caller's thread.
    deflater: Option<Deflater>,
    /// Members being compressed, oldest first.
    pending: VecDeque<Receiver<Member>>,
    max_pending: usize,
    /// Whether a member was dispatched: an empty stream still gets one, so that it is a valid gzip file.
    dispatched: bool,
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
            level: libdeflate_level(level),
            block: Vec::new(),
            workers,
            deflater: None,
            pending: VecDeque::new(),
            max_pending,
            dispatched: false,
        }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        self.dispatched = true;
        let level = self.level;
        let Some(workers) = &self.workers else {
            let deflater = self.deflater.get_or_insert_with(|| Deflater::new(level));
            let member = deflater.member(&self.block)?;
            self.block.clear();
            return self.out.write_all(member);
        };
        let data = std::mem::take(&mut self.block);
        self.pending.push_back(
            workers.submit(move || Deflater::on_this_thread(level, |d| d.member(&data).map(<[u8]>::to_vec)))?,
        );
        // Members that are done go out now rather than wait in memory: with `--layers packages` dozens of writers
        // share the pool.
        while self.write_oldest(false)? {}
        while self.pending.len() > self.max_pending {
            self.write_oldest(true)?;
        }
        Ok(())
    }

    /// Writes the oldest member, waiting for it with `wait`, else only if it is done. Whether one was written.
    fn write_oldest(&mut self, wait: bool) -> io::Result<bool> {
        let Some(reply) = self.pending.front() else {
            return Ok(false);
        };
        let member = if wait {
            reply.recv().map_err(|_| worker_died())?
        } else {
            match reply.try_recv() {
                Ok(member) => member,
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => return Err(worker_died()),
            }
        };
        self.pending.pop_front();
        self.out.write_all(&member?)?;
        Ok(true)
    }

    /// Ends the stream (the last member) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || !self.dispatched {
            self.dispatch()?;
        }
        while self.write_oldest(true)? {}
        self.workers.take();
        Ok(self.out)
    }
}

fn worker_died() -> io::Error {
    io::Error::other("a gzip worker thread died")
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        let needed = self.block.len() + n;
        if needed > self.block.capacity() {
            // A whole block once one was full; until then doubling from 64 KiB, never past one block: with
            // `--layers packages` dozens of writers are open at once, most of them small.
            let grown = if self.dispatched { BLOCK_SIZE } else { needed.max(self.block.capacity() * 2) };
            self.block.reserve_exact(grown.clamp(64 * 1024, BLOCK_SIZE) - self.block.len());
        }
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

impl<W: Write> TarOutput for ParallelGzipWriter<W> {}

impl<W: Write> FinishWrite<W> for ParallelGzipWriter<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

/// The bytes every stream of this writer begins with when its data begins with `head` and is at least one block
/// long: its first member, which depends only on that block and the level. A blob made with another level or another
/// deflate gives other bytes, which is how `--previous` tells that a previous layer was not compressed the way this
/// run would compress it.
pub fn leading_bytes(head: &[u8], level: u32) -> io::Result<Option<Vec<u8>>> {
    if head.len() < BLOCK_SIZE {
        return Ok(None);
    }
    let mut deflater = Deflater::new(libdeflate_level(level));
    Ok(Some(deflater.member(&head[..BLOCK_SIZE])?.to_vec()))
}

/// gzip's levels 0..=9 are libdeflate's levels of the same number: libdeflate keeps zlib's scale for 1..=9 (its
/// 10..=12, optimal parsing at a fifth of the speed, are not offered), and its 0 stores the data uncompressed, as
/// zlib's does. The caller has checked the range (`LayerCompression::levels`); anything above is clamped.
fn libdeflate_level(level: u32) -> CompressionLvl {
    CompressionLvl::new(level.min(9) as i32).unwrap_or_default()
}

/// A libdeflate compressor and the buffer it writes members into, kept from block to block: allocating both for
/// every block fragmented the heap (a 52-layer conversion with 1 MiB blocks peaked at 190 MB, 137 MB with reuse).
/// libdeflate keeps no state from one buffer to the next, so reuse changes no byte.
struct Deflater {
    level: CompressionLvl,
    compressor: Compressor,
    buffer: Vec<u8>,
}

thread_local! {
    /// A pool worker's deflater; it goes with the worker, when the pool is dropped.
    static WORKER_DEFLATER: RefCell<Option<Deflater>> = const { RefCell::new(None) };
}

impl Deflater {
    fn new(level: CompressionLvl) -> Deflater {
        Deflater { level, compressor: Compressor::new(level), buffer: Vec::new() }
    }

    /// Runs `work` with this thread's deflater for `level`.
    fn on_this_thread<T>(level: CompressionLvl, work: impl FnOnce(&mut Deflater) -> T) -> T {
        WORKER_DEFLATER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if !matches!(slot.as_ref(), Some(deflater) if deflater.level == level) {
                *slot = None;
            }
            work(slot.get_or_insert_with(|| Deflater::new(level)))
        })
    }

    /// One whole gzip member for `data`.
    fn member(&mut self, data: &[u8]) -> io::Result<&[u8]> {
        let bound = self.compressor.deflate_compress_bound(data.len());
        let start = GZIP_HEADER.len();
        self.buffer.resize(start + bound + TRAILER_SIZE, 0);
        self.buffer[..start].copy_from_slice(&GZIP_HEADER);
        let deflated = self
            .compressor
            .deflate_compress(data, &mut self.buffer[start..start + bound])
            .map_err(|error| io::Error::other(format!("gzip: {error}")))?;
        let end = start + deflated;
        self.buffer[end..end + 4].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
        // RFC 1952: ISIZE is the input length modulo 2^32 (a block is far smaller).
        self.buffer[end + 4..end + TRAILER_SIZE].copy_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(&self.buffer[..end + TRAILER_SIZE])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    fn gzip(data: &[u8], threads: usize, level: u32, chunk: usize) -> Vec<u8> {
        let mut w = ParallelGzipWriter::new(Vec::new(), level, threads);
        for piece in data.chunks(chunk.max(1)) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gzip_on_pool(data: &[u8], pool: &Arc<CompressionPool>, level: u32) -> Vec<u8> {
        let mut w = ParallelGzipWriter::with_pool(Vec::new(), level, Arc::clone(pool));
        w.write_all(data).unwrap();
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
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    /// The offsets of the members, found by decoding one member at a time.
    fn members(bytes: &[u8]) -> Vec<usize> {
        let mut offsets = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            offsets.push(bytes.len() - rest.len());
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            io::copy(&mut decoder, &mut io::sink()).unwrap();
            rest = decoder.into_inner();
        }
        offsets
    }

    #[test]
    fn output_is_identical_for_one_two_and_four_threads_and_on_a_pool() {
        let data = sample(BLOCK_SIZE * 3 + 777);
        let one = gzip(&data, 1, 6, 10_000);
        assert_eq!(gzip(&data, 2, 6, 65_536), one);
        assert_eq!(gzip(&data, 4, 6, 3_000_000), one);
        assert_eq!(gzip_on_pool(&data, &CompressionPool::new(3), 6), one);
        assert_eq!(gunzip(&one), data);
    }

    #[test]
    fn pool_workers_switch_levels_between_layers() {
        // Each worker keeps its deflater for the next block: a layer at another level must not reuse it as it is.
        let data = sample(BLOCK_SIZE * 4);
        let pool = CompressionPool::new(2);
        for level in [6, 1, 9, 6] {
            assert_eq!(gzip_on_pool(&data, &pool, level), gzip(&data, 1, level, 100_000), "level {level}");
        }
        assert_ne!(gzip_on_pool(&data, &pool, 1), gzip_on_pool(&data, &pool, 9));
    }

    #[test]
    fn every_block_is_a_member_with_the_fixed_header() {
        let data = sample(BLOCK_SIZE * 2 + 1);
        let bytes = gzip(&data, 2, 6, 100_000);
        let offsets = members(&bytes);
        assert_eq!(offsets.len(), 3);
        for offset in offsets {
            assert_eq!(&bytes[offset..offset + GZIP_HEADER.len()], &GZIP_HEADER, "member at {offset}");
        }
    }

    #[test]
    fn empty_and_exact_block_multiples_decode() {
        for (len, count) in [(0, 1), (1, 1), (BLOCK_SIZE, 1), (BLOCK_SIZE * 2, 2)] {
            let data = sample(len);
            let bytes = gzip(&data, 2, 6, 4096);
            assert_eq!(gunzip(&bytes), data, "length {len}");
            assert_eq!(members(&bytes).len(), count, "length {len}");
        }
    }

    #[test]
    fn every_level_decodes_and_gzip_accepts_it() {
        let data = sample(BLOCK_SIZE + 300_000);
        let mut sizes = Vec::new();
        for level in 0..=9 {
            let bytes = gzip(&data, 2, level, 50_000);
            assert_eq!(gunzip(&bytes), data, "level {level}");
            sizes.push(bytes.len());
            let mut gunzip = Command::new("gzip")
                .arg("-dc")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("gzip runs");
            let mut stdin = gunzip.stdin.take().unwrap();
            let feeder = std::thread::spawn(move || stdin.write_all(&bytes));
            let output = gunzip.wait_with_output().unwrap();
            feeder.join().unwrap().unwrap();
            assert!(output.status.success(), "gzip -d fails on level {level}");
            assert!(output.stdout == data, "gzip -d gives other bytes at level {level}");
        }
        assert!(sizes[0] > data.len(), "level 0 stores: {sizes:?}");
        assert!(sizes[9] < sizes[1], "level 9 compresses more than level 1: {sizes:?}");
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
