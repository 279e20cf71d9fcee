//! The SPDX 2.3 JSON writer (SPDX 2.3 sections 6-11 and its JSON schema), checked by the reference validator
//! (`pyspdxtools -i`, PyPI's spdx-tools) in `tests/sbom.rs`.
//!
//! The document DESCRIBES one package, the container image (`primaryPackagePurpose: CONTAINER`). The image CONTAINS
//! every installed package and every file no package owns; each package CONTAINS its files and DEPENDS_ON the
//! installed packages it depends on. A package that CONTAINS files has `filesAnalyzed: true` and their verification
//! code (spdx-tools refuses CONTAINS from a package whose files were not analysed), one of no file `false`.
//! Architectures are in a package's `comment` (SPDX 2.3 has no field for them) and in its package URL where its type
//! has one. Files are named relative to the image (`./usr/bin/ping`) and carry SHA-1 (required) and SHA-256.
//!
//! Ids are stable from one image to the next: a package's is its name (`SPDXRef-Package-libc6`), a file's a hash of
//! its path (`SPDXRef-File-` and 16 hex digits), each with its index appended in the unlikely case two collide.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer as _};
use sha1::{Digest as _, Sha1};

use super::generate::{Bill, Lazy, shown_path};
use super::license::Declared;
use crate::digest::Digest;
use crate::oci::config::rfc3339;

const DOCUMENT: &str = "SPDXRef-DOCUMENT";
const IMAGE: &str = "SPDXRef-Image";
const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: [String; 1],
    #[serde(rename = "licenseListVersion")]
    license_list_version: String,
}

#[derive(Serialize)]
struct Package<'a> {
    #[serde(rename = "SPDXID")]
    id: &'a str,
    name: &'a str,
    #[serde(rename = "versionInfo", skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(rename = "downloadLocation")]
    download_location: &'static str,
    #[serde(rename = "filesAnalyzed")]
    files_analyzed: bool,
    #[serde(rename = "packageVerificationCode", skip_serializing_if = "Option::is_none")]
    verification_code: Option<VerificationCode>,
    #[serde(rename = "licenseDeclared")]
    license_declared: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(rename = "externalRefs", skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef<'a>>,
    #[serde(rename = "primaryPackagePurpose", skip_serializing_if = "Option::is_none")]
    purpose: Option<&'static str>,
}

#[derive(Serialize)]
struct VerificationCode {
    #[serde(rename = "packageVerificationCodeValue")]
    value: String,
}

#[derive(Serialize)]
struct ExternalRef<'a> {
    #[serde(rename = "referenceCategory")]
    category: &'static str,
    #[serde(rename = "referenceType")]
    kind: &'static str,
    #[serde(rename = "referenceLocator")]
    locator: &'a str,
}

#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "SPDXID")]
    id: &'a str,
    #[serde(rename = "fileName")]
    name: String,
    checksums: [Checksum; 2],
}

#[derive(Serialize)]
struct Checksum {
    algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    value: String,
}

#[derive(Serialize)]
struct Extracted<'a> {
    #[serde(rename = "licenseId")]
    id: &'a str,
    #[serde(rename = "extractedText")]
    text: String,
    name: &'a str,
}

#[derive(Serialize)]
struct Relationship<'a> {
    #[serde(rename = "spdxElementId")]
    element: &'a str,
    #[serde(rename = "relationshipType")]
    kind: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    related: &'a str,
}

/// Writes `bill` as an SPDX 2.3 JSON document.
pub(super) fn write(bill: &Bill, out: impl Write) -> io::Result<()> {
    let subject = bill.subject;
    let name = subject.shown_name();
    let package_ids = package_ids(bill);
    let file_ids = file_ids(bill);
    let extracted: BTreeMap<&str, &str> = bill
        .packages
        .iter()
        .filter_map(|p| match &p.license {
            Some(Declared::Expression { references, .. }) => Some(references),
            _ => None,
        })
        .flatten()
        .map(|r| (r.id.as_str(), r.name.as_str()))
        .collect();
    let digest = subject.digest.to_string();
    let list_version = spdx::license_version().splitn(3, '.').take(2).collect::<Vec<_>>().join(".");

    let mut out = out;
    let mut json = serde_json::Serializer::new(&mut out);
    let mut doc = json.serialize_map(None)?;
    doc.serialize_entry("spdxVersion", "SPDX-2.3")?;
    doc.serialize_entry("dataLicense", "CC0-1.0")?;
    doc.serialize_entry("SPDXID", DOCUMENT)?;
    doc.serialize_entry("name", &name)?;
    // SPDX 2.3 section 6.5: a unique URI with no `#`; `spdx.org/spdxdocs` is the prefix the spec suggests to tools
    // without a site of their own.
    let namespace = format!("https://spdx.org/spdxdocs/imgcraft/{}-{}", uri_word(&name), bill.uuid);
    doc.serialize_entry("documentNamespace", &namespace)?;
    let creation = CreationInfo {
        created: rfc3339(subject.created),
        creators: [format!("Tool: imgcraft-{}", subject.tool_version)],
        license_list_version: list_version,
    };
    doc.serialize_entry("creationInfo", &creation)?;
    let image = || Package {
        id: IMAGE,
        name: &name,
        version: Some(&digest),
        download_location: NOASSERTION,
        files_analyzed: !bill.unowned.is_empty(),
        verification_code: verification_code(bill, &bill.unowned),
        license_declared: NOASSERTION,
        comment: Some(format!("A container image for linux/{}.", subject.platform)),
        external_refs: Vec::new(),
        purpose: Some("CONTAINER"),
    };
    let packages = bill.packages.iter().zip(&package_ids).map(|(p, id)| Package {
        id,
        name: &p.package.name,
        version: p.package.version.as_deref(),
        download_location: NOASSERTION,
        files_analyzed: !p.files.is_empty(),
        verification_code: verification_code(bill, &p.files),
        license_declared: p.license.as_ref().map_or(NOASSERTION, Declared::spdx_text),
        comment: p.package.architecture.as_ref().map(|a| format!("Architecture: {a}.")),
        external_refs: vec![ExternalRef { category: "PACKAGE-MANAGER", kind: "purl", locator: &p.purl }],
        purpose: None,
    });
    doc.serialize_entry("packages", &Lazy(|| std::iter::once(image()).chain(packages.clone())))?;
    doc.serialize_entry(
        "files",
        &Lazy(|| {
            bill.files.iter().zip(&file_ids).map(|(file, id)| File {
                id,
                // SPDX 2.3 section 8.1: relative to the package, `./` first; the image is the root.
                name: shown_path("./", file.path),
                checksums: [
                    Checksum { algorithm: "SHA1", value: hex::encode(file.sha1) },
                    Checksum { algorithm: "SHA256", value: hex::encode(file.sha256) },
                ],
            })
        }),
    )?;
    if !extracted.is_empty() {
        doc.serialize_entry(
            "hasExtractedLicensingInfos",
            &Lazy(|| {
                extracted.iter().map(|(id, name)| Extracted {
                    id,
                    text: format!(
                        "The package data names the licence `{name}`, which is not on the SPDX License List; its text \
                         is not part of the package data."
                    ),
                    name,
                })
            }),
        )?;
    }
    let relate = |element, kind, related| Relationship { element, kind, related };
    let (package_ids, file_ids) = (&package_ids, &file_ids);
    doc.serialize_entry(
        "relationships",
        &Lazy(|| {
            let describes = std::iter::once(relate(DOCUMENT, "DESCRIBES", IMAGE));
            let installed = package_ids.iter().map(move |id| relate(IMAGE, "CONTAINS", id));
            let unowned = bill.unowned.iter().map(|&i| relate(IMAGE, "CONTAINS", &file_ids[i as usize]));
            let owned = bill
                .packages
                .iter()
                .zip(package_ids)
                .flat_map(|(p, id)| p.files.iter().map(move |&i| relate(id, "CONTAINS", &file_ids[i as usize])));
            let depends =
                bill.packages.iter().zip(package_ids).flat_map(|(p, id)| {
                    p.depends.iter().map(move |&i| relate(id, "DEPENDS_ON", &package_ids[i as usize]))
                });
            describes.chain(installed).chain(unowned).chain(owned).chain(depends)
        }),
    )?;
    SerializeMap::end(doc)?;
    out.write_all(b"\n")
}

/// SPDX 2.3 section 7.9: the SHA-1 of the package's files' SHA-1s (lowercase hex), sorted and concatenated; a
/// package that CONTAINS files must say it analysed them (`filesAnalyzed`), and this code is what that analysis
/// gives. `None` for a package of no file.
fn verification_code(bill: &Bill, files: &[u32]) -> Option<VerificationCode> {
    if files.is_empty() {
        return None;
    }
    let mut sha1s: Vec<String> = files.iter().map(|&i| hex::encode(bill.files[i as usize].sha1)).collect();
    sha1s.sort_unstable();
    let mut hash = Sha1::new();
    for sha1 in &sha1s {
        hash.update(sha1.as_bytes());
    }
    Some(VerificationCode { value: hex::encode(hash.finalize()) })
}

/// `text` with every character outside SPDX's id characters (`A-Z a-z 0-9 . -`) as `-`.
fn id_word(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

/// `text` as one path segment of a URI.
fn uri_word(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '-' }).collect()
}

/// `SPDXRef-Package-<name>`, unique: a name that collides with an earlier one once cleaned gets its index.
fn package_ids(bill: &Bill) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(bill.packages.len());
    for (i, package) in bill.packages.iter().enumerate() {
        let mut id = format!("SPDXRef-Package-{}", id_word(&package.package.name));
        if !seen.insert(id.clone()) {
            id = format!("{id}-{i}");
            seen.insert(id.clone());
        }
        ids.push(id);
    }
    ids
}

/// `SPDXRef-File-<16 hex digits of the path's SHA-256>`, unique: a collision gets the file's index.
fn file_ids(bill: &Bill) -> Vec<String> {
    let mut seen = HashSet::with_capacity(bill.files.len());
    bill.files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let digest = Digest::of(file.path);
            let hash = &digest.hex()[..16];
            let id = format!("SPDXRef-File-{hash}");
            if seen.insert(hash.to_string()) { id } else { format!("{id}-{i}") }
        })
        .collect()
}
