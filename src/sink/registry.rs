//! The registry sink (`docker://HOST/REPO[:TAG|@DIGEST]`): `prepare` uploads every missing blob, which no client can
//! see yet; `commit` puts the manifest, so that nothing is half-published when a run fails.

use super::{PreparedOutput, Publication, SinkOptions};
use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::oci::media_type::MediaType;
use crate::oci::reference::{RegistryRef, RegistryTarget};
use crate::registry::push::{BlobToPush, push_blobs, put_manifest};
use crate::registry::{PushReport, RegistryClient};

pub fn prepare(
    target: &RegistryRef,
    image: &Publication,
    staging: &BlobStore,
    options: &SinkOptions,
) -> Result<Box<dyn PreparedOutput>> {
    if matches!(&target.target, RegistryTarget::Digest(named) if *named != image.top.digest) {
        return Err(Error::Invalid(format!(
            "docker://{target}: the digest to push is {}, not the one named",
            image.top.digest
        )));
    }
    let client = RegistryClient::connect(target, options.registry.clone())?;
    let mut report = PushReport { reference: format!("docker://{target}"), ..PushReport::default() };
    let mut blobs: Vec<BlobToPush> = image
        .images
        .iter()
        .flat_map(|i| {
            // An image read from this same registry has its blobs mounted from its own repository.
            let mount_from = match &i.origin {
                Some((host, repository)) if host == client.host() => Some(repository.as_str()),
                _ => options.mount_from.as_deref(),
            };
            BlobToPush::of_image(&i.config, &i.layers, mount_from)
        })
        .collect();
    blobs.sort_by(|a, b| a.descriptor.digest.cmp(&b.descriptor.digest));
    blobs.dedup_by(|a, b| a.descriptor.digest == b.descriptor.digest);
    push_blobs(&client, staging, &blobs, &mut report)?;
    if image.is_index() {
        // An index may only name manifests the registry has: put each image's manifest by digest first.
        for i in &image.images {
            put_manifest(&client, &i.manifest.digest.to_string(), &i.manifest.media_type, &i.manifest_bytes)?;
        }
    }
    Ok(Box::new(PreparedPush {
        client,
        reference: target.manifest_reference(),
        media_type: image.top.media_type.clone(),
        manifest: image.top_bytes.clone(),
        report,
    }))
}

struct PreparedPush {
    client: RegistryClient,
    reference: String,
    media_type: MediaType,
    manifest: Vec<u8>,
    report: PushReport,
}

impl PreparedOutput for PreparedPush {
    fn commit(self: Box<Self>) -> Result<Option<PushReport>> {
        let PreparedPush { client, reference, media_type, manifest, mut report } = *self;
        report.manifest_digest = Some(put_manifest(&client, &reference, &media_type, &manifest)?);
        Ok(Some(report))
    }
}
