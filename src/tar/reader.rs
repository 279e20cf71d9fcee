//! A streaming tar reader: ustar, GNU long names and PAX (local and global) headers, with every declared size and
//! metadata record bounded before anything is allocated.
//!
//! Written here rather than taken from the `tar` crate because the rules that decide what an entry *is* must be
//! exact and in one place: a PAX `size` overrides the ustar size (RUSTSEC-2026-0068), a PAX header applies to the
//! next file entry even across a GNU long-name entry (GHSA-3pv8-6f4r-ffg2), uid/gid/mtime come from PAX when present,
//! xattrs arrive as `SCHILY.xattr.*` or `LIBARCHIVE.xattr.*`, and sparse files are refused.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::error::{Error, display_bytes};
use crate::tar::entry::{Entry, EntryKind, shown_name};

const BLOCK: usize = 512;
/// The largest PAX header or GNU long name accepted: real ones are a few hundred bytes, and an entry's own limits
/// (path, link target, xattrs: see [`crate::tar::entry`]) keep what a layer writes far below it.
pub const MAX_METADATA: u64 = 1 << 20;
/// The most bytes of records (keys and values) all global PAX headers of an archive may hold together. Global
/// records apply to every later entry, so they are kept for the whole archive; real archives hold none or a
/// comment of a few bytes.
pub const MAX_GLOBAL_PAX: usize = 64 << 10;

/// Marks an `io::Error` raised while reading the input (as opposed to writing the output), with a message that
/// already says what is wrong, so the caller can report it against the input.
#[derive(Debug)]
pub struct InputFault(pub String);

impl std::fmt::Display for InputFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputFault {}

/// Returns the input problem an `io::Error` carries, if it came from reading the input.
pub fn input_fault(err: &io::Error) -> Option<&str> {
    err.get_ref().and_then(|e| e.downcast_ref::<InputFault>()).map(|f| f.0.as_str())
}

pub struct TarReader<R> {
    inner: R,
    input: String,
    compression: String,
    /// Data bytes of the current entry not yet read, then the padding to the next block.
    remaining: u64,
    padding: u64,
    current: Vec<u8>,
    global: BTreeMap<String, Vec<u8>>,
    entries: u64,
    offset: u64,
}

impl<R: Read> TarReader<R> {
    /// `input` names the source in error messages; `compression` says how it was decoded.
    pub fn new(inner: R, input: &str, compression: impl std::fmt::Display) -> Self {
        TarReader {
            inner,
            input: input.to_string(),
            compression: compression.to_string(),
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            global: BTreeMap::new(),
            entries: 0,
            offset: 0,
        }
    }

    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::BadInput { input: self.input.clone(), problem: problem.into() }
    }

    fn bad_entry(&self, path: &[u8], problem: impl Into<String>) -> Error {
        Error::BadEntry { input: self.input.clone(), entry: shown_name(path), problem: problem.into() }
    }

    /// Describes an error of the underlying (decoded) stream.
    fn stream_error(&self, err: io::Error, while_doing: &str) -> Error {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            self.bad(format!("truncated: the data ends {while_doing}"))
        } else if self.compression == "uncompressed" {
            self.bad(format!("read error {while_doing}: {err}"))
        } else {
            self.bad(format!("corrupt {} data {while_doing}: {err}", self.compression))
        }
    }

    fn read_exact_counted(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let chunk = n.min(scratch.len() as u64) as usize;
            self.read_exact_counted(&mut scratch[..chunk])?;
            n -= chunk as u64;
        }
        Ok(())
    }

    /// Reads the data of an extension header (PAX, GNU long name), bounded.
    fn read_metadata(&mut self, size: u64, what: &str) -> Result<Vec<u8>, Error> {
        if size > MAX_METADATA {
            return Err(self.bad(format!(
                "{what} at offset {} declares {size} bytes, more than the {MAX_METADATA} accepted",
                self.offset - BLOCK as u64
            )));
        }
        let mut data = vec![0u8; size as usize];
        self.read_exact_counted(&mut data).map_err(|e| self.stream_error(e, &format!("inside a {what}")))?;
        self.skip(padding(size)).map_err(|e| self.stream_error(e, &format!("inside a {what}")))?;
        Ok(data)
    }

    /// The next entry, or `None` at the end-of-archive marker. The previous entry's unread data is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        let while_skipping = format!("inside entry `{}`", shown_name(&self.current));
        self.skip(self.remaining + self.padding).map_err(|e| self.stream_error(e, &while_skipping))?;
        self.remaining = 0;
        self.padding = 0;

        let mut pax: Option<BTreeMap<String, Vec<u8>>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let mut header = [0u8; BLOCK];
            let after = match self.entries {
                0 => "before the first tar header".to_string(),
                _ => format!("after entry `{}`, before the end-of-archive marker", shown_name(&self.current)),
            };
            match self.read_exact_counted(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.entries == 0 && self.offset == 0 => {
                    // Decoders report a stream cut inside its first frame as an end of data: not an empty input.
                    return Err(if self.compression == "uncompressed" {
                        self.bad("empty input: not a tar archive")
                    } else {
                        self.bad(format!(
                            "truncated or corrupt {} data: it ends before the first tar header",
                            self.compression
                        ))
                    });
                }
                Err(e) => return Err(self.stream_error(e, &after)),
            }
            if header.iter().all(|&b| b == 0) {
                if pax.is_some() || long_name.is_some() || long_link.is_some() {
                    return Err(self.bad("an extended header is followed by the end of the archive, not an entry"));
                }
                self.drain_trailer()?;
                return Ok(None);
            }
            if !checksum_ok(&header) {
                return Err(if self.offset == BLOCK as u64 {
                    self.bad(format!("not a tar archive ({} data with no valid tar header)", self.compression))
                } else {
                    self.bad(format!(
                        "corrupt tar header at offset {} (checksum mismatch) after entry `{}`",
                        self.offset - BLOCK as u64,
                        shown_name(&self.current)
                    ))
                });
            }
            let typeflag = header[156];
            let size = self.number(&header[124..136], "size")?;
            match typeflag {
                b'x' | b'g' => {
                    let data = self.read_metadata(size, "PAX header")?;
                    let records = parse_pax(&data).map_err(|p| self.bad(format!("malformed PAX header: {p}")))?;
                    if let Some(key) = records.keys().find(|k| k.starts_with("GNU.sparse.")) {
                        return Err(self.bad(format!(
                            "a PAX sparse file ({key}) is not supported: recreate the tarball without --sparse"
                        )));
                    }
                    if typeflag == b'g' {
                        self.global.extend(records);
                        let held: usize = self.global.iter().map(|(k, v)| k.len() + v.len()).sum();
                        if held > MAX_GLOBAL_PAX {
                            return Err(self.bad(format!(
                                "the global PAX headers hold {held} bytes of records, more than the \
                                 {MAX_GLOBAL_PAX} accepted (they apply to every entry)"
                            )));
                        }
                    } else if pax.replace(records).is_some() {
                        return Err(self.bad("two PAX headers describe the same entry"));
                    }
                }
                b'L' | b'K' => {
                    let mut data = self.read_metadata(size, "GNU long name")?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    let slot = if typeflag == b'L' { &mut long_name } else { &mut long_link };
                    if slot.replace(data).is_some() {
                        return Err(self.bad("two GNU long names describe the same entry"));
                    }
                }
                b'V' => {
                    // A volume label describes the archive, not a file.
                    self.read_metadata(size, "volume label")?;
                }
                _ => {
                    let local = pax.take().unwrap_or_default();
                    let entry = self.make_entry(&header, size, local, long_name.take(), long_link.take())?;
                    self.current = entry.path.clone();
                    self.entries += 1;
                    return Ok(Some(entry));
                }
            }
        }
    }

    fn make_entry(
        &mut self,
        header: &[u8; BLOCK],
        header_size: u64,
        local: BTreeMap<String, Vec<u8>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry, Error> {
        let pax = |key: &str| local.get(key).or_else(|| self.global.get(key)).cloned();
        let is_ustar = &header[257..263] == b"ustar\0";
        let path = match (pax("path"), long_name) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => {
                let name = field_bytes(&header[0..100]);
                let prefix = if is_ustar { field_bytes(&header[345..500]) } else { &[][..] };
                if prefix.is_empty() { name.to_vec() } else { [prefix, b"/", name].concat() }
            }
        };
        let link = pax("linkpath").or(long_link).unwrap_or_else(|| field_bytes(&header[157..257]).to_vec());

        let number = |this: &Self, key: &str, field: &[u8]| -> Result<u64, Error> {
            match pax(key) {
                Some(v) => {
                    parse_decimal(&v).ok_or_else(|| this.bad_entry(&path, format!("malformed PAX {key} record")))
                }
                None => this.number(field, key).map_err(|_| this.bad_entry(&path, format!("malformed {key} field"))),
            }
        };
        let uid = number(self, "uid", &header[108..116])?;
        let gid = number(self, "gid", &header[116..124])?;
        let size = match pax("size") {
            Some(v) => parse_decimal(&v).ok_or_else(|| self.bad_entry(&path, "malformed PAX size record"))?,
            None => header_size,
        };
        let mtime = match pax("mtime") {
            Some(v) => parse_pax_time(&v).ok_or_else(|| self.bad_entry(&path, "malformed PAX mtime record"))?,
            None => {
                self.signed_number(&header[136..148]).map_err(|_| self.bad_entry(&path, "malformed mtime field"))?
            }
        };
        let mode = (self.number(&header[100..108], "mode").map_err(|_| self.bad_entry(&path, "malformed mode"))?
            & 0o7777) as u32;
        let device = |this: &Self| -> Result<(u32, u32), Error> {
            let major =
                this.number(&header[329..337], "devmajor").map_err(|_| this.bad_entry(&path, "bad devmajor"))?;
            let minor =
                this.number(&header[337..345], "devminor").map_err(|_| this.bad_entry(&path, "bad devminor"))?;
            let fits = |n: u64, what: &str| {
                u32::try_from(n).map_err(|_| this.bad_entry(&path, format!("the device {what} {n} is beyond 32 bits")))
            };
            Ok((fits(major, "major")?, fits(minor, "minor")?))
        };
        let typeflag = header[156];
        let kind = match typeflag {
            // A pre-POSIX tar marks directories only by the trailing slash.
            b'0' | 0 | b'7' if path.ends_with(b"/") && size == 0 => EntryKind::Directory,
            b'0' | 0 | b'7' => EntryKind::File { size },
            b'1' => EntryKind::Hardlink { target: link },
            b'2' => EntryKind::Symlink { target: link },
            b'3' => {
                let (major, minor) = device(self)?;
                EntryKind::CharDevice { major, minor }
            }
            b'4' => {
                let (major, minor) = device(self)?;
                EntryKind::BlockDevice { major, minor }
            }
            b'5' | b'D' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            b'S' => {
                return Err(
                    self.bad_entry(&path, "GNU sparse files are not supported: recreate the tarball without --sparse")
                );
            }
            other => {
                return Err(self.bad_entry(&path, format!("unsupported tar entry type `{}`", display_bytes(&[other]))));
            }
        };
        // Go's archive/tar and the engines built on it treat every type but regular files as header-only, and so
        // does GNU tar when writing; a GNU dumpdir ('D') carries a listing that is skipped.
        let data_size = match (&kind, typeflag) {
            (EntryKind::File { .. }, _) | (_, b'D') => size,
            _ => 0,
        };
        self.remaining = data_size;
        self.padding = padding(data_size);
        if typeflag == b'D' {
            self.skip(data_size + padding(data_size)).map_err(|e| self.stream_error(e, "inside a GNU dumpdir"))?;
            self.remaining = 0;
            self.padding = 0;
        }

        let mut xattrs = BTreeMap::new();
        for (key, value) in self.global.iter().chain(local.iter()) {
            if let Some(name) = key.strip_prefix("LIBARCHIVE.xattr.") {
                let name =
                    percent_decode(name).ok_or_else(|| self.bad_entry(&path, "malformed LIBARCHIVE.xattr name"))?;
                let value =
                    base64_decode(value).ok_or_else(|| self.bad_entry(&path, "malformed LIBARCHIVE.xattr value"))?;
                xattrs.entry(name).or_insert(value);
            }
        }
        for (key, value) in self.global.iter().chain(local.iter()) {
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.insert(name.to_string(), value.clone());
            }
        }
        let entry = Entry { path, kind, mode, uid, gid, mtime, xattrs };
        match entry.problem() {
            Some(problem) => Err(self.bad_entry(&entry.path, problem)),
            None => Ok(entry),
        }
    }

    /// Offset in the (decoded) stream where the current entry's data starts, while none of it has been read.
    pub fn data_offset(&self) -> u64 {
        self.offset
    }

    /// A reader over the current entry's data.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }

    /// After the end-of-archive marker: read the rest so that the decoder checks its trailer (a gzip CRC, a zstd
    /// checksum), which would otherwise go unchecked.
    fn drain_trailer(&mut self) -> Result<(), Error> {
        io::copy(&mut self.inner, &mut io::sink())
            .map_err(|e| self.stream_error(e, "after the end-of-archive marker"))?;
        Ok(())
    }

    fn number(&self, field: &[u8], name: &str) -> Result<u64, Error> {
        parse_numeric(field).ok_or_else(|| self.bad(format!("malformed {name} field at offset {}", self.offset)))
    }

    fn signed_number(&self, field: &[u8]) -> Result<i64, Error> {
        if field[0] == 0xff {
            // base-256 negative (GNU): two's complement over the field
            let mut value: i64 = -1;
            for &b in &field[1..] {
                value = value.checked_mul(256).ok_or_else(|| self.bad("mtime out of range"))? | b as i64;
            }
            return Ok(value);
        }
        let v = self.number(field, "mtime")?;
        i64::try_from(v).map_err(|_| self.bad("mtime out of range"))
    }
}

pub struct EntryData<'a, R> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(r.remaining.min(usize::MAX as u64) as usize);
        match r.inner.read(&mut buf[..want]) {
            Ok(0) => Err(io::Error::other(InputFault(format!(
                "truncated: the data ends inside entry `{}` ({} bytes missing)",
                shown_name(&r.current),
                r.remaining
            )))),
            Ok(n) => {
                r.remaining -= n as u64;
                r.offset += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let problem = r.stream_error(e, &format!("inside entry `{}`", shown_name(&r.current)));
                let problem = match problem {
                    Error::BadInput { problem, .. } => problem,
                    other => other.to_string(),
                };
                Err(io::Error::other(InputFault(problem)))
            }
        }
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn field_bytes(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

fn checksum_ok(header: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_numeric(&header[148..156]) else {
        return false;
    };
    let unsigned: u64 =
        header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { b' ' as u64 } else { b as u64 }).sum();
    // Some old tars summed signed chars.
    let signed: i64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { b' ' as i64 } else { b as i8 as i64 })
        .sum();
    stored == unsigned || stored as i64 == signed
}

/// An octal field (NUL or space terminated) or a GNU base-256 field (first byte 0x80).
fn parse_numeric(field: &[u8]) -> Option<u64> {
    if field.first() == Some(&0x80) {
        let mut value: u64 = 0;
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(value);
    }
    let digits: &[u8] = {
        let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest.iter().position(|&b| b == 0 || b == b' ').unwrap_or(rest.len());
        &rest[..end]
    };
    if digits.is_empty() {
        return Some(0);
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add((d - b'0') as u64)?;
    }
    Some(value)
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A PAX time: decimal seconds with an optional fraction, possibly negative. Rounded down to whole seconds.
fn parse_pax_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    if whole.starts_with('-') && has_fraction { seconds.checked_sub(1) } else { Some(seconds) }
}

/// PAX records: `"<length> <key>=<value>\n"`, the length counting the whole record.
fn parse_pax(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut records = BTreeMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest.iter().position(|&b| b == b' ').ok_or("a record has no length")?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a record length is not a number")?;
        if length <= space + 1 || length > rest.len() || rest[length - 1] != b'\n' {
            return Err(format!("a record length ({length}) does not match its content"));
        }
        let record = &rest[space + 1..length - 1];
        let equals = record.iter().position(|&b| b == b'=').ok_or("a record has no `=`")?;
        let key = std::str::from_utf8(&record[..equals]).map_err(|_| "a record key is not UTF-8")?;
        records.insert(key.to_string(), record[equals + 1..].to_vec());
        rest = &rest[length..];
    }
    Ok(records)
}

fn percent_decode(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// libarchive writes xattr values as base64 without padding.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

impl<R: Read> crate::tar::entry::EntrySource for TarReader<R> {
    fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        TarReader::next_entry(self)
    }
    fn data(&mut self) -> Box<dyn Read + '_> {
        Box::new(TarReader::data(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_octal_and_base_256() {
        assert_eq!(parse_numeric(b"0000755\0"), Some(0o755));
        assert_eq!(parse_numeric(b"  17 \0"), Some(0o17));
        assert_eq!(parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_numeric(b"0009\0"), None);
    }

    #[test]
    fn pax_records_parse_binary_values_and_reject_bad_lengths() {
        let data = b"27 SCHILY.xattr.user.a=\x00\xff\x01\n11 path=ab\n";
        let records = parse_pax(data).unwrap();
        assert_eq!(records["SCHILY.xattr.user.a"], b"\x00\xff\x01");
        assert_eq!(records["path"], b"ab");
        assert!(parse_pax(b"99 path=ab\n").is_err());
        assert!(parse_pax(b"x path=ab\n").is_err());
    }

    #[test]
    fn pax_times_round_down_to_seconds() {
        assert_eq!(parse_pax_time(b"1700000000.987654321"), Some(1_700_000_000));
        assert_eq!(parse_pax_time(b"-1.5"), Some(-2));
        assert_eq!(parse_pax_time(b"12"), Some(12));
        assert_eq!(parse_pax_time(b"1.x"), None);
    }

    #[test]
    fn libarchive_xattr_encodings_decode() {
        assert_eq!(base64_decode(b"aGVsbG8").unwrap(), b"hello");
        assert_eq!(percent_decode("user.a%3Db").unwrap(), "user.a=b");
    }

    /// One raw header block: `name`, typeflag, declared size; checksum filled in.
    fn header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn with_data(mut block: Vec<u8>, data: &[u8]) -> Vec<u8> {
        block.extend_from_slice(data);
        block.resize(block.len() + padding(data.len() as u64) as usize, 0);
        block
    }

    /// One PAX record `"<length> <key=value>\n"` with its length computed.
    fn record(key_value: &str) -> String {
        let body = key_value.len() + 2;
        let mut length = body + body.to_string().len();
        if length.to_string().len() > body.to_string().len() {
            length += 1;
        }
        format!("{length} {key_value}\n")
    }

    fn pax(records: &str) -> Vec<u8> {
        with_data(header(b"PaxHeaders/x", b'x', records.len() as u64), records.as_bytes())
    }

    fn entries(bytes: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, Error> {
        let mut r = TarReader::new(bytes, "t.tar", "uncompressed");
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut data = Vec::new();
            r.data().read_to_end(&mut data).unwrap();
            out.push((e, data));
        }
        Ok(out)
    }

    const END: [u8; 1024] = [0; 1024];

    #[test]
    fn a_pax_size_overrides_the_ustar_size() {
        // RUSTSEC-2026-0068: a reader that trusts the ustar size (here 0) desynchronises and reads data as headers.
        let tar = [pax("12 size=513\n"), with_data(header(b"f", b'0', 0), &[7u8; 513]), END.to_vec()].concat();
        let got = entries(&tar).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.size(), got[0].1.len()), (513, 513));
    }

    #[test]
    fn a_pax_header_applies_across_a_gnu_long_name_to_the_next_file() {
        // GHSA-3pv8-6f4r-ffg2: the PAX records belong to the file, not to the long-name entry between them.
        let long = b"d/".repeat(80);
        let tar = [
            pax("15 uid=3000000\n"),
            with_data(header(b"././@LongLink", b'L', long.len() as u64 + 1), &[&long[..], b"\0"].concat()),
            with_data(header(b"short", b'0', 2), b"hi"),
            END.to_vec(),
        ]
        .concat();
        let got = entries(&tar).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.path.clone(), got[0].0.uid, got[0].1.clone()), (long, 3_000_000, b"hi".to_vec()));
    }

    #[test]
    fn oversized_metadata_is_refused_before_allocation() {
        let tar = [header(b"PaxHeaders/x", b'x', (1 << 33) - 1), END.to_vec()].concat();
        let err = entries(&tar).unwrap_err().to_string();
        assert!(err.contains("more than the 1048576 accepted"), "{err}");
    }

    #[test]
    fn sparse_files_are_refused() {
        let tar = [header(b"s", b'S', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("sparse"));
        let tar = [pax("22 GNU.sparse.major=1\n"), header(b"s", b'0', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("sparse"));
    }

    #[test]
    fn names_and_link_targets_with_a_nul_byte_are_refused() {
        // Every reader stops a ustar name at the NUL: `..\0x` would be read as `..`.
        for records in [record("path=..\0x"), record("linkpath=a\0/..")] {
            let mut symlink = header(b"l", b'2', 0);
            symlink[157] = b'x';
            let sum: u64 =
                symlink.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 }).sum();
            symlink[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            let tar = [pax(&records), symlink, END.to_vec()].concat();
            let err = entries(&tar).unwrap_err().to_string();
            assert!(err.contains("NUL byte"), "{err}");
        }
        let long = with_data(header(b"././@LongLink", b'L', 5), b"..\0x\0");
        let tar = [long, header(b"f", b'0', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("NUL byte"));
        let tar = [pax(&record("SCHILY.xattr.user.\0x=1")), header(b"f", b'0', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("NUL byte"));
    }

    #[test]
    fn global_records_are_bounded_and_paths_past_path_max_are_refused() {
        let value = "v".repeat(40_000);
        let global = |name: &str| {
            let text = record(&format!("SCHILY.xattr.{name}={value}"));
            with_data(header(b"g", b'g', text.len() as u64), text.as_bytes())
        };
        let tar = [global("user.a"), global("user.b"), header(b"f", b'0', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("global PAX headers"));
        let path = "p".repeat(5000);
        let tar = [pax(&record(&format!("path={path}"))), header(b"f", b'0', 0), END.to_vec()].concat();
        let err = entries(&tar).unwrap_err().to_string();
        assert!(err.contains("more than the 4096 allowed") && err.contains("(5000 bytes)"), "{err}");
    }

    #[test]
    fn times_are_parsed_with_checked_arithmetic_and_bounded() {
        assert_eq!(parse_pax_time(b"-9223372036854775808.5"), None);
        assert_eq!(parse_pax_time(b"-9223372036854775808"), Some(i64::MIN));
        let tar = [pax(&record("mtime=1000000000000000")), header(b"f", b'0', 0), END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("outside the years 0000 to 9999"));
        let mut h = header(b"f", b'0', 0);
        h[136..148].copy_from_slice(&[0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let r = TarReader::new(&[][..], "t", "uncompressed");
        assert!(r.signed_number(&h[136..148]).is_err());
        assert_eq!(r.signed_number(&[0xff; 12]).unwrap(), -1);
    }

    #[test]
    fn a_device_major_beyond_32_bits_is_refused() {
        let mut h = header(b"dev/x", b'4', 0);
        h[329..337].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 8]);
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| b as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let tar = [h, END.to_vec()].concat();
        assert!(entries(&tar).unwrap_err().to_string().contains("beyond 32 bits"));
    }

    #[test]
    fn the_largest_entry_accepted_is_written_and_read_back() {
        // Path, link target and xattrs at their limits fit the PAX header the layer writer makes for them.
        let xattrs =
            (0..4).map(|i| (format!("user.{i}"), vec![b'v'; crate::tar::entry::MAX_XATTR_VALUE_LEN - 16])).collect();
        let entry = Entry {
            path: b"p/".repeat(2048),
            kind: EntryKind::Symlink { target: vec![b't'; crate::tar::entry::MAX_PATH_LEN] },
            mode: 0o777,
            uid: u64::MAX,
            gid: u64::MAX,
            mtime: crate::tar::entry::MAX_MTIME,
            xattrs,
        };
        let mut entry = entry;
        entry.path.pop();
        assert_eq!(entry.problem(), None);
        let mut writer = crate::tar::writer::TarWriter::new(Vec::new());
        writer.append(&entry, &mut io::empty()).unwrap();
        let bytes = writer.finish().unwrap();
        assert_eq!(entries(&bytes).unwrap()[0].0, entry);
    }

    #[test]
    fn a_corrupt_header_checksum_is_reported_with_its_offset() {
        let mut second = header(b"b", b'0', 0);
        second[0] = b'c';
        let tar = [header(b"a", b'0', 0), second, END.to_vec()].concat();
        let err = entries(&tar).unwrap_err().to_string();
        assert!(err.contains("corrupt tar header at offset 512") && err.contains("after entry `a`"), "{err}");
    }
}
