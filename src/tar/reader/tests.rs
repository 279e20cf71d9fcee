//! The streaming reader's rules, on archives built block by block: PAX over ustar, PAX across GNU long names,
//! bounds on metadata, and what is refused.

use super::*;
use crate::tar::header::parse_signed_numeric;

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
    assert_eq!(pax::parse_time(b"-9223372036854775808.5"), None);
    assert_eq!(pax::parse_time(b"-9223372036854775808"), Some(i64::MIN));
    let tar = [pax(&record("mtime=1000000000000000")), header(b"f", b'0', 0), END.to_vec()].concat();
    assert!(entries(&tar).unwrap_err().to_string().contains("outside the years 0000 to 9999"));
    let mut h = header(b"f", b'0', 0);
    h[136..148].copy_from_slice(&[0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(parse_signed_numeric(&h[136..148]).is_none());
    assert_eq!(parse_signed_numeric(&[0xff; 12]).unwrap(), -1);
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

#[test]
fn a_first_read_records_large_files_and_a_second_read_of_the_same_file_knows_them() {
    use std::io::Write;
    use std::sync::Arc;

    use crate::tar::file_digests::{DataIndex, DigestSlot, MIN_SIZE};

    let big = vec![5u8; MIN_SIZE as usize + 3];
    let other = vec![9u8; MIN_SIZE as usize * 2];
    let mut bytes = with_data(header(b"read", b'0', big.len() as u64), &big);
    bytes.extend(with_data(header(b"small", b'0', 10), &[1u8; 10]));
    bytes.extend(with_data(header(b"skipped", b'0', other.len() as u64), &other));
    bytes.extend(vec![0u8; BLOCK * 2]);

    // The first read reads one file's data and skips the other's: both are recorded, at the end of the archive.
    let slot = DigestSlot::default();
    let mut first = TarReader::new(&bytes[..], "t", "uncompressed");
    first.record_file_digests(Arc::clone(&slot));
    first.next_entry().unwrap().unwrap();
    io::copy(&mut first.data(), &mut io::sink()).unwrap();
    first.next_entry().unwrap().unwrap();
    first.next_entry().unwrap().unwrap();
    assert!(slot.get().is_none());
    assert!(first.next_entry().unwrap().is_none());
    assert_eq!(slot.get().unwrap().len(), 2);

    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&bytes).unwrap();
    let index = DataIndex { digests: Arc::clone(&slot), file: Arc::new(file), cursor: None };
    let mut second = TarReader::new(&bytes[..], "t", "uncompressed").knowing(index.clone());
    let sha = |data: &[u8]| crate::digest::Digest::of(data).hex().to_string();
    second.next_entry().unwrap().unwrap();
    let known = second.known_data().unwrap();
    assert_eq!((hex::encode(known.digest), known.offset, known.size), (sha(&big), 512, big.len() as u64));
    // Once some of the data is read it is no longer known from its start.
    second.data().read_exact(&mut [0u8; 1]).unwrap();
    assert!(second.known_data().is_none());
    second.next_entry().unwrap().unwrap();
    assert!(second.known_data().is_none(), "small files are not recorded");
    second.next_entry().unwrap().unwrap();
    assert_eq!(hex::encode(second.known_data().unwrap().digest), sha(&other));

    // Read at a shared cursor, data nobody reads is skipped by moving the cursor, without being read.
    struct At(Arc<std::fs::File>, Arc<std::sync::atomic::AtomicU64>, u64);
    impl Read for At {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            use std::os::unix::fs::FileExt;
            let position = self.1.load(std::sync::atomic::Ordering::Relaxed);
            let n = self.0.read_at(buf, position)?;
            self.1.store(position + n as u64, std::sync::atomic::Ordering::Relaxed);
            self.2 += n as u64;
            Ok(n)
        }
    }
    let cursor = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let index = DataIndex { cursor: Some(Arc::clone(&cursor)), ..index };
    let mut third = TarReader::new(At(Arc::clone(&index.file), cursor, 0), "t", "uncompressed").knowing(index);
    let names: Vec<Vec<u8>> = std::iter::from_fn(|| third.next_entry().unwrap()).map(|e| e.path).collect();
    let read = third.into_inner().2;
    assert!(read <= (bytes.len() - big.len() - other.len()) as u64, "{read} bytes read of {}", bytes.len());
    assert_eq!(names, [b"read".to_vec(), b"small".to_vec(), b"skipped".to_vec()]);
}

#[test]
fn a_read_that_fails_before_the_end_publishes_nothing() {
    use std::sync::Arc;

    use crate::tar::file_digests::{DigestSlot, MIN_SIZE};

    let big = vec![5u8; MIN_SIZE as usize];
    let mut bytes = with_data(header(b"big", b'0', big.len() as u64), &big);
    bytes.extend(header(b"cut", b'0', 4096));
    let slot = DigestSlot::default();
    let mut reader = TarReader::new(&bytes[..], "t", "uncompressed");
    reader.record_file_digests(Arc::clone(&slot));
    reader.next_entry().unwrap().unwrap();
    reader.next_entry().unwrap().unwrap();
    assert!(reader.next_entry().is_err());
    assert!(slot.get().is_none());
}
