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

#[cfg(test)]
mod tests {
    use std::io::{self, Read};

    use super::*;
    use crate::error::Result;
    use crate::layer::compress::FinishWrite;
    use crate::layer::compress::chunked::ZstdChunkedWriter;
    use crate::layer::compress::chunked::trailer::TOC_POSITION;
    use crate::layer::compress::pool::CompressionPool;
    use crate::tar::entry::{Entry, EntryKind};
    use crate::tar::writer::TarWriter;

    struct Blob(Vec<u8>);

    impl BlobSource for Blob {
        fn open_blob(&self, _: &Digest) -> Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(io::Cursor::new(&self.0[..])))
        }
    }

    /// A zstd:chunked layer of two small files and one of three chunks.
    fn layer() -> (Blob, BTreeMap<String, String>) {
        let mut tar = TarWriter::new(ZstdChunkedWriter::new(Vec::new(), 3, CompressionPool::new(1)).unwrap());
        let big: Vec<u8> = (0..1_200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        for (path, data) in [("a", b"one".to_vec()), ("b", b"two".to_vec()), ("big", big)] {
            let entry = Entry {
                path: path.as_bytes().to_vec(),
                kind: EntryKind::File { size: data.len() as u64 },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: BTreeMap::new(),
            };
            tar.append(&entry, &mut &data[..]).unwrap();
        }
        let (blob, annotations) = Box::new(tar.finish().unwrap()).finish_annotated().unwrap();
        (Blob(blob), annotations)
    }

    #[test]
    fn the_toc_is_read_through_its_annotations() {
        let (blob, annotations) = layer();
        let digest = Digest::of(&blob.0);
        let size = blob.0.len() as u64;
        let (position, toc) = read_toc(&blob, &digest, size, Some(&annotations)).unwrap().unwrap();
        assert_eq!(toc.files.iter().map(|f| f.chunks.len()).collect::<Vec<_>>(), vec![1, 1, 3]);
        assert!(toc.files.iter().flat_map(|f| &f.chunks).all(|(_, bytes)| *bytes > 0 && *bytes < position.offset));
        assert!(position.tar_split_length > 0);
        assert!(read_toc(&blob, &digest, size, None).unwrap().is_none());
        let plain = BTreeMap::from([("org.imgcraft.layer.packages".to_string(), "x".to_string())]);
        assert!(read_toc(&blob, &digest, size, Some(&plain)).unwrap().is_none());
    }

    #[test]
    fn a_toc_that_lies_or_is_too_large_is_refused_saying_why() {
        let (blob, annotations) = layer();
        let digest = Digest::of(&blob.0);
        let size = blob.0.len() as u64;
        let with = |key: &str, value: String| {
            let mut changed = annotations.clone();
            changed.insert(key.into(), value);
            read_toc(&blob, &digest, size, Some(&changed)).unwrap_err()
        };
        let fields: Vec<u64> = annotations[TOC_POSITION].split(':').map(|n| n.parse().unwrap()).collect();
        let shifted = format!("{}:{}:{}:1", fields[0] + 1, fields[1], fields[2]);
        assert!(with(TOC_POSITION, shifted).contains("does not match the digest"));
        let huge = format!("{}:{}:{}:1", fields[0], MAX_TOC_BYTES + 1, fields[2]);
        assert!(with(TOC_POSITION, huge).contains("more than the 50 MiB"));
        let past = format!("{}:{}:{}:1", size, fields[1], fields[2]);
        assert!(with(TOC_POSITION, past).contains("past the blob"));
        assert!(with(TOC_POSITION, "1:2".into()).contains("OFFSET:LENGTH"));
    }
}
