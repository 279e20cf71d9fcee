//! Descriptors (image-spec descriptor.md): what a document says of a blob it points at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::media_type::MediaType;
use crate::digest::Digest;

/// descriptor.md: a blob's media type, digest and size, and what an index says of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    /// image-spec 1.1: the type of an artifact manifest, as an index and the referrers API list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A plain descriptor: no artifact type, platform or annotations.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Descriptor {
        Descriptor { media_type, digest, size, artifact_type: None, platform: None, annotations: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformDoc {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}
