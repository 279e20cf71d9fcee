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
use crate::oci::media_type::MediaType;
use crate::oci::reference::{RegistryRef, RegistryTarget};
use crate::registry::client::{Body, MAX_DOCUMENT_LEN};
use crate::registry::{ClientOptions, RegistryClient};

pub(super) fn open(target: &RegistryRef, options: &ClientOptions, display: &str) -> Result<SourceImage> {
    let client = RegistryClient::connect_for_pull(target, options.clone())?;
    let accept =
        [MediaType::OciManifest, MediaType::DockerManifest, MediaType::OciIndex, MediaType::DockerManifestList]
            .map(|m| m.as_str().to_string())
            .join(", ");
    let url = client.url(&format!("manifests/{}", target.manifest_reference()));
    let reply = client.send(ureq::http::Method::GET, &url, &[("accept", accept)], Body::Empty)?;
    if !reply.status.is_success() {
        return Err(client.fail(&format!(
            "GET manifest {} answered {}: {}",
            target.manifest_reference(),
            reply.status,
            reply.error_text()
        )));
    }
    if reply.truncated {
        return Err(
            client.fail(&format!("the manifest is larger than {MAX_DOCUMENT_LEN} bytes, the most this tool reads"))
        );
    }
    let media_type = MediaType::from(
        reply
            .header("content-type")
            .map_or(MediaType::OciManifest.as_str(), |t| t.split(';').next().unwrap_or("").trim()),
    );
    if media_type.is_index() {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    let digest = Digest::of(&reply.body);
    if matches!(&target.target, RegistryTarget::Digest(named) if *named != digest) {
        return Err(Error::bad_image(display, format!("the registry served a manifest with digest {digest}")));
    }
    let manifest = parse_manifest(&reply.body).map_err(|problem| Error::bad_image(display, problem))?;
    let descriptor = Descriptor::new(media_type, digest, reply.body.len() as u64);
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
        manifest: Some(Document { descriptor, bytes: reply.body }),
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
