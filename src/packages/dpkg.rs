//! dpkg's database (`var/lib/dpkg`): `status` names the installed packages with their size and dependencies,
//! `info/<name>.list` (`info/<name>:<arch>.list` for `Multi-Arch: same` packages) lists each one's paths.

use std::collections::BTreeMap;

use super::{Ownership, Package, control_stanzas, dependency_names, field};
use crate::error::Error;

/// Package states in which a package's files are on disk (dpkg-query(1) `db:Status-Status`).
const PRESENT_STATES: &[&str] =
    &["installed", "unpacked", "half-installed", "half-configured", "triggers-awaited", "triggers-pending"];

/// Reads dpkg's `status` (at `status_path`, for messages) and its `info/*.list` files, by file name.
pub fn parse(status_path: &str, status: &[u8], lists: &BTreeMap<String, Vec<u8>>) -> Result<Ownership, Error> {
    let bad = |problem: String| Error::BadInput { input: status_path.to_string(), problem };
    let text = std::str::from_utf8(status).map_err(|e| bad(format!("not a dpkg status file: not UTF-8 ({e})")))?;
    let stanzas =
        control_stanzas(text).map_err(|line| bad(format!("not a dpkg status file: line {line} is not a field")))?;
    let mut installed = Vec::new();
    for stanza in &stanzas {
        let name = field(stanza, "Package")
            .ok_or_else(|| bad("not a dpkg status file: a stanza has no Package field".into()))?;
        let state = field(stanza, "Status").and_then(|s| s.split_whitespace().nth(2)).unwrap_or("");
        if !PRESENT_STATES.contains(&state) {
            continue;
        }
        let arch = field(stanza, "Architecture").unwrap_or("");
        let multi_arch_same = field(stanza, "Multi-Arch") == Some("same");
        // Installed-Size is in KiB (deb-control(5)).
        let size = field(stanza, "Installed-Size").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0) * 1024;
        let mut depends = dependency_names(field(stanza, "Pre-Depends").unwrap_or(""));
        for name in dependency_names(field(stanza, "Depends").unwrap_or("")) {
            if !depends.contains(&name) {
                depends.push(name);
            }
        }
        let qualified = format!("{name}:{arch}.list");
        let plain = format!("{name}.list");
        let list = if multi_arch_same { [&qualified, &plain] } else { [&plain, &qualified] }
            .into_iter()
            .find_map(|file| lists.get(file.as_str()));
        installed.push((Package { name: name.to_string(), size, depends }, list));
    }
    if installed.is_empty() {
        return Err(bad("the dpkg database lists no installed package".into()));
    }
    installed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut ownership = Ownership::new(format!("dpkg database {status_path}"));
    for (package, list) in installed {
        let index = ownership.add_package(package);
        for line in list.map(|l| l.split(|&b| b == b'\n')).into_iter().flatten() {
            ownership.add_path(line, index);
        }
    }
    Ok(ownership)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\n\
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
        assert_eq!(ownership.owner(b"etc/gone.conf"), None);
    }

    #[test]
    fn a_status_file_that_does_not_parse_is_refused() {
        let err = parse("var/lib/dpkg/status", b"Package: a\ngarbage here\n", &BTreeMap::new()).unwrap_err();
        assert_eq!(err.to_string(), "`var/lib/dpkg/status`: not a dpkg status file: line 2 is not a field");
        let err = parse("s", b"\xff\xfe", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
