//! A layer being written: entries -> canonical tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> blob,
//! all in one streaming pass with nothing held whole in memory.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use serde::Serialize;

use crate::blobs::{BlobStore, BlobWriter};
use crate::digest::{Digest, DigestWriter};
use crate::error::{Error, Result};
use crate::layer::compress::FinishWrite;
use crate::layer::compress::LayerCompression;
use crate::layer::compress::pool::CompressionPool;
use crate::layering::plan::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::Layer;
use crate::oci::media_type::MediaType;
use crate::source::VerifiedLayer;
use crate::tar::entry::Entry;
use crate::tar::writer::TarWriter;

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
    tar: TarWriter<DigestWriter<Box<dyn FinishWrite<BlobWriter>>>>,
    compression: LayerCompression,
    dir: std::path::PathBuf,
}

impl LayerWriter {
    /// A layer compressed with `threads` threads of its own, or on `pool` when several layers are written at once.
    pub fn create(
        blobs: &BlobStore,
        compression: LayerCompression,
        level: i32,
        threads: usize,
        pool: Option<&Arc<CompressionPool>>,
    ) -> Result<LayerWriter> {
        let blob = blobs.writer()?;
        let compressor = compression
            .encoder(blob, level, threads, pool)
            .map_err(|e| Error::Invalid(format!("cannot start the {compression} compressor: {e}")))?;
        Ok(LayerWriter {
            tar: TarWriter::new(DigestWriter::new(compressor)),
            compression,
            dir: blobs.root().to_path_buf(),
        })
    }

    /// Appends one normalised entry, copying a regular file's data from `data`.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.tar.append(entry, data)
    }

    /// Ends the tar stream and the compressor and stores the blob under its digest.
    pub fn commit(self) -> Result<WrittenLayer> {
        let dir = self.dir;
        let write_error = |e| Error::io("cannot write a layer in", &dir, e);
        let (compressor, diff_id, uncompressed_size) = self.tar.finish().map_err(write_error)?.finish();
        let blob = compressor.finish_stream().map_err(write_error)?;
        let (digest, size) = blob.commit()?;
        Ok(WrittenLayer {
            digest,
            diff_id,
            size,
            media_type: self.compression.media_type(),
            uncompressed_size,
            annotations: BTreeMap::new(),
        })
    }
}
