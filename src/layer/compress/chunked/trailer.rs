//! The end of a zstd:chunked blob and the annotations that point into it: the TOC and the tar-split, each in a zstd
//! skippable frame (RFC 8878 section 3.1.2: every decoder steps over them, so the blob stays plain zstd), then the
//! footer, and on the layer's descriptor the TOC's digest and both frames' positions. Both generations of
//! containers/storage's annotation names are written (see the parent module), and read back by [`Position`].

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::digest::Digest;

/// containers/storage 1.43 (Debian bookworm's podman 4.3): the sha256 of the compressed TOC, and its position.
pub const LEGACY_TOC_DIGEST: &str = "io.containers.zstd-chunked.manifest-checksum";
pub const LEGACY_TOC_POSITION: &str = "io.containers.zstd-chunked.manifest-position";
/// containers/storage 1.44 and later (podman 4.4 and 5.x): the same two under new names, and the tar-split's
/// position (its digest is in the TOC, `tarSplitDigest`).
pub const TOC_DIGEST: &str = "io.github.containers.zstd-chunked.manifest-checksum";
pub const TOC_POSITION: &str = "io.github.containers.zstd-chunked.manifest-position";
pub const TAR_SPLIT_POSITION: &str = "io.github.containers.zstd-chunked.tarsplit-position";

/// The TOC's type in its position annotation and footer: CRFS-compatible, the only one defined.
const MANIFEST_TYPE_CRFS: u64 = 1;

/// The footer's last eight bytes since containers/storage 1.44 (1.43 wrote `GnUlInUx`, and reads it only when its
/// annotations are missing).
const FOOTER_MAGIC: &[u8; 8] = b"GNUlInUx";

/// Skippable frame magic (0x184D2A50), little-endian, then a 32-bit little-endian length.
const SKIPPABLE_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];
const SKIPPABLE_HEADER: u64 = 8;

/// A compressed TOC or tar-split, as it goes into its frame.
pub struct Section {
    pub compressed: Vec<u8>,
    pub uncompressed_size: u64,
}

/// Writes the TOC, the tar-split and the footer after `offset` bytes of frames, and returns the annotations that
/// point at them.
pub fn write(
    out: &mut impl Write,
    offset: u64,
    toc: &Section,
    tar_split: &Section,
) -> io::Result<BTreeMap<String, String>> {
    let toc_offset = offset + SKIPPABLE_HEADER;
    let tar_split_offset = toc_offset + toc.compressed.len() as u64 + SKIPPABLE_HEADER;
    skippable(out, &toc.compressed)?;
    skippable(out, &tar_split.compressed)?;
    // containers/storage's footerDataToBlob: seven little-endian u64s and the magic; no reader needs it while the
    // annotations are there, but it keeps the blob self-describing.
    let mut footer = Vec::with_capacity(64);
    for value in [
        toc_offset,
        toc.compressed.len() as u64,
        toc.uncompressed_size,
        MANIFEST_TYPE_CRFS,
        tar_split_offset,
        tar_split.compressed.len() as u64,
        tar_split.uncompressed_size,
    ] {
        footer.extend_from_slice(&value.to_le_bytes());
    }
    footer.extend_from_slice(FOOTER_MAGIC);
    skippable(out, &footer)?;

    let digest = Digest::of(&toc.compressed).to_string();
    let toc_position = format!("{toc_offset}:{}:{}:{MANIFEST_TYPE_CRFS}", toc.compressed.len(), toc.uncompressed_size);
    let tar_split_position =
        format!("{tar_split_offset}:{}:{}", tar_split.compressed.len(), tar_split.uncompressed_size);
    Ok(BTreeMap::from([
        (LEGACY_TOC_DIGEST.to_string(), digest.clone()),
        (LEGACY_TOC_POSITION.to_string(), toc_position.clone()),
        (TOC_DIGEST.to_string(), digest),
        (TOC_POSITION.to_string(), toc_position),
        (TAR_SPLIT_POSITION.to_string(), tar_split_position),
    ]))
}

fn skippable(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let length = u32::try_from(data.len())
        .map_err(|_| io::Error::other("a zstd:chunked table of contents or tar-split exceeds 4 GiB"))?;
    out.write_all(&SKIPPABLE_MAGIC)?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(data)
}

/// Where a layer's TOC is and what it must hash to, from its descriptor's annotations (the current names first,
/// as containers/storage 1.44+ reads them, else 1.43's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub digest: Digest,
    pub offset: u64,
    pub length: u64,
    pub uncompressed_length: u64,
    /// The tar-split's compressed length, which a current client fetches with the TOC (0 when not announced).
    pub tar_split_length: u64,
}

impl Position {
    /// `None` when the layer is not zstd:chunked (no TOC digest annotation); an error when its annotations are
    /// malformed.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Option<Position>, String> {
        let (digest_key, position_key) = if annotations.contains_key(TOC_DIGEST) {
            (TOC_DIGEST, TOC_POSITION)
        } else if annotations.contains_key(LEGACY_TOC_DIGEST) {
            (LEGACY_TOC_DIGEST, LEGACY_TOC_POSITION)
        } else {
            return Ok(None);
        };
        let digest = annotations[digest_key].parse::<Digest>().map_err(|e| format!("annotation {digest_key}: {e}"))?;
        let position = annotations.get(position_key).ok_or_else(|| format!("annotation {position_key} is missing"))?;
        let toc =
            numbers(position, 4).ok_or_else(|| format!("annotation {position_key} is not OFFSET:LENGTH:SIZE:1"))?;
        if toc[3] != MANIFEST_TYPE_CRFS {
            return Err(format!("annotation {position_key}: TOC type {} is not 1 (CRFS)", toc[3]));
        }
        let tar_split_length = match annotations.get(TAR_SPLIT_POSITION).filter(|_| digest_key == TOC_DIGEST) {
            Some(text) => {
                numbers(text, 3).ok_or_else(|| format!("annotation {TAR_SPLIT_POSITION} is not OFFSET:LENGTH:SIZE"))?[1]
            }
            None => 0,
        };
        Ok(Some(Position { digest, offset: toc[0], length: toc[1], uncompressed_length: toc[2], tar_split_length }))
    }
}

fn numbers(text: &str, count: usize) -> Option<Vec<u64>> {
    let numbers: Vec<u64> = text.split(':').map(|n| n.parse().ok()).collect::<Option<_>>()?;
    (numbers.len() == count).then_some(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_footer_and_annotations_agree() {
        let toc = Section { compressed: b"toc!".to_vec(), uncompressed_size: 40 };
        let split = Section { compressed: b"split".to_vec(), uncompressed_size: 50 };
        let mut blob = vec![7u8; 100];
        let annotations = write(&mut blob, 100, &toc, &split).unwrap();
        assert_eq!(&blob[100..104], &SKIPPABLE_MAGIC);
        assert_eq!(&blob[108..112], b"toc!");
        assert_eq!(&blob[120..125], b"split");
        assert_eq!(annotations[TOC_POSITION], "108:4:40:1");
        assert_eq!(annotations[LEGACY_TOC_POSITION], "108:4:40:1");
        assert_eq!(annotations[TAR_SPLIT_POSITION], "120:5:50");
        assert_eq!(annotations[TOC_DIGEST], Digest::of(b"toc!").to_string());
        let footer = &blob[blob.len() - 64..];
        assert_eq!(&footer[56..], FOOTER_MAGIC);
        assert_eq!(u64::from_le_bytes(footer[..8].try_into().unwrap()), 108);
        assert_eq!(u64::from_le_bytes(footer[32..40].try_into().unwrap()), 120);
        assert_eq!(blob.len(), 125 + 8 + 64);

        let position = Position::from_annotations(&annotations).unwrap().unwrap();
        assert_eq!((position.offset, position.length, position.tar_split_length), (108, 4, 5));
        let legacy: BTreeMap<String, String> =
            annotations.into_iter().filter(|(k, _)| k.starts_with("io.containers.")).collect();
        assert_eq!(Position::from_annotations(&legacy).unwrap().unwrap().tar_split_length, 0);
        assert_eq!(Position::from_annotations(&BTreeMap::new()), Ok(None));
        let mut bad = legacy.clone();
        bad.insert(LEGACY_TOC_POSITION.into(), "1:2:3:2".into());
        assert!(Position::from_annotations(&bad).unwrap_err().contains("not 1"));
    }
}
