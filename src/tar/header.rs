//! One tar header block as read: the ustar fields (POSIX.1-2001, pax utility, "ustar Interchange Format"), their
//! numbers in octal or in GNU's base-256, and the checksum, summed unsigned as POSIX says or signed as old tars did.

/// The size of a header, and the unit every entry's data is padded to.
pub(crate) const BLOCK: usize = 512;

/// A header block; its fields, by their POSIX byte ranges.
pub(crate) struct Header {
    block: [u8; BLOCK],
}

impl Header {
    pub(crate) fn new(block: [u8; BLOCK]) -> Header {
        Header { block }
    }

    /// All zeros: the end-of-archive marker (two of them end an archive, one is enough to stop reading).
    pub(crate) fn is_zero(&self) -> bool {
        self.block.iter().all(|&b| b == 0)
    }

    /// Whether the `chksum` field matches the block summed with that field as spaces.
    pub(crate) fn checksum_ok(&self) -> bool {
        let Some(stored) = parse_numeric(&self.block[148..156]) else {
            return false;
        };
        let unsigned: u64 = self
            .block
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { b' ' as u64 } else { b as u64 })
            .sum();
        // Some old tars summed signed chars.
        let signed: i64 = self
            .block
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { b' ' as i64 } else { b as i8 as i64 })
            .sum();
        stored == unsigned || stored as i64 == signed
    }

    pub(crate) fn typeflag(&self) -> u8 {
        self.block[156]
    }

    /// The entry's path: `name`, after the ustar `prefix` and a slash when the header is ustar and has one.
    pub(crate) fn path(&self) -> Vec<u8> {
        let name = field_bytes(&self.block[0..100]);
        let is_ustar = &self.block[257..263] == b"ustar\0";
        let prefix = if is_ustar { field_bytes(&self.block[345..500]) } else { &[][..] };
        if prefix.is_empty() { name.to_vec() } else { [prefix, b"/", name].concat() }
    }

    pub(crate) fn link_name(&self) -> &[u8] {
        field_bytes(&self.block[157..257])
    }

    /// The permission bits and the set-id and sticky bits, or `None` for a malformed field.
    pub(crate) fn mode(&self) -> Option<u32> {
        parse_numeric(&self.block[100..108]).map(|mode| (mode & 0o7777) as u32)
    }

    pub(crate) fn uid(&self) -> Option<u64> {
        parse_numeric(&self.block[108..116])
    }

    pub(crate) fn gid(&self) -> Option<u64> {
        parse_numeric(&self.block[116..124])
    }

    pub(crate) fn size(&self) -> Option<u64> {
        parse_numeric(&self.block[124..136])
    }

    pub(crate) fn mtime(&self) -> Option<i64> {
        parse_signed_numeric(&self.block[136..148])
    }

    pub(crate) fn dev_major(&self) -> Option<u64> {
        parse_numeric(&self.block[329..337])
    }

    pub(crate) fn dev_minor(&self) -> Option<u64> {
        parse_numeric(&self.block[337..345])
    }
}

/// The zero bytes after `size` bytes of data, up to the next block.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A string field's bytes, up to its first NUL (a field that fills its width has none).
fn field_bytes(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// An octal field (NUL or space terminated) or a GNU base-256 field (first byte 0x80).
pub(crate) fn parse_numeric(field: &[u8]) -> Option<u64> {
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

/// A field that may be negative (`mtime`): GNU writes a negative number in base-256 as two's complement over the
/// field (first byte 0xff); anything else reads as [`parse_numeric`] and must fit an `i64`.
pub(crate) fn parse_signed_numeric(field: &[u8]) -> Option<i64> {
    if field[0] == 0xff {
        let mut value: i64 = -1;
        for &b in &field[1..] {
            value = value.checked_mul(256)? | b as i64;
        }
        return Some(value);
    }
    i64::try_from(parse_numeric(field)?).ok()
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
}
