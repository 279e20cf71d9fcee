//! The canonical tar writer for layers: ustar headers with PAX records only where ustar cannot say it (long names
//! and link targets, large ids, sizes and times, xattrs), numeric owners, no atime/ctime, fixed field order. The same
//! entries always give the same bytes, which is what makes layer digests reproducible.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use crate::error::display_bytes;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::path::file_name;
use crate::tar::reader::InputFault;

const BLOCK: usize = 512;
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Where a tar stream goes: its bytes, and where each entry's data begins. A writer that indexes entries (the
/// zstd:chunked compressor compresses each file's data apart and lists it in a table of contents) learns the entry
/// boundaries here instead of parsing the stream again; every other writer keeps the default, which does nothing.
pub trait TarOutput: Write {
    /// The header of `entry`, named `name` as a tar reader reports it, was just written; the next `entry.size()`
    /// bytes are its data (for a regular file), then come padding and the next header.
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        let _ = (entry, name);
        Ok(())
    }

    /// Asked after [`TarOutput::data_follows`]: true when this output leaves the entry's data out (a layer's outline
    /// holds its digest instead), so that the writer neither reads nor writes it, only its padding.
    fn leaves_data_out(&mut self) -> bool {
        false
    }
}

impl TarOutput for Vec<u8> {}

impl<W: Write> TarOutput for io::BufWriter<W> {}

impl<W: TarOutput> TarOutput for crate::digest::DigestWriter<W> {
    fn data_follows(&mut self, entry: &Entry, name: &[u8]) -> io::Result<()> {
        self.get_mut().data_follows(entry, name)
    }
    fn leaves_data_out(&mut self) -> bool {
        self.get_mut().leaves_data_out()
    }
}

pub struct TarWriter<W> {
    out: W,
    buffer: Vec<u8>,
}

impl<W: TarOutput> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, buffer: vec![0u8; 64 * 1024] }
    }

    /// Where the stream goes, to tell it something other than bytes (what the next entry's data is).
    pub fn output_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes one entry; for a regular file, exactly its declared size is copied from `data`. Errors reading `data`
    /// pass through unchanged (readers mark theirs with [`InputFault`]).
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let name = self.write_header(entry)?;
        self.out.data_follows(entry, &name)?;
        if let EntryKind::File { size } = entry.kind {
            if self.out.leaves_data_out() {
                let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
                return self.out.write_all(&[0u8; BLOCK][..pad]);
            }
            self.copy_data(entry, size, data)?;
        }
        Ok(())
    }

    /// Writes one regular file entry (its declared size) whose data is `file`, read from its current position: a
    /// stream of known type, so that the kernel can copy a file into a file (copy_file_range) without the bytes
    /// passing through this process, as for a blob copied into an archive.
    pub fn append_file(&mut self, entry: &Entry, file: &std::fs::File) -> io::Result<()> {
        let EntryKind::File { size } = entry.kind else {
            return self.append(entry, &mut io::empty());
        };
        let name = self.write_header(entry)?;
        self.out.data_follows(entry, &name)?;
        let copied = io::copy(&mut file.take(size), &mut self.out)?;
        if copied < size {
            return Err(io::Error::other(InputFault(format!(
                "`{}` holds {} bytes fewer than its declared size of {size} (did it change while being read?)",
                display_bytes(&entry.path),
                size - copied
            ))));
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    fn copy_data(&mut self, entry: &Entry, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buffer.len() as u64) as usize;
            let n = match data.read(&mut self.buffer[..want]) {
                Ok(0) => {
                    return Err(io::Error::other(InputFault(format!(
                        "`{}` holds {} bytes fewer than its declared size of {size} (did it change while being read?)",
                        display_bytes(&entry.path),
                        left
                    ))));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.buffer[..n])?;
            left -= n as u64;
        }
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Writes the header (with its PAX header where needed) and returns the name it gives the entry.
    fn write_header(&mut self, entry: &Entry) -> io::Result<Vec<u8>> {
        let mut name = entry.path.clone();
        if entry.kind == EntryKind::Directory {
            name.push(b'/');
        }
        let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut header = [0u8; BLOCK];

        if name.len() <= 100 {
            header[..name.len()].copy_from_slice(&name);
        } else {
            pax.insert("path".into(), name.clone());
            let short = truncate(&name, 100);
            header[..short.len()].copy_from_slice(short);
        }
        write_octal(&mut header[100..108], entry.mode as u64 & 0o7777);
        for (key, value, range) in [("uid", entry.uid, 108..116), ("gid", entry.gid, 116..124)] {
            if value <= MAX_OCTAL_7 {
                write_octal(&mut header[range], value);
            } else {
                pax.insert(key.into(), value.to_string().into_bytes());
                write_octal(&mut header[range], 0);
            }
        }
        let size = entry.size();
        if size <= MAX_OCTAL_11 {
            write_octal(&mut header[124..136], size);
        } else {
            pax.insert("size".into(), size.to_string().into_bytes());
            write_octal(&mut header[124..136], 0);
        }
        if (0..=MAX_OCTAL_11 as i64).contains(&entry.mtime) {
            write_octal(&mut header[136..148], entry.mtime as u64);
        } else {
            pax.insert("mtime".into(), entry.mtime.to_string().into_bytes());
            write_octal(&mut header[136..148], 0);
        }
        let (typeflag, link, device) = match &entry.kind {
            EntryKind::File { .. } => (b'0', None, None),
            EntryKind::Hardlink { target } => (b'1', Some(target), None),
            EntryKind::Symlink { target } => (b'2', Some(target), None),
            EntryKind::CharDevice { major, minor } => (b'3', None, Some((*major, *minor))),
            EntryKind::BlockDevice { major, minor } => (b'4', None, Some((*major, *minor))),
            EntryKind::Directory => (b'5', None, None),
            EntryKind::Fifo => (b'6', None, None),
        };
        header[156] = typeflag;
        if let Some(link) = link {
            if link.len() <= 100 {
                header[157..157 + link.len()].copy_from_slice(link);
            } else {
                pax.insert("linkpath".into(), link.clone());
                header[157..257].copy_from_slice(truncate(link, 100));
            }
        }
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        let (major, minor) = device.unwrap_or((0, 0));
        for (value, range) in [(major, 329..337), (minor, 337..345)] {
            if value as u64 > MAX_OCTAL_7 {
                return Err(io::Error::other(InputFault(format!(
                    "`{}`: device number {value} is too large for a tar header",
                    display_bytes(&entry.path)
                ))));
            }
            write_octal(&mut header[range], value as u64);
        }
        for (name, value) in &entry.xattrs {
            pax.insert(format!("SCHILY.xattr.{name}"), value.clone());
        }

        if !pax.is_empty() {
            self.write_pax_header(&name, entry.mtime, &pax)?;
        }
        set_checksum(&mut header);
        self.out.write_all(&header)?;
        Ok(name)
    }

    fn write_pax_header(&mut self, name: &[u8], mtime: i64, records: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            let base = key.len() + value.len() + 3;
            let mut length = base + decimal_digits(base);
            if decimal_digits(length) > decimal_digits(base) {
                length += 1;
            }
            data.extend_from_slice(format!("{length} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        // A fixed name (as Go's archive/tar does): GNU tar puts its process id here, which is not reproducible.
        let base = file_name(name.strip_suffix(b"/").unwrap_or(name));
        let pax_name = [&b"PaxHeaders.0/"[..], truncate(base, 87)].concat();
        let mut header = [0u8; BLOCK];
        header[..pax_name.len()].copy_from_slice(&pax_name);
        write_octal(&mut header[100..108], 0o644);
        write_octal(&mut header[108..116], 0);
        write_octal(&mut header[116..124], 0);
        write_octal(&mut header[124..136], data.len() as u64);
        write_octal(&mut header[136..148], mtime.clamp(0, MAX_OCTAL_11 as i64) as u64);
        header[156] = b'x';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        write_octal(&mut header[329..337], 0);
        write_octal(&mut header[337..345], 0);
        set_checksum(&mut header);
        self.out.write_all(&header)?;
        self.out.write_all(&data)?;
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }
}

fn truncate(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

fn decimal_digits(n: usize) -> usize {
    n.to_string().len()
}

/// Zero-padded octal filling the field but its last byte, which stays NUL.
fn write_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

fn set_checksum(header: &mut [u8; BLOCK]) {
    header[148..156].copy_from_slice(b"        ");
    let sum: u64 = header.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::reader::TarReader;

    fn entry(path: &[u8], kind: EntryKind) -> Entry {
        Entry { path: path.to_vec(), kind, mode: 0o4755, uid: 0, gid: 0, mtime: 1_700_000_000, xattrs: BTreeMap::new() }
    }

    fn write(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (e, data) in entries {
            w.append(e, &mut &data[..]).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Vec<(Entry, Vec<u8>)> {
        let mut r = TarReader::new(bytes, "test.tar", "uncompressed");
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut data = Vec::new();
            r.data().read_to_end(&mut data).unwrap();
            out.push((e, data));
        }
        out
    }

    #[test]
    fn every_attribute_survives_a_write_and_read() {
        let long = [b"usr/".repeat(40), b"\xff\xfename".to_vec()].concat();
        let mut file = entry(&long, EntryKind::File { size: 5 });
        file.uid = 3_000_000;
        file.gid = 70_000;
        file.mtime = -5;
        file.xattrs
            .insert("security.capability".into(), vec![1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        file.xattrs.insert("user.note".into(), b"a=b\nc".to_vec());
        let entries = vec![
            (entry(b"dir", EntryKind::Directory), vec![]),
            (file, b"hello".to_vec()),
            (entry(b"link", EntryKind::Hardlink { target: long.clone() }), vec![]),
            (entry(b"sym", EntryKind::Symlink { target: b"../".repeat(60) }), vec![]),
            (entry(b"dev/null", EntryKind::CharDevice { major: 1, minor: 3 }), vec![]),
            (entry(b"dev/loop0", EntryKind::BlockDevice { major: 7, minor: 0 }), vec![]),
            (entry(b"run/fifo", EntryKind::Fifo), vec![]),
        ];
        let bytes = write(&entries);
        let mut back = read_all(&bytes);
        back[0].0.path.pop(); // directories are written with their trailing slash
        assert_eq!(back, entries);
    }

    #[test]
    fn the_same_entries_give_the_same_bytes() {
        let mut e = entry(&b"a".repeat(150), EntryKind::File { size: 3 });
        e.xattrs.insert("user.b".into(), b"2".to_vec());
        e.xattrs.insert("user.a".into(), b"1".to_vec());
        let one = write(&[(e.clone(), b"abc".to_vec())]);
        assert_eq!(write(&[(e, b"abc".to_vec())]), one);
        assert_eq!(one.len() % 512, 0);
    }

    #[test]
    fn a_short_data_stream_is_an_input_fault() {
        let mut w = TarWriter::new(Vec::new());
        let err = w.append(&entry(b"f", EntryKind::File { size: 10 }), &mut &b"abc"[..]).unwrap_err();
        assert!(crate::tar::reader::input_fault(&err).unwrap().contains("7 bytes fewer"));
    }

    #[test]
    fn gnu_tar_reads_what_we_write() {
        let bytes = write(&[
            (entry(b"d", EntryKind::Directory), vec![]),
            (entry(&[b"d/".repeat(70), b"f".to_vec()].concat(), EntryKind::File { size: 2 }), b"hi".to_vec()),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let tar_path = dir.path().join("t.tar");
        std::fs::write(&tar_path, bytes).unwrap();
        let out = std::process::Command::new("tar").arg("-tvf").arg(&tar_path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains(&format!("{}f", "d/".repeat(70))), "{listing}");
    }
}
