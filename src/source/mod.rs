//! Reading images back (for `inspect`, `diff`, `copy`, `push`, `index`, `--base` and `--previous`): every transport
//! yields the one image model ([`Image`]) and serves its blobs, each read through a digest check.
//! [`layout`] reads an OCI layout (a directory, or one inside an archive), [`archive`] indexes archives and reads the
//! old `docker save` format, [`registry`] fetches from a registry; [`blob`] holds the checks every blob passes.

pub mod archive;
mod attachments;
pub mod blob;
pub mod layout;
pub mod registry;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

pub use blob::VerifiedLayer;
use blob::{Bounded, open_in_layout};

use crate::blobs::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::artifact::{Attachment, Placement};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::MAX_DOCUMENT_SIZE;
use crate::oci::image::{Image, Layer};
use crate::oci::manifest::MAX_IMAGE_LAYERS;
use crate::oci::reference::ImageRef;
use crate::registry::{ClientOptions, RegistryClient};

/// Where blobs are read from.
enum Blobs {
    /// An OCI layout directory; `image` is the reference as the user wrote it, for errors.
    Layout { dir: PathBuf, image: String },
    /// An archive: member path -> (offset, size) of its data in the file, or `None` for a member that is not a
    /// regular file (a symlink, a device, a directory), which is never read.
    Archive { file: PathBuf, image: String, members: HashMap<String, Option<(u64, u64)>> },
    /// A repository on a registry; blobs are streamed from it, never held whole, each held to the size the manifest
    /// declares for it (only blobs the manifest lists are read).
    Registry { client: Box<RegistryClient>, sizes: HashMap<Digest, u64> },
}

/// Text from the image (a member name, an annotation, a media type) as it may appear in an error: escaped and cut.
fn shown(text: &str) -> String {
    crate::error::display_text(text, crate::error::MAX_QUOTED_TEXT)
}

impl Blobs {
    fn open_path(&self, member: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Blobs::Registry { client, sizes } => {
                let digest: Digest = member
                    .strip_prefix("blobs/sha256/")
                    .and_then(|hex| format!("sha256:{hex}").parse().ok())
                    .ok_or_else(|| client.fail(&format!("`{}` is not a blob", shown(member))))?;
                let &size = sizes
                    .get(&digest)
                    .ok_or_else(|| client.fail(&format!("blob {digest} is not one the manifest lists")))?;
                Ok((client.open_blob(&digest, size)?, size))
            }
            Blobs::Layout { dir, image } => {
                let (file, size) = open_in_layout(dir, member)
                    .map_err(|refusal| Error::bad_image(image, format!("`{}`: {refusal}", shown(member))))?;
                Ok((Box::new(file), size))
            }
            Blobs::Archive { file, image, members } => {
                let &(offset, size) = match members.get(member) {
                    Some(Some(place)) => place,
                    Some(None) => {
                        return Err(Error::bad_image(
                            image,
                            format!("member `{}` is not a regular file", shown(member)),
                        ));
                    }
                    None => {
                        return Err(Error::bad_image(image, format!("the archive has no member `{}`", shown(member))));
                    }
                };
                let mut f = File::open(file).map_err(|e| Error::io("cannot open", file, e))?;
                f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("cannot read", file, e))?;
                Ok((Box::new(Bounded::new(f.take(size), size)), size))
            }
        }
    }

    /// A blob read within its declared size: one whose stored size is known and differs is refused before it is
    /// read; one that turns out longer or shorter fails when the read reaches the difference.
    fn open_within(&self, member: &str, declared: &Descriptor, image: &str) -> Result<Bounded<Box<dyn Read + Send>>> {
        let (reader, stored) = self.open_path(member)?;
        if stored != u64::MAX && stored != declared.size {
            return Err(Error::bad_image(
                image,
                format!("blob {} is {stored} bytes, but its descriptor says {}", declared.digest, declared.size),
            ));
        }
        Ok(Bounded::new(reader, declared.size))
    }

    /// A document with no descriptor (`index.json`, Docker's `manifest.json` and the configs it names) of at most
    /// `limit` bytes; a larger stored size is refused before reading.
    fn read_path(&self, member: &str, limit: u64, image: &str) -> Result<Vec<u8>> {
        let (reader, stored) = self.open_path(member)?;
        let too_large = || {
            Error::bad_image(image, format!("`{}` is larger than the {limit} bytes a document may have", shown(member)))
        };
        if stored != u64::MAX && stored > limit {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::bad_image(image, format!("`{}`: {e}", shown(member))))?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(bytes)
    }

    /// A manifest or config named by `descriptor`, read within its declared size (at most [`MAX_DOCUMENT_SIZE`]) and
    /// checked against its digest.
    fn read_verified(&self, descriptor: &Descriptor, display: &str) -> Result<Vec<u8>> {
        blob::check_document_size(descriptor, MAX_DOCUMENT_SIZE, display)?;
        let reader = self.open_within(&blob_member(&descriptor.digest), descriptor, display)?;
        blob::read_document(reader.into_inner(), descriptor, MAX_DOCUMENT_SIZE, display)
    }
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// An image read from a transport: the image model, the names the transport gives it, and where its blobs are.
pub struct SourceImage {
    /// The reference as the user wrote it, for messages.
    pub reference: String,
    /// Names the source gives the image (ref.name, containerd name, RepoTags).
    pub names: Vec<String>,
    pub image: Image,
    blobs: Blobs,
    /// Where each blob of the image is stored when not under its digest's name (an old `docker save` archive
    /// names layers by path).
    members: HashMap<Digest, String>,
    /// SBOMs, provenance and signatures attached to the image, once [`SourceImage::load_attachments`] read them.
    pub attachments: Vec<Attachment>,
    /// What a layout's `index.json` lists that may be attached to the image, read by `load_attachments`.
    candidates: Vec<(Descriptor, Placement)>,
}

pub fn open(reference: &ImageRef) -> Result<SourceImage> {
    open_with(reference, &ClientOptions::default())
}

/// Opens an image; `registry` says how to reach a `docker://` source.
pub fn open_with(reference: &ImageRef, registry: &ClientOptions) -> Result<SourceImage> {
    let display = reference.to_string();
    let (blobs, wanted) = match reference {
        ImageRef::Layout { dir, tag } => (Blobs::Layout { dir: dir.clone(), image: display.clone() }, tag.clone()),
        ImageRef::OciArchive { file, reference } => (archive::index(file, &display)?, reference.clone()),
        ImageRef::DockerArchive { file, reference } => {
            (archive::index(file, &display)?, reference.as_ref().map(|r| r.to_string()))
        }
        ImageRef::Registry(target) => {
            return registry::open(target, registry, &display).and_then(within_layer_limit);
        }
        ImageRef::Bundle { .. } | ImageRef::DockerDaemon { .. } => {
            return Err(Error::Invalid(format!("`{display}` is an output only: images are not read from it")));
        }
    };
    if let Blobs::Layout { dir, .. } = &blobs {
        if let Err(blob::LayoutRefusal::Missing) = open_in_layout(dir, "index.json") {
            return Err(Error::bad_image(&display, "not an OCI image layout: no index.json"));
        }
    }
    let has_index = match &blobs {
        Blobs::Layout { .. } | Blobs::Registry { .. } => true,
        Blobs::Archive { members, .. } => members.contains_key("index.json"),
    };
    if has_index {
        layout::open(blobs, &display, wanted.as_deref())
    } else {
        archive::open_docker_save(blobs, &display)
    }
}

/// The layer limit, checked again whatever parsed the manifest (a registry's answer is parsed in [`registry::open`]).
fn within_layer_limit(source: SourceImage) -> Result<SourceImage> {
    let count = source.image.layers.len();
    if count > MAX_IMAGE_LAYERS {
        return Err(Error::bad_image(
            &source.reference,
            format!("the manifest lists {count} layers, more than the {MAX_IMAGE_LAYERS} an image may have"),
        ));
    }
    Ok(source)
}

/// The layers of a manifest with the config's diff_ids beside them (`None` past the end of a shorter list).
fn layers_of(descriptors: &[Descriptor], diff_ids: &[Digest]) -> Vec<Layer> {
    descriptors
        .iter()
        .zip(diff_ids.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(descriptor, diff_id)| Layer { descriptor: descriptor.clone(), diff_id: diff_id.cloned() })
        .collect()
}

impl SourceImage {
    /// An image whose blobs this run wrote into a layout-shaped store (a conversion's staging store), read back like
    /// any layout: for an output that needs the layers' contents, a runtime bundle.
    pub fn from_store(image: Image, root: &std::path::Path, reference: &str) -> SourceImage {
        SourceImage {
            reference: reference.to_string(),
            names: Vec::new(),
            image,
            blobs: Blobs::Layout { dir: root.to_path_buf(), image: reference.to_string() },
            members: HashMap::new(),
            attachments: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Reads every layer once, checking its size and digest, and its uncompressed digest against the config's
    /// diff_id.
    pub fn verify_layers(&self) -> Result<Vec<VerifiedLayer>> {
        if self.image.manifest.is_some() {
            self.blobs.read_verified(&self.image.config_descriptor, &self.reference)?;
        }
        let mut verified = Vec::new();
        for layer in &self.image.layers {
            verified.push(self.read_layer(layer, |_| Ok(()))?);
        }
        Ok(verified)
    }

    /// Reads one layer through [`blob::read_layer`]: within its descriptor, checked against its digest and diff_id,
    /// its decoded tar stream given to `consume`.
    pub fn read_layer(
        &self,
        layer: &Layer,
        consume: impl FnOnce(&mut dyn Read) -> Result<()>,
    ) -> Result<VerifiedLayer> {
        self.read_layer_through(layer, |raw| raw, consume)
    }

    /// Like [`SourceImage::read_layer`], with the raw blob passed through `wrap` first (to copy it as it is read).
    pub fn read_layer_through<W: Read + Send>(
        &self,
        layer: &Layer,
        wrap: impl FnOnce(Box<dyn Read + Send>) -> W,
        consume: impl FnOnce(&mut dyn Read) -> Result<()>,
    ) -> Result<VerifiedLayer> {
        let member = self.member(&layer.descriptor.digest);
        let raw = self.blobs.open_within(&member, &layer.descriptor, &self.reference)?.into_inner();
        blob::read_layer(wrap(raw), &layer.descriptor, layer.diff_id.as_ref(), &self.reference, consume)
    }

    /// Where the blob `digest` is stored.
    fn member(&self, digest: &Digest) -> String {
        self.members.get(digest).cloned().unwrap_or_else(|| blob_member(digest))
    }
}

impl BlobSource for SourceImage {
    /// A blob of this image (its config or a layer), read within the size its descriptor declares.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        let descriptor = self
            .image
            .blobs()
            .chain(self.attachments.iter().flat_map(|a| &a.blobs))
            .find(|d| &d.digest == digest)
            .ok_or_else(|| Error::bad_image(&self.reference, format!("the image has no blob {digest}")))?;
        Ok(Box::new(self.blobs.open_within(&self.member(digest), descriptor, &self.reference)?))
    }

    /// From a registry, only the range asked for is fetched (a zstd:chunked table of contents at the end of a layer,
    /// a chunk of an upload): what is read is held to what is left of the declared size, but, read in part, cannot
    /// be checked against the blob's digest (a table of contents is checked against its own).
    fn open_blob_at(&self, digest: &Digest, offset: u64) -> Result<Box<dyn Read + Send + '_>> {
        let Blobs::Registry { client, sizes } = &self.blobs else {
            let mut reader = self.open_blob(digest)?;
            crate::blobs::read_past(&mut reader, offset)
                .map_err(|e| Error::bad_image(&self.reference, format!("blob {digest}: {e}")))?;
            return Ok(reader);
        };
        let &size = sizes
            .get(digest)
            .ok_or_else(|| Error::bad_image(&self.reference, format!("the image has no blob {digest}")))?;
        let left = size.saturating_sub(offset);
        Ok(Box::new(Bounded::new(client.open_blob_from(digest, size, offset.min(size))?, left)))
    }
}
