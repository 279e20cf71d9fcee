//! dpkg's database (`var/lib/dpkg`): `status` names the installed packages with their size and dependencies,
//! `info/<name>.list` (`info/<name>:<arch>.list` for `Multi-Arch: same` packages) lists each one's paths.

use std::collections::BTreeMap;

use super::{Ownership, PackageData, Stanza, StatusDatabase, field, parse_status};
use crate::error::Error;

/// Package states in which a package's files are on disk (dpkg-query(1) `db:Status-Status`).
const PRESENT_STATES: &[&str] =
    &["installed", "unpacked", "half-installed", "half-configured", "triggers-awaited", "triggers-pending"];

/// Reads dpkg's `status` (at `status_path`, for messages) and its `info/*.list` files, by file name.
pub fn parse(status_path: &str, status: &[u8], lists: &BTreeMap<String, Vec<u8>>) -> Result<Ownership, Error> {
    let list = |name: &str, stanza: &Stanza| {
        let arch = field(stanza, "Architecture").unwrap_or("");
        let qualified = format!("{name}:{arch}.list");
        let plain = format!("{name}.list");
        let order = if field(stanza, "Multi-Arch") == Some("same") { [qualified, plain] } else { [plain, qualified] };
        order.into_iter().find_map(|file| lists.get(&file))
    };
    let db = StatusDatabase {
        tool: "dpkg",
        data: PackageData::Dpkg,
        present: |state| PRESENT_STATES.contains(&state),
        // Installed-Size is in KiB (deb-control(5)).
        size_unit: 1024,
        list: &list,
        path: |line| line,
    };
    parse_status(status_path, status, &db)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n\
        Version: 2.36-9+deb12u4\n\
        Installed-Size: 12000\nDepends: libgcc-s1\n\n\
        Package: hello\nStatus: install ok installed\nArchitecture: amd64\nInstalled-Size: 100\n\
        Pre-Depends: dpkg (>= 1.15)\nDepends: libc6 (>= 2.34)\n\n\
        Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\n";

    #[test]
    fn installed_packages_own_their_listed_paths() {
        let lists = BTreeMap::from([
            ("libc6:amd64.list".to_string(), b"/.\n/lib\n/lib/x86_64-linux-gnu/libc.so.6\n".to_vec()),
            ("hello.list".to_string(), b"/.\n/usr/bin/hello\n".to_vec()),
            ("gone.list".to_string(), b"/etc/gone.conf\n".to_vec()),
        ]);
        let ownership = parse("var/lib/dpkg/status", STATUS.as_bytes(), &lists).unwrap();
        let names: Vec<_> = ownership.packages().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hello", "libc6"]);
        let libc = ownership.owner(b"lib/x86_64-linux-gnu/libc.so.6").unwrap();
        assert_eq!(ownership.package(libc).name, "libc6");
        assert_eq!(ownership.package(libc).size, 12000 * 1024);
        let hello = ownership.owner(b"usr/bin/hello").unwrap();
        assert_eq!(ownership.package(hello).depends, ["dpkg", "libc6"]);
        assert_eq!(ownership.package(libc).version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(ownership.package(libc).architecture.as_deref(), Some("amd64"));
        assert_eq!(ownership.package(hello).version, None);
        assert_eq!(ownership.owner(b"etc/gone.conf"), None);
    }

    #[test]
    fn an_installed_size_past_u64_in_bytes_saturates_instead_of_wrapping() {
        // Found by the `packages` fuzz target: 18014398509481985 KiB overflows u64 when turned into bytes.
        let status = b"Package: big\nStatus: install ok installed\nInstalled-Size: 18014398509481985\n\n";
        let ownership = parse("var/lib/dpkg/status", status, &BTreeMap::new()).unwrap();
        assert_eq!(ownership.packages()[0].size, u64::MAX);
    }

    #[test]
    fn a_status_file_that_does_not_parse_is_refused() {
        let err = parse("var/lib/dpkg/status", b"Package: a\ngarbage here\n", &BTreeMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "`var/lib/dpkg/status`: not a dpkg status file: line 2 is not a field");
        let err = parse("s", b"\xff\xfe", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
