//! opkg's database (`var/lib/opkg`, or `usr/lib/opkg` in some newer images): `status` names the installed packages,
//! `info/<name>.list` lists each one's paths, one per line, possibly followed by a tab and the file's mode (and a
//! symlink's target) in the format opkg writes since 0.3.

use std::collections::BTreeMap;

use super::{Ownership, Package, control_stanzas, dependency_names, field};
use crate::error::Error;

/// Reads opkg's `status` (at `status_path`, for messages) and its `info/*.list` files, by file name.
pub fn parse(status_path: &str, status: &[u8], lists: &BTreeMap<String, Vec<u8>>) -> Result<Ownership, Error> {
    let bad = |problem: String| Error::BadInput { input: status_path.to_string(), problem };
    let text = std::str::from_utf8(status).map_err(|e| bad(format!("not an opkg status file: not UTF-8 ({e})")))?;
    let stanzas =
        control_stanzas(text).map_err(|line| bad(format!("not an opkg status file: line {line} is not a field")))?;
    let mut installed = Vec::new();
    for stanza in &stanzas {
        let name = field(stanza, "Package")
            .ok_or_else(|| bad("not an opkg status file: a stanza has no Package field".into()))?;
        // "install ok installed", "install user installed", "hold ok unpacked", ...
        let state = field(stanza, "Status").and_then(|s| s.split_whitespace().nth(2)).unwrap_or("");
        if !matches!(state, "installed" | "unpacked" | "half-installed") {
            continue;
        }
        // opkg-build writes Installed-Size in bytes.
        let size = field(stanza, "Installed-Size").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        let mut depends = dependency_names(field(stanza, "Pre-Depends").unwrap_or(""));
        for name in dependency_names(field(stanza, "Depends").unwrap_or("")) {
            if !depends.contains(&name) {
                depends.push(name);
            }
        }
        installed.push((Package { name: name.to_string(), size, depends }, lists.get(&format!("{name}.list"))));
    }
    if installed.is_empty() {
        return Err(bad("the opkg database lists no installed package".into()));
    }
    installed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut ownership = Ownership::new(format!("opkg database {status_path}"));
    for (package, list) in installed {
        let index = ownership.add_package(package);
        for line in list.map(|l| l.split(|&b| b == b'\n')).into_iter().flatten() {
            let path = line.split(|&b| b == b'\t').next().unwrap_or(line);
            ownership.add_path(path, index);
        }
    }
    Ok(ownership)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_may_carry_a_mode_and_a_link_target() {
        let status = b"Package: busybox\nVersion: 1.36\nDepends: libc6 (>= 2.39)\nStatus: install user installed\n\
            Architecture: cortexa57\nInstalled-Size: 600000\n\nPackage: old\nStatus: deinstall ok not-installed\n";
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
    }
}
