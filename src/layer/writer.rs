//! A layer being written: entries -> canonical tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> blob,
//! all in one streaming pass with nothing held whole in memory.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};
use std::sync::Arc;

use serde::Serialize;

use crate::blobs::{BlobStore, BlobWriter};
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::compress::chunked;
use crate::layer::compress::pool::CompressionPool;
use crate::layer::compress::{FinishWrite, LayerCompression};
use crate::layer::reuse::PreviousBlobs;
use crate::layer::spool::LayerSpool;
use crate::layering::plan::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::Layer;
use crate::oci::media_type::MediaType;
use crate::source::VerifiedLayer;
use crate::tar::entry::Entry;
use crate::tar::writer::{TarOutput, TarWriter};

/// A finished layer blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WrittenLayer {
    /// Digest of the blob as stored (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar (image-spec config.md `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Size of the blob as stored.
    pub size: u64,
    pub media_type: MediaType,
    pub uncompressed_size: u64,
    /// What the layer holds, for its descriptor (`org.imgcraft.layer.*`, see `layering`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl WrittenLayer {
    /// A base image's layer, kept as it is: its blob, with the media type of the compression its bytes show.
    pub fn kept(read: &VerifiedLayer, annotations: &BTreeMap<String, String>) -> WrittenLayer {
        WrittenLayer {
            digest: read.digest.clone(),
            diff_id: read.diff_id.clone(),
            size: read.size,
            media_type: read.stored_media_type.clone(),
            uncompressed_size: read.uncompressed_size,
            annotations: annotations.clone(),
        }
    }

    /// What the layer holds, for its history entry, from the annotations the layering gave it.
    pub fn comment(&self) -> String {
        let get = |key: &str| self.annotations.get(key);
        match (get(ANNOTATION_RULE), get(ANNOTATION_CONTENT), get(ANNOTATION_PACKAGES)) {
            (Some(rule), _, _) => format!("paths of layer rule {rule}"),
            (None, Some(_), _) => "paths no package or rule owns, and directories".into(),
            (None, None, Some(packages)) => format!("packages: {packages}"),
            (None, None, None) => "root filesystem".into(),
        }
    }

    /// The layer as its image lists it.
    pub fn to_oci(&self) -> Layer {
        Layer {
            descriptor: Descriptor {
                annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
                ..Descriptor::new(self.media_type.clone(), self.digest.clone(), self.size)
            },
            diff_id: Some(self.diff_id.clone()),
        }
    }
}

pub struct LayerWriter {
    tar: TarWriter<Target>,
    compression: LayerCompression,
    level: i32,
    threads: usize,
    pool: Option<Arc<CompressionPool>>,
}

/// Where a layer's tar goes: hashed (its diff_id) into its compressor, or with `--previous` into a spool until its
/// diff_id says whether the previous image's blob can be taken (see [`crate::layer::reuse`]).
enum Target {
    Compressor(DigestWriter<Box<dyn FinishWrite<BlobWriter> + Send>>),
    Spool(LayerSpool),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Compressor(compressor) => compressor.write(buf),
            Target::Spool(spool) => spool.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Compressor(compressor) => compressor.flush(),
            Target::Spool(spool) => spool.flush(),
        }
    }
}

impl TarOutput for Target {
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        match self {
            Target::Compressor(compressor) => compressor.data_follows(entry, name),
            // A spooled layer's compressor reads its entries back from the spool (`chunked::rewrite`).
            Target::Spool(_) => Ok(()),
        }
    }
}

impl LayerWriter {
    /// A layer compressed with `threads` threads of its own, or on `pool` when several layers are written at once.
    /// With `spooled`, its tar is held in a temporary file beside the blobs until [`LayerWriter::commit`] decides
    /// between compressing it and a previous image's blob.
    pub fn create(
        blobs: &BlobStore,
        compression: LayerCompression,
        level: i32,
        threads: usize,
        pool: Option<&Arc<CompressionPool>>,
        spooled: bool,
    ) -> Result<LayerWriter> {
        let target = match spooled {
            true => Target::Spool(
                LayerSpool::create(blobs.root())
                    .map_err(|e| Error::io("cannot create a layer spool in", blobs.root(), e))?,
            ),
            false => Target::Compressor(DigestWriter::new(Self::compressor(blobs, compression, level, threads, pool)?)),
        };
        Ok(LayerWriter { tar: TarWriter::new(target), compression, level, threads, pool: pool.cloned() })
    }

    fn compressor(
        blobs: &BlobStore,
        compression: LayerCompression,
        level: i32,
        threads: usize,
        pool: Option<&Arc<CompressionPool>>,
    ) -> Result<Box<dyn FinishWrite<BlobWriter> + Send>> {
        compression
            .encoder(blobs.writer()?, level, threads, pool)
            .map_err(|e| Error::Invalid(format!("cannot start the {compression} compressor: {e}")))
    }

    /// Appends one normalised entry, copying a regular file's data from `data`.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.tar.append(entry, data)
    }

    /// Ends the tar stream and stores the blob under its digest: the compressed stream, or for a spooled layer the
    /// previous image's blob of the same content when `previous` has one that passes its checks, else the spool
    /// compressed now.
    pub fn commit(self, blobs: &BlobStore, previous: Option<&PreviousBlobs>) -> Result<WrittenLayer> {
        let write_error = |e| Error::io("cannot write a layer in", blobs.root(), e);
        let target = self.tar.finish().map_err(write_error)?;
        // zstd:chunked's compressor names where its table of contents is; the layering adds what the layer holds.
        let written = |compressor: Box<dyn FinishWrite<BlobWriter> + Send>,
                       diff_id: Digest,
                       uncompressed_size: u64|
         -> Result<WrittenLayer> {
            let (blob, annotations) = compressor.finish_annotated().map_err(write_error)?;
            let (digest, size) = blob.commit()?;
            Ok(WrittenLayer {
                digest,
                diff_id,
                size,
                media_type: self.compression.media_type(),
                uncompressed_size,
                annotations,
            })
        };
        let (spool, diff_id, uncompressed_size) = match target {
            Target::Compressor(compressor) => {
                let (compressor, diff_id, uncompressed_size) = compressor.finish();
                return written(compressor, diff_id, uncompressed_size);
            }
            Target::Spool(spool) => spool.finish().map_err(write_error)?,
        };
        let mut spool = io::BufReader::with_capacity(128 << 10, spool);
        spool.rewind().map_err(write_error)?;
        let previous = previous.filter(|p| p.has(&diff_id) && uncompressed_size >= REUSE_MIN_SIZE);
        if let Some(previous) = previous {
            let mut head = Vec::with_capacity(LayerCompression::LEADING_INPUT);
            (&mut spool).take(LayerCompression::LEADING_INPUT as u64).read_to_end(&mut head).map_err(write_error)?;
            let leading =
                self.compression.leading_bytes(&head, self.level, self.pool.is_some()).map_err(write_error)?;
            let taken = match leading {
                Some(leading) => previous.take(&diff_id, &leading, blobs)?,
                None => None,
            };
            if let Some(read) = taken {
                let media_type = self.compression.media_type();
                return Ok(WrittenLayer { media_type, ..WrittenLayer::kept(&read, &BTreeMap::new()) });
            }
            spool.rewind().map_err(write_error)?;
        }
        let mut compressor = Self::compressor(blobs, self.compression, self.level, self.threads, self.pool.as_ref())?;
        if self.compression.indexes_entries() {
            // It learns where each file begins from the tar writer: the spool is read back entry by entry and
            // written again (the same bytes, which the diff_id checks).
            compressor = chunked::rewrite(&mut spool, compressor, &diff_id).map_err(write_error)?;
        } else {
            io::copy(&mut spool, &mut compressor).map_err(write_error)?;
        }
        written(compressor, diff_id, uncompressed_size)
    }
}

/// Layers smaller than this are compressed whatever the previous image holds: checking its blob would cost more.
const REUSE_MIN_SIZE: u64 = LayerCompression::LEADING_INPUT as u64;
