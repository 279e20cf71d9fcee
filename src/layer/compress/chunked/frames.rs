//! The frames of a zstd:chunked layer, compressed on the shared pool and handed back in stream order. Pieces (runs
//! of tar headers, chunks of a file's data) are gathered into batches of about [`BATCH_BYTES`]; a worker compresses
//! each piece of a batch into a frame of its own, and hashes each chunk for the TOC. Marks put between pieces come
//! back at their place among the frames, so that the writer learns where an entry's frames ended. A frame's bytes
//! depend only on its piece and the level, never on batching or scheduling.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use crate::digest::Digest;
use crate::layer::compress::chunked::tar_split::Crc64;
use crate::layer::compress::pool::CompressionPool;

/// The input a batch gathers before it goes to a worker: large enough that one job amortises a compression
/// context, small enough that a layer holds little.
const BATCH_BYTES: usize = 512 << 10;

pub enum Piece {
    /// Bytes between files' data (padding and headers), compressed as one frame.
    Headers(Vec<u8>),
    /// A chunk of one file's data.
    Chunk(Vec<u8>),
}

/// A compressed piece.
pub struct Frame {
    pub bytes: Vec<u8>,
    /// For a chunk: its uncompressed size, sha256 and CRC-64.
    pub chunk: Option<ChunkSum>,
}

pub struct ChunkSum {
    pub size: u64,
    pub digest: Digest,
    pub crc: u64,
}

/// What comes back, in the order it was put in.
pub enum Output<T> {
    Frame(Frame),
    Mark(T),
}

enum Step<T> {
    Frame,
    Mark(T),
}

enum Reply {
    Waiting(Receiver<io::Result<Vec<Frame>>>),
    Ready(io::Result<Vec<Frame>>),
}

struct Batch<T> {
    reply: Reply,
    steps: Vec<Step<T>>,
}

pub struct FrameQueue<T> {
    pool: Arc<CompressionPool>,
    level: i32,
    pieces: Vec<Piece>,
    piece_bytes: usize,
    steps: Vec<Step<T>>,
    pending: VecDeque<Batch<T>>,
    max_pending: usize,
}

impl<T> FrameQueue<T> {
    pub fn new(pool: Arc<CompressionPool>, level: i32) -> Self {
        let max_pending = pool.threads() + 1;
        FrameQueue {
            pool,
            level,
            pieces: Vec::new(),
            piece_bytes: 0,
            steps: Vec::new(),
            pending: VecDeque::new(),
            max_pending,
        }
    }

    /// Queues a piece; a full batch goes to the pool, and frames already done are passed to `out`.
    pub fn push(&mut self, piece: Piece, out: &mut dyn FnMut(Output<T>) -> io::Result<()>) -> io::Result<()> {
        self.piece_bytes += match &piece {
            Piece::Headers(bytes) | Piece::Chunk(bytes) => bytes.len(),
        };
        self.pieces.push(piece);
        self.steps.push(Step::Frame);
        if self.piece_bytes >= BATCH_BYTES {
            self.submit()?;
            while self.pending.len() > self.max_pending {
                self.deliver_oldest(out)?;
            }
            // Batches already done are written now rather than held until this layer gets more data.
            while self.pending.front_mut().is_some_and(|batch| batch.is_ready()) {
                self.deliver_oldest(out)?;
            }
        }
        Ok(())
    }

    /// Queues a mark, to come back after every piece queued before it.
    pub fn mark(&mut self, mark: T) {
        self.steps.push(Step::Mark(mark));
    }

    /// Compresses what is queued and passes everything to `out`, waiting for the workers.
    pub fn finish(&mut self, out: &mut dyn FnMut(Output<T>) -> io::Result<()>) -> io::Result<()> {
        self.submit()?;
        while !self.pending.is_empty() {
            self.deliver_oldest(out)?;
        }
        Ok(())
    }

    fn submit(&mut self) -> io::Result<()> {
        let pieces = mem::take(&mut self.pieces);
        let steps = mem::take(&mut self.steps);
        self.piece_bytes = 0;
        if pieces.is_empty() && steps.is_empty() {
            return Ok(());
        }
        let reply = if pieces.is_empty() {
            Reply::Ready(Ok(Vec::new()))
        } else {
            let level = self.level;
            Reply::Waiting(self.pool.submit(move || compress(pieces, level))?)
        };
        self.pending.push_back(Batch { reply, steps });
        Ok(())
    }

    fn deliver_oldest(&mut self, out: &mut dyn FnMut(Output<T>) -> io::Result<()>) -> io::Result<()> {
        let Some(batch) = self.pending.pop_front() else { return Ok(()) };
        let frames = match batch.reply {
            Reply::Waiting(reply) => reply.recv().map_err(|_| io::Error::other("a zstd worker thread died"))??,
            Reply::Ready(frames) => frames?,
        };
        let mut frames = frames.into_iter();
        for step in batch.steps {
            match step {
                Step::Frame => {
                    out(Output::Frame(frames.next().ok_or_else(|| io::Error::other("a zstd worker lost a frame"))?))?
                }
                Step::Mark(mark) => out(Output::Mark(mark))?,
            }
        }
        Ok(())
    }
}

impl<T> Batch<T> {
    /// Whether its frames are done; a reply that arrived is kept for when the batch is delivered.
    fn is_ready(&mut self) -> bool {
        if let Reply::Waiting(reply) = &self.reply {
            match reply.try_recv() {
                Ok(frames) => self.reply = Reply::Ready(frames),
                Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.reply = Reply::Ready(Err(io::Error::other("a zstd worker thread died")))
                }
            }
        }
        true
    }
}

/// One worker's job: each piece its own frame, with its content size and checksum.
fn compress(pieces: Vec<Piece>, level: i32) -> io::Result<Vec<Frame>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.include_checksum(true)?;
    compressor.include_contentsize(true)?;
    pieces
        .into_iter()
        .map(|piece| {
            let (data, is_chunk) = match piece {
                Piece::Headers(data) => (data, false),
                Piece::Chunk(data) => (data, true),
            };
            let mut bytes = compressor.compress(&data)?;
            // Frames wait in a queue until written; the buffer was sized for the worst case.
            bytes.shrink_to_fit();
            let chunk = is_chunk.then(|| {
                let mut crc = Crc64::default();
                crc.update(&data);
                ChunkSum { size: data.len() as u64, digest: Digest::of(&data), crc: crc.value() }
            });
            Ok(Frame { bytes, chunk })
        })
        .collect()
}
