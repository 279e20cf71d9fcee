//! Outputs: each writes a [`Publication`] (one image, or an index of several) whose blobs sit in a staging
//! [`BlobStore`] to one destination, in two phases.
//! `prepare` does all the work beside the destination; `commit` makes it visible with a rename (or, for an existing
//! layout, an atomic index update). A failed run therefore leaves every destination as it was.

pub mod archive;
pub mod bundle;
pub mod daemon;
pub mod layout;
pub mod registry;

use std::collections::BTreeMap;

use crate::attach::Signer;
use crate::blobs::{BlobSource, BlobStore};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Attachment, Placement};
use crate::oci::descriptor::Descriptor;
use crate::oci::image::{Document, Image};
use crate::oci::manifest::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::oci::reference::{ImageName, ImageRef};
use crate::registry::{ClientOptions, PushReport};

/// What an output publishes: one image, or an index of several (a multi-platform image), each image with its
/// manifest (an image without one, from an old `docker save` archive, cannot be published unchanged).
#[derive(Clone, Debug)]
pub struct Publication {
    /// The document a layout's `index.json` lists and a registry tag points at: the image's manifest, or the index.
    pub top: Document,
    pub images: Vec<Image>,
    /// SBOMs, provenance and signatures about the top document or the images, published beside them.
    pub attachments: Vec<Attachment>,
}

impl Publication {
    /// One image as its own top document; `None` when it has no manifest.
    pub fn single(image: Image) -> Option<Publication> {
        let top = image.manifest.clone()?;
        Some(Publication { top, images: vec![image], attachments: Vec::new() })
    }

    /// Several images under `index`, whose bytes list their manifests.
    pub fn index(index: Document, images: Vec<Image>) -> Publication {
        debug_assert!(images.iter().all(|i| i.manifest.is_some()), "an index lists manifests");
        Publication { top: index, images, attachments: Vec::new() }
    }

    pub fn is_index(&self) -> bool {
        self.top.descriptor.media_type.is_index()
    }

    /// The manifests of the images, each with its descriptor and bytes.
    pub fn manifests(&self) -> impl Iterator<Item = &Document> {
        self.images.iter().filter_map(|i| i.manifest.as_ref())
    }

    /// Every blob to copy: configs, layers, manifests and the top document, sorted and without repeats.
    pub fn blob_digests(&self) -> Vec<Digest> {
        let mut digests: Vec<Digest> = self
            .images
            .iter()
            .flat_map(|i| i.blobs().map(|d| d.digest.clone()))
            .chain(self.manifests().map(|m| m.descriptor.digest.clone()))
            .chain(std::iter::once(self.top.descriptor.digest.clone()))
            .chain(self.attachments.iter().flat_map(|a| a.blob_digests().cloned()))
            .collect();
        digests.sort();
        digests.dedup();
        digests
    }
}

/// Copies into `staging` what publishing `image` (read from `source`, its blobs served by `blobs`) to `outputs`
/// needs: its manifest, and its config and layers unless every output is a registry that mounts them from the
/// repository the image was read from (then nothing is downloaded).
pub fn stage(
    image: &Image,
    blobs: &dyn BlobSource,
    staging: &BlobStore,
    outputs: &[ImageRef],
    source: &ImageRef,
) -> Result<()> {
    let mountable_everywhere = outputs.iter().all(|output| match output {
        ImageRef::Registry(target) => registry::mounts_from_origin(image, target),
        _ => false,
    });
    if !mountable_everywhere {
        for blob in image.blobs() {
            copy_blob(blobs, staging, blob, source)?;
        }
    }
    if let Some(manifest) = &image.manifest {
        staging.put(&manifest.bytes)?;
    }
    Ok(())
}

/// Copies into `staging` the attachments read with an image (their blobs and manifests), for a copy to carry them.
pub fn stage_attachments(
    attachments: &[Attachment],
    blobs: &dyn BlobSource,
    staging: &BlobStore,
    source: &ImageRef,
) -> Result<()> {
    for attachment in attachments {
        for blob in &attachment.blobs {
            copy_blob(blobs, staging, blob, source)?;
        }
        staging.put(&attachment.manifest.bytes)?;
    }
    Ok(())
}

/// Streams one blob into the staging store, checking its digest and size.
fn copy_blob(from: &dyn BlobSource, staging: &BlobStore, blob: &Descriptor, source: &ImageRef) -> Result<()> {
    staging.copy_checked(from, &blob.digest, blob.size, source)
}

/// A staging directory for publishing to `outputs`: beside the first one on disk, so that committing it is a rename on
/// one file system, else in the temporary directory.
pub fn staging_dir(outputs: &[ImageRef]) -> Result<crate::cleanup::TempDir> {
    match outputs.iter().find_map(ImageRef::path) {
        Some(path) => staging_dir_in(&layout::parent_dir(path)),
        None => staging_dir_in(&std::env::temp_dir()),
    }
}

/// A staging directory in `parent` (where an output whose name is not known yet will be written).
pub fn staging_dir_in(parent: &std::path::Path) -> Result<crate::cleanup::TempDir> {
    crate::cleanup::TempDir::new_in(parent, STAGING_PREFIX)
        .map_err(|e| Error::io("cannot create a staging directory in", parent, e))
}

/// Writes `publication` (its blobs in `staging`) to every output: all are prepared before any is committed, so a
/// failure while preparing leaves every destination as it was. Returns what the pushes sent.
pub fn publish(
    outputs: &[ImageRef],
    publication: &Publication,
    staging: &BlobStore,
    name: Option<&ImageName>,
    options: &SinkOptions,
) -> Result<Published> {
    let prepared = outputs
        .iter()
        .map(|output| prepare(output, publication, staging, name, options))
        .collect::<Result<Vec<_>>>()?;
    let mut published = Published::default();
    for output in prepared {
        published.warnings.extend(output.warnings());
        published.pushes.extend(output.commit()?);
    }
    Ok(published)
}

/// What publishing did besides writing: what each push sent, and what went otherwise than asked (one line each,
/// naming the output) without failing.
#[derive(Debug, Default)]
pub struct Published {
    pub pushes: Vec<PushReport>,
    pub warnings: Vec<String>,
}

/// Work done beside a destination, waiting to be made visible.
pub trait PreparedOutput {
    /// Makes the output visible; a push reports what it sent.
    fn commit(self: Box<Self>) -> Result<Option<PushReport>>;

    /// What the user should know of the output (a bundle's process that will not run as it is), one line each.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What outputs need besides the image: registry settings.
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    pub registry: ClientOptions,
    /// A repository on the same registry to mount blobs from (`--mount-from`).
    pub mount_from: Option<String>,
    /// Sign every manifest published (`--sign-key`).
    pub signer: Option<Signer>,
    /// Replace an existing `oci-bundle:` directory (`--force`) rather than refuse it.
    pub replace_bundle: bool,
}

/// Prepares `publication` for `output`. `name` is the image's name (`--tag`), used where the reference names none.
pub fn prepare(
    output: &ImageRef,
    image: &Publication,
    staging: &BlobStore,
    name: Option<&ImageName>,
    options: &SinkOptions,
) -> Result<Box<dyn PreparedOutput>> {
    let signed;
    let image = match &options.signer {
        Some(signer) => {
            signed = with_signatures(output, image, staging, name, signer, options)?;
            &signed
        }
        None => image,
    };
    match output {
        ImageRef::Registry(target) => registry::prepare(target, image, staging, options),
        ImageRef::Layout { dir, tag } => {
            // Layouts are addressed by tag (skopeo `oci:DIR:TAG`, umoci `--image DIR:TAG`).
            let tag = tag.clone().or_else(|| name.map(|n| n.tag.clone())).unwrap_or_else(|| "latest".into());
            layout::prepare(dir, &tag, name, image, staging)
        }
        ImageRef::OciArchive { file, reference } => {
            // podman load names an OCI archive's image after its ref.name, so a known name is written in full.
            let ref_name = reference.clone().or_else(|| name.map(ToString::to_string));
            archive::prepare(file, ref_name.as_deref(), name, image, staging)
        }
        ImageRef::DockerArchive { file, reference } => {
            let name = reference.as_ref().or(name);
            archive::prepare(file, name.map(ToString::to_string).as_deref(), name, image, staging)
        }
        ImageRef::Bundle { dir } => bundle::prepare_output(dir, image, staging, options.replace_bundle),
        ImageRef::DockerDaemon { name } => daemon::prepare(name, image, staging),
    }
}

/// `publication` with a signature of each of its manifests for `output`, under the name it has there: the registry
/// reference, or the image's name (`--tag`) in a layout or an archive. A registry's signatures already there are
/// kept, the new one added beside them.
pub(crate) fn with_signatures(
    output: &ImageRef,
    publication: &Publication,
    staging: &BlobStore,
    name: Option<&ImageName>,
    signer: &Signer,
    options: &SinkOptions,
) -> Result<Publication> {
    let reference = match output {
        ImageRef::Registry(target) => target.to_string(),
        _ => match name {
            Some(name) => name.to_string(),
            None => {
                return Err(Error::Invalid(format!(
                    "cannot sign `{output}`: a signature names the image it vouches for; give it a name with --tag \
                     NAME[:TAG] (as it will be pushed: registry.example.com/team/app:1.0)"
                )));
            }
        },
    };
    let mut manifests: Vec<&Digest> = vec![&publication.top.descriptor.digest];
    if publication.is_index() {
        manifests.extend(publication.manifests().map(|m| &m.descriptor.digest));
    }
    // Signatures already made are kept: those read with the image (a copy), else those at the registry.
    let existing = |digest: &Digest| -> Result<Option<Image>> {
        if let Some(image) = crate::attach::signature::among(&publication.attachments, digest) {
            return Ok(Some(image));
        }
        match output {
            ImageRef::Registry(target) => registry::existing_signature(target, digest, &options.registry),
            _ => Ok(None),
        }
    };
    let mut signed = publication.clone();
    // Signatures made for another destination (read with the image) stay; one of ours for the same manifest
    // replaces its tag's entry.
    let ours = crate::attach::signature::sign(staging, &manifests, &reference, signer, existing)?;
    signed.attachments.retain(|a| !ours.iter().any(|o| o.placement == a.placement));
    signed.attachments.extend(ours);
    Ok(signed)
}

/// Checks, before any work, that `output` can be written with `options`: a layout is a directory (new, empty or a
/// layout), an archive a file in an existing directory, a bundle a new directory unless it is to be replaced.
pub fn check_destination(output: &ImageRef, options: &SinkOptions) -> Result<()> {
    if let ImageRef::DockerDaemon { .. } = output {
        return daemon::check();
    }
    let Some(path) = output.path() else {
        // A registry is checked when the push starts (its first request asks for credentials).
        return Ok(());
    };
    let refuse =
        |problem: &str| Err(Error::Invalid(format!("cannot write `{output}`: `{}` {problem}", path.display())));
    match output {
        ImageRef::Layout { .. } => {
            if path.exists() && !path.is_dir() {
                return refuse("exists and is not a directory: an oci: layout is a directory");
            }
            if path.is_dir() {
                layout::check_existing(path)?;
            }
        }
        ImageRef::OciArchive { .. } | ImageRef::DockerArchive { .. } => {
            if path.is_dir() {
                return refuse("is a directory: an archive output needs a file name");
            }
        }
        ImageRef::Bundle { dir } => {
            return bundle::check_destination(dir, options.replace_bundle, &output.to_string());
        }
        ImageRef::Registry(_) | ImageRef::DockerDaemon { .. } => {}
    }
    let parent = layout::parent_dir(path);
    if !parent.is_dir() {
        return Err(Error::Invalid(format!(
            "cannot write `{output}`: the directory `{}` does not exist or is not a directory",
            parent.display()
        )));
    }
    Ok(())
}

/// The manifest descriptor as an index lists it: platform, ref.name and containerd's full name.
fn index_descriptor(image: &Publication, ref_name: Option<&str>, name: Option<&ImageName>) -> Descriptor {
    let mut annotations = BTreeMap::new();
    if let Some(name) = name {
        annotations.insert(ANNOTATION_CONTAINERD_NAME.to_string(), name.to_string());
    }
    if let Some(ref_name) = ref_name {
        annotations.insert(ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
    }
    Descriptor { annotations: (!annotations.is_empty()).then_some(annotations), ..image.top.descriptor.clone() }
}

/// What a layout's or an archive's `index.json` lists besides the image: each attachment, a referrer by its artifact
/// type, a signature or attestation by its tag as `ref.name`.
fn attachment_entries(publication: &Publication) -> Vec<Descriptor> {
    publication
        .attachments
        .iter()
        .map(|attachment| match &attachment.placement {
            Placement::Referrer => attachment.referrer_descriptor(),
            Placement::Tag(tag) => Descriptor {
                annotations: Some(BTreeMap::from([(ANNOTATION_REF_NAME.to_string(), tag.clone())])),
                ..attachment.manifest.descriptor.clone()
            },
        })
        .collect()
}

/// What every temporary path beside a destination is named: staging directories, archives and layouts being
/// written, `index.json` being replaced. [`crate::cleanup`] removes a dead run's leftovers of this kind.
pub const TEMP_PREFIX: &str = ".rootfs2image-";
/// The staging directory a run assembles its blobs in (a [`TEMP_PREFIX`] name too).
pub const STAGING_PREFIX: &str = ".rootfs2image-staging-";

/// image-layout.md: the `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
