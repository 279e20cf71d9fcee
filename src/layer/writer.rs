//! A layer being written: entries -> canonical tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> blob,
//! all in one streaming pass with nothing held whole in memory.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use serde::Serialize;

use crate::blobs::{BlobStore, BlobWriter};
use crate::digest::{Digest, DigestReader, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::compress::chunked;
use crate::layer::compress::pool::CompressionPool;
use crate::layer::compress::{FinishWrite, LayerCompression};
use crate::layer::known::{KnownLayers, KnownTar};
use crate::layer::outline::{OutlineTracker, Recipe};
use crate::layer::reuse::PreviousBlobs;
use crate::layer::spool::LayerSpool;
use crate::layering::plan::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::Layer;
use crate::oci::media_type::MediaType;
use crate::source::VerifiedLayer;
use crate::tar::entry::Entry;
use crate::tar::file_digests::KnownData;
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
    /// With an outline, the outline is hashed beside, to be recorded with the diff_id for a later rebuild.
    Compressor(DigestWriter<Box<dyn FinishWrite<BlobWriter> + Send>>, Option<(OutlineTracker, DigestWriter<io::Sink>)>),
    Spool(LayerSpool),
    /// The outline into a spool, the data it leaves out left where the rootfs's read found it (see
    /// [`crate::layer::outline`]).
    Recipe(LayerSpool, OutlineTracker),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Compressor(compressor, None) => compressor.write(buf),
            Target::Compressor(compressor, Some((tracker, outline))) => {
                let n = compressor.write(buf)?;
                let left_out = tracker.left_out(n);
                if tracker.is_whole() && left_out < n {
                    outline.write_all(&buf[left_out..n])?;
                    tracker.advance(n - left_out);
                }
                Ok(n)
            }
            Target::Spool(spool) => spool.write(buf),
            Target::Recipe(spool, tracker) => {
                let left_out = tracker.left_out(buf.len());
                if left_out > 0 {
                    return Ok(left_out);
                }
                let n = spool.write(buf)?;
                tracker.advance(n);
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Compressor(compressor, _) => compressor.flush(),
            Target::Spool(spool) | Target::Recipe(spool, _) => spool.flush(),
        }
    }
}

impl TarOutput for Target {
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        match self {
            Target::Compressor(compressor, outline) => {
                if let Some((tracker, outline)) = outline {
                    if let Some(digest) = tracker.data_follows(entry) {
                        outline.write_all(&digest)?;
                    }
                }
                compressor.data_follows(entry, name)
            }
            // A spooled layer's compressor reads its entries back from the spool (`chunked::rewrite`).
            Target::Spool(_) => Ok(()),
            Target::Recipe(spool, tracker) => match tracker.data_follows(entry) {
                Some(digest) => spool.write_all(&digest),
                None => Ok(()),
            },
        }
    }

    /// A recipe leaves the data of known files out: they are read again from the rootfs only if needed.
    fn leaves_data_out(&mut self) -> bool {
        match self {
            Target::Recipe(_, tracker) => tracker.skip_left_out(),
            _ => false,
        }
    }
}

/// How a layer is written: compressed as it comes, or spooled (whole, or as its outline) until its diff_id is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerShape {
    /// Compressed as it is written.
    Compressed,
    /// Compressed as it is written, its outline hashed beside and recorded.
    CompressedOutlined,
    /// Spooled whole until its diff_id is known (`--previous`).
    Spooled,
    /// Spooled as its outline until its diff_id is known (`--previous`, the rootfs's digests recorded).
    Outlined,
}

impl LayerWriter {
    /// A layer compressed with `threads` threads of its own, or on `pool` when several layers are written at once.
    /// A spooled layer's tar (or outline) is held in a temporary file beside the blobs until
    /// [`LayerWriter::commit`] decides between compressing it and a previous image's blob.
    pub fn create(
        blobs: &BlobStore,
        compression: LayerCompression,
        level: i32,
        threads: usize,
        pool: Option<&Arc<CompressionPool>>,
        shape: LayerShape,
    ) -> Result<LayerWriter> {
        let spool = || {
            LayerSpool::create(blobs.root()).map_err(|e| Error::io("cannot create a layer spool in", blobs.root(), e))
        };
        let compressor =
            || -> Result<_> { Ok(DigestWriter::new(Self::compressor(blobs, compression, level, threads, pool)?)) };
        let target = match shape {
            LayerShape::Compressed => Target::Compressor(compressor()?, None),
            LayerShape::CompressedOutlined => {
                Target::Compressor(compressor()?, Some((OutlineTracker::new(), DigestWriter::new(io::sink()))))
            }
            LayerShape::Spooled => Target::Spool(spool()?),
            LayerShape::Outlined => Target::Recipe(spool()?, OutlineTracker::new()),
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

    /// Appends one normalised entry, copying a regular file's data from `data`; `known` is that data as the
    /// rootfs's read knows it, for the outline.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read, known: Option<KnownData>) -> io::Result<()> {
        if let Target::Compressor(_, Some((tracker, _))) | Target::Recipe(_, tracker) = self.tar.output_mut() {
            tracker.expect(known);
        }
        self.tar.append(entry, data)
    }

    /// Ends the tar stream and stores the blob under its digest: the compressed stream, or for a spooled layer the
    /// previous image's blob of the same content when `previous` has one that passes its checks, else the spool
    /// compressed now. An outlined layer's outline is recorded in `known` with the diff_id, or looked up there.
    pub fn commit(
        self,
        blobs: &BlobStore,
        previous: Option<&PreviousBlobs>,
        known: &KnownLayers,
    ) -> Result<WrittenLayer> {
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
        let (recipe, diff_id, uncompressed_size, outline) = match target {
            Target::Compressor(compressor, outline) => {
                let (compressor, diff_id, uncompressed_size) = compressor.finish();
                if let Some((tracker, hashed)) = outline.filter(|(tracker, _)| tracker.is_whole()) {
                    let (_, outline, _) = hashed.finish();
                    known.record_tar(&outline, &KnownTar { diff_id: diff_id.clone(), size: uncompressed_size });
                    debug_assert_eq!(tracker.tar_size(), uncompressed_size);
                }
                return written(compressor, diff_id, uncompressed_size);
            }
            Target::Spool(spool) => {
                let (file, diff_id, size) = spool.finish().map_err(write_error)?;
                (Recipe::plain(file), diff_id, size, None)
            }
            Target::Recipe(spool, tracker) => outlined_tar(spool, tracker, known, previous).map_err(write_error)?,
        };
        let previous = previous.filter(|p| p.has(&diff_id) && uncompressed_size >= REUSE_MIN_SIZE);
        if let Some(previous) = previous {
            let mut head = Vec::with_capacity(LayerCompression::LEADING_INPUT);
            recipe.tar().take(LayerCompression::LEADING_INPUT as u64).read_to_end(&mut head).map_err(write_error)?;
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
        }
        let mut compressor = Self::compressor(blobs, self.compression, self.level, self.threads, self.pool.as_ref())?;
        // A diff_id the cache gave is checked by hashing the tar as it is compressed, so that the one written is the
        // tar's whatever the entry said; one hashed from the tar already is not hashed again.
        let mut plain;
        let mut hashed = outline.is_some().then(|| DigestReader::new(recipe.tar()));
        let tar: &mut dyn Read = match &mut hashed {
            Some(hashed) => hashed,
            None => {
                plain = recipe.tar();
                &mut plain
            }
        };
        if self.compression.indexes_entries() {
            // It learns where each file begins from the tar writer: the spool is read back entry by entry and
            // written again (the same bytes, which the diff_id checks).
            compressor = chunked::rewrite(tar, compressor).map_err(write_error)?;
        } else {
            io::copy(tar, &mut compressor).map_err(write_error)?;
        }
        let (Some(outline), Some(hashed)) = (outline, hashed) else {
            return written(compressor, diff_id, uncompressed_size);
        };
        let (diff_id, uncompressed_size) = hashed.finish();
        // Corrects an entry that said otherwise: the blob written is right either way, and a cold build's.
        known.record_tar(&outline, &KnownTar { diff_id: diff_id.clone(), size: uncompressed_size });
        written(compressor, diff_id, uncompressed_size)
    }
}

/// A layer spooled as its outline: its recipe, the diff_id and size of its tar, and the outline when the diff_id is
/// the one the cache recorded with it (to be checked, and the entry corrected, when the tar is compressed). Any other
/// diff_id is hashed from the recipe, and recorded when the outline is whole.
fn outlined_tar(
    spool: LayerSpool,
    tracker: OutlineTracker,
    known: &KnownLayers,
    previous: Option<&PreviousBlobs>,
) -> io::Result<(Recipe, Digest, u64, Option<Digest>)> {
    let (file, digest, _) = spool.finish()?;
    let size = tracker.tar_size();
    let outline = tracker.is_whole().then_some(digest);
    let recipe = tracker.into_recipe(file);
    if let Some(tar) = outline.as_ref().and_then(|o| known.tar_of(o)).filter(|tar| tar.size == size) {
        if let Some(previous) = previous {
            previous.note_recognised();
        }
        return Ok((recipe, tar.diff_id, size, outline));
    }
    let mut hashed = DigestReader::new(recipe.tar());
    io::copy(&mut hashed, &mut io::sink())?;
    let (diff_id, _) = hashed.finish();
    if let Some(outline) = &outline {
        known.record_tar(outline, &KnownTar { diff_id: diff_id.clone(), size });
    }
    Ok((recipe, diff_id, size, None))
}

/// Layers smaller than this are compressed whatever the previous image holds: checking its blob would cost more.
const REUSE_MIN_SIZE: u64 = LayerCompression::LEADING_INPUT as u64;
