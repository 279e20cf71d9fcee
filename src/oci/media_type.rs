//! Media types (image-spec media-types.md, and Docker's image manifest v2 schema 2, which registries and `docker save`
//! still use): the ones imgcraft writes or reads by name, and any other carried through unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A media type. Known ones are variants, so code matches on them instead of comparing strings; any other (a foreign
/// layer, an artifact) is kept as written, so that documents read and written again keep their bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum MediaType {
    OciManifest,
    OciIndex,
    OciConfig,
    OciLayer,
    OciLayerGzip,
    OciLayerZstd,
    DockerManifest,
    DockerManifestList,
    DockerConfig,
    DockerLayer,
    DockerLayerGzip,
    Other(String),
}

/// Every known media type with its name, in one table that both directions read.
const KNOWN: &[(MediaType, &str)] = &[
    (MediaType::OciManifest, "application/vnd.oci.image.manifest.v1+json"),
    (MediaType::OciIndex, "application/vnd.oci.image.index.v1+json"),
    (MediaType::OciConfig, "application/vnd.oci.image.config.v1+json"),
    (MediaType::OciLayer, "application/vnd.oci.image.layer.v1.tar"),
    (MediaType::OciLayerGzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
    (MediaType::OciLayerZstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
    (MediaType::DockerManifest, "application/vnd.docker.distribution.manifest.v2+json"),
    (MediaType::DockerManifestList, "application/vnd.docker.distribution.manifest.list.v2+json"),
    (MediaType::DockerConfig, "application/vnd.docker.container.image.v1+json"),
    (MediaType::DockerLayer, "application/vnd.docker.image.rootfs.diff.tar"),
    (MediaType::DockerLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
];

impl MediaType {
    pub fn as_str(&self) -> &str {
        match self {
            MediaType::Other(name) => name,
            known => KNOWN.iter().find(|(k, _)| k == known).map(|(_, name)| *name).expect("every variant is in KNOWN"),
        }
    }

    /// An index of manifests (OCI image index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }

    /// One image's manifest (OCI or Docker schema 2).
    pub fn is_manifest(&self) -> bool {
        matches!(self, MediaType::OciManifest | MediaType::DockerManifest)
    }

    /// A zstd-compressed layer, which some registries still refuse.
    pub fn is_zstd_layer(&self) -> bool {
        matches!(self, MediaType::OciLayerZstd)
    }
}

impl From<&str> for MediaType {
    fn from(name: &str) -> MediaType {
        KNOWN.iter().find(|(_, n)| *n == name).map(|(k, _)| k.clone()).unwrap_or_else(|| MediaType::Other(name.into()))
    }
}

impl From<String> for MediaType {
    fn from(name: String) -> MediaType {
        match MediaType::from(name.as_str()) {
            MediaType::Other(_) => MediaType::Other(name),
            known => known,
        }
    }
}

impl From<MediaType> for String {
    fn from(media_type: MediaType) -> String {
        match media_type {
            MediaType::Other(name) => name,
            known => known.as_str().to_string(),
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept() {
        for (known, name) in KNOWN {
            assert_eq!(MediaType::from(*name), *known);
            assert_eq!(known.as_str(), *name);
        }
        let foreign = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
        assert_eq!(MediaType::from(foreign), MediaType::Other(foreign.into()));
        let json = serde_json::to_string(&MediaType::from(foreign)).unwrap();
        assert_eq!(json, format!("\"{foreign}\""));
        assert_eq!(serde_json::from_str::<MediaType>(&json).unwrap().as_str(), foreign);
    }
}
