//! Recognising SBOM files by content: each accepted format whatever the file is named, and every refusal as one
//! line naming the file and what it is instead.

use std::collections::BTreeMap;

use super::*;
use crate::tar::entry::Entry;
use crate::tar::writer::TarWriter;

const SPDX23: &str = r#"{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
    "name": "core-image-minimal", "packages": [{"name": "busybox", "spdxVersion": ["ignored", "nested"]}]}"#;

/// What Yocto walnascar's create-spdx-3.0 writes, cut short.
const SPDX3: &str = r#"{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": [
    {"type": "CreationInfo", "@id": "_:CreationInfo1", "specVersion": "3.0.1"},
    {"type": "software_Package", "spdxId": "http://spdx.org/spdxdocs/busybox", "name": "busybox"}]}"#;

const CYCLONEDX: &str = r#"{"$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json", "bomFormat": "CycloneDX",
    "specVersion": "1.5", "version": 1, "components": []}"#;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A zstd-compressed tar of `members` (name, bytes), as Yocto's combine_spdx writes it.
fn tar_zst(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = TarWriter::new(Vec::new());
    for (name, bytes) in members {
        let kind =
            if name.ends_with('/') { EntryKind::Directory } else { EntryKind::File { size: bytes.len() as u64 } };
        let path = name.trim_end_matches('/').as_bytes().to_vec();
        let entry = Entry { path, kind, mode: 0o644, uid: 0, gid: 0, mtime: 0, xattrs: BTreeMap::new() };
        tar.append(&entry, &mut &bytes[..]).unwrap();
    }
    zstd::encode_all(&tar.finish().unwrap()[..], 3).unwrap()
}

/// The one-line refusal of `path`: it starts with the path and says `problem`.
fn assert_refused(path: &Path, problem: &str) {
    let err = recognise(path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("`{}`: ", path.display())), "{err}");
    assert!(err.contains(problem), "{err}\nlacks: {problem}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn json_sboms_are_recognised_by_content_whatever_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("image.json", SPDX23, SbomFormat::Spdx2 { version: "2.3".into() }, "application/spdx+json"),
        ("a.txt", &SPDX23.replace("SPDX-2.3", "SPDX-2.2"), SbomFormat::Spdx2 { version: "2.2".into() }, SPDX_JSON),
        ("image.rootfs.spdx.json", SPDX3, SbomFormat::Spdx3, "application/spdx3+json"),
        ("bom", CYCLONEDX, SbomFormat::CycloneDx { version: "1.5".into() }, "application/vnd.cyclonedx+json"),
    ];
    for (name, text, format, media_type) in cases {
        let path = write(&dir, name, text.as_bytes());
        let sbom = recognise(&path).unwrap();
        assert_eq!(sbom, SbomFile { path, format, media_type, size: text.len() as u64 });
        assert_eq!(sbom.artifact_type(), media_type);
    }
    let listed = SPDX3.replace(
        r#""https://spdx.org/rdf/3.0.1/spdx-context.jsonld""#,
        r#"["https://spdx.org/rdf/3.0.1/spdx-context.jsonld", {"x": 1}]"#,
    );
    assert_eq!(recognise(&write(&dir, "listed", listed.as_bytes())).unwrap().format, SbomFormat::Spdx3);
}

#[test]
fn a_yocto_spdx_archive_is_recognised_by_its_first_member() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tar_zst(&[
        ("core-image-minimal-qemuarm64.rootfs.spdx.json", SPDX23.replace("SPDX-2.3", "SPDX-2.2").as_bytes()),
        ("recipe-busybox.spdx.json", SPDX23.as_bytes()),
        ("index.json", br#"{"documents": []}"#),
    ]);
    let path = write(&dir, "sbom.bin", &archive);
    let sbom = recognise(&path).unwrap();
    assert_eq!(sbom.format, SbomFormat::YoctoSpdxArchive);
    assert_eq!(sbom.media_type, "application/vnd.imgcraft.spdx-archive.v1.tar+zstd");
    assert_eq!(sbom.size, archive.len() as u64);
}

#[test]
fn archives_of_something_else_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = write(&dir, "rootfs.spdx.tar.zst", &tar_zst(&[("./", b""), ("bin/sh", b"x")]));
    assert_refused(&rootfs, "not a Yocto SPDX archive: its first member `./` is a directory, not an SPDX document");
    let cyclonedx = write(&dir, "c.spdx.tar.zst", &tar_zst(&[("bom.json", CYCLONEDX.as_bytes())]));
    assert_refused(&cyclonedx, "its first member `bom.json` is CycloneDX 1.5 JSON, not SPDX 2 JSON");
    let text = write(&dir, "t.spdx.tar.zst", &tar_zst(&[("notes.txt", b"hello")]));
    assert_refused(&text, "its first member `notes.txt` is not an SPDX 2 JSON document: not JSON");
    let empty = write(&dir, "e.spdx.tar.zst", &tar_zst(&[]));
    assert_refused(&empty, "the tar archive is empty");
    let not_tar = write(&dir, "n.spdx.tar.zst", &zstd::encode_all(&b"just text"[..], 3).unwrap());
    assert_refused(&not_tar, "a zstd-compressed file that is not a Yocto SPDX archive");
    let mut plain = TarWriter::new(Vec::new());
    let entry = Entry {
        path: b"a.spdx.json".to_vec(),
        kind: EntryKind::File { size: 2 },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: BTreeMap::new(),
    };
    plain.append(&entry, &mut &b"{}"[..]).unwrap();
    assert_refused(&write(&dir, "plain.tar", &plain.finish().unwrap()), "a tar archive, not an SBOM");
    let gzip = write(&dir, "g.json.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    assert_refused(&gzip, "a gzip-compressed file, not an SBOM");
    assert_refused(&write(&dir, "sbom.zip", b"PK\x03\x04rest"), "a zip archive, not an SBOM");
}

#[test]
fn json_that_is_no_sbom_is_refused_with_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    for (text, problem) in [
        ("{\"name\": 1", "not JSON: EOF while parsing"),
        ("hello", "not JSON: expected value at line 1 column 1"),
        ("{\"a\": 1} trailing", "not JSON: trailing characters"),
        ("[\"SPDX-2.3\"]", "a JSON document that is not an SBOM: invalid type: sequence, expected a JSON object"),
        ("{\"name\": \"x\"}", "a JSON document that is not an SBOM: it has no spdxVersion"),
        ("{\"spdxVersion\": \"SPDX-1.2\"}", "a document of spdxVersion `SPDX-1.2`, not SPDX 2.x JSON"),
        ("{\"spdxVersion\": 2.3}", "a JSON document whose spdxVersion is a number, not a string"),
        ("{\"spdxVersion\": \"SPDX-2.3\", \"spdxVersion\": \"SPDX-2.3\"}", "the key `spdxVersion` appears twice"),
        ("{\"bomFormat\": \"SWID\"}", "a document of bomFormat `SWID`, not CycloneDX"),
        ("{\"bomFormat\": \"CycloneDX\"}", "a CycloneDX document with no specVersion"),
        ("{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"one\"}", "a CycloneDX document of specVersion `one`"),
        ("{\"@context\": \"https://schema.org/\", \"@graph\": []}", "whose @context is not SPDX 3's"),
        (
            "{\"@context\": \"https://spdx.org/rdf/3.0.1/spdx-context.jsonld\"}",
            "an SPDX 3 JSON-LD document with no @graph",
        ),
        ("{\"@context\": \"https://spdx.org/rdf/3.0.1/x\", \"@graph\": {}}", "whose @graph is not an array"),
        ("{\"spdxVersion\": \"SPDX-2.3\", \"bomFormat\": \"CycloneDX\"}", "claims to be more than one SBOM format"),
        (&format!("{}{}", "[".repeat(200), "]".repeat(200)), "not an SBOM"),
    ] {
        let path = write(&dir, "sbom.json", text.as_bytes());
        assert_refused(&path, problem);
        assert_refused(&path, "(imgcraft attaches SPDX 2.x JSON, SPDX 3 JSON-LD, CycloneDX JSON");
    }
}

#[test]
fn empty_missing_oversized_and_non_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&write(&dir, "empty.json", b""), "empty, not an SBOM");
    assert_refused(&dir.path().join("missing.spdx.json"), "no such SBOM file");
    assert_refused(dir.path(), "a directory, not an SBOM file");
    let big = dir.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len(MAX_JSON_SBOM + 1).unwrap();
    assert_refused(&big, "larger than the 256 MiB accepted for a JSON SBOM");
    assert_refused(Path::new("/dev/null"), "not a regular file");
}
