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

use sha1::{Digest as _, Sha1};

use super::inventory::{FileInventory, InventoryFile};
use super::license::{self, Declared};
use crate::digest::Digest;
use crate::layering::packages::{Ownership, Package};
use crate::oci::platform::Platform;

/// The formats imgcraft writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratedFormat {
    /// SPDX 2.3 JSON.
    Spdx23,
    /// CycloneDX 1.6 JSON.
    CycloneDx16,
}

impl GeneratedFormat {
    /// The document's media type (and its artifact's `artifactType`), as [`super::attached`] names them.
    pub fn media_type(self) -> &'static str {
        match self {
            GeneratedFormat::Spdx23 => super::attached::SPDX_JSON,
            GeneratedFormat::CycloneDx16 => super::attached::CYCLONEDX_JSON,
        }
    }
}

/// The image an SBOM describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SbomSubject {
    /// The name the image carries (`myorg/app:1.0`), if it has one.
    pub name: Option<String>,
    /// The digest of the image's manifest: the document's version of the image, and a seed of its unique ids.
    pub digest: Digest,
    /// The image's creation time (its config's `created`), seconds since the epoch: the document's time.
    pub created: i64,
    pub platform: Platform,
    /// The version of imgcraft writing the document.
    pub tool_version: String,
}

impl SbomSubject {
    /// What the document calls the image: its name, or its digest when it has none.
    pub(super) fn shown_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.digest.to_string())
    }
}

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

/// Everything a document says, in the order it says it: what both formats are written from.
pub(super) struct Bill<'a> {
    pub subject: &'a SbomSubject,
    /// Every file, by path.
    pub files: Vec<InventoryFile<'a>>,
    /// Every package, by name.
    pub packages: Vec<BillPackage<'a>>,
    /// Indexes into `files` of those no package owns, by path.
    pub unowned: Vec<u32>,
    /// A name-based UUID of all of the above and the format: the document's unique id.
    pub uuid: String,
}

pub(super) struct BillPackage<'a> {
    pub package: &'a Package,
    pub purl: String,
    /// `None` when the package data names no licence.
    pub license: Option<Declared>,
    /// Indexes into [`Bill::files`], by path.
    pub files: Vec<u32>,
    /// Indexes into [`Bill::packages`] of the installed packages it depends on, by name.
    pub depends: Vec<u32>,
}

impl<'a> Bill<'a> {
    fn new(
        format: GeneratedFormat,
        subject: &'a SbomSubject,
        inventory: &'a FileInventory,
        ownership: Option<&'a Ownership>,
    ) -> Bill<'a> {
        let files = inventory.sorted();
        let (packages, unowned) = match ownership {
            Some(ownership) => installed(ownership, &files),
            None => (Vec::new(), (0..files.len() as u32).collect()),
        };
        let mut bill = Bill { subject, files, packages, unowned, uuid: String::new() };
        bill.uuid = bill.content_uuid(format);
        bill
    }

    /// A version 5 UUID (RFC 9562 section 5.5: SHA-1 of a namespace and a name) whose name is everything the
    /// document will say, so that another document gets another id and the same document the same one.
    fn content_uuid(&self, format: GeneratedFormat) -> String {
        /// RFC 9562's namespace for URLs: the name starts with the document's media type.
        const NAMESPACE_URL: [u8; 16] =
            [0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];
        let mut hash = Sha1::new();
        hash.update(NAMESPACE_URL);
        // Every piece is length-prefixed, so that no two different documents hash the same bytes.
        let mut piece = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        let subject = self.subject;
        piece(format.media_type().as_bytes());
        piece(subject.name.as_deref().unwrap_or("").as_bytes());
        piece(subject.digest.to_string().as_bytes());
        piece(&subject.created.to_le_bytes());
        piece(subject.platform.to_string().as_bytes());
        piece(subject.tool_version.as_bytes());
        for file in &self.files {
            piece(file.path);
            piece(file.sha256);
        }
        for package in &self.packages {
            let p = package.package;
            for text in [Some(&p.name), p.version.as_ref(), p.architecture.as_ref(), p.license.as_ref()] {
                piece(text.map_or(&b""[..], |t| t.as_bytes()));
            }
            piece(package.purl.as_bytes());
            piece(&(package.files.len() as u64).to_le_bytes());
            for &i in package.files.iter().chain(&package.depends) {
                piece(&i.to_le_bytes());
            }
        }
        let mut bytes: [u8; 16] = hash.finalize()[..16].try_into().expect("SHA-1 has 20 bytes");
        bytes[6] = (bytes[6] & 0x0f) | 0x50;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex = hex::encode(bytes);
        format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
    }
}

/// The packages of `ownership` by name, each with its files and dependencies, and the files no package owns.
fn installed<'a>(ownership: &'a Ownership, files: &[InventoryFile]) -> (Vec<BillPackage<'a>>, Vec<u32>) {
    let mut order: Vec<u32> = (0..ownership.packages().len() as u32).collect();
    order.sort_by(|&a, &b| ownership.package(a).name.cmp(&ownership.package(b).name));
    // Ownership index -> position in `packages`.
    let mut position = vec![0u32; order.len()];
    let mut packages = Vec::with_capacity(order.len());
    for (at, &index) in order.iter().enumerate() {
        position[index as usize] = at as u32;
        let package = ownership.package(index);
        packages.push(BillPackage {
            package,
            purl: super::purl::purl(package, ownership.data),
            license: package.license.as_deref().map(license::declared),
            files: Vec::new(),
            depends: Vec::new(),
        });
    }
    let mut unowned = Vec::new();
    for (i, file) in files.iter().enumerate() {
        match ownership.owner(file.path) {
            Some(owner) => packages[position[owner as usize] as usize].files.push(i as u32),
            None => unowned.push(i as u32),
        }
    }
    let by_name = |name: &str| packages.binary_search_by(|p| p.package.name.as_str().cmp(name)).ok();
    let depends: Vec<Vec<u32>> = packages
        .iter()
        .enumerate()
        .map(|(at, p)| {
            // Only installed packages, not the package itself, each once.
            let mut on: Vec<u32> = p.package.depends.iter().filter_map(|d| by_name(d)).map(|i| i as u32).collect();
            on.retain(|&i| i as usize != at);
            on.sort_unstable();
            on.dedup();
            on
        })
        .collect();
    for (package, depends) in packages.iter_mut().zip(depends) {
        package.depends = depends;
    }
    (packages, unowned)
}

/// A rootfs path as a document shows it: after `root` (`/` for an absolute path, `./` for SPDX's file names, which
/// are relative to the package). A name that is not UTF-8, or holds a backslash, is written with
/// [`crate::error::display_bytes`]'s escapes (`\\` for a backslash): every escaped name holds a backslash and no
/// other does, so two files never show the same name.
pub(super) fn shown_path(root: &str, path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(text) if !text.contains('\\') => format!("{root}{text}"),
        _ => format!("{root}{}", crate::error::display_bytes(path)),
    }
}

/// A JSON array written from an iterator made when it is written: a document's long lists are never held.
pub(super) struct Lazy<F>(pub F);

impl<F, I> serde::Serialize for Lazy<F>
where
    F: Fn() -> I,
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_shows_as_a_name_of_its_own() {
        assert_eq!(shown_path("./", "usr/share/caf\u{e9}".as_bytes()), "./usr/share/caf\u{e9}");
        assert_eq!(shown_path("/", b"a\xff"), "/a\\377");
        assert_eq!(shown_path("/", b"a\\377"), "/a\\\\377");
    }
}
