//! The registry sink (`docker://HOST/REPO[:TAG|@DIGEST]`): `prepare` uploads every missing blob, which no client can
//! see yet; `commit` puts the manifest, so that nothing is half-published when a run fails. Blobs of an image read
//! from the same registry are mounted from its repository instead of sent (distribution-spec "Mounting a blob from
//! another repository"), the one rule every push follows.

use super::{PreparedOutput, Publication, SinkOptions};
use crate::blobs::{BlobSource, BlobStore, Overlay};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Attachment, Placement, signature_tag};
use crate::oci::image::Image;
use crate::oci::media_type::MediaType;
use crate::oci::reference::{ImageRef, RegistryRef, RegistryTarget};
use crate::registry::push::{BlobToPush, push_blobs, put_manifest};
use crate::registry::referrers::{ReferrersSupport, add_to_fallback_index, get_manifest, list_referrers};
use crate::registry::{ClientOptions, PushReport, RegistryClient};

/// Whether a push of `image` to `target` mounts every blob from the repository the image was read from.
pub fn mounts_from_origin(image: &Image, target: &RegistryRef) -> bool {
    image.origin.as_ref().is_some_and(|origin| origin.host == target.api_host())
}

/// The signature image already at `digest`'s signature tag on `target`'s repository, to add a signature to.
pub fn existing_signature(target: &RegistryRef, digest: &Digest, options: &ClientOptions) -> Result<Option<Image>> {
    let mut at_tag = target.clone();
    at_tag.target = RegistryTarget::Tag(signature_tag(digest));
    let client = RegistryClient::connect_for_pull(&at_tag, options.clone())?;
    if get_manifest(&client, &at_tag.manifest_reference())?.is_none() {
        return Ok(None);
    }
    crate::source::open_with(&ImageRef::Registry(at_tag), options).map(|source| Some(source.image))
}

/// The repository of the registry at `host` to mount `image`'s blobs from: the one it was read from when that is on
/// the same registry, else the user's `mount_from`.
fn mount_source<'a>(image: &'a Image, host: &str, options: &'a SinkOptions) -> Option<&'a str> {
    match &image.origin {
        Some(origin) if origin.host == host => Some(origin.repository.as_str()),
        _ => options.mount_from.as_deref(),
    }
}

/// Pushes `publication` to `target` now (prepare and commit), its blobs read from `blobs`.
pub fn push(
    target: &RegistryRef,
    publication: &Publication,
    blobs: &dyn BlobSource,
    options: &SinkOptions,
) -> Result<PushReport> {
    // Signatures are made for this destination; their few small blobs are staged here, the image's stay where
    // they are.
    let staging_dir = super::staging_dir_in(&std::env::temp_dir())?;
    let staging = BlobStore::open(staging_dir.path())?;
    let signed = match &options.signer {
        Some(signer) => {
            let output = ImageRef::Registry(target.clone());
            super::with_signatures(&output, publication, &staging, None, signer, options)?
        }
        None => publication.clone(),
    };
    let blobs = Overlay { front: &staging, back: blobs };
    let report = prepare(target, &signed, &blobs, options)?.commit()?;
    Ok(report.expect("a registry push reports what it sent"))
}

pub fn prepare(
    target: &RegistryRef,
    image: &Publication,
    source: &dyn BlobSource,
    options: &SinkOptions,
) -> Result<Box<dyn PreparedOutput>> {
    if matches!(&target.target, RegistryTarget::Digest(named) if *named != image.top.descriptor.digest) {
        return Err(Error::Invalid(format!(
            "docker://{target}: the digest to push is {}, not the one named",
            image.top.descriptor.digest
        )));
    }
    let client = RegistryClient::connect(target, options.registry.clone())?;
    let mut report = PushReport { reference: format!("docker://{target}"), ..PushReport::default() };
    let mut blobs: Vec<BlobToPush> = image
        .images
        .iter()
        .flat_map(|i| {
            let mount_from = mount_source(i, client.host(), options);
            i.blobs().map(move |d| BlobToPush { descriptor: d.clone(), mount_from: mount_from.map(str::to_string) })
        })
        .collect();
    // Attachments' blobs (an SBOM, a signature's payload) were made here or read with them: always sent.
    blobs.extend(
        image.attachments.iter().flat_map(|a| &a.blobs).map(|d| BlobToPush { descriptor: d.clone(), mount_from: None }),
    );
    blobs.sort_by(|a, b| a.descriptor.digest.cmp(&b.descriptor.digest));
    blobs.dedup_by(|a, b| a.descriptor.digest == b.descriptor.digest);
    push_blobs(&client, source, &blobs, &mut report)?;
    if image.is_index() {
        // An index may only name manifests the registry has: put each image's manifest by digest first.
        for manifest in image.manifests() {
            let descriptor = &manifest.descriptor;
            put_manifest(&client, &descriptor.digest.to_string(), &descriptor.media_type, &manifest.bytes)?;
        }
    }
    Ok(Box::new(PreparedPush {
        client,
        reference: target.manifest_reference(),
        media_type: image.top.descriptor.media_type.clone(),
        manifest: image.top.bytes.clone(),
        attachments: image.attachments.clone(),
        report,
    }))
}

struct PreparedPush {
    client: RegistryClient,
    reference: String,
    media_type: MediaType,
    manifest: Vec<u8>,
    attachments: Vec<Attachment>,
    report: PushReport,
}

impl PreparedOutput for PreparedPush {
    fn commit(self: Box<Self>) -> Result<Option<PushReport>> {
        let PreparedPush { client, reference, media_type, manifest, attachments, mut report } = *self;
        // Attachments go first, the tag last: no one pulls the image by its name before its SBOMs and signatures
        // are there, and a failure on the way leaves the tag where it was.
        put_attachments(&client, &attachments, &mut report)?;
        report.manifest_digest = Some(put_manifest(&client, &reference, &media_type, &manifest)?);
        Ok(Some(report))
    }
}

/// Puts each attachment's manifest: referrers by digest (listed by the registry's referrers API, or added to the
/// fallback tag's index where it has none), signatures and attestations at their tags.
fn put_attachments(client: &RegistryClient, attachments: &[Attachment], report: &mut PushReport) -> Result<()> {
    let referrers: Vec<&Attachment> =
        attachments.iter().filter(|a| matches!(a.placement, Placement::Referrer)).collect();
    for attachment in &referrers {
        let descriptor = &attachment.manifest.descriptor;
        put_manifest(client, &descriptor.digest.to_string(), &descriptor.media_type, &attachment.manifest.bytes)
            .map_err(|e| about(attachment, e))?;
        report.attachments.push(descriptor.digest.clone());
    }
    if let Some(first) = referrers.first() {
        if list_referrers(client, &first.subject)?.0 == ReferrersSupport::FallbackTag {
            let mut subjects: Vec<&Digest> = referrers.iter().map(|a| &a.subject).collect();
            subjects.sort();
            subjects.dedup();
            for subject in subjects {
                let listed: Vec<_> =
                    referrers.iter().filter(|a| &a.subject == subject).map(|a| a.referrer_descriptor()).collect();
                add_to_fallback_index(client, subject, &listed)?;
            }
        }
    }
    for attachment in attachments {
        if let Placement::Tag(tag) = &attachment.placement {
            let descriptor = &attachment.manifest.descriptor;
            put_manifest(client, tag, &descriptor.media_type, &attachment.manifest.bytes)
                .map_err(|e| about(attachment, e))?;
            report.attachments.push(descriptor.digest.clone());
        }
    }
    Ok(())
}

/// A registry's refusal of `attachment`, saying which one it was: a user told "the registry rejected the manifest"
/// would take it for the image's.
fn about(attachment: &Attachment, error: Error) -> Error {
    match error {
        Error::Registry { registry, repository, problem } => {
            let what = match (&attachment.placement, attachment.artifact_type()) {
                (Placement::Tag(tag), _) => format!("the manifest at {tag}"),
                (Placement::Referrer, Some(artifact_type)) => format!("the {artifact_type} artifact"),
                (Placement::Referrer, None) => "the artifact".to_string(),
            };
            let digest = &attachment.manifest.descriptor.digest;
            Error::Registry { registry, repository, problem: format!("{what} {digest}: {problem}") }
        }
        Error::Remedied { error, remedy } => about(attachment, *error).with_remedy(remedy),
        other => other,
    }
}
