//! The images cosign attaches to an image by tag, in the repository beside it: `sha256-<hex>.sig` holds its
//! signatures, `sha256-<hex>.att` its attestations (cosign's tag scheme, which containers/image reads and writes
//! with `use-sigstore-attachments`). Each is an OCI image manifest with one layer per signature or attestation,
//! appended in turn, and a config listing the layers as diff_ids (a layer is stored uncompressed, so its diff_id is
//! its digest). This module builds such images and reads their layers back within bounds.

use std::collections::BTreeMap;
use std::fmt;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Result, display_text};
use crate::oci::config::{ContainerConfig, ImageConfig, RootFs};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::{Image, Layer};
use crate::oci::media_type::MediaType;

/// The layer annotation holding a signature's base64 (cosign's `static.SignatureAnnotationKey`; an attestation's
/// is empty, its signature being inside the DSSE envelope).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// `existing` (the image already at the tag, if any) with one more layer: `bytes` stored in `blobs` as a
/// `media_type` blob carrying `annotations`. The config and manifest are written to `blobs` as skopeo writes them:
/// `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[...]}}` and an OCI manifest with no
/// platform. The existing layers' blobs are not read or copied: they stay where the image is (its `origin` is
/// kept, so a push to the same repository finds them there). A layer identical to one already there (same blob,
/// same annotations: the same deterministic signature made again) is not added twice, so signing again changes
/// nothing.
pub(crate) fn append(
    blobs: &BlobStore,
    existing: Option<&Image>,
    media_type: MediaType,
    bytes: &[u8],
    annotations: BTreeMap<String, String>,
) -> Result<Image> {
    let (digest, size) = blobs.put(bytes)?;
    let descriptor = Descriptor { annotations: Some(annotations), ..Descriptor::new(media_type, digest, size) };
    let mut layers: Vec<Layer> = existing
        .map(|image| {
            image
                .layers
                .iter()
                .map(|layer| Layer {
                    diff_id: Some(layer.diff_id.clone().unwrap_or_else(|| layer.descriptor.digest.clone())),
                    descriptor: layer.descriptor.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    if !layers.iter().any(|layer| layer.descriptor == descriptor) {
        layers.push(Layer { diff_id: Some(descriptor.digest.clone()), descriptor });
    }
    let config = ImageConfig {
        created: None,
        author: None,
        architecture: String::new(),
        variant: None,
        os: String::new(),
        config: ContainerConfig::default(),
        rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
        history: Vec::new(),
    };
    let annotations = existing.map(|image| image.annotations.clone()).unwrap_or_default();
    let mut image = Image::assemble(blobs, config, layers, annotations)?;
    // Not an image to run: an index listing it (an `oci:` layout's index.json) must not give it a platform.
    if let Some(manifest) = image.manifest.as_mut() {
        manifest.descriptor.platform = None;
    }
    image.origin = existing.and_then(|image| image.origin.clone());
    Ok(image)
}

/// Why one layer of a signature or attestation image does not count as a valid signature by the key checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The layer's media type is not the one this kind of image holds.
    MediaType(MediaType),
    /// No signature annotation, or one that is not base64.
    NoSignature,
    BadSignatureEncoding,
    /// The blob is larger than a signature or attestation may be.
    TooLarge {
        size: u64,
        max: u64,
    },
    /// The blob could not be read, or is not the one the manifest names.
    Unreadable(String),
    /// The signature is not by this key over these bytes: another key signed it, or the bytes were changed.
    NotSignedByKey,
    /// The signed bytes do not parse.
    Malformed(String),
    /// Validly signed, but for another image.
    OtherImage(Digest),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MediaType(media_type) => {
                write!(f, "the layer's media type is `{}`", display_text(media_type.as_str(), 100))
            }
            Refusal::NoSignature => write!(f, "the layer has no `{SIGNATURE_ANNOTATION}` annotation"),
            Refusal::BadSignatureEncoding => write!(f, "the layer's `{SIGNATURE_ANNOTATION}` is not base64"),
            Refusal::TooLarge { size, max } => write!(f, "the layer is {size} bytes, more than the {max} allowed"),
            Refusal::Unreadable(problem) => write!(f, "the layer cannot be read: {problem}"),
            Refusal::NotSignedByKey => write!(f, "the signature is not by this key, or the signed bytes were changed"),
            Refusal::Malformed(problem) => f.write_str(problem),
            Refusal::OtherImage(digest) => write!(f, "validly signed, but for another manifest ({digest})"),
        }
    }
}

/// Reads the blob of `layer` through `read_blob`, refusing it before reading when its descriptor says it is over
/// `max`, and after when the bytes are not the ones the descriptor names (whatever `read_blob` checks itself).
pub(crate) fn read_layer(
    layer: &Descriptor,
    read_blob: &impl Fn(&Descriptor) -> Result<Vec<u8>>,
    max: u64,
) -> std::result::Result<Vec<u8>, Refusal> {
    if layer.size > max {
        return Err(Refusal::TooLarge { size: layer.size, max });
    }
    let bytes = read_blob(layer).map_err(|e| Refusal::Unreadable(e.to_string()))?;
    if bytes.len() as u64 != layer.size || Digest::of(&bytes) != layer.digest {
        return Err(Refusal::Unreadable(format!("its bytes are not {}", layer.digest)));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_is_refused_when_too_large_unreadable_or_not_the_named_blob() {
        let bytes = b"payload".to_vec();
        let layer = Descriptor::new(MediaType::from("application/x"), Digest::of(&bytes), bytes.len() as u64);
        let served = |b: Vec<u8>| move |_: &Descriptor| -> Result<Vec<u8>> { Ok(b.clone()) };
        assert_eq!(read_layer(&layer, &served(bytes.clone()), 7).unwrap(), bytes);
        assert_eq!(read_layer(&layer, &served(bytes.clone()), 6), Err(Refusal::TooLarge { size: 7, max: 6 }));
        let other = read_layer(&layer, &served(b"payloaD".to_vec()), 7).unwrap_err();
        assert_eq!(other.to_string(), format!("the layer cannot be read: its bytes are not {}", layer.digest));
        let failing = |_: &Descriptor| -> Result<Vec<u8>> { Err(crate::Error::Invalid("gone".into())) };
        assert_eq!(read_layer(&layer, &failing, 7), Err(Refusal::Unreadable("gone".into())));
    }
}
