//! The fixture directories that scripts/make-fixtures.sh makes.

use std::path::{Path, PathBuf};

/// The fixture directory: busybox rootfs trees and their tarballs (scripts/make-fixtures.sh).
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("IMGCRAFT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"));
    assert!(
        dir.join("rootfs-amd64.tar").is_file(),
        "fixtures missing in {}: run scripts/make-fixtures.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// The package fixtures: dpkg/, opkg/, yocto/, base/ (see scripts/make-package-fixtures.sh).
pub fn packages() -> PathBuf {
    let dir = fixtures().join("packages");
    assert!(dir.join("stamp").is_file(), "{} missing: run scripts/make-fixtures.sh", dir.display());
    dir
}
