//! Finding the rootfs's own package database (dpkg's or opkg's) and reading it before the conversion.
//!
//! A sorted tarball holds `var/lib/...` near its end, after everything the database describes, so the conversion
//! cannot route entries by owner as it reads them. The database is read first, in a pass that only decodes the
//! tarball and keeps the few database files (a directory is read directly); standard input is spooled to a
//! temporary file first (see `convert`). The pass decodes the input, and keeps what it decodes for the conversion
//! to read instead of decoding it again (see [`RootfsSource`]); measured by `scripts/bench.sh` (row
//! `packages-scan`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::{Ownership, dpkg, opkg};
use crate::error::Error;
use crate::progress::Progress;
use crate::rootfs::source::RootfsSource;
use crate::tar::entry::EntryKind;
use crate::tar::path::normal_form;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dpkg,
    Opkg,
}

/// Where databases live, in the order they are preferred.
const LOCATIONS: &[(&str, Kind)] =
    &[("var/lib/dpkg", Kind::Dpkg), ("var/lib/opkg", Kind::Opkg), ("usr/lib/opkg", Kind::Opkg)];

/// The largest database file kept: a large Debian's `status` (2,000 packages) is about 3 MiB and its largest
/// `.list` under 1 MiB; a larger one is refused rather than held.
pub const MAX_DATABASE_FILE: u64 = 16 << 20;

/// The most bytes of database files kept together (the pass holds them all until the database is parsed): a large
/// Debian's `status` and `.list` files take about 20 MiB.
pub const MAX_DATABASE_BYTES: u64 = 48 << 20;

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

/// Reads the package database of `rootfs`, if it has one, before the conversion reads it again.
pub fn read(rootfs: &RootfsSource, progress: &Progress) -> Result<Option<Ownership>, Error> {
    let files = match rootfs.is_dir() {
        true => read_directory(rootfs.path())?,
        false => read_tarball(rootfs, progress)?,
    };
    from_files(files, rootfs.name())
}

/// Adds `bytes` to the `total` kept, or says which limit was passed.
fn count(total: &mut u64, bytes: u64) -> Result<(), String> {
    *total += bytes;
    if *total > MAX_DATABASE_BYTES {
        return Err(format!(
            "the package database files take more than the {} MiB accepted together",
            MAX_DATABASE_BYTES >> 20
        ));
    }
    Ok(())
}

/// The database files of a directory rootfs.
fn read_directory(root: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    let mut files = BTreeMap::new();
    let mut total = 0;
    let mut read_file = |path: &Path| -> Result<Vec<u8>, Error> {
        let bytes = super::read_bounded(path, MAX_DATABASE_FILE)?;
        count(&mut total, bytes.len() as u64)
            .map_err(|problem| Error::BadInput { input: path.display().to_string(), problem })?;
        Ok(bytes)
    };
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

/// One pass through the tarball that only decodes it, keeping the database files.
fn read_tarball(source: &RootfsSource, progress: &Progress) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Error> {
    let name = source.name();
    let mut rootfs = source.open_to_read_again(progress)?;
    progress.message("reading the package database");
    let mut files = BTreeMap::new();
    let mut total = 0;
    while let Some(entry) = rootfs.entries.next_entry()? {
        let EntryKind::File { size } = entry.kind else { continue };
        let Some(path) = normal_form(&entry.path) else { continue };
        if !is_database_file(&path) {
            continue;
        }
        let refuse = |problem: String| Error::BadEntry {
            input: name.to_string(),
            entry: crate::tar::path::shown_name(&path),
            problem,
        };
        if size > MAX_DATABASE_FILE {
            return Err(refuse(format!(
                "a package database file of {size} bytes is larger than the {} MiB accepted",
                MAX_DATABASE_FILE >> 20
            )));
        }
        count(&mut total, size).map_err(refuse)?;
        let mut bytes = Vec::with_capacity(size as usize);
        rootfs.entries.data().read_to_end(&mut bytes).map_err(|e| Error::BadInput {
            input: name.to_string(),
            problem: crate::tar::reader::input_fault(&e).map(ToString::to_string).unwrap_or_else(|| e.to_string()),
        })?;
        files.insert(path, bytes);
    }
    Ok(files)
}

/// The ownership the first database found describes.
fn from_files(mut files: BTreeMap<Vec<u8>, Vec<u8>>, name: &str) -> Result<Option<Ownership>, Error> {
    for (dir, kind) in LOCATIONS {
        let status_key = format!("{dir}/status");
        let Some(status) = files.remove(status_key.as_bytes()) else { continue };
        let prefix = format!("{dir}/info/");
        // Moved, not copied: the files may take up to MAX_DATABASE_BYTES.
        let lists: BTreeMap<String, Vec<u8>> = std::mem::take(&mut files)
            .into_iter()
            .filter_map(|(path, bytes)| {
                let file = path.strip_prefix(prefix.as_bytes())?;
                Some((String::from_utf8_lossy(file).into_owned(), bytes))
            })
            .collect();
        let shown = format!("{name}: {status_key}");
        let ownership = match kind {
            Kind::Dpkg => dpkg::parse(&shown, &status, &lists)?,
            Kind::Opkg => opkg::parse(&shown, &status, &lists)?,
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
