//! Layer compression: the algorithms a layer may be written with (their media types and levels), and the one thing
//! every compressor shares, a tar output ([`TarOutput`]) that must be told where the stream ends (to write its
//! trailer) and then hands back the writer below it. The parallel compressors ([`gzip`], [`zstd`], [`chunked`])
//! implement it on the shared [`pool`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::Arc;

pub mod chunked;
pub mod gzip;
pub mod pool;
pub mod zstd;

use self::chunked::ZstdChunkedWriter;
use self::zstd::ParallelZstdWriter;
use crate::error::Error;
use crate::oci::media_type::MediaType;
use crate::tar::entry::Entry;
use crate::tar::writer::TarOutput;
use gzip::ParallelGzipWriter;
use pool::CompressionPool;

/// A compressor that must be told when the stream ends, returning the inner writer. It takes a tar stream, so that
/// one that indexes entries (zstd:chunked) learns where each begins; the others ignore that.
pub trait FinishWrite<W>: TarOutput {
    fn finish_stream(self: Box<Self>) -> io::Result<W>;

    /// Ends the stream, with the annotations the layer's descriptor must carry for readers to find what the
    /// compressor indexed (zstd:chunked's table of contents); none for the others.
    fn finish_annotated(self: Box<Self>) -> io::Result<(W, BTreeMap<String, String>)> {
        Ok((self.finish_stream()?, BTreeMap::new()))
    }
}

impl<W> TarOutput for Box<dyn FinishWrite<W> + Send + '_> {
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        (**self).data_follows(entry, name)
    }
}

/// How layers are compressed, resolved: the algorithm, a level it accepts, and the threads to use (which never
/// change the output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    pub algorithm: LayerCompression,
    pub level: i32,
    pub threads: usize,
}

impl Default for Compression {
    fn default() -> Self {
        let algorithm = LayerCompression::default();
        Compression { algorithm, level: algorithm.default_level(), threads: 1 }
    }
}

/// The compression of a written layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LayerCompression {
    /// Every engine and registry accepts gzip layers; the default.
    #[default]
    Gzip,
    Zstd,
    /// zstd in the zstd:chunked layout of containers/storage: each file's data in frames of its own, a table of
    /// contents and tar-split at the end ([`chunked`]); readers that do not know it read plain zstd.
    ZstdChunked,
    None,
}

impl LayerCompression {
    /// image-spec media-types.md
    pub fn media_type(self) -> MediaType {
        match self {
            LayerCompression::Gzip => MediaType::OciLayerGzip,
            LayerCompression::Zstd | LayerCompression::ZstdChunked => MediaType::OciLayerZstd,
            LayerCompression::None => MediaType::OciLayer,
        }
    }

    /// The level used when the user gives none: gzip 6 (gzip's and Go's default), zstd 3 (zstd's default).
    pub fn default_level(self) -> i32 {
        match self {
            LayerCompression::Gzip => 6,
            LayerCompression::Zstd | LayerCompression::ZstdChunked => 3,
            LayerCompression::None => 0,
        }
    }

    /// The levels this algorithm accepts.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            LayerCompression::Gzip => 0..=9,
            LayerCompression::Zstd | LayerCompression::ZstdChunked => 1..=22,
            LayerCompression::None => 0..=0,
        }
    }

    /// Wraps `out` in this compressor using `threads` worker threads, or the shared `pool` when several layers are
    /// written at once. Output bytes depend only on the input, the level and whether a pool is used, never on the
    /// thread count (tests/cli.rs `threads_compressions_and_reruns_never_change_digests`).
    pub fn encoder<'a, W: Write + Send + 'a>(
        self,
        out: W,
        level: i32,
        threads: usize,
        pool: Option<&Arc<CompressionPool>>,
    ) -> io::Result<Box<dyn FinishWrite<W> + Send + 'a>> {
        if let Some(pool) = pool {
            match self {
                LayerCompression::Gzip => {
                    return Ok(Box::new(ParallelGzipWriter::with_pool(out, level as u32, Arc::clone(pool))));
                }
                LayerCompression::Zstd => {
                    return Ok(Box::new(ParallelZstdWriter::with_pool(out, level, Arc::clone(pool))));
                }
                LayerCompression::ZstdChunked => {
                    return Ok(Box::new(ZstdChunkedWriter::new(out, level, Arc::clone(pool))?));
                }
                LayerCompression::None => {}
            }
        }
        Ok(match self {
            // Files are compressed apart in any case: a pool of its own gives the same bytes as a shared one.
            LayerCompression::ZstdChunked => {
                Box::new(ZstdChunkedWriter::new(out, level, CompressionPool::new(threads))?)
            }
            LayerCompression::Gzip => Box::new(ParallelGzipWriter::new(out, level as u32, threads)),
            LayerCompression::Zstd => {
                let mut encoder = ::zstd::stream::write::Encoder::new(out, level)?;
                // zstd's output differs between no workers and any number of workers, but is the same for every
                // number >= 1: always ask for at least one so that digests do not depend on the machine.
                encoder.multithread(threads.max(1) as u32)?;
                encoder.include_checksum(true)?;
                Box::new(encoder)
            }
            LayerCompression::None => Box::new(Uncompressed(out)),
        })
    }

    /// Whether the compressor must learn where each entry's data begins (zstd:chunked compresses each file apart):
    /// a layer spooled as plain bytes is then written again entry by entry (`chunked::rewrite`).
    pub fn indexes_entries(self) -> bool {
        self == LayerCompression::ZstdChunked
    }

    /// How much of a layer's uncompressed start [`LayerCompression::leading_bytes`] needs.
    pub const LEADING_INPUT: usize = 1 << 20;

    /// The exact bytes a blob of this compression begins with when its uncompressed data begins with `head` (at
    /// least [`Self::LEADING_INPUT`] bytes of it, or the whole layer): its first block compressed at `level`, as the
    /// writer would compress it with a pool (`pooled`) or without. `None` when the compressor cannot tell without
    /// compressing everything (libzstd's own multithreaded stream, a layer shorter than one block).
    pub fn leading_bytes(self, head: &[u8], level: i32, pooled: bool) -> io::Result<Option<Vec<u8>>> {
        match self {
            LayerCompression::Gzip => gzip::leading_bytes(head, level as u32),
            LayerCompression::Zstd if pooled => self::zstd::leading_bytes(head, level),
            LayerCompression::Zstd => Ok(None),
            // Its frames follow the files, and its descriptor carries the TOC's position, which a taken blob would
            // have to bring along: compressed afresh.
            LayerCompression::ZstdChunked => Ok(None),
            LayerCompression::None => Ok(Some(head.to_vec())),
        }
    }
}

impl fmt::Display for LayerCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayerCompression::Gzip => "gzip",
            LayerCompression::Zstd => "zstd",
            LayerCompression::ZstdChunked => "zstd:chunked",
            LayerCompression::None => "none",
        })
    }
}

impl FromStr for LayerCompression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "gzip" => Ok(LayerCompression::Gzip),
            "zstd" => Ok(LayerCompression::Zstd),
            "zstd:chunked" => Ok(LayerCompression::ZstdChunked),
            "none" => Ok(LayerCompression::None),
            _ => Err(Error::Invalid(format!("unknown compression `{s}`: use gzip, zstd, zstd:chunked or none"))),
        }
    }
}

impl<W: Write> TarOutput for ::zstd::stream::write::Encoder<'_, W> {}

impl<W: Write> FinishWrite<W> for ::zstd::stream::write::Encoder<'_, W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        (*self).finish()
    }
}

struct Uncompressed<W>(W);

impl<W: Write> Write for Uncompressed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> TarOutput for Uncompressed<W> {}

impl<W: Write> FinishWrite<W> for Uncompressed<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}
