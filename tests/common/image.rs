//! OCI image layouts of the tests' own, written from tar layers made with [`super::tar`], so that a test can hand the
//! unpacker any layer (a hostile one included) without the crate's writer shaping it first.

use std::path::Path;

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&digest["sha256:".len()..]), bytes).unwrap();
    digest
}

/// Writes an OCI layout at `dir` holding one amd64 image tagged `tag`: `layers` (uncompressed tar archives) bottom
/// first, with `config` as the image config's execution parameters (`{"Cmd": [...], "User": ...}`) and
/// `annotations` on the manifest. Returns the layers' digests.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    layers: &[Vec<u8>],
    config: serde_json::Value,
    annotations: serde_json::Value,
) -> Vec<String> {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let digests: Vec<String> = layers.iter().map(|layer| put_blob(dir, layer)).collect();
    let image_config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": digests},
    });
    let config_bytes = serde_json::to_vec(&image_config).unwrap();
    let config_digest = put_blob(dir, &config_bytes);
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .zip(&digests)
        .map(|(layer, digest)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer.len()})
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descriptors,
        "annotations": annotations,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put_blob(dir, &manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    digests
}
