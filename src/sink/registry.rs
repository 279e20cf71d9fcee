//! The registry sink (`docker://HOST/REPO[:TAG|@DIGEST]`): `prepare` uploads every missing blob, which no client can
//! see yet; `commit` puts the manifest, so that nothing is half-published when a run fails.

use super::{PreparedOutput, SinkOptions};
use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::reference::{RegistryRef, RegistryTarget};
use crate::registry::push::{push_blobs, put_manifest};
use crate::registry::{PushReport, RegistryClient};

pub fn prepare(
    target: &RegistryRef,
    image: &Image,
    staging: &BlobStore,
    options: &SinkOptions,
) -> Result<Box<dyn PreparedOutput>> {
    if let RegistryTarget::Digest(digest) = &target.target
        && *digest != image.manifest_descriptor.digest
    {
        return Err(Error::Invalid(format!(
            "docker://{target}: the image's manifest digest is {}, not the one named",
            image.manifest_descriptor.digest
        )));
    }
    let client = RegistryClient::connect(target, options.registry.clone())?;
    let mut report = PushReport { reference: format!("docker://{target}"), ..PushReport::default() };
    let mut blobs = vec![image.config_descriptor.clone()];
    blobs.extend(image.manifest.layers.iter().cloned());
    push_blobs(&client, staging, &blobs, options.mount_from.as_deref(), &mut report)?;
    Ok(Box::new(PreparedPush {
        client,
        reference: target.manifest_reference(),
        media_type: image.manifest_descriptor.media_type.clone(),
        manifest: image.manifest_bytes.clone(),
        report,
    }))
}

struct PreparedPush {
    client: RegistryClient,
    reference: String,
    media_type: String,
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
