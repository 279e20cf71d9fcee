//! Reading a JSON document someone else made (a manifest, an index, an image config): the size it may have and the
//! parse that reports what is wrong for the caller to put after the image's name.

/// The largest manifest, index or image config read from an image someone else made. containers/image caps
/// manifests and configs at 4 MiB (`iolimits.MaxManifestBodySize`, `MaxConfigBodySize`); a real one is a few KiB.
/// A larger declared or actual size is refused before anything is read or parsed.
pub const MAX_DOCUMENT_SIZE: u64 = 4 << 20;

/// Why a document does not parse, for the caller to put after the image's name.
pub type ParseResult<T> = std::result::Result<T, String>;

pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ParseResult<T> {
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(format!(
            "the {what} is {} bytes, more than the {MAX_DOCUMENT_SIZE} a document may have",
            bytes.len()
        ));
    }
    // serde's message quotes what it could not read (a digest, a media type): someone else's text, escaped.
    serde_json::from_slice(bytes).map_err(|e| {
        format!("invalid {what}: {}", crate::error::display_text(&e.to_string(), crate::error::MAX_QUOTED_TEXT))
    })
}
