//! The image model and its OCI documents (image-spec config.md, manifest.md, image-index.md, descriptor.md) as
//! typed structs. Maps are `BTreeMap`s and field order is fixed, so the same image always serialises to the same
//! bytes; the bytes that are hashed are the bytes that are written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::Result;
use crate::layer::writer::Layer;
use crate::oci::platform::Platform;

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// image-spec annotations.md
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name containerd (and Docker 25's `docker save`) record in `index.json`.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The largest manifest, index or image config read from an image someone else made. containers/image caps
/// manifests and configs at 4 MiB (`iolimits.MaxManifestBodySize`, `MaxConfigBodySize`); a real one is a few KiB.
/// A larger declared or actual size is refused before anything is read or parsed.
pub const MAX_DOCUMENT_SIZE: u64 = 4 << 20;
/// The most layers an image read back may have. overlayfs stacks at most 500 lower directories (`OVL_MAX_STACK`)
/// and Docker refuses images deeper than 125 layers, so no image an engine can run has more; past it the image is
/// refused as soon as its manifest is parsed, before any layer is read.
pub const MAX_IMAGE_LAYERS: usize = 500;
/// The most manifests an index (`index.json` of a layout or an archive) may list: a layout shared by many tags
/// stays far below it; past it the index is refused before any manifest is opened.
pub const MAX_INDEX_ENTRIES: usize = 4096;

/// Why a document does not parse, for the caller to put after the image's name.
pub type ParseResult<T> = std::result::Result<T, String>;

/// Parses an image manifest (manifest.md) and checks its layer count.
pub fn parse_manifest(bytes: &[u8]) -> ParseResult<Manifest> {
    let manifest: Manifest = parse_document(bytes, "manifest")?;
    if manifest.layers.len() > MAX_IMAGE_LAYERS {
        return Err(format!(
            "the manifest lists {} layers, more than the {MAX_IMAGE_LAYERS} an image may have",
            manifest.layers.len()
        ));
    }
    Ok(manifest)
}

/// Parses an image index (image-index.md, a layout's `index.json`) and checks its entry count.
pub fn parse_index(bytes: &[u8]) -> ParseResult<Index> {
    let index: Index = parse_document(bytes, "index")?;
    if index.manifests.len() > MAX_INDEX_ENTRIES {
        return Err(format!(
            "the index lists {} manifests, more than the {MAX_INDEX_ENTRIES} it may have",
            index.manifests.len()
        ));
    }
    Ok(index)
}

/// Parses an image config (config.md) and checks its diff_id count.
pub fn parse_config(bytes: &[u8]) -> ParseResult<ImageConfig> {
    let config: ImageConfig = parse_document(bytes, "image config")?;
    if config.rootfs.diff_ids.len() > MAX_IMAGE_LAYERS {
        return Err(format!(
            "the image config lists {} diff_ids, more than the {MAX_IMAGE_LAYERS} an image may have",
            config.rootfs.diff_ids.len()
        ));
    }
    Ok(config)
}

fn parse_document<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ParseResult<T> {
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(format!(
            "the {what} is {} bytes, more than the {MAX_DOCUMENT_SIZE} a document may have",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("invalid {what}: {e}"))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformDoc {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index { schema_version: 2, media_type: Some(MEDIA_TYPE_INDEX.into()), manifests, annotations: None }
    }
}

/// An empty JSON object: the value type of `ExposedPorts` and `Volumes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The execution parameters of config.md (`config` inside the image config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// config.md: the image configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    pub fn platform(&self) -> Platform {
        Platform { architecture: self.architecture.clone(), variant: self.variant.clone() }
    }
}

/// A complete image whose blobs are in a [`BlobStore`]: its layers, config and manifest, with the exact bytes of
/// the two documents.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
    pub config_descriptor: Descriptor,
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_descriptor: Descriptor,
}

impl Image {
    /// Writes the config and the manifest for these layers into `blobs`.
    pub fn assemble(
        blobs: &BlobStore,
        mut config: ImageConfig,
        layers: Vec<Layer>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Image> {
        config.rootfs = RootFs { kind: "layers".into(), diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect() };
        let config_bytes = serde_json::to_vec(&config).expect("an image config always serialises");
        let (digest, size) = blobs.put(&config_bytes)?;
        let config_descriptor =
            Descriptor { media_type: MEDIA_TYPE_CONFIG.into(), digest, size, platform: None, annotations: None };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.into()),
            config: config_descriptor.clone(),
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest.clone(),
                    size: l.size,
                    platform: None,
                    annotations: (!l.annotations.is_empty()).then(|| l.annotations.clone()),
                })
                .collect(),
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let (digest, size) = blobs.put(&manifest_bytes)?;
        let manifest_descriptor = Descriptor {
            media_type: MEDIA_TYPE_MANIFEST.into(),
            digest,
            size,
            platform: Some(PlatformDoc {
                architecture: config.architecture.clone(),
                os: config.os.clone(),
                variant: config.variant.clone(),
            }),
            annotations: None,
        };
        Ok(Image { layers, config, config_descriptor, manifest, manifest_bytes, manifest_descriptor })
    }
}

/// RFC 3339 UTC time for seconds since the epoch, as config.md's `created` wants.
pub fn rfc3339(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn config_serialises_with_spec_field_names_in_a_fixed_order() {
        let config = ImageConfig {
            created: Some(rfc3339(0)),
            author: None,
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            os: "linux".into(),
            config: ContainerConfig {
                env: Some(vec!["A=1".into()]),
                exposed_ports: Some(BTreeMap::from([("80/tcp".into(), Empty {})])),
                ..Default::default()
            },
            rootfs: RootFs { kind: "layers".into(), diff_ids: vec![] },
            history: vec![],
        };
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"created":"1970-01-01T00:00:00Z","architecture":"arm64","variant":"v8","os":"linux","config":{"ExposedPorts":{"80/tcp":{}},"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
    }
}
