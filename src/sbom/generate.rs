//! SBOMs written from what a conversion knows: the file list collected as the rootfs streamed
//! ([`FileInventory`]) and the package data it already reads for layering ([`Ownership`]: pkgdata, dpkg, opkg).
//!
//! Every package is listed with its name, version, architecture, licence ([`super::license`]), package URL
//! ([`super::purl`]) and files with their SHA-256 (and SHA-1); files no package owns are listed too, so a rootfs
//! without package data still gets its full file list. Two formats: SPDX 2.3 JSON (`spdx.rs`) and CycloneDX
//! 1.6 JSON (`cyclonedx.rs`).
//!
//! The bytes depend on the inputs alone: packages sorted by name, files by path, no wall-clock time (the image's
//! creation time is the document's), and the ids that must be unique (SPDX's `documentNamespace`, CycloneDX's
//! `serialNumber`) are name-based UUIDs (RFC 9562 version 5) of everything the document says. Documents are written
//! as a stream: memory holds the file list and one sorted index, not the document.

use std::io::{self, Write};

use super::bill::{Bill, GeneratedFormat, SbomSubject};
use super::inventory::FileInventory;
use crate::layering::packages::Ownership;

/// Writes an SBOM of `files` and `ownership` for `subject`; the same inputs give the same bytes.
pub fn generate(
    format: GeneratedFormat,
    subject: &SbomSubject,
    files: &FileInventory,
    ownership: Option<&Ownership>,
) -> Vec<u8> {
    let mut out = Vec::new();
    write(format, subject, files, ownership, &mut out).expect("writing into memory does not fail");
    out
}

/// [`generate`], written to `out` as it goes.
pub fn write(
    format: GeneratedFormat,
    subject: &SbomSubject,
    files: &FileInventory,
    ownership: Option<&Ownership>,
    out: impl Write,
) -> io::Result<()> {
    let bill = Bill::new(format, subject, files, ownership);
    match format {
        GeneratedFormat::Spdx23 => super::spdx::write(&bill, out),
        GeneratedFormat::CycloneDx16 => super::cyclonedx::write(&bill, out),
    }
}
