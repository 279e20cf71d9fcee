//! Generated SBOMs (issue 13), through the library as the conversion uses it: a rootfs tarball made here is read
//! with the crate's tar reader and normaliser into a `FileInventory`, its ownership comes from the parsers the tool
//! uses (dpkg, opkg, Yocto pkgdata, or none), and each SPDX 2.3 and CycloneDX 1.6 document must pass the reference
//! validators from PyPI, `pyspdxtools -i` (spdx-tools) and cyclonedx-python-lib's strict JSON validator (both
//! installed by scripts/setup-test-env.sh; a missing one fails the test), and say what the inputs hold.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use common::Workspace;
use common::tar::{Entry, Kind, archive};
use imgcraft::digest::Digest;
use imgcraft::layering::packages::{Ownership, database, pkgdata};
use imgcraft::oci::platform::Platform;
use imgcraft::progress::Progress;
use imgcraft::rootfs::source::RootfsSource;
use imgcraft::rootfs::{input, normalize::Normalizer};
use imgcraft::sbom::{FileInventory, GeneratedFormat, SbomSubject, generate};

/// The packages every database and pkgdata here describes: name, recipe (pkgdata's PN), version, licence, paths.
const PACKAGES: &[(&str, &str, &str, &str, &[&str])] = &[
    ("busybox", "busybox", "1.36.1-r0", "GPL-2.0-only & bzip2-1.0.6", &["bin/busybox", "bin/sh"]),
    ("libc6", "glibc", "2.39+git0-r0", "GPL-2.0+ & LGPL-2.1+", &["lib/libc.so.6"]),
    ("libgcc1", "libgcc", "13.3.0-r0", "GPL-3.0-with-GCC-exception", &["lib/libgcc_s.so.1"]),
    (
        "shadow",
        "shadow",
        "4.13-r1",
        "BSD-3-Clause | Artistic-1.0-Perl",
        &["etc/passwd", "usr/bin/chpasswd", "usr/bin/passwd"],
    ),
    ("vendor-app", "vendor-app", "2.0-r0", "Proprietary", &["usr/bin/app"]),
];

const CHPASSWD: &[u8] = b"#!/bin/sh\necho chpasswd\n";

/// The rootfs: owned and unowned files, a symlink, a hardlink (listed with its target's content).
fn rootfs() -> Vec<Entry> {
    vec![
        Entry::dir("bin"),
        Entry::file("bin/busybox", b"\x7fELF busybox").mode(0o755),
        Entry::symlink("bin/sh", "busybox"),
        Entry::dir("etc"),
        Entry::file("etc/hostname", b"box\n"),
        Entry::file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        Entry::dir("lib"),
        Entry::file("lib/libc.so.6", b"\x7fELF libc"),
        Entry::file("lib/libgcc_s.so.1", b"\x7fELF libgcc"),
        Entry::dir("usr"),
        Entry::dir("usr/bin"),
        Entry::file("usr/bin/app", b"\x7fELF app"),
        Entry::file("usr/bin/chpasswd", CHPASSWD).mode(0o755),
        Entry::new("usr/bin/passwd", Kind::Hardlink("usr/bin/chpasswd".into())).mode(0o755),
        Entry::dir("var"),
        Entry::dir("var/lib"),
    ]
}

/// dpkg's or opkg's database under `var/lib/TOOL`; opkg's status has the licences (OE-core's opkg writes them).
fn database(tool: &str) -> Vec<Entry> {
    let dir = format!("var/lib/{tool}");
    let (arch, state) =
        if tool == "dpkg" { ("amd64", "install ok installed") } else { ("core2-64", "install user installed") };
    let mut entries = vec![Entry::dir(&dir), Entry::dir(&format!("{dir}/info"))];
    let mut status = String::new();
    for (name, _, version, license, paths) in PACKAGES {
        let license = if tool == "opkg" { format!("License: {license}\n") } else { String::new() };
        let depends = if *name == "libc6" { "" } else { "Depends: libc6 (>= 2.39)\n" };
        status += &format!(
            "Package: {name}\nVersion: {version}\n{depends}Status: {state}\nArchitecture: {arch}\n{license}\n"
        );
        let list: String = paths.iter().map(|p| format!("/{p}\n")).collect();
        entries.push(Entry::file(&format!("{dir}/info/{name}.list"), list.as_bytes()));
    }
    entries.push(Entry::file(&format!("{dir}/status"), status.as_bytes()));
    entries
}

/// A Yocto PKGDATA_DIR for [`PACKAGES`] as OE-core's emit_pkgdata writes it, and the image manifest naming them.
fn write_pkgdata(dir: &Path) -> (PathBuf, PathBuf) {
    let pkgdata = dir.join("pkgdata");
    std::fs::create_dir_all(pkgdata.join("runtime-reverse")).unwrap();
    std::fs::create_dir_all(pkgdata.join("runtime")).unwrap();
    let mut manifest = String::new();
    for (name, recipe, version, license, paths) in PACKAGES {
        let (pv, pr) = version.rsplit_once('-').unwrap();
        let files: Vec<String> = paths.iter().map(|p| format!("\"/{p}\": 10")).collect();
        let rdepends = if *name == "libc6" { String::new() } else { format!("RDEPENDS:{name}: libc6 (>= 2.39)\n") };
        let pv = if *recipe == "glibc" { "2.39+git" } else { pv };
        let pkgv = if *recipe == "glibc" { "2.39+git0" } else { pv };
        let runtime = format!(
            "PN: {recipe}\nPV: {pv}\nPR: {pr}\nPKGV: {pkgv}\nPKGR: {pr}\nLICENSE:{name}: {license}\n{rdepends}\
             PKG:{name}: {name}\nFILES_INFO:{name}: {{{}}}\nPKGSIZE:{name}: 10\n",
            files.join(", ")
        );
        std::fs::write(pkgdata.join("runtime").join(name), runtime).unwrap();
        std::os::unix::fs::symlink(format!("../runtime/{name}"), pkgdata.join("runtime-reverse").join(name)).unwrap();
        manifest += &format!("{name} core2-64 {version}\n");
    }
    let manifest_path = dir.join("image.manifest");
    std::fs::write(&manifest_path, manifest).unwrap();
    (pkgdata, manifest_path)
}

fn tarball(work: &Workspace, name: &str, mut entries: Vec<Entry>) -> PathBuf {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    work.write(name, &archive(&entries))
}

/// The file list of `tar` as the conversion collects it: the crate's reader and normaliser, every entry's data read
/// through the inventory's hashing wrapper (here nothing else reads it, as for a file a base image already has).
fn inventory(tar: &Path) -> FileInventory {
    let name = tar.display().to_string();
    let mut rootfs = input::open_path(tar, &name, &Progress::new(false)).unwrap();
    let mut normalizer = Normalizer::new(&name, None);
    let mut inventory = FileInventory::new();
    while let Some(entry) = rootfs.entries.next_entry().unwrap() {
        let Some(entry) = normalizer.normalize(entry).unwrap() else { continue };
        inventory.hashing(&entry, rootfs.entries.data()).finish().unwrap();
    }
    inventory
}

fn subject() -> SbomSubject {
    SbomSubject {
        name: Some("example.com/team/app:1.2".into()),
        digest: Digest::of(b"the image manifest"),
        created: 1_700_000_000,
        platform: "amd64".parse::<Platform>().unwrap(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Both documents for one input, each validated by its reference validator, generated twice to the same bytes.
fn documents(work: &Workspace, case: &str, files: &FileInventory, ownership: Option<&Ownership>) -> (Value, Value) {
    let subject = subject();
    let spdx = generate(GeneratedFormat::Spdx23, &subject, files, ownership);
    let cyclonedx = generate(GeneratedFormat::CycloneDx16, &subject, files, ownership);
    assert_eq!(spdx, generate(GeneratedFormat::Spdx23, &subject, files, ownership), "{case}: SPDX is not reproducible");
    assert_eq!(cyclonedx, generate(GeneratedFormat::CycloneDx16, &subject, files, ownership), "{case}: CycloneDX");
    let spdx_path = work.write(&format!("{case}.spdx.json"), &spdx);
    let cyclonedx_path = work.write(&format!("{case}.cdx.json"), &cyclonedx);
    validate_spdx(&spdx_path);
    validate_cyclonedx(&cyclonedx_path);
    (serde_json::from_slice(&spdx).unwrap(), serde_json::from_slice(&cyclonedx).unwrap())
}

/// `pyspdxtools -i FILE` (PyPI spdx-tools) exits 0 and reports nothing only for a valid document. It runs as
/// `python3 -m` its module, the program the `pyspdxtools` script starts, so that both validators come from the one
/// `python3` that scripts/setup-test-env.sh installed them for, wherever pip put its scripts.
fn validate_spdx(path: &Path) {
    let out = Command::new("python3")
        .args(["-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && !said.contains("invalid"),
        "{}: pyspdxtools (pip install spdx-tools, as scripts/setup-test-env.sh does): {said}",
        path.display()
    );
}

/// cyclonedx-python-lib's strict JSON validator for CycloneDX 1.6 returns None only for a valid document.
fn validate_cyclonedx(path: &Path) {
    const CHECK: &str = "import sys\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        from cyclonedx.schema import SchemaVersion\n\
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
        sys.exit(0 if error is None else f'invalid: {error}')\n";
    let out = Command::new("python3").args(["-c", CHECK]).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{}: cyclonedx-python-lib (pip install 'cyclonedx-python-lib[json-validation]', as scripts/setup-test-env.sh \
         does): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn find<'a>(items: &'a Value, key: &str, value: &str) -> &'a Value {
    let found = items.as_array().unwrap().iter().find(|item| item[key] == value);
    found.unwrap_or_else(|| panic!("no {key} = {value} in {items}"))
}

/// What the SPDX document says of `name`: its package, and the ids of the files it CONTAINS.
fn spdx_package<'a>(doc: &'a Value, name: &str) -> (&'a Value, Vec<&'a str>) {
    let package = find(&doc["packages"], "name", name);
    let contains = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["spdxElementId"] == package["SPDXID"] && r["relationshipType"] == "CONTAINS");
    (package, contains.map(|r| r["relatedSpdxElement"].as_str().unwrap()).collect())
}

/// Every path of a regular file or hardlink of the rootfs, and the database files of `tool`.
fn file_count(tool: Option<&str>) -> usize {
    8 + tool.map_or(0, |tool| database(tool).iter().filter(|e| matches!(e.kind, Kind::File(_))).count())
}

/// What every case's documents must say whatever the package data: the image, every file with its digests.
fn assert_image_and_files(spdx: &Value, cyclonedx: &Value, files: usize) {
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let describes = find(&spdx["relationships"], "relationshipType", "DESCRIBES");
    assert_eq!(describes["relatedSpdxElement"], "SPDXRef-Image");
    let image = find(&spdx["packages"], "SPDXID", "SPDXRef-Image");
    assert_eq!(
        (image["name"].as_str(), image["primaryPackagePurpose"].as_str()),
        (Some("example.com/team/app:1.2"), Some("CONTAINER"))
    );
    assert_eq!(spdx["files"].as_array().unwrap().len(), files);
    let passwd = find(&spdx["files"], "fileName", "./usr/bin/passwd");
    let sha256 = find(&passwd["checksums"], "algorithm", "SHA256");
    assert_eq!(sha256["checksumValue"], sha256_hex(CHPASSWD), "a hardlink lists its target's content");
    assert!(spdx["files"].as_array().unwrap().iter().all(|f| f["fileName"] != "./bin/sh"), "symlinks have no content");

    assert_eq!((cyclonedx["bomFormat"].as_str(), cyclonedx["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
    let component = &cyclonedx["metadata"]["component"];
    assert_eq!(
        (component["type"].as_str(), component["version"].as_str()),
        (Some("container"), Some(subject().digest.to_string().as_str()))
    );
    let mut listed = 0;
    for top in cyclonedx["components"].as_array().unwrap() {
        listed += if top["type"] == "file" { 1 } else { top["components"].as_array().map_or(0, Vec::len) };
    }
    assert_eq!(listed, files, "every file once, in its package or at the top");
}

/// The package data cases: `libc6` as each source describes it, in both documents.
fn assert_packages(spdx: &Value, cyclonedx: &Value, purl: &str, license: Option<&str>, version: &str) {
    assert_eq!(spdx["packages"].as_array().unwrap().len(), 1 + PACKAGES.len());
    let (libc, contains) = spdx_package(spdx, "libc6");
    assert_eq!(libc["versionInfo"], version);
    assert_eq!(find(&libc["externalRefs"], "referenceType", "purl")["referenceLocator"], purl);
    assert_eq!(libc["licenseDeclared"], license.unwrap_or("NOASSERTION"));
    let file = find(&spdx["files"], "fileName", "./lib/libc.so.6");
    assert_eq!(contains, [file["SPDXID"].as_str().unwrap()]);
    let (shadow, contains) = spdx_package(spdx, "shadow");
    assert_eq!(contains.len(), 3, "{shadow}");
    let (_, by_image) = spdx_package(spdx, "example.com/team/app:1.2");
    let hostname = find(&spdx["files"], "fileName", "./etc/hostname");
    assert!(by_image.contains(&hostname["SPDXID"].as_str().unwrap()), "an unowned file belongs to the image");
    let depends = spdx["relationships"].as_array().unwrap().iter().filter(|r| r["relationshipType"] == "DEPENDS_ON");
    assert_eq!(depends.count(), PACKAGES.len() - 1, "everything depends on libc6");

    let libc = find(&cyclonedx["components"], "name", "libc6");
    assert_eq!(
        (libc["type"].as_str(), libc["version"].as_str(), libc["purl"].as_str()),
        (Some("library"), Some(version), Some(purl))
    );
    assert_eq!(libc["licenses"][0]["expression"].as_str(), license);
    let file = find(&libc["components"], "name", "/lib/libc.so.6");
    assert_eq!(find(&file["hashes"], "alg", "SHA-256")["content"], sha256_hex(b"\x7fELF libc"));
    let busybox = find(&cyclonedx["dependencies"], "ref", "package:busybox");
    assert_eq!(busybox["dependsOn"], serde_json::json!(["package:libc6"]));
}

/// The licence cases: a name off the SPDX License List is a declared `LicenseRef-`.
fn assert_license_reference(spdx: &Value, cyclonedx: &Value) {
    let (libgcc, _) = spdx_package(spdx, "libgcc1");
    assert_eq!(libgcc["licenseDeclared"], "GPL-3.0-only WITH GCC-exception-3.1");
    let (app, _) = spdx_package(spdx, "vendor-app");
    assert_eq!(app["licenseDeclared"], "LicenseRef-Proprietary");
    let extracted = find(&spdx["hasExtractedLicensingInfos"], "licenseId", "LicenseRef-Proprietary");
    assert_eq!(extracted["name"], "Proprietary");
    let app = find(&cyclonedx["components"], "name", "vendor-app");
    assert_eq!(app["licenses"][0]["expression"], "LicenseRef-Proprietary");
}

#[test]
fn a_dpkg_rootfs_gets_valid_documents_with_deb_package_urls() {
    let work = Workspace::new();
    let tar = tarball(&work, "dpkg.tar", [rootfs(), database("dpkg")].concat());
    let ownership = database::read(&RootfsSource::new(&tar, "dpkg.tar", &work.path(".")), &Progress::new(false))
        .unwrap()
        .expect("a dpkg database");
    let (spdx, cyclonedx) = documents(&work, "dpkg", &inventory(&tar), Some(&ownership));
    assert_image_and_files(&spdx, &cyclonedx, file_count(Some("dpkg")));
    assert_packages(&spdx, &cyclonedx, "pkg:deb/debian/libc6@2.39%2Bgit0-r0?arch=amd64", None, "2.39+git0-r0");
}

#[test]
fn an_opkg_rootfs_gets_valid_documents_with_licences_translated_to_spdx() {
    let work = Workspace::new();
    let tar = tarball(&work, "opkg.tar", [rootfs(), database("opkg")].concat());
    let ownership = database::read(&RootfsSource::new(&tar, "opkg.tar", &work.path(".")), &Progress::new(false))
        .unwrap()
        .expect("an opkg database");
    let (spdx, cyclonedx) = documents(&work, "opkg", &inventory(&tar), Some(&ownership));
    assert_image_and_files(&spdx, &cyclonedx, file_count(Some("opkg")));
    let license = "GPL-2.0-or-later AND LGPL-2.1-or-later";
    assert_packages(&spdx, &cyclonedx, "pkg:generic/libc6@2.39%2Bgit0-r0?arch=core2-64", Some(license), "2.39+git0-r0");
    assert_license_reference(&spdx, &cyclonedx);
    let (shadow, _) = spdx_package(&spdx, "shadow");
    assert_eq!(shadow["licenseDeclared"], "BSD-3-Clause OR Artistic-1.0-Perl");
}

#[test]
fn yocto_pkgdata_gets_valid_documents_with_recipe_package_urls() {
    let work = Workspace::new();
    let tar = tarball(&work, "yocto.tar", rootfs());
    let (dir, manifest) = write_pkgdata(work.dir.path());
    let ownership = pkgdata::load(&dir, Some(&manifest)).unwrap();
    let (spdx, cyclonedx) = documents(&work, "pkgdata", &inventory(&tar), Some(&ownership));
    assert_image_and_files(&spdx, &cyclonedx, file_count(None));
    let license = Some("GPL-2.0-or-later AND LGPL-2.1-or-later");
    assert_packages(&spdx, &cyclonedx, "pkg:yocto/glibc@2.39%2Bgit", license, "2.39+git0-r0");
    assert_license_reference(&spdx, &cyclonedx);
    let (libc, _) = spdx_package(&spdx, "libc6");
    assert_eq!(libc["comment"], "Architecture: core2-64.", "PACKAGE_ARCH from the image manifest");
}

#[test]
fn a_rootfs_without_package_data_still_lists_every_file() {
    let work = Workspace::new();
    let tar = tarball(&work, "plain.tar", rootfs());
    let (spdx, cyclonedx) = documents(&work, "plain", &inventory(&tar), None);
    assert_image_and_files(&spdx, &cyclonedx, file_count(None));
    assert_eq!(spdx["packages"].as_array().unwrap().len(), 1, "only the image");
    let (_, by_image) = spdx_package(&spdx, "example.com/team/app:1.2");
    assert_eq!(by_image.len(), file_count(None), "the image CONTAINS every file");
    assert!(cyclonedx["components"].as_array().unwrap().iter().all(|c| c["type"] == "file"));
    assert_ne!(spdx["documentNamespace"], Value::Null);
}

#[test]
fn documents_of_different_content_get_different_ids() {
    let work = Workspace::new();
    let tar = tarball(&work, "plain.tar", rootfs());
    let mut changed = rootfs();
    changed.push(Entry::file("etc/motd", b"hello\n"));
    let changed = tarball(&work, "changed.tar", changed);
    let subject = subject();
    let serial = |tar: &Path| {
        let doc = generate(GeneratedFormat::CycloneDx16, &subject, &inventory(tar), None);
        serde_json::from_slice::<Value>(&doc).unwrap()["serialNumber"].as_str().unwrap().to_string()
    };
    let namespace = |tar: &Path| {
        let doc = generate(GeneratedFormat::Spdx23, &subject, &inventory(tar), None);
        serde_json::from_slice::<Value>(&doc).unwrap()["documentNamespace"].as_str().unwrap().to_string()
    };
    assert_eq!(serial(&tar), serial(&tar));
    assert_ne!(serial(&tar), serial(&changed));
    assert_ne!(namespace(&tar), namespace(&changed));
    assert!(serial(&tar).starts_with("urn:uuid:"), "{}", serial(&tar));
}
