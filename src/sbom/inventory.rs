//! The file list of a generated SBOM, collected while the rootfs streams through the conversion: every regular
//! file's path (normal form, as [`crate::tar::path`] spells it), size, SHA-256 and SHA-1 (SPDX 2.3 requires a SHA-1
//! for every file), and every hardlink, which lists its target's content under its own path. Symlinks, directories,
//! devices and fifos have no content to hash and are not listed.
//!
//! The pipeline wraps each entry's data in [`FileInventory::hashing`]: the wrapper hashes what the layer writer reads,
//! and [`Hashing::finish`] reads whatever the writer left unread (a file an image's base already has is not
//! written again, yet it is in the image) before recording the file. A record takes about 80 bytes plus its path,
//! all bounded by [`MAX_INVENTORY_BYTES`].

use std::io::{self, Read};

use sha1::{Digest as _, Sha1};

use crate::digest::DigestReader;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::path::listed_form;
use crate::tar::reader::InputFault;

/// The most memory the file list may take: 250,000 files (a large Debian) take about 30 MiB.
pub const MAX_INVENTORY_BYTES: u64 = 64 << 20;

/// Where a path lies in [`FileInventory::names`].
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug)]
enum Content {
    File {
        size: u64,
        sha256: [u8; 32],
        sha1: [u8; 20],
    },
    /// A hardlink: its target's path.
    Link {
        target: Span,
    },
}

#[derive(Clone, Copy, Debug)]
struct Record {
    name: Span,
    content: Content,
}

/// The files of a rootfs with their digests, in the order they were recorded.
#[derive(Debug, Default)]
pub struct FileInventory {
    enabled: bool,
    /// Every recorded path and link target, back to back: one allocation rather than one per path.
    names: Vec<u8>,
    records: Vec<Record>,
}

/// One file of the inventory, as an SBOM lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InventoryFile<'a> {
    /// The rootfs path, normal form (`usr/bin/ping`).
    pub path: &'a [u8],
    pub size: u64,
    pub sha256: &'a [u8; 32],
    pub sha1: &'a [u8; 20],
}

impl FileInventory {
    /// An inventory that records every file passed through [`FileInventory::hashing`].
    pub fn new() -> FileInventory {
        FileInventory { enabled: true, ..FileInventory::default() }
    }

    /// An inventory that records nothing and hashes nothing, for conversions that generate no SBOM: the pipeline
    /// calls it the same way.
    pub fn disabled() -> FileInventory {
        FileInventory::default()
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Wraps the data of `entry`: what is read through the wrapper is hashed, and [`Hashing::finish`] records it.
    pub fn hashing<R: Read>(&mut self, entry: &Entry, data: R) -> Hashing<'_, R> {
        let pending = match &entry.kind {
            _ if !self.enabled => Pending::Nothing(data),
            EntryKind::File { .. } => {
                Pending::File { path: entry.path.clone(), reader: DigestReader::new(data), sha1: Sha1::new() }
            }
            EntryKind::Hardlink { target } => {
                Pending::Link { path: entry.path.clone(), target: listed_form(target).to_vec(), data }
            }
            _ => Pending::Nothing(data),
        };
        Hashing { inventory: self, pending }
    }

    /// How many records (files and hardlinks) were kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn held(&self) -> u64 {
        (self.names.capacity() + self.records.capacity() * std::mem::size_of::<Record>()) as u64
    }

    fn name(&self, span: Span) -> &[u8] {
        &self.names[span.start as usize..(span.start + span.len) as usize]
    }

    fn keep(&mut self, path: &[u8]) -> io::Result<Span> {
        // The limit keeps spans within u32 too.
        if self.names.len() as u64 + path.len() as u64 > MAX_INVENTORY_BYTES {
            return Err(too_many_files());
        }
        let span = Span { start: self.names.len() as u32, len: path.len() as u32 };
        self.names.extend_from_slice(path);
        Ok(span)
    }

    fn record(&mut self, path: &[u8], content: impl FnOnce(&mut Self) -> io::Result<Content>) -> io::Result<()> {
        let name = self.keep(path)?;
        let content = content(self)?;
        self.records.push(Record { name, content });
        if self.held() > MAX_INVENTORY_BYTES {
            return Err(too_many_files());
        }
        Ok(())
    }

    /// Every file in path order, each path once (the last record of a path counts, as the last entry of a path
    /// does in a tar), hardlinks with their target's content; a hardlink whose target is no regular file of the
    /// inventory is left out.
    pub fn sorted(&self) -> Vec<InventoryFile<'_>> {
        let mut order: Vec<u32> = (0..self.records.len() as u32).collect();
        // Stable: among records of one path, the last recorded stays last.
        order.sort_by(|&a, &b| self.name(self.records[a as usize].name).cmp(self.name(self.records[b as usize].name)));
        let mut kept: Vec<&Record> = Vec::with_capacity(order.len());
        for i in order {
            let record = &self.records[i as usize];
            match kept.last_mut() {
                Some(last) if self.name(last.name) == self.name(record.name) => *last = record,
                _ => kept.push(record),
            }
        }
        fn file(record: &Record) -> Option<(u64, &[u8; 32], &[u8; 20])> {
            match &record.content {
                Content::File { size, sha256, sha1 } => Some((*size, sha256, sha1)),
                Content::Link { .. } => None,
            }
        }
        let mut files = Vec::with_capacity(kept.len());
        for record in &kept {
            let content = match &record.content {
                Content::File { .. } => file(record),
                Content::Link { target } => {
                    let target = self.name(*target);
                    kept.binary_search_by(|r| self.name(r.name).cmp(target)).ok().and_then(|i| file(kept[i]))
                }
            };
            if let Some((size, sha256, sha1)) = content {
                files.push(InventoryFile { path: self.name(record.name), size, sha256, sha1 });
            }
        }
        files
    }
}

fn too_many_files() -> io::Error {
    io::Error::other(InputFault(format!(
        "the rootfs holds more files than the {} MiB an SBOM's file list may take",
        MAX_INVENTORY_BYTES >> 20
    )))
}

/// What [`Hashing::finish`] records.
enum Pending<R> {
    Nothing(R),
    File { path: Vec<u8>, reader: DigestReader<R>, sha1: Sha1 },
    Link { path: Vec<u8>, target: Vec<u8>, data: R },
}

/// An entry's data on its way to the layer writer, hashed as it is read.
pub struct Hashing<'a, R> {
    inventory: &'a mut FileInventory,
    pending: Pending<R>,
}

impl<R: Read> Hashing<'_, R> {
    /// Reads what the layer writer left of a regular file's data (nothing is read for other entries, nor by a
    /// disabled inventory), records the entry, and gives the wrapped reader back. Errors are those of reading the
    /// rest, and an [`InputFault`] when the inventory is full.
    pub fn finish(mut self) -> io::Result<R> {
        if let Pending::File { .. } = self.pending {
            io::copy(&mut self, &mut io::sink())?;
        }
        match self.pending {
            Pending::Nothing(data) => Ok(data),
            Pending::File { path, reader, sha1 } => {
                let (data, digest, size) = reader.into_parts();
                let mut sha256 = [0u8; 32];
                hex::decode_to_slice(digest.hex(), &mut sha256).map_err(io::Error::other)?;
                let sha1: [u8; 20] = sha1.finalize().into();
                self.inventory.record(&path, |_| Ok(Content::File { size, sha256, sha1 }))?;
                Ok(data)
            }
            Pending::Link { path, target, data } => {
                self.inventory.record(&path, |inventory| Ok(Content::Link { target: inventory.keep(&target)? }))?;
                Ok(data)
            }
        }
    }
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.pending {
            Pending::Nothing(data) | Pending::Link { data, .. } => data.read(buf),
            Pending::File { reader, sha1, .. } => {
                let n = reader.read(buf)?;
                sha1.update(&buf[..n]);
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry { path: path.into(), kind, mode: 0o644, uid: 0, gid: 0, mtime: 0, xattrs: BTreeMap::new() }
    }

    fn file(path: &str, size: u64) -> Entry {
        entry(path, EntryKind::File { size })
    }

    #[test]
    fn a_file_is_hashed_whole_even_where_the_writer_reads_part_of_it() {
        let mut inventory = FileInventory::new();
        let mut data = inventory.hashing(&file("etc/hostname", 4), &b"box\n"[..]);
        let mut first = [0u8; 2];
        data.read_exact(&mut first).unwrap();
        data.finish().unwrap();
        let listed = inventory.sorted();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, b"etc/hostname");
        assert_eq!(listed[0].size, 4);
        // sha256sum and sha1sum of "box\n".
        assert_eq!(hex::encode(listed[0].sha256), "9d8f48dbb150f0403fe850ddeace30e2844a311d05e9bd232c7a0e99388773d1");
        assert_eq!(hex::encode(listed[0].sha1), "b62a974035b128f4005ffc66a8d62d585725378d");
    }

    #[test]
    fn hardlinks_list_their_target_content_and_symlinks_are_left_out() {
        let mut inventory = FileInventory::new();
        let link = EntryKind::Hardlink { target: b"usr/bin/chpasswd".to_vec() };
        let symlink = EntryKind::Symlink { target: b"chpasswd".to_vec() };
        for (entry, data) in [
            (file("usr/bin/chpasswd", 3), &b"abc"[..]),
            (entry("usr/bin/passwd", link), b""),
            (entry("usr/bin/chp", symlink), b""),
            (entry("usr/bin/gone", EntryKind::Hardlink { target: b"nowhere".to_vec() }), b""),
        ] {
            inventory.hashing(&entry, data).finish().unwrap();
        }
        let listed = inventory.sorted();
        let paths: Vec<&[u8]> = listed.iter().map(|f| f.path).collect();
        assert_eq!(paths, [&b"usr/bin/chpasswd"[..], b"usr/bin/passwd"]);
        assert_eq!(listed[0].sha256, listed[1].sha256);
        assert_eq!(listed[1].size, 3);
    }

    #[test]
    fn a_path_recorded_twice_keeps_its_last_content() {
        let mut inventory = FileInventory::new();
        inventory.hashing(&file("a", 1), &b"1"[..]).finish().unwrap();
        inventory.hashing(&file("b", 1), &b"2"[..]).finish().unwrap();
        inventory.hashing(&file("a", 1), &b"3"[..]).finish().unwrap();
        let listed = inventory.sorted();
        assert_eq!(listed.len(), 2);
        let three: [u8; 32] = sha2::Sha256::digest(b"3").into();
        assert_eq!(listed[0].sha256, &three);
    }

    #[test]
    fn a_disabled_inventory_passes_data_through_reads_no_more_and_records_nothing() {
        let mut inventory = FileInventory::disabled();
        let mut data = inventory.hashing(&file("a", 3), &b"abc"[..]);
        let mut read = [0u8; 1];
        data.read_exact(&mut read).unwrap();
        let rest = data.finish().unwrap();
        assert_eq!((&read, rest), (b"a", &b"bc"[..]), "a file a base image has stays unread");
        assert!(inventory.is_empty() && inventory.sorted().is_empty());
    }

    #[test]
    fn a_full_inventory_is_an_input_fault() {
        let mut inventory = FileInventory::new();
        let long = "x".repeat(4000);
        let mut failed = None;
        for i in 0..(MAX_INVENTORY_BYTES / 4000 + 2) {
            if let Err(e) = inventory.hashing(&file(&format!("{i}/{long}"), 0), &b""[..]).finish() {
                failed = Some(e);
                break;
            }
        }
        let err = failed.expect("the inventory never filled up");
        let fault = crate::tar::reader::input_fault(&err).expect("not an input fault");
        assert!(fault.contains("more files than the 64 MiB"), "{fault}");
    }
}
