//! File capabilities in the form engines apply: `security.capability` xattrs rewritten from v3 to v2.

/// VFS_CAP_REVISION_3 capabilities carry the user namespace's root uid; engines apply file capabilities only in
/// the namespace-less v2 form (linux/capability.h), so v3 is rewritten to v2, keeping the effective flag.
pub(super) fn to_v2(value: &mut Vec<u8>) {
    const REVISION_MASK: u32 = 0xff00_0000;
    const REVISION_2: u32 = 0x0200_0000;
    const REVISION_3: u32 = 0x0300_0000;
    if value.len() != 24 {
        return;
    }
    let magic = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    if magic & REVISION_MASK == REVISION_3 {
        let v2 = (magic & !REVISION_MASK) | REVISION_2;
        value[..4].copy_from_slice(&v2.to_le_bytes());
        value.truncate(20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_capabilities_become_v2() {
        let mut v3 = vec![0x01, 0, 0, 0x03, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xe8, 0x03, 0, 0];
        to_v2(&mut v3);
        assert_eq!(v3, vec![0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
