//! SBOM files the user gives to attach: recognised by their content, never by their name, and attached unchanged.
//!
//! Accepted: SPDX 2.x JSON (`spdxVersion: SPDX-2.2`, `SPDX-2.3`), SPDX 3.0 JSON-LD (what Yocto writes since
//! walnascar: an `@context` of `https://spdx.org/rdf/3.0.x/spdx-context.jsonld` and an `@graph` array), CycloneDX
//! JSON (`bomFormat: CycloneDX`, any `specVersion`), and Yocto scarthgap's image SBOM archive `*.spdx.tar.zst`
//! (create-spdx-2.2's `combine_spdx`: a zstd-compressed tar holding the image's SPDX 2.2 document first, then every
//! document it references, then an `index.json`), attached whole so that every referenced document travels along.
//!
//! Media types, each the artifact's `artifactType` and its one layer's `mediaType`:
//! - SPDX 2.x: `application/spdx+json`, registered with IANA (2021), what `oras attach` users and registries expect.
//!   cosign's deprecated `attach sbom` wrote `text/spdx+json`, which its maintainers agree is not the registered one
//!   (sigstore/cosign#3515).
//! - SPDX 3: `application/spdx3+json`, registered with IANA for SPDX 3 JSON-LD, which says it is not compatible with
//!   `application/spdx+json` (another data model): a consumer asking for SPDX 2 must not be handed SPDX 3.
//! - CycloneDX: `application/vnd.cyclonedx+json`, registered with IANA, what cosign and Syft write.
//! - The Yocto archive: no registered type exists, and it is not one JSON document, so it gets one in imgcraft's
//!   vendor tree, spelled as OCI spells compressed tars: `application/vnd.imgcraft.spdx-archive.v1.tar+zstd`.
//!
//! Some registries accept only media types they know (GitLab's refused `application/spdx+json` for a while): such a
//! refusal is the registry's, reported as such where the artifact is pushed.
//!
//! Every read is bounded: a JSON SBOM up to [`MAX_JSON_SBOM`] (parsed as a stream into the few fields that tell the
//! format, so memory stays small whatever the document), an archive up to [`MAX_ARCHIVE_SBOM`], of which only the
//! first member is decoded.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::head::{self, Head};
use crate::error::{Error, Result};
use crate::rootfs::decode::{InputCompression, SNIFF_LEN};
use crate::tar::entry::EntryKind;
use crate::tar::path::shown_name;
use crate::tar::reader::TarReader;

/// The largest JSON SBOM attached: Yocto's SPDX 3 documents of large images (every file of every package, with
/// their licences and build relationships) take tens of MiB.
pub const MAX_JSON_SBOM: u64 = 256 << 20;

/// The largest Yocto SPDX archive attached: it holds a document per package and per recipe, a few MiB compressed
/// for a small image and far more with `SPDX_INCLUDE_SOURCES`.
pub const MAX_ARCHIVE_SBOM: u64 = 1 << 30;

pub const SPDX_JSON: &str = "application/spdx+json";
pub const SPDX3_JSON: &str = "application/spdx3+json";
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
pub const YOCTO_SPDX_ARCHIVE: &str = "application/vnd.imgcraft.spdx-archive.v1.tar+zstd";

/// What an SBOM file turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX 2.x JSON; `version` as the document says it (`2.3`).
    Spdx2 { version: String },
    /// SPDX 3 JSON-LD.
    Spdx3,
    /// CycloneDX JSON; `version` is its `specVersion` (`1.6`).
    CycloneDx { version: String },
    /// Yocto's `*.spdx.tar.zst`: SPDX 2.x documents in a zstd-compressed tar.
    YoctoSpdxArchive,
}

impl SbomFormat {
    pub fn media_type(&self) -> &'static str {
        match self {
            SbomFormat::Spdx2 { .. } => SPDX_JSON,
            SbomFormat::Spdx3 => SPDX3_JSON,
            SbomFormat::CycloneDx { .. } => CYCLONEDX_JSON,
            SbomFormat::YoctoSpdxArchive => YOCTO_SPDX_ARCHIVE,
        }
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SbomFormat::Spdx2 { version } => write!(f, "SPDX {version} JSON"),
            SbomFormat::Spdx3 => f.write_str("SPDX 3 JSON-LD"),
            SbomFormat::CycloneDx { version } => write!(f, "CycloneDX {version} JSON"),
            SbomFormat::YoctoSpdxArchive => f.write_str("Yocto SPDX archive (.spdx.tar.zst)"),
        }
    }
}

/// An SBOM file recognised for attaching. Its bytes are attached as they are on disk: whoever copies them should
/// check that `size` still holds, since the file may change between recognising and attaching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SbomFile {
    pub path: PathBuf,
    pub format: SbomFormat,
    pub media_type: &'static str,
    pub size: u64,
}

impl SbomFile {
    /// The `artifactType` of the artifact manifest that carries it: the SBOM's own media type, as oras and the
    /// image-spec's artifact guidance do for single-file artifacts.
    pub fn artifact_type(&self) -> &'static str {
        self.media_type
    }
}

/// What is said after the path of a file that is not an SBOM.
const ACCEPTED: &str = "imgcraft attaches SPDX 2.x JSON, SPDX 3 JSON-LD, CycloneDX JSON and Yocto's .spdx.tar.zst";

/// Recognises the SBOM at `path` by its content, or says in one line why it is not one.
pub fn recognise(path: &Path) -> Result<SbomFile> {
    let refuse = |problem: String| Error::BadInput { input: path.display().to_string(), problem };
    let meta = std::fs::metadata(path).map_err(|e| {
        refuse(match e.kind() {
            std::io::ErrorKind::NotFound => "no such SBOM file".into(),
            _ => format!("cannot read the SBOM file: {e}"),
        })
    })?;
    if meta.is_dir() {
        return Err(refuse(format!("a directory, not an SBOM file ({ACCEPTED})")));
    }
    if !meta.is_file() {
        return Err(refuse(format!("not a regular file, so not an SBOM file ({ACCEPTED})")));
    }
    let size = meta.len();
    if size == 0 {
        return Err(refuse(format!("empty, not an SBOM ({ACCEPTED})")));
    }
    let mut file = File::open(path).map_err(|e| refuse(format!("cannot open the SBOM file: {e}")))?;
    let mut sniffed = [0u8; 512];
    let sniffed = read_head(&mut file, &mut sniffed).map_err(|e| refuse(format!("cannot read the SBOM file: {e}")))?;

    if sniffed.starts_with(b"PK\x03\x04") {
        return Err(refuse(format!("a zip archive, not an SBOM ({ACCEPTED})")));
    }
    let format = match InputCompression::sniff(&sniffed[..sniffed.len().min(SNIFF_LEN)]) {
        Ok(InputCompression::Zstd) => {
            if size > MAX_ARCHIVE_SBOM {
                return Err(refuse(format!(
                    "a zstd-compressed file of {size} bytes, larger than the {} MiB accepted for an SBOM archive",
                    MAX_ARCHIVE_SBOM >> 20
                )));
            }
            check_archive(path)?;
            SbomFormat::YoctoSpdxArchive
        }
        Ok(InputCompression::None) if is_tar(sniffed) => {
            return Err(refuse(format!("a tar archive, not an SBOM ({ACCEPTED})")));
        }
        Ok(InputCompression::None) => {
            if size > MAX_JSON_SBOM {
                return Err(refuse(format!(
                    "{size} bytes, larger than the {} MiB accepted for a JSON SBOM",
                    MAX_JSON_SBOM >> 20
                )));
            }
            let file = File::open(path).map_err(|e| refuse(format!("cannot open the SBOM file: {e}")))?;
            let head = Head::read(BufReader::new(file.take(MAX_JSON_SBOM)))
                .map_err(|problem| refuse(format!("{problem} ({ACCEPTED})")))?;
            head.format().map_err(|problem| refuse(format!("{problem} ({ACCEPTED})")))?
        }
        Ok(other) => return Err(refuse(format!("a {other}-compressed file, not an SBOM ({ACCEPTED})"))),
        Err(what) => return Err(refuse(format!("{what}: not an SBOM ({ACCEPTED})"))),
    };
    Ok(SbomFile { path: path.to_path_buf(), media_type: format.media_type(), format, size })
}

/// Reads up to `buf.len()` bytes from the start of `file`.
fn read_head<'a>(file: &mut File, buf: &'a mut [u8]) -> std::io::Result<&'a [u8]> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(&buf[..filled])
}

/// Whether the first block is a tar header (POSIX `ustar` magic at offset 257, GNU's `ustar  ` included).
fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Checks that a zstd-compressed file is a tar whose first member is an SPDX 2.x JSON document, as Yocto's image
/// SBOM archives are, decoding no further than that member.
fn check_archive(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let refuse = |problem: String| Error::BadInput { input: shown.clone(), problem };
    let not_yocto =
        |problem: &str| refuse(format!("a zstd-compressed file that is not a Yocto SPDX archive: {problem}"));
    let file = File::open(path).map_err(|e| refuse(format!("cannot open the SBOM file: {e}")))?;
    let decoded = InputCompression::Zstd.decoder(file.take(MAX_ARCHIVE_SBOM));
    let mut tar = TarReader::new(decoded, &shown, InputCompression::Zstd);
    let first = tar.next_entry().map_err(|e| match e {
        Error::BadInput { problem, .. } => not_yocto(&problem),
        other => other,
    })?;
    let Some(first) = first else {
        return Err(not_yocto("the tar archive is empty"));
    };
    let member = shown_name(&first.path);
    let EntryKind::File { size } = first.kind else {
        return Err(not_yocto(&format!(
            "its first member `{member}` is a {}, not an SPDX document",
            first.kind.name()
        )));
    };
    if size > MAX_JSON_SBOM {
        return Err(not_yocto(&format!(
            "its first member `{member}` takes {size} bytes, more than the {} MiB accepted for an SPDX document",
            MAX_JSON_SBOM >> 20
        )));
    }
    let head = Head::read(BufReader::new(tar.data())).map_err(|problem| {
        not_yocto(&format!("its first member `{member}` is not an SPDX 2 JSON document: {problem}"))
    })?;
    match head.format() {
        Ok(SbomFormat::Spdx2 { .. }) => Ok(()),
        Ok(other) => Err(not_yocto(&format!("its first member `{member}` is {other}, not SPDX 2 JSON"))),
        Err(problem) => {
            Err(not_yocto(&format!("its first member `{member}` is not an SPDX 2 JSON document: {problem}")))
        }
    }
}

impl Head {
    /// The format the document's fields tell, or why they tell none.
    fn format(&self) -> std::result::Result<SbomFormat, String> {
        let spdx2 = self.spdx_version.is_some();
        let cyclonedx = self.bom_format.is_some();
        let spdx3 = self.context.is_some();
        if [spdx2, cyclonedx, spdx3].iter().filter(|&&b| b).count() > 1 {
            return Err("a JSON document that claims to be more than one SBOM format (spdxVersion, bomFormat, \
                        @context together)"
                .into());
        }
        if let Some(version) = &self.spdx_version {
            let version = version.text("spdxVersion")?;
            return match version.strip_prefix("SPDX-2.") {
                Some(minor) if !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(SbomFormat::Spdx2 { version: format!("2.{minor}") })
                }
                _ => Err(format!("a document of spdxVersion `{}`, not SPDX 2.x JSON", head::shown(version))),
            };
        }
        if let Some(format) = &self.bom_format {
            let format = format.text("bomFormat")?;
            if format != "CycloneDX" {
                return Err(format!("a document of bomFormat `{}`, not CycloneDX", head::shown(format)));
            }
            let version = self.spec_version.as_ref().ok_or("a CycloneDX document with no specVersion")?;
            let version = version.text("specVersion")?;
            let valid = version.split_once('.').is_some_and(|(major, minor)| {
                [major, minor].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
            if !valid {
                return Err(format!("a CycloneDX document of specVersion `{}`", head::shown(version)));
            }
            return Ok(SbomFormat::CycloneDx { version: version.to_string() });
        }
        if let Some(context) = &self.context {
            if !context.spdx3 {
                return Err("a JSON-LD document whose @context is not SPDX 3's (https://spdx.org/rdf/3.0.x/...)".into());
            }
            return match self.graph {
                Some(true) => Ok(SbomFormat::Spdx3),
                Some(false) => Err("an SPDX 3 JSON-LD document whose @graph is not an array".into()),
                None => Err("an SPDX 3 JSON-LD document with no @graph".into()),
            };
        }
        Err("a JSON document that is not an SBOM: it has no spdxVersion (SPDX 2), bomFormat (CycloneDX) or SPDX 3 \
             @context"
            .into())
    }
}

#[cfg(test)]
mod tests;
