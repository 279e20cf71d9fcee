//! zstd:chunked layers, the format of containers/storage's `pkg/chunked` (podman, CRI-O, buildah): a zstd stream
//! in which each file's data starts a frame of its own, followed by a table of contents (TOC) and a tar-split in
//! skippable frames. A client with partial pulls enabled reads the TOC, finds each file by its sha256 among the
//! layers it holds, and fetches with HTTP range requests only the frames of the files it lacks; a client that does
//! not know the format decompresses the blob as plain zstd and gets the tar (the media type is
//! `application/vnd.oci.image.layer.v1.tar+zstd`, the diff_id that tar's sha256).
//!
//! Blob layout (offsets in the TOC and annotations are bytes of the blob):
//!
//! ```text
//! [frame: headers] [frame(s): data of file 1] [frame: padding + headers] [frame(s): data of file 2] ...
//! [frame: padding + end-of-archive] [skippable: TOC] [skippable: tar-split] [skippable: 64-byte footer]
//! ```
//!
//! Format decisions, checked against containers/storage 1.43.0 (Debian bookworm's podman 4.3) and 1.59 (podman
//! 5.x), whose sources were read for this, not copied:
//! - **Both annotation sets on one descriptor.** 1.43 reads `io.containers.zstd-chunked.manifest-checksum` and
//!   `-position`; 1.44 and later read only `io.github.containers.zstd-chunked.manifest-checksum`, `-position` and
//!   `-tarsplit-position`. Each ignores the other's, so one layer serves both ([`trailer`]).
//! - **tar-split.** 1.5x refuses a partial pull without one (it could not give the exact tar, hence the diff_id,
//!   back) unless `insecure_allow_unpredictable_image_contents` is set, and checks that it lists exactly the TOC's
//!   entries with the same attributes. Its digest is the TOC's `tarSplitDigest`; 1.43 ignores both.
//! - **Footer.** The 64-byte footer of 1.44+ (magic `GNUlInUx`). Neither version reads a footer while the
//!   annotations are there (1.43 knew a 40-byte one with the magic `GnUlInUx`); only one can end a blob.
//! - **Chunks.** A file's data is cut into [`CHUNK_BYTES`] chunks, each one frame with its own `chunkDigest`: a
//!   fixed size keeps memory bounded and output independent of threads (containers/storage cuts by a rolling
//!   checksum instead; readers accept any cut). Frames are compressed on the shared pool.
//! - **Names** must be UTF-8 (the TOC is JSON): a rootfs with other names is refused for this compression.
//! - Frames carry their content size and checksum; the TOC and tar-split are zstd at the layer's level.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::mem;
use std::sync::Arc;

pub mod frames;
pub mod read;
pub mod tar_split;
pub mod toc;
pub mod trailer;

use self::frames::{ChunkSum, FrameQueue, Output, Piece};
use self::tar_split::{Crc64, TarSplit};
use self::toc::{ChunkSpan, TocEntry};
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::layer::compress::FinishWrite;
use crate::layer::compress::pool::CompressionPool;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::reader::{InputFault, TarReader};
use crate::tar::writer::{TarOutput, TarWriter};

/// The data of a file goes into chunks of this size (the last one shorter), each compressed as one frame.
pub const CHUNK_BYTES: usize = 512 << 10;

/// A run of headers between files' data longer than this is cut into several frames.
const HEADER_FRAME_BYTES: usize = 512 << 10;

/// An entry whose TOC line waits for its frames to be written (their offsets) and hashed.
struct Pending {
    toc: TocEntry,
    /// Its tar-split segment: the previous file's padding and its header.
    segment: Vec<u8>,
    /// For a file of several chunks, the sha256 and CRC-64 of all its data (one chunk's come from the pool).
    whole: Option<(Digest, u64)>,
    has_data: bool,
}

/// The file whose data is being written.
struct OpenData {
    pending: Pending,
    left: u64,
    chunk: Vec<u8>,
    whole: Option<(DigestWriter<io::Sink>, Crc64)>,
}

pub struct ZstdChunkedWriter<W: Write> {
    level: i32,
    frames: FrameQueue<Pending>,
    /// Padding and headers since the last data, for the next header frame.
    headers: Vec<u8>,
    /// The same bytes since the last entry's header, for the next tar-split segment.
    segment: Vec<u8>,
    data: Option<OpenData>,
    written: Written<W>,
}

/// What the frames and entries coming back from the pool are written to.
struct Written<W> {
    out: W,
    /// Bytes written to `out`: the offset of the next frame.
    offset: u64,
    /// Chunks whose frames were written since the last entry's TOC line, with their CRC-64.
    spans: Vec<(ChunkSpan, u64)>,
    toc: BufWriter<File>,
    toc_entries: u64,
    tar_split: TarSplit<BufWriter<File>>,
}

impl<W: Write> ZstdChunkedWriter<W> {
    pub fn new(out: W, level: i32, pool: Arc<CompressionPool>) -> io::Result<Self> {
        // The TOC and the tar-split grow with the entries: spooled to disk, compressed when the layer ends.
        let spool = || tempfile::tempfile().map(|file| BufWriter::with_capacity(16 << 10, file));
        Ok(ZstdChunkedWriter {
            level,
            frames: FrameQueue::new(pool, level),
            headers: Vec::new(),
            segment: Vec::new(),
            data: None,
            written: Written {
                out,
                offset: 0,
                spans: Vec::new(),
                toc: spool()?,
                toc_entries: 0,
                tar_split: TarSplit::new(spool()?),
            },
        })
    }

    /// Queues `piece`; frames that come back are written.
    fn push(&mut self, piece: Piece) -> io::Result<()> {
        let written = &mut self.written;
        self.frames.push(piece, &mut |output| written.deliver(output))
    }

    /// Ends the chunk being filled; with the last one, the file.
    fn end_chunk(&mut self) -> io::Result<()> {
        let Some(data) = self.data.as_mut() else { return Ok(()) };
        let chunk = mem::take(&mut data.chunk);
        if data.left > 0 {
            return self.push(Piece::Chunk(chunk));
        }
        let mut data = self.data.take().expect("checked above");
        if let Some((sha, crc)) = data.whole.take() {
            data.pending.whole = Some((sha.finish().1, crc.value()));
        }
        self.push(Piece::Chunk(chunk))?;
        self.frames.mark(data.pending);
        Ok(())
    }

    fn finish(mut self) -> io::Result<(W, BTreeMap<String, String>)> {
        if self.data.is_some() {
            return Err(io::Error::other("the tar stream ended inside a file's data"));
        }
        let headers = mem::take(&mut self.headers);
        self.push(Piece::Headers(headers))?;
        let mut written = self.written;
        self.frames.finish(&mut |output| written.deliver(output))?;
        // The end of the archive, after the last entry.
        written.tar_split.segment(&self.segment)?;

        let tar_split = compress_spool(written.tar_split.into_inner(), b"", b"", self.level)?;
        let prefix = b"{\"version\":1,\"entries\":[";
        let suffix = format!("],\"tarSplitDigest\":\"{}\"}}", Digest::of(&tar_split.compressed));
        let toc = compress_spool(written.toc, prefix, suffix.as_bytes(), self.level)?;
        let annotations = trailer::write(&mut written.out, written.offset, &toc, &tar_split)?;
        Ok((written.out, annotations))
    }
}

impl<W: Write> Written<W> {
    /// Writes a compressed frame, or the TOC and tar-split lines of an entry whose frames are all written.
    fn deliver(&mut self, output: Output<Pending>) -> io::Result<()> {
        match output {
            Output::Frame(frame) => {
                if let Some(ChunkSum { size, digest, crc }) = frame.chunk {
                    let end = self.offset + frame.bytes.len() as u64;
                    self.spans.push((ChunkSpan { offset: self.offset, end, size, digest }, crc));
                }
                self.out.write_all(&frame.bytes)?;
                self.offset += frame.bytes.len() as u64;
            }
            Output::Mark(pending) => {
                let spans = mem::take(&mut self.spans);
                self.tar_split.segment(&pending.segment)?;
                let first = self.toc_entries == 0;
                self.toc_entries += 1;
                if !pending.has_data {
                    self.tar_split.file(pending.toc.name(), 0, None)?;
                    return pending.toc.write_json(&mut self.toc, first, None);
                }
                let (digest, crc) = match (pending.whole, spans.as_slice()) {
                    (Some(whole), _) => whole,
                    (None, [(span, crc)]) => (span.digest.clone(), *crc),
                    _ => return Err(io::Error::other("a zstd:chunked file lost track of its chunks")),
                };
                let spans: Vec<ChunkSpan> = spans.into_iter().map(|(span, _)| span).collect();
                let size = spans.iter().map(|span| span.size).sum();
                self.tar_split.file(pending.toc.name(), size, Some(crc))?;
                pending.toc.write_json(&mut self.toc, first, Some((&digest, &spans)))?;
            }
        }
        Ok(())
    }
}

/// Compresses a tar stream held as plain bytes (a layer spooled for `--previous`): its entries are read back and
/// written again through the tar writer, which tells `compressor` where each file's data begins. The canonical
/// writer gives the same bytes again, which their digests check.
pub fn rewrite<'a, W: Write>(
    tar: impl Read,
    compressor: Box<dyn FinishWrite<W> + Send + 'a>,
) -> io::Result<Box<dyn FinishWrite<W> + Send + 'a>> {
    let mut reader = TarReader::new(DigestReader::new(tar), "a spooled layer", "uncompressed");
    let mut writer = TarWriter::new(DigestWriter::new(compressor));
    while let Some(mut entry) = reader.next_entry().map_err(io::Error::other)? {
        // The reader keeps a directory's name as the header has it, with the `/` the writer adds.
        if entry.kind == EntryKind::Directory && entry.path.ends_with(b"/") {
            entry.path.pop();
        }
        writer.append(&entry, &mut reader.data())?;
    }
    let (compressor, digest, _) = writer.finish()?.finish();
    let (read, _) = reader.into_inner().finish();
    if digest != read {
        return Err(io::Error::other(format!(
            "a spooled layer ({read}) read back and written again gave {digest}: not the same tar"
        )));
    }
    Ok(compressor)
}

/// The spooled text between `prefix` and `suffix`, compressed as one zstd frame.
fn compress_spool(spool: BufWriter<File>, prefix: &[u8], suffix: &[u8], level: i32) -> io::Result<trailer::Section> {
    let mut file = spool.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level)?;
    encoder.include_checksum(true)?;
    encoder.write_all(prefix)?;
    let copied = io::copy(&mut Read::by_ref(&mut file), &mut encoder)?;
    encoder.write_all(suffix)?;
    let uncompressed_size = prefix.len() as u64 + copied + suffix.len() as u64;
    Ok(trailer::Section { compressed: encoder.finish()?, uncompressed_size })
}

impl<W: Write> Write for ZstdChunkedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(data) = self.data.as_mut() {
            let room = CHUNK_BYTES - data.chunk.len();
            let n = buf.len().min(room).min(usize::try_from(data.left).unwrap_or(usize::MAX));
            data.chunk.extend_from_slice(&buf[..n]);
            if let Some((sha, crc)) = data.whole.as_mut() {
                sha.write_all(&buf[..n])?;
                crc.update(&buf[..n]);
            }
            data.left -= n as u64;
            if data.left == 0 || data.chunk.len() == CHUNK_BYTES {
                self.end_chunk()?;
            }
            return Ok(n);
        }
        self.headers.extend_from_slice(buf);
        self.segment.extend_from_slice(buf);
        if self.headers.len() >= HEADER_FRAME_BYTES {
            let headers = mem::take(&mut self.headers);
            self.push(Piece::Headers(headers))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.written.out.flush()
    }
}

impl<W: Write> TarOutput for ZstdChunkedWriter<W> {
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        if self.data.is_some() {
            return Err(io::Error::other("a tar header was written inside a file's data"));
        }
        let toc = TocEntry::new(entry, name).map_err(|problem| io::Error::other(InputFault(problem)))?;
        let segment = mem::take(&mut self.segment);
        let size = entry.size();
        if size == 0 {
            self.frames.mark(Pending { toc, segment, whole: None, has_data: false });
            return Ok(());
        }
        // The headers so far end their frame: the data starts one of its own, where the TOC points.
        if !self.headers.is_empty() {
            let headers = mem::take(&mut self.headers);
            self.push(Piece::Headers(headers))?;
        }
        let several_chunks = size > CHUNK_BYTES as u64;
        self.data = Some(OpenData {
            pending: Pending { toc, segment, whole: None, has_data: true },
            left: size,
            chunk: Vec::with_capacity(size.min(CHUNK_BYTES as u64) as usize),
            whole: several_chunks.then(|| (DigestWriter::new(io::sink()), Crc64::default())),
        });
        Ok(())
    }
}

impl<W: Write> FinishWrite<W> for ZstdChunkedWriter<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        Ok((*self).finish()?.0)
    }

    fn finish_annotated(self: Box<Self>) -> io::Result<(W, BTreeMap<String, String>)> {
        (*self).finish()
    }
}

#[cfg(test)]
mod tests;
