//! PAX extended header records (POSIX.1-2001, pax "Extended Header"): `"<length> <key>=<value>\n"` records, their
//! decimal numbers and times, and extended attributes in their two spellings, `SCHILY.xattr.<name>` (star, GNU tar:
//! raw bytes) and `LIBARCHIVE.xattr.<name>` (libarchive: the name percent-encoded, the value in base64).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// A PAX header's records, by key; a key repeated within one header keeps its last value.
pub(crate) type Records = BTreeMap<String, Vec<u8>>;

/// Parses the records of one PAX header's data; trailing NUL bytes end it.
pub(crate) fn parse(data: &[u8]) -> Result<Records, String> {
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

/// A decimal record (`size`, `uid`, `gid`).
pub(crate) fn parse_decimal(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A PAX time: decimal seconds with an optional fraction, possibly negative. Rounded down to whole seconds.
pub(crate) fn parse_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let has_fraction = fraction.bytes().any(|b| b != b'0');
    if whole.starts_with('-') && has_fraction { seconds.checked_sub(1) } else { Some(seconds) }
}

/// The extended attributes of an entry, from the global records and then its own. `SCHILY.xattr` wins over
/// `LIBARCHIVE.xattr` for the same name, and the entry's own `SCHILY.xattr` over a global one; between two
/// `LIBARCHIVE.xattr` records of one name, the global one is kept. `Err` says which record is malformed.
pub(crate) fn xattrs(global: &Records, local: &Records) -> Result<BTreeMap<String, Vec<u8>>, &'static str> {
    let mut xattrs = BTreeMap::new();
    for (key, value) in global.iter().chain(local.iter()) {
        if let Some(name) = key.strip_prefix("LIBARCHIVE.xattr.") {
            let name = percent_decode(name).ok_or("malformed LIBARCHIVE.xattr name")?;
            let value = base64_decode(value).ok_or("malformed LIBARCHIVE.xattr value")?;
            xattrs.entry(name).or_insert(value);
        }
    }
    for (key, value) in global.iter().chain(local.iter()) {
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            xattrs.insert(name.to_string(), value.clone());
        }
    }
    Ok(xattrs)
}

/// A `LIBARCHIVE.xattr` name: `%XX` escapes (libarchive's `url_encode` in archive_write_set_format_pax.c), which must
/// decode to UTF-8.
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

/// Base64 (RFC 4648 section 4 alphabet) without padding, bits past the last whole byte dropped unchecked.
const UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// A `LIBARCHIVE.xattr` value. libarchive writes base64 without padding (`base64_encode` in
/// archive_write_set_format_pax.c), and what its reader (`base64_decode` in archive_read_support_format_tar.c) makes
/// of a value with no byte outside the alphabet is what this takes: padded or not, the value ends at the first `=`,
/// and a last group of one symbol (6 bits, no whole byte) is dropped. A byte outside the alphabet, which libarchive
/// skips, is refused here.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut symbols = text.split(|&b| b == b'=').next().unwrap_or_default();
    if symbols.len() % 4 == 1 {
        let (&last, rest) = symbols.split_last()?;
        if !(last.is_ascii_alphanumeric() || last == b'+' || last == b'/') {
            return None;
        }
        symbols = rest;
    }
    UNPADDED.decode(symbols).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_parse_binary_values_and_reject_bad_lengths() {
        let data = b"27 SCHILY.xattr.user.a=\x00\xff\x01\n11 path=ab\n";
        let records = parse(data).unwrap();
        assert_eq!(records["SCHILY.xattr.user.a"], b"\x00\xff\x01");
        assert_eq!(records["path"], b"ab");
        assert!(parse(b"99 path=ab\n").is_err());
        assert!(parse(b"x path=ab\n").is_err());
    }

    #[test]
    fn pax_times_round_down_to_seconds() {
        assert_eq!(parse_time(b"1700000000.987654321"), Some(1_700_000_000));
        assert_eq!(parse_time(b"-1.5"), Some(-2));
        assert_eq!(parse_time(b"12"), Some(12));
        assert_eq!(parse_time(b"1.x"), None);
    }

    #[test]
    fn libarchive_xattr_encodings_decode() {
        assert_eq!(base64_decode(b"aGVsbG8").unwrap(), b"hello");
        assert_eq!(percent_decode("user.a%3Db").unwrap(), "user.a=b");
    }

    #[test]
    fn libarchive_xattr_values_decode_padded_or_not_and_refuse_bytes_outside_the_alphabet() {
        assert_eq!(base64_decode(b"aGk").unwrap(), b"hi");
        assert_eq!(base64_decode(b"aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        // libarchive's reader stops at the first `=`, and so does this.
        assert_eq!(base64_decode(b"aGk=Zm9v").unwrap(), b"hi");
        assert_eq!(base64_decode(b"aGk==").unwrap(), b"hi");
        // Bits past the last whole byte are dropped, and so is a last group of one symbol.
        assert_eq!(base64_decode(b"aGl").unwrap(), b"hi");
        assert_eq!(base64_decode(b"aGVsb").unwrap(), b"hel");
        assert_eq!(base64_decode(b"a").unwrap(), b"");
        for refused in [&b"aGk\n"[..], b"aG k", b"aGk-", b"aGk_", b"a\n", b"\xc3\xa9"] {
            assert_eq!(base64_decode(refused), None, "{refused:?}");
        }
    }
}
