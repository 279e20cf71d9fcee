//! The table of contents (TOC) of a zstd:chunked layer: one JSON object per tar entry, in stream order, as
//! containers/storage's `minimal.FileMetadata` spells it (`pkg/chunked/internal/minimal/compression.go` since 1.55,
//! `internal/compression.go` in 1.43), written here with a fixed field order, and read back for `diff`.
//!
//! Every attribute a reader compares with the tar header must be what a Go tar reader parses from our header
//! (containers/storage 1.5x checks the TOC against the tar-split entry by entry, `ensureTOCMatchesTarSplit`):
//! the name as written (a directory with its trailing `/`), the mode's permission bits, numeric owners, mtime, and
//! `SCHILY.xattr.*` values in base64. A regular file with data lists its frames: `offset`..`endOffset` in the blob
//! and the sha256 of its content (`digest`), by which a client finds it in the layers it already holds. A file
//! larger than one chunk is split: the first chunk's `chunkSize`/`chunkDigest` on the file's entry, each further
//! chunk an entry of type `chunk`, so that a client holding part of a changed file fetches only the chunks it lacks.

use std::collections::BTreeMap;
use std::io::{self, Write};

use base64::Engine as _;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::display_bytes;
use crate::oci::config::rfc3339;
use crate::tar::entry::{Entry, EntryKind};

/// The metadata of one entry, with every text already checked to be UTF-8 (JSON strings cannot hold other bytes).
pub struct TocEntry {
    kind: &'static str,
    name: String,
    link_name: Option<String>,
    mode: u32,
    size: u64,
    uid: u64,
    gid: u64,
    mtime: i64,
    device: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
}

/// Where one chunk of a file's data sits in the blob, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Offsets of its frames in the blob, end excluded.
    pub offset: u64,
    pub end: u64,
    /// Uncompressed bytes and their sha256.
    pub size: u64,
    pub digest: Digest,
}

impl TocEntry {
    /// The TOC's view of `entry`, whose header named it `name`; a name, link target or xattr name that is not
    /// UTF-8 cannot be listed and is refused with the reason.
    pub fn new(entry: &Entry, name: &[u8]) -> Result<TocEntry, String> {
        let text = |bytes: &[u8], what: &str| {
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                format!(
                    "`{}`: its {what} is not UTF-8, which a zstd:chunked table of contents (JSON) cannot hold: \
                     use another compression for this rootfs",
                    display_bytes(&entry.path)
                )
            })
        };
        let (kind, link, device) = match &entry.kind {
            EntryKind::File { .. } => ("reg", None, (0, 0)),
            EntryKind::Directory => ("dir", None, (0, 0)),
            EntryKind::Symlink { target } => ("symlink", Some(target), (0, 0)),
            EntryKind::Hardlink { target } => ("hardlink", Some(target), (0, 0)),
            EntryKind::CharDevice { major, minor } => ("char", None, (*major, *minor)),
            EntryKind::BlockDevice { major, minor } => ("block", None, (*major, *minor)),
            EntryKind::Fifo => ("fifo", None, (0, 0)),
        };
        Ok(TocEntry {
            kind,
            name: text(name, "name")?,
            link_name: link.map(|target| text(target, "link target")).transpose()?,
            // The tar header's mode field: permission, setuid, setgid and sticky bits (tar/writer.rs).
            mode: entry.mode & 0o7777,
            size: entry.size(),
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
            device,
            xattrs: entry.xattrs.clone(),
        })
    }

    /// The entry's name, as its tar header gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes this entry's JSON objects (the entry, then one per further chunk), each preceded by `,` unless
    /// `first`. `content` gives a file with data its digest and chunks, in order.
    pub fn write_json(
        &self,
        out: &mut impl Write,
        first: bool,
        content: Option<(&Digest, &[ChunkSpan])>,
    ) -> io::Result<()> {
        let mut json = String::with_capacity(256);
        json.push_str(if first { "{" } else { ",{" });
        field(&mut json, "type", &quoted(self.kind));
        field(&mut json, "name", &quoted(&self.name));
        if let Some(link) = &self.link_name {
            field(&mut json, "linkName", &quoted(link));
        }
        // Go's `omitempty` leaves out zeros; readers take a missing number as 0. Owners and mtime are written twice:
        // containers/storage before 1.47 (bookworm's podman 4.3) reads only `UID`, `GID` and `ModTime` (its
        // unmarshalToc matches case-sensitively, unlike what it writes), later versions fold case, so both see one
        // value.
        let modtime = quoted(&rfc3339(self.mtime));
        for (key, value) in [
            ("mode", u64::from(self.mode).to_string()),
            ("size", self.size.to_string()),
            ("uid", self.uid.to_string()),
            ("UID", self.uid.to_string()),
            ("gid", self.gid.to_string()),
            ("GID", self.gid.to_string()),
        ] {
            if value != "0" {
                field(&mut json, key, &value);
            }
        }
        // Always written, even for the epoch: without it a client leaves the time of the file it creates.
        field(&mut json, "modtime", &modtime);
        field(&mut json, "ModTime", &modtime);
        for (key, value) in [("devMajor", self.device.0), ("devMinor", self.device.1)] {
            if value != 0 {
                field(&mut json, key, &value.to_string());
            }
        }
        if !self.xattrs.is_empty() {
            let encoded: Vec<String> = self
                .xattrs
                .iter()
                .map(|(name, value)| {
                    format!("{}:{}", quoted(name), quoted(&base64::engine::general_purpose::STANDARD.encode(value)))
                })
                .collect();
            field(&mut json, "xattrs", &format!("{{{}}}", encoded.join(",")));
        }
        if let Some((digest, chunks)) = content {
            field(&mut json, "digest", &quoted(&digest.to_string()));
            let (first_chunk, last_chunk) = (&chunks[0], &chunks[chunks.len() - 1]);
            field(&mut json, "offset", &first_chunk.offset.to_string());
            field(&mut json, "endOffset", &last_chunk.end.to_string());
            if chunks.len() > 1 {
                chunk_fields(&mut json, first_chunk, 0);
            }
            json.push('}');
            let mut file_offset = first_chunk.size;
            for chunk in &chunks[1..] {
                json.push_str(",{");
                field(&mut json, "type", &quoted("chunk"));
                field(&mut json, "name", &quoted(&self.name));
                field(&mut json, "offset", &chunk.offset.to_string());
                // Readers derive a chunk's end from the next chunk's offset, and the file's end from its last
                // entry's `endOffset`: written, it keeps the range of the last chunk exact.
                field(&mut json, "endOffset", &chunk.end.to_string());
                chunk_fields(&mut json, chunk, file_offset);
                json.push('}');
                file_offset += chunk.size;
            }
        } else {
            json.push('}');
        }
        out.write_all(json.as_bytes())
    }
}

fn chunk_fields(json: &mut String, chunk: &ChunkSpan, file_offset: u64) {
    field(json, "chunkSize", &chunk.size.to_string());
    if file_offset != 0 {
        field(json, "chunkOffset", &file_offset.to_string());
    }
    field(json, "chunkDigest", &quoted(&chunk.digest.to_string()));
}

/// Appends `"key":value`, with a comma unless it is the object's first field.
fn field(json: &mut String, key: &str, value: &str) {
    if !json.ends_with('{') {
        json.push(',');
    }
    json.push('"');
    json.push_str(key);
    json.push_str("\":");
    json.push_str(value);
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serialises")
}

/// A TOC as read back: for each regular file with data, its digest and where its chunks are.
#[derive(Debug, Default)]
pub struct Toc {
    pub files: Vec<TocFile>,
}

#[derive(Debug)]
pub struct TocFile {
    pub digest: String,
    /// Each chunk's digest (empty for a file of one chunk) and its compressed bytes in the blob.
    pub chunks: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct RawToc {
    #[serde(default)]
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    offset: u64,
    #[serde(default, rename = "endOffset")]
    end_offset: u64,
    #[serde(default, rename = "chunkDigest")]
    chunk_digest: String,
}

impl Toc {
    /// Parses a TOC's JSON; `toc_offset`, where the TOC itself starts, ends a last file that has no `endOffset`.
    /// Chunks are grouped and their ends derived as containers/storage does (`mergeTocEntries`): a chunk ends
    /// where the next begins, a file where its last entry says, else where the next file with data begins.
    pub fn parse(json: &[u8], toc_offset: u64) -> Result<Toc, String> {
        let raw: RawToc =
            serde_json::from_slice(json).map_err(|e| format!("the table of contents is not valid JSON: {e}"))?;
        /// A regular file's entry with the chunk entries after it.
        struct Group {
            digest: String,
            has_data: bool,
            /// (chunk digest, offset) of each chunk, the file's own entry first.
            chunks: Vec<(String, u64)>,
            end: u64,
        }
        let mut groups: Vec<Group> = Vec::new();
        for entry in raw.entries {
            match entry.kind.as_str() {
                "chunk" => {
                    let Some(group) = groups.last_mut() else {
                        return Err("the table of contents has a chunk before any file".into());
                    };
                    group.chunks.push((entry.chunk_digest, entry.offset));
                    group.end = entry.end_offset;
                }
                "reg" => groups.push(Group {
                    has_data: !entry.digest.is_empty() && entry.offset != 0,
                    digest: entry.digest,
                    chunks: vec![(entry.chunk_digest, entry.offset)],
                    end: entry.end_offset,
                }),
                _ => {}
            }
        }
        let mut files = Vec::new();
        let mut next_start = toc_offset;
        for group in groups.into_iter().rev().filter(|group| group.has_data) {
            let end = if group.end == 0 { next_start } else { group.end };
            next_start = group.chunks[0].1;
            let mut sized = Vec::with_capacity(group.chunks.len());
            let mut chunk_end = end;
            for (chunk_digest, offset) in group.chunks.into_iter().rev() {
                sized.push((chunk_digest, chunk_end.saturating_sub(offset)));
                chunk_end = offset;
            }
            sized.reverse();
            files.push(TocFile { digest: group.digest, chunks: sized });
        }
        files.reverse();
        Ok(Toc { files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &[u8], kind: EntryKind) -> Entry {
        Entry { path: path.to_vec(), kind, mode: 0o104755, uid: 0, gid: 3_000_000, mtime: 0, xattrs: BTreeMap::new() }
    }

    fn json(entry: &TocEntry, content: Option<(&Digest, &[ChunkSpan])>) -> serde_json::Value {
        let mut out = b"[".to_vec();
        entry.write_json(&mut out, true, content).unwrap();
        out.push(b']');
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn entries_carry_what_the_tar_header_says_and_files_their_chunks() {
        let mut file = entry(b"usr/bin/su", EntryKind::File { size: 700 });
        file.xattrs.insert("security.capability".into(), vec![1, 2, 3]);
        let toc = TocEntry::new(&file, b"usr/bin/su").unwrap();
        let span = |offset, size, byte: u8| ChunkSpan { offset, end: offset + 10, size, digest: Digest::of(&[byte]) };
        let whole = Digest::of(b"whole");
        let chunks = [span(100, 400, 1), span(110, 300, 2)];
        let value = json(&toc, Some((&whole, &chunks)));
        assert_eq!(
            value,
            serde_json::json!([
                {"type": "reg", "name": "usr/bin/su", "mode": 0o4755, "size": 700, "gid": 3_000_000, "GID": 3_000_000,
                 "modtime": "1970-01-01T00:00:00Z", "ModTime": "1970-01-01T00:00:00Z",
                 "xattrs": {"security.capability": "AQID"},
                 "digest": whole.to_string(), "offset": 100, "endOffset": 120,
                 "chunkSize": 400, "chunkDigest": Digest::of(&[1]).to_string()},
                {"type": "chunk", "name": "usr/bin/su", "offset": 110, "endOffset": 120, "chunkSize": 300,
                 "chunkOffset": 400, "chunkDigest": Digest::of(&[2]).to_string()}
            ])
        );
        let one = [span(50, 700, 3)];
        let value = json(&toc, Some((&whole, &one)));
        assert!(value[0].get("chunkSize").is_none() && value.as_array().unwrap().len() == 1, "{value}");

        let dev =
            TocEntry::new(&entry(b"dev/null", EntryKind::CharDevice { major: 1, minor: 3 }), b"dev/null").unwrap();
        let value = json(&dev, None);
        assert_eq!((value[0]["type"].as_str(), value[0]["devMajor"].as_u64()), (Some("char"), Some(1)));
        let dir = TocEntry::new(&entry(b"etc", EntryKind::Directory), b"etc/").unwrap();
        assert_eq!(json(&dir, None)[0]["name"], "etc/");
    }

    #[test]
    fn names_that_are_not_utf8_are_refused_naming_the_entry() {
        let bad = entry(b"opt/\xff", EntryKind::Symlink { target: b"x".to_vec() });
        let problem = TocEntry::new(&bad, b"opt/\xff").err().unwrap();
        assert!(problem.contains("opt/\\377") && problem.contains("not UTF-8"), "{problem}");
        let link = entry(b"opt/l", EntryKind::Symlink { target: b"\xfe".to_vec() });
        assert!(TocEntry::new(&link, b"opt/l").err().unwrap().contains("link target"));
    }

    #[test]
    fn parsing_derives_chunk_ends_as_containers_storage_does() {
        // buildah's TOCs leave endOffset out of chunk entries: the last chunk ends where the next file begins.
        let json = br#"{"version":1,"entries":[
            {"type":"dir","name":"a/"},
            {"type":"reg","name":"a/x","size":9,"digest":"sha256:x","offset":10,"endOffset":20},
            {"type":"reg","name":"a/big","size":9,"digest":"sha256:b","offset":30,"chunkSize":4,"chunkDigest":"sha256:c1"},
            {"type":"chunk","name":"a/big","offset":40,"chunkSize":5,"chunkOffset":4,"chunkDigest":"sha256:c2"},
            {"type":"reg","name":"a/empty"},
            {"type":"reg","name":"a/y","size":1,"digest":"sha256:y","offset":70}]}"#;
        let toc = Toc::parse(json, 100).unwrap();
        let files: Vec<(&str, Vec<(&str, u64)>)> = toc
            .files
            .iter()
            .map(|f| (f.digest.as_str(), f.chunks.iter().map(|(d, n)| (d.as_str(), *n)).collect()))
            .collect();
        assert_eq!(
            files,
            vec![
                ("sha256:x", vec![("", 10)]),
                ("sha256:b", vec![("sha256:c1", 10), ("sha256:c2", 30)]),
                ("sha256:y", vec![("", 30)]),
            ]
        );
        assert!(Toc::parse(b"{\"entries\":[{\"type\":\"chunk\"}]}", 1).is_err());
        assert!(Toc::parse(b"not json", 1).is_err());
    }
}
