//! Reading a zstd:chunked layer's TOC back from an image, as a client with partial pulls does before it fetches
//! anything else: the byte range its annotations name, checked against their digest, decompressed within a bound.

use std::collections::BTreeMap;
use std::io::Read;

use crate::blobs::BlobSource;
use crate::digest::Digest;
use crate::layer::compress::chunked::toc::Toc;
use crate::layer::compress::chunked::trailer::Position;

/// The largest TOC read, compressed or not: containers/storage 1.43's own limit (bookworm's podman refuses a larger
/// one; 1.5x allows 150 MiB), which also keeps what `diff` holds in memory small.
pub const MAX_TOC_BYTES: u64 = 50 << 20;

/// A layer's TOC and where it is, or `None` for a layer that is not zstd:chunked; the problem otherwise, to be told
/// with the image and layer.
pub fn read_toc(
    blobs: &dyn BlobSource,
    digest: &Digest,
    size: u64,
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Option<(Position, Toc)>, String> {
    let Some(annotations) = annotations else { return Ok(None) };
    let Some(position) = Position::from_annotations(annotations)? else { return Ok(None) };
    if position.length > MAX_TOC_BYTES || position.uncompressed_length > MAX_TOC_BYTES {
        return Err(format!(
            "its zstd:chunked table of contents is {} bytes ({} uncompressed), more than the {} MiB read",
            position.length,
            position.uncompressed_length,
            MAX_TOC_BYTES >> 20
        ));
    }
    if position.offset.checked_add(position.length).map_or(true, |end| end > size) {
        return Err(format!("its zstd:chunked table of contents lies past the blob's {size} bytes"));
    }
    let mut compressed = Vec::with_capacity(position.length as usize);
    blobs
        .open_blob_at(digest, position.offset)
        .map_err(|e| e.to_string())?
        .take(position.length)
        .read_to_end(&mut compressed)
        .map_err(|e| format!("cannot read its zstd:chunked table of contents: {e}"))?;
    if compressed.len() as u64 != position.length || Digest::of(&compressed) != position.digest {
        return Err(format!(
            "its zstd:chunked table of contents does not match the digest its annotation gives ({})",
            position.digest
        ));
    }
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(&compressed[..])
        .and_then(|decoder| decoder.take(MAX_TOC_BYTES + 1).read_to_end(&mut json))
        .map_err(|e| format!("its zstd:chunked table of contents does not decompress: {e}"))?;
    if json.len() as u64 > MAX_TOC_BYTES {
        return Err(format!(
            "its zstd:chunked table of contents decompresses to more than the {} MiB read",
            MAX_TOC_BYTES >> 20
        ));
    }
    let toc = Toc::parse(&json, position.offset)?;
    Ok(Some((position, toc)))
}
