//! Finding the rootfs's own package database (dpkg's or opkg's) and reading it before the conversion.
//!
//! A sorted tarball holds `var/lib/...` near its end, after everything the database describes, so the conversion
//! cannot route entries by owner as it reads them. The database is read first, in a pass that only decodes the
//! tarball and keeps the few database files (a directory is read directly); standard input is spooled to a
//! temporary file first (see `convert`). The pass costs one decompression of the input, measured by
//! `scripts/bench.sh` (row `packages-scan`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Ownership, dpkg, opkg};
use crate::entry::EntryKind;
use crate::error::Error;
use crate::input;
use crate::normalize::normal_form;
use crate::progress::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dpkg,
    Opkg,
}

/// Where databases live, in the order they are preferred.
const LOCATIONS: &[(&str, Kind)] =
    &[("var/lib/dpkg", Kind::Dpkg), ("var/lib/opkg", Kind::Opkg), ("usr/lib/opkg", Kind::Opkg)];

/// A database file is larger than any real one: refuse rather than hold it.
const FILE_LIMIT: u64 = 256 << 20;

/// Whether a rootfs path (normal form) is a database file worth reading: a `status`, or an `info/*.list`.
fn is_database_file(path: &[u8]) -> bool {
    LOCATIONS.iter().any(|(dir, _)| {
        let Some(rest) = path.strip_prefix(dir.as_bytes()).and_then(|r| r.strip_prefix(b"/")) else {
            return false;
        };
        rest == b"status"
            || rest.strip_prefix(b"info/").is_some_and(|name| !name.contains(&b'/') && name.ends_with(b".list"))
    })
}

/// Reads the package database of the rootfs at `path` (named `name` in messages), if it has one.
pub fn read(path: &Path, name: &str, progress: &Progress) -> Result<Option<Ownership>, Error> {
    let files = if path.is_dir() { read_directory(path)? } else { read_tarball(path, name, progress)? };
    from_files(&files, name)
}

/// The database files of a directory rootfs.
fn read_directory(root: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    let mut files = BTreeMap::new();
    for (dir, _) in LOCATIONS {
        let status = root.join(dir).join("status");
        if !status.is_file() {
            continue;
        }
        files.insert(format!("{dir}/status").into_bytes(), read_file(&status)?);
        let info = root.join(dir).join("info");
        let Ok(listing) = std::fs::read_dir(&info) else { continue };
        for entry in listing {
            let entry = entry.map_err(|e| Error::io("cannot read", &info, e))?;
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if name.ends_with(b".list") && entry.file_type().is_ok_and(|t| t.is_file()) {
                let mut key = format!("{dir}/info/").into_bytes();
                key.extend_from_slice(name);
                files.insert(key, read_file(&entry.path())?);
            }
        }
    }
    Ok(files)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut bytes = Vec::new();
    file.take(FILE_LIMIT).read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", path, e))?;
    Ok(bytes)
}

/// One pass through the tarball that only decodes it, keeping the database files.
fn read_tarball(path: &Path, name: &str, progress: &Progress) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    let mut rootfs = input::open_path(path, name, progress)?;
    progress.message("reading the package database");
    let mut files = BTreeMap::new();
    while let Some(entry) = rootfs.entries.next_entry()? {
        let EntryKind::File { size } = entry.kind else { continue };
        let Some(path) = normal_form(&entry.path) else { continue };
        if !is_database_file(&path) {
            continue;
        }
        if size > FILE_LIMIT {
            return Err(Error::BadEntry {
                input: name.to_string(),
                entry: crate::error::display_bytes(&path),
                problem: format!("a package database file of {size} bytes is larger than any real one"),
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        rootfs.entries.data().read_to_end(&mut bytes).map_err(|e| Error::BadInput {
            input: name.to_string(),
            problem: crate::tar_reader::input_fault(&e).map(ToString::to_string).unwrap_or_else(|| e.to_string()),
        })?;
        files.insert(path, bytes);
    }
    Ok(files)
}

/// The ownership the first database found describes.
fn from_files(files: &BTreeMap<Vec<u8>, Vec<u8>>, name: &str) -> Result<Option<Ownership>, Error> {
    for (dir, kind) in LOCATIONS {
        let status_key = format!("{dir}/status");
        let Some(status) = files.get(status_key.as_bytes()) else { continue };
        let prefix = format!("{dir}/info/");
        let lists: BTreeMap<String, Vec<u8>> = files
            .iter()
            .filter_map(|(path, bytes)| {
                let file = path.strip_prefix(prefix.as_bytes())?;
                Some((String::from_utf8_lossy(file).into_owned(), bytes.clone()))
            })
            .collect();
        let shown = format!("{name}: {status_key}");
        let ownership = match kind {
            Kind::Dpkg => dpkg::parse(&shown, status, &lists)?,
            Kind::Opkg => opkg::parse(&shown, status, &lists)?,
        };
        return Ok(Some(ownership));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_files_are_the_status_and_list_files_of_known_locations() {
        assert!(is_database_file(b"var/lib/dpkg/status"));
        assert!(is_database_file(b"var/lib/dpkg/info/libc6:amd64.list"));
        assert!(is_database_file(b"usr/lib/opkg/info/busybox.list"));
        assert!(!is_database_file(b"var/lib/dpkg/info/libc6.md5sums"));
        assert!(!is_database_file(b"var/lib/dpkg/status-old"));
        assert!(!is_database_file(b"var/lib/dpkg/info/x/y.list"));
        assert!(!is_database_file(b"srv/var/lib/dpkg/status"));
    }
}
