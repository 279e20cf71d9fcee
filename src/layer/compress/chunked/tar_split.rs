//! tar-split (github.com/vbatts/tar-split `tar/storage`): the tar stream minus the files' data, so that a client
//! that fetched only files can give back the exact layer tar (and its diff_id). One JSON object per line: a
//! `SegmentType` (2) entry holds raw bytes of the stream (base64), a `FileType` (1) entry names a file whose data
//! comes next, with its size and the CRC-64 (ISO polynomial, as Go's `hash/crc64`) that `asm.WriteOutputTarStream`
//! checks. As tar-split's `NewInputTarStream` cuts it, each entry's segment holds the previous entry's padding and
//! the whole header (PAX records included), which `asm.IterateHeaders` relies on; the last segment holds the end of
//! the archive.

use std::io::{self, Write};

use base64::Engine as _;

/// Writes tar-split lines to `out`, numbering them as tar-split's JSON packer does.
pub struct TarSplit<W> {
    out: W,
    position: u64,
}

impl<W: Write> TarSplit<W> {
    pub fn new(out: W) -> Self {
        TarSplit { out, position: 0 }
    }

    /// Raw bytes of the stream; an empty segment is not written.
    pub fn segment(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let payload = base64::engine::general_purpose::STANDARD.encode(bytes);
        let line = format!("{{\"type\":2,\"payload\":\"{payload}\",\"position\":{}}}\n", self.position);
        self.line(&line)
    }

    /// An entry named `name` (UTF-8, checked by the TOC) whose `size` bytes of data follow, with their CRC-64 when
    /// there are any.
    pub fn file(&mut self, name: &str, size: u64, crc: Option<u64>) -> io::Result<()> {
        let name = serde_json::to_string(name).expect("a string always serialises");
        let size = if size == 0 { String::new() } else { format!(",\"size\":{size}") };
        let payload = match crc {
            Some(crc) => format!("\"{}\"", base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())),
            None => "null".into(),
        };
        let line =
            format!("{{\"type\":1,\"name\":{name}{size},\"payload\":{payload},\"position\":{}}}\n", self.position);
        self.line(&line)
    }

    fn line(&mut self, line: &str) -> io::Result<()> {
        self.position += 1;
        self.out.write_all(line.as_bytes())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// CRC-64 with the ISO polynomial, reflected, initial and final value all ones: Go's `crc64.Checksum(data,
/// crc64.MakeTable(crc64.ISO))`, computed eight bytes at a time.
#[derive(Clone, Copy, Debug)]
pub struct Crc64(u64);

const TABLES: [[u64; 256]; 8] = tables();

const fn tables() -> [[u64; 256]; 8] {
    // The reflected ISO polynomial x^64 + x^4 + x^3 + x + 1.
    const POLY: u64 = 0xD800_0000_0000_0000;
    let mut tables = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let previous = tables[k - 1][i];
            tables[k][i] = tables[0][(previous & 0xff) as usize] ^ (previous >> 8);
            k += 1;
        }
        i += 1;
    }
    tables
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64(!0)
    }
}

impl Crc64 {
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let value = crc ^ u64::from_le_bytes(word.try_into().expect("eight bytes"));
            crc = TABLES[7][(value & 0xff) as usize]
                ^ TABLES[6][((value >> 8) & 0xff) as usize]
                ^ TABLES[5][((value >> 16) & 0xff) as usize]
                ^ TABLES[4][((value >> 24) & 0xff) as usize]
                ^ TABLES[3][((value >> 32) & 0xff) as usize]
                ^ TABLES[2][((value >> 40) & 0xff) as usize]
                ^ TABLES[1][((value >> 48) & 0xff) as usize]
                ^ TABLES[0][(value >> 56) as usize];
        }
        for &byte in words.remainder() {
            crc = TABLES[0][((crc ^ u64::from(byte)) & 0xff) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    pub fn value(&self) -> u64 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_go_iso() {
        // Go: fmt.Printf("%x", crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ISO))) => b90956c775a41001
        let mut crc = Crc64::default();
        crc.update(b"123456789");
        assert_eq!(crc.value(), 0xb909_56c7_75a4_1001);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Crc64::default();
        whole.update(&data);
        let mut parts = Crc64::default();
        for part in data.chunks(13) {
            parts.update(part);
        }
        assert_eq!(whole.value(), parts.value());
        assert_eq!(Crc64::default().value(), 0);
    }

    #[test]
    fn lines_are_what_tar_splits_json_packer_writes() {
        let mut split = TarSplit::new(Vec::new());
        split.segment(b"hdr").unwrap();
        split.file("etc/a b", 3, Some(0x0102_0304_0506_0708)).unwrap();
        split.segment(b"").unwrap();
        split.file("etc/", 0, None).unwrap();
        let text = String::from_utf8(split.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"type\":2,\"payload\":\"aGRy\",\"position\":0}\n\
             {\"type\":1,\"name\":\"etc/a b\",\"size\":3,\"payload\":\"AQIDBAUGBwg=\",\"position\":1}\n\
             {\"type\":1,\"name\":\"etc/\",\"payload\":null,\"position\":2}\n"
        );
    }
}
