//! Provenance: an in-toto Statement v1 (in-toto/attestation spec/v1/statement.md) about the image manifest, with a
//! SLSA Provenance v1 predicate (slsa.dev/spec/v1.0/provenance) saying how rootfs2image made it.
//!
//! The build type [`BUILD_TYPE`] is rootfs2image's conversion of a root filesystem into an image. Its
//! `externalParameters` are `options`, every option that changes the output (named and valued by the caller), and
//! `buildParameters`, free KEY=VALUE pairs from the build system that ran it (meta-imgcraft's `MACHINE`, `DISTRO`,
//! the image recipe). There are no `internalParameters`. `resolvedDependencies` are the inputs: the rootfs with its
//! sha256, a base or previous image with its manifest digest, the Yocto layers with their git commits.
//!
//! Reproducible: fixed field order through structs, sorted maps, no wall-clock time and no random ids; the only
//! times are those the caller gives (the image's own creation time, at most), so the same inputs give the same bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::display_text;

/// The media type of an in-toto statement: the DSSE payload type, and the `artifactType` of an unsigned statement
/// attached as a referrer.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// What cosign 2 writes by default, read as well.
pub const STATEMENT_TYPE_V01: &str = "https://in-toto.io/Statement/v0.1";
pub const PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The build type of rootfs2image's conversion, described by this module's documentation; a new version gets a
/// new URI whenever the meaning of its parameters changes.
pub const BUILD_TYPE: &str = "https://github.com/imgcraft/imgcraft/blob/main/docs/provenance/rootfs2image-v1.md";
/// The builder, when the caller knows no better one (a CI system that ran rootfs2image should name itself).
pub const BUILDER_ID: &str = "https://github.com/imgcraft/imgcraft#rootfs2image";

/// The largest statement read back (a DSSE payload, already bounded by its envelope).
pub const MAX_STATEMENT_SIZE: u64 = 16 << 20;

/// An in-toto ResourceDescriptor (spec/v1/resource_descriptor.md): an input, or the statement's subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm to lowercase hex: `sha256`, or `gitCommit` for a git revision.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

impl Dependency {
    /// A file known by its name and sha256 (the input rootfs).
    pub fn file(name: &str, sha256: &Digest) -> Dependency {
        Dependency { name: Some(name.into()), uri: None, digest: BTreeMap::from([sha256_entry(sha256)]) }
    }

    /// An image (a base or previous image) at `uri`, by its manifest digest.
    pub fn image(uri: &str, manifest: &Digest) -> Dependency {
        Dependency { name: None, uri: Some(uri.into()), digest: BTreeMap::from([sha256_entry(manifest)]) }
    }

    /// A git checkout (a Yocto layer) of `uri` named `name`, at `commit`.
    pub fn git(name: &str, uri: &str, commit: &str) -> Dependency {
        Dependency {
            name: Some(name.into()),
            uri: Some(uri.into()),
            digest: BTreeMap::from([("gitCommit".to_string(), commit.to_ascii_lowercase())]),
        }
    }
}

fn sha256_entry(digest: &Digest) -> (String, String) {
    ("sha256".to_string(), digest.hex().to_string())
}

/// What the provenance of one image says, as the caller knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// The subject's name: the repository the image is published in (as cosign names it), or the image's name.
    pub subject_name: String,
    pub manifest_digest: Digest,
    /// Every option that changes the output, by name.
    pub options: BTreeMap<String, serde_json::Value>,
    /// KEY=VALUE parameters of the build that ran rootfs2image.
    pub build_parameters: BTreeMap<String, String>,
    pub dependencies: Vec<Dependency>,
    pub builder_id: String,
    /// `runDetails.metadata`: an id of the build (a CI job's), and when it started as RFC 3339; for reproducible
    /// provenance give the image's creation time or nothing, never the clock.
    pub invocation_id: Option<String>,
    pub started_on: Option<String>,
}

#[derive(Serialize)]
struct Statement<'a, P> {
    #[serde(rename = "_type")]
    kind: &'a str,
    subject: Vec<Dependency>,
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    predicate: P,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    build_definition: BuildDefinition<'a>,
    run_details: RunDetails<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition<'a> {
    build_type: &'a str,
    external_parameters: ExternalParameters<'a>,
    resolved_dependencies: &'a [Dependency],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalParameters<'a> {
    options: &'a BTreeMap<String, serde_json::Value>,
    build_parameters: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RunDetails<'a> {
    builder: Builder<'a>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Builder<'a> {
    id: &'a str,
    version: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_on: Option<&'a str>,
}

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.invocation_id.is_none() && self.started_on.is_none()
    }
}

impl Provenance {
    /// The provenance of the manifest `manifest_digest` published as `subject_name`, built by rootfs2image alone.
    pub fn new(subject_name: &str, manifest_digest: &Digest) -> Provenance {
        Provenance {
            subject_name: subject_name.to_string(),
            manifest_digest: manifest_digest.clone(),
            options: BTreeMap::new(),
            build_parameters: BTreeMap::new(),
            dependencies: Vec::new(),
            builder_id: BUILDER_ID.to_string(),
            invocation_id: None,
            started_on: None,
        }
    }

    /// The statement's exact bytes (compact JSON, no trailing newline): the DSSE payload of an attestation, or the
    /// blob of an unsigned referrer.
    pub fn statement(&self) -> Vec<u8> {
        let statement = Statement {
            kind: STATEMENT_TYPE,
            subject: vec![Dependency {
                name: Some(self.subject_name.clone()),
                uri: None,
                digest: BTreeMap::from([sha256_entry(&self.manifest_digest)]),
            }],
            predicate_type: PROVENANCE_PREDICATE_TYPE,
            predicate: Predicate {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE,
                    external_parameters: ExternalParameters {
                        options: &self.options,
                        build_parameters: &self.build_parameters,
                    },
                    resolved_dependencies: &self.dependencies,
                },
                run_details: RunDetails {
                    builder: Builder {
                        id: &self.builder_id,
                        version: BTreeMap::from([("rootfs2image", env!("CARGO_PKG_VERSION"))]),
                    },
                    metadata: Metadata {
                        invocation_id: self.invocation_id.as_deref(),
                        started_on: self.started_on.as_deref(),
                    },
                },
            },
        };
        serde_json::to_vec(&statement).expect("a statement always serialises")
    }
}

/// A statement read back: what a checker needs of any in-toto statement, whatever its predicate.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StatementSummary {
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub subject: Vec<Dependency>,
}

impl StatementSummary {
    /// Reads a statement (v1, or v0.1 as cosign 2 writes), its subjects and its predicate type.
    pub fn parse(bytes: &[u8]) -> Result<StatementSummary, String> {
        if bytes.len() as u64 > MAX_STATEMENT_SIZE {
            return Err(format!("the statement is {} bytes, more than the {MAX_STATEMENT_SIZE} allowed", bytes.len()));
        }
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "_type")]
            kind: String,
        }
        let bad = |e: serde_json::Error| format!("not an in-toto statement: {}", display_text(&e.to_string(), 200));
        let Kind { kind } = serde_json::from_slice(bytes).map_err(bad)?;
        if kind != STATEMENT_TYPE && kind != STATEMENT_TYPE_V01 {
            return Err(format!("the statement's _type is `{}`, not `{STATEMENT_TYPE}`", display_text(&kind, 100)));
        }
        serde_json::from_slice(bytes).map_err(bad)
    }

    /// Whether `digest` is one of the statement's subjects.
    pub fn names(&self, digest: &Digest) -> bool {
        self.subject.iter().any(|s| s.digest.get("sha256").is_some_and(|hex| hex == digest.hex()))
    }

    /// The first sha256 subject, for saying which image a statement is about instead.
    pub fn first_subject(&self) -> Option<Digest> {
        self.subject.iter().find_map(|s| format!("sha256:{}", s.digest.get("sha256")?).parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Provenance {
        let mut provenance = Provenance::new("registry.example.com/team/app", &Digest::of(b"manifest"));
        provenance.options.insert("compression".into(), "gzip".into());
        provenance.options.insert("architecture".into(), "arm64".into());
        provenance.options.insert("labels".into(), serde_json::json!({"b": "2", "a": "1"}));
        provenance.build_parameters.insert("MACHINE".into(), "qemuarm64".into());
        provenance.build_parameters.insert("DISTRO".into(), "poky".into());
        provenance.dependencies.push(Dependency::file("core-image-minimal.rootfs.tar.zst", &Digest::of(b"rootfs")));
        provenance.dependencies.push(Dependency::git("meta", "https://git.yoctoproject.org/poky", "ABC123"));
        provenance
    }

    #[test]
    fn the_statement_is_an_in_toto_v1_slsa_provenance_with_every_field_in_place() {
        let value: serde_json::Value = serde_json::from_slice(&example().statement()).unwrap();
        assert_eq!(value["_type"], STATEMENT_TYPE);
        assert_eq!(value["predicateType"], PROVENANCE_PREDICATE_TYPE);
        let subject = serde_json::json!([{"name": "registry.example.com/team/app",
            "digest": {"sha256": Digest::of(b"manifest").hex()}}]);
        assert_eq!(value["subject"], subject);
        let build = &value["predicate"]["buildDefinition"];
        assert_eq!(build["buildType"], BUILD_TYPE);
        assert_eq!(build["externalParameters"]["options"]["labels"]["a"], "1");
        assert_eq!(build["externalParameters"]["buildParameters"]["MACHINE"], "qemuarm64");
        assert_eq!(build["resolvedDependencies"][0]["digest"]["sha256"], Digest::of(b"rootfs").hex());
        assert_eq!(build["resolvedDependencies"][1]["digest"]["gitCommit"], "abc123");
        assert_eq!(build.as_object().unwrap().len(), 3, "no internalParameters");
        let run = &value["predicate"]["runDetails"];
        assert_eq!(run["builder"]["id"], BUILDER_ID);
        assert_eq!(run["builder"]["version"]["rootfs2image"], env!("CARGO_PKG_VERSION"));
        assert!(run.get("metadata").is_none(), "no time unless one is given");
    }

    #[test]
    fn the_same_provenance_gives_the_same_bytes_with_keys_sorted() {
        let bytes = example().statement();
        assert_eq!(example().statement(), bytes);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"#), "{text}");
        assert!(text.contains(r#""options":{"architecture":"arm64","compression":"gzip","labels":{"a":"1","b":"2"}}"#));
        assert!(text.contains(r#""buildParameters":{"DISTRO":"poky","MACHINE":"qemuarm64"}"#));
        let mut timed = example();
        timed.started_on = Some("2024-01-01T00:00:00Z".into());
        let timed = String::from_utf8(timed.statement()).unwrap();
        assert!(timed.ends_with(r#""metadata":{"startedOn":"2024-01-01T00:00:00Z"}}}}"#), "{timed}");
    }

    #[test]
    fn a_statement_read_back_names_its_subject_and_predicate_type() {
        let summary = StatementSummary::parse(&example().statement()).unwrap();
        assert_eq!(summary.predicate_type, PROVENANCE_PREDICATE_TYPE);
        assert!(summary.names(&Digest::of(b"manifest")));
        assert!(!summary.names(&Digest::of(b"other")));
        assert_eq!(summary.first_subject(), Some(Digest::of(b"manifest")));
        let cosign = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"x","subject":[{"name":"r","digest":{"sha256":"00"}}],"predicate":{}}"#;
        assert_eq!(StatementSummary::parse(cosign).unwrap().predicate_type, "x");
        let other = br#"{"_type":"https://example.com/Statement","predicateType":"x","subject":[]}"#;
        assert!(StatementSummary::parse(other).unwrap_err().contains("_type is `https://example.com/Statement`"));
        assert!(StatementSummary::parse(b"{}").unwrap_err().contains("missing field `_type`"));
    }
}
