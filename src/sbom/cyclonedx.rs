//! The CycloneDX 1.6 JSON writer, checked by the reference validator (cyclonedx-python-lib's strict JSON schema
//! validation) in `tests/sbom.rs`.
//!
//! `metadata.component` is the container image (`type: container`, its manifest digest as version). Every installed
//! package is a `library` component with its version, licence (an SPDX `expression`, or the package data's own text
//! as a licence `name` when it is none), package URL and architecture (the property
//! `imgcraft:package:architecture`); the files it owns are `file` components nested in it (CycloneDX's
//! sub-components: the package is made of them), with SHA-1 and SHA-256 hashes. Files no package owns are
//! top-level `file` components. `dependencies` holds each package's runtime dependencies among the installed ones.
//! `bom-ref`s: `image`, `package:<name>`, `file:<path>`.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer as _};

use super::generate::{Bill, BillPackage, Lazy, shown_path};
use super::inventory::InventoryFile;
use super::license::Declared;
use crate::oci::config::rfc3339;

#[derive(Serialize)]
#[serde(bound(serialize = "Lazy<F>: Serialize"))]
struct Component<'a, F> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    licenses: Option<[License<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Lazy<F>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum License<'a> {
    Expression { expression: &'a str },
    Named { license: LicenseName<'a> },
}

#[derive(Serialize)]
struct LicenseName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Property<'a> {
    name: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    timestamp: String,
    tools: Tools<'a>,
    component: Image<'a>,
}

#[derive(Serialize)]
struct Tools<'a> {
    components: [Tool<'a>; 1],
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
struct Image<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: &'static str,
    name: &'a str,
    version: &'a str,
    properties: [Property<'a>; 1],
}

#[derive(Serialize)]
struct FileComponent {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    hashes: [Hash; 2],
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

/// Writes `bill` as a CycloneDX 1.6 JSON document.
pub(super) fn write(bill: &Bill, out: impl Write) -> io::Result<()> {
    let subject = bill.subject;
    let name = subject.shown_name();
    let digest = subject.digest.to_string();
    let platform = format!("linux/{}", subject.platform);

    let mut out = out;
    let mut json = serde_json::Serializer::new(&mut out);
    let mut doc = json.serialize_map(None)?;
    doc.serialize_entry("bomFormat", "CycloneDX")?;
    doc.serialize_entry("specVersion", "1.6")?;
    doc.serialize_entry("serialNumber", &format!("urn:uuid:{}", bill.uuid))?;
    doc.serialize_entry("version", &1)?;
    let image = Image {
        kind: "container",
        bom_ref: "image",
        name: &name,
        version: &digest,
        properties: [Property { name: "imgcraft:platform", value: &platform }],
    };
    let tool = Tool { kind: "application", name: "imgcraft", version: &subject.tool_version };
    let metadata =
        Metadata { timestamp: rfc3339(subject.created), tools: Tools { components: [tool] }, component: image };
    doc.serialize_entry("metadata", &metadata)?;
    let file = |i: &u32| file_component(&bill.files[*i as usize]);
    doc.serialize_entry(
        "components",
        &Lazy(|| {
            let packages = bill.packages.iter().map(|p| package_component(p, file));
            let unowned = bill.unowned.iter().map(file);
            packages.map(Element::Package).chain(unowned.map(Element::File))
        }),
    )?;
    doc.serialize_entry(
        "dependencies",
        &Lazy(|| {
            bill.packages.iter().map(|p| Dependency {
                reference: package_ref(p),
                depends_on: p.depends.iter().map(|&i| package_ref(&bill.packages[i as usize])).collect(),
            })
        }),
    )?;
    SerializeMap::end(doc)?;
    out.write_all(b"\n")
}

/// A top-level component: a package (with its files inside) or a file no package owns.
enum Element<P> {
    Package(P),
    File(FileComponent),
}

impl<P: Serialize> Serialize for Element<P> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Element::Package(package) => package.serialize(serializer),
            Element::File(file) => file.serialize(serializer),
        }
    }
}

fn package_ref(package: &BillPackage) -> String {
    format!("package:{}", package.package.name)
}

fn package_component<'a, F>(
    package: &'a BillPackage<'a>,
    file: F,
) -> Component<'a, impl Fn() -> std::iter::Map<std::slice::Iter<'a, u32>, F> + 'a>
where
    F: Fn(&u32) -> FileComponent + Copy + 'a,
{
    let p = package.package;
    let licenses = match (&package.license, p.license.as_deref()) {
        (Some(Declared::Expression { expression, .. }), _) => Some([License::Expression { expression }]),
        (_, Some(text)) => Some([License::Named { license: LicenseName { name: text } }]),
        (_, None) => None,
    };
    Component {
        kind: "library",
        bom_ref: package_ref(package),
        name: &p.name,
        version: p.version.as_deref(),
        licenses,
        purl: Some(&package.purl),
        properties: p
            .architecture
            .iter()
            .map(|arch| Property { name: "imgcraft:package:architecture", value: arch })
            .collect(),
        components: (!package.files.is_empty()).then_some(Lazy(move || package.files.iter().map(file))),
    }
}

fn file_component(file: &InventoryFile) -> FileComponent {
    let name = shown_path("/", file.path);
    FileComponent {
        kind: "file",
        bom_ref: format!("file:{name}"),
        name,
        hashes: [
            Hash { alg: "SHA-1", content: hex::encode(file.sha1) },
            Hash { alg: "SHA-256", content: hex::encode(file.sha256) },
        ],
    }
}
