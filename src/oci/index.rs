//! Image indexes (image-spec image-index.md): a multi-platform image, and a layout's `index.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::Descriptor;
use super::document::{ParseResult, parse_document};
use super::media_type::MediaType;

/// The most manifests an index (`index.json` of a layout or an archive) may list: a layout shared by many tags
/// stays far below it; past it the index is refused before any manifest is opened.
pub const MAX_INDEX_ENTRIES: usize = 4096;

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

/// image-index.md: manifests, each with its platform or its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    pub fn new(manifests: Vec<Descriptor>) -> Index {
        Index { schema_version: 2, media_type: Some(MediaType::OciIndex), manifests, annotations: None }
    }
}
