//! opkg's database (`var/lib/opkg`, or `usr/lib/opkg` in some newer images): `status` names the installed packages,
//! `info/<name>.list` lists each one's paths, one per line, possibly followed by a tab and the file's mode (and a
//! symlink's target) in the format opkg writes since 0.3.

use std::collections::BTreeMap;

use super::{Ownership, PackageData, Stanza, StatusDatabase, parse_status};
use crate::error::Error;

/// Reads opkg's `status` (at `status_path`, for messages) and its `info/*.list` files, by file name.
pub fn parse(status_path: &str, status: &[u8], lists: &BTreeMap<String, Vec<u8>>) -> Result<Ownership, Error> {
    let list = |name: &str, _: &Stanza| lists.get(&format!("{name}.list"));
    let db = StatusDatabase {
        tool: "opkg",
        data: PackageData::Opkg,
        // "install ok installed", "install user installed", "hold ok unpacked", ...
        present: |state| matches!(state, "installed" | "unpacked" | "half-installed"),
        // opkg-build writes Installed-Size in bytes.
        size_unit: 1,
        list: &list,
        // `path`, or `path<TAB>mode[<TAB>link target]`.
        path: |line| line.split(|&b| b == b'\t').next().unwrap_or(line),
    };
    parse_status(status_path, status, &db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_may_carry_a_mode_and_a_link_target() {
        let status = b"Package: busybox\nVersion: 1.36\nDepends: libc6 (>= 2.39)\nStatus: install user installed\n\
            Architecture: cortexa57\nInstalled-Size: 600000\nLicense: GPL-2.0-only & bzip2-1.0.4\n\n\
            Package: old\nStatus: deinstall ok not-installed\n";
        let lists = BTreeMap::from([(
            "busybox.list".to_string(),
            b"/bin/busybox.nosuid\t0100755\n/bin/sh\t0120777\t/bin/busybox.nosuid\n".to_vec(),
        )]);
        let ownership = parse("var/lib/opkg/status", status, &lists).unwrap();
        assert_eq!(ownership.packages().len(), 1);
        assert_eq!(ownership.owner(b"bin/sh"), Some(0));
        assert_eq!(ownership.owner(b"bin/busybox.nosuid"), Some(0));
        assert_eq!(ownership.package(0).depends, ["libc6"]);
        assert_eq!(ownership.package(0).size, 600000);
        let busybox = ownership.package(0);
        assert_eq!(busybox.version.as_deref(), Some("1.36"));
        assert_eq!(busybox.architecture.as_deref(), Some("cortexa57"));
        assert_eq!(busybox.license.as_deref(), Some("GPL-2.0-only & bzip2-1.0.4"));
    }
}
