//! Reading an image from a registry (distribution-spec "Pulling manifests"): the manifest fetched by tag or digest and
//! checked against the digest, the config read and checked; layers are streamed later, each within its declared size.

use std::collections::HashMap;

use super::{Blobs, SourceImage, layers_of};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::config::parse_config;
use crate::oci::descriptor::Descriptor;
use crate::oci::image::{Document, Image, Origin};
use crate::oci::manifest::parse_manifest;
use crate::oci::reference::RegistryRef;
use crate::registry::client::MAX_DOCUMENT_LEN;
use crate::registry::referrers::fetch_manifest;
use crate::registry::{ClientOptions, RegistryClient};

pub(super) fn open(target: &RegistryRef, options: &ClientOptions, display: &str) -> Result<SourceImage> {
    let client = RegistryClient::connect_for_pull(target, options.clone())?;
    let fetched = fetch_manifest(&client, &target.manifest_reference())?;
    if fetched.media_type.is_index() {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    let manifest = parse_manifest(&fetched.bytes).map_err(|problem| Error::bad_image(display, problem))?;
    let descriptor = Descriptor::new(fetched.media_type, fetched.digest, fetched.bytes.len() as u64);
    // containers/image reads configs up to 4 MiB too (`iolimits.MaxConfigBodySize`).
    if manifest.config.size > MAX_DOCUMENT_LEN {
        return Err(client.fail(&format!(
            "the manifest declares a config of {} bytes, more than the {MAX_DOCUMENT_LEN} this tool reads",
            manifest.config.size
        )));
    }
    let sizes: HashMap<Digest, u64> =
        std::iter::once(&manifest.config).chain(&manifest.layers).map(|d| (d.digest.clone(), d.size)).collect();
    let origin = Origin { host: client.host().to_string(), repository: client.repository().to_string() };
    let blobs = Blobs::Registry { client: Box::new(client), sizes };
    let config_bytes = blobs.read_verified(&manifest.config, display)?;
    let config = parse_config(&config_bytes)
        .map_err(|problem| Error::bad_image(display, format!("image config {}: {problem}", manifest.config.digest)))?;
    let image = Image {
        manifest: Some(Document { descriptor, bytes: fetched.bytes }),
        config_descriptor: manifest.config.clone(),
        layers: layers_of(&manifest.layers, &config.rootfs.diff_ids),
        config,
        annotations: manifest.annotations.unwrap_or_default(),
        origin: Some(origin),
    };
    Ok(SourceImage {
        reference: display.to_string(),
        names: vec![target.to_string()],
        image,
        blobs,
        members: HashMap::new(),
        attachments: Vec::new(),
        candidates: Vec::new(),
    })
}
