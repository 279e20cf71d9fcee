//! Reading images back (for `inspect`, and for later steps that build on existing images): an OCI layout directory
//! or an archive written by this tool, `docker save` or `podman save`, with every blob read through a digest check.

pub mod blob;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::config::{ImageConfig, parse_config};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::MAX_DOCUMENT_SIZE;
use crate::oci::index::{Index, parse_index};
use crate::oci::manifest::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, MAX_IMAGE_LAYERS, Manifest, parse_manifest,
};
use crate::oci::media_type::MediaType;
use crate::oci::reference::{ImageRef, RegistryRef, RegistryTarget};
use crate::registry::{ClientOptions, RegistryClient};
use crate::tar::entry::EntryKind;
use crate::tar::reader::TarReader;
pub use blob::VerifiedLayer;
use blob::{Bounded, LayoutRefusal, open_in_layout};

/// The most entries an archive (`oci-archive:`, `docker-archive:`) may hold: an image of [`MAX_IMAGE_LAYERS`]
/// layers needs a few more than that; past it the archive is refused while it is indexed.
pub const MAX_ARCHIVE_MEMBERS: usize = 10_000;
/// The longest member name of an archive that is remembered: blob names are 77 bytes (`blobs/sha256/<hex>`), old
/// `docker save` layer names about as long; longer names are skipped, so an archive's index stays small.
const MAX_MEMBER_NAME: usize = 4096;
/// The largest Docker `manifest.json` read from an archive (containers/image `iolimits.MaxTarFileManifestSize`).
pub const MAX_DOCKER_MANIFEST_SIZE: u64 = 1 << 20;

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
}

/// How a layer is found in the source: by digest in `blobs/`, or by path (an old `docker save` archive).
#[derive(Clone, Debug)]
pub struct SourceLayer {
    pub descriptor: Descriptor,
    /// The diff_id the config lists for this layer.
    pub diff_id: Option<Digest>,
    member: String,
}

/// An image opened for reading.
pub struct OpenedImage {
    pub reference: String,
    /// The manifest descriptor (absent for an old `docker save` archive, which has no OCI manifest).
    pub manifest_descriptor: Option<Descriptor>,
    pub manifest: Option<Manifest>,
    /// The manifest exactly as stored, for pushing it unchanged.
    pub manifest_bytes: Option<Vec<u8>>,
    pub config_descriptor: Descriptor,
    pub config: ImageConfig,
    pub layers: Vec<SourceLayer>,
    /// Names the source gives the image (ref.name, containerd name, RepoTags).
    pub names: Vec<String>,
    blobs: Blobs,
    config_member: String,
}

pub fn open(reference: &ImageRef) -> Result<OpenedImage> {
    open_with(reference, &ClientOptions::default())
}

/// Opens an image; `registry` says how to reach a `docker://` source.
pub fn open_with(reference: &ImageRef, registry: &ClientOptions) -> Result<OpenedImage> {
    let display = reference.to_string();
    let (blobs, wanted) = match reference {
        ImageRef::Layout { dir, tag } => (Blobs::Layout { dir: dir.clone(), image: display.clone() }, tag.clone()),
        ImageRef::OciArchive { file, reference } => (index_archive(file, &display)?, reference.clone()),
        ImageRef::DockerArchive { file, reference } => {
            (index_archive(file, &display)?, reference.as_ref().map(|r| r.to_string()))
        }
        ImageRef::Registry(target) => return open_registry(target, registry, &display).and_then(within_layer_limit),
    };
    if let Blobs::Layout { dir, .. } = &blobs {
        if let Err(LayoutRefusal::Missing) = open_in_layout(dir, "index.json") {
            return Err(Error::bad_image(&display, "not an OCI image layout: no index.json"));
        }
    }
    let has_index = match &blobs {
        Blobs::Layout { .. } | Blobs::Registry { .. } => true,
        Blobs::Archive { members, .. } => members.contains_key("index.json"),
    };
    if has_index { open_oci(blobs, &display, wanted.as_deref()) } else { open_docker_save(blobs, &display) }
}

/// The layer limit, checked again whatever parsed the manifest (a registry's answer is parsed in [`open_registry`]).
fn within_layer_limit(image: OpenedImage) -> Result<OpenedImage> {
    if image.layers.len() > MAX_IMAGE_LAYERS {
        return Err(Error::bad_image(
            &image.reference,
            format!(
                "the manifest lists {} layers, more than the {MAX_IMAGE_LAYERS} an image may have",
                image.layers.len()
            ),
        ));
    }
    Ok(image)
}

/// A manifest from a registry: fetched by tag or digest, checked against its digest, config read and checked.
fn open_registry(target: &RegistryRef, options: &ClientOptions, display: &str) -> Result<OpenedImage> {
    let client = RegistryClient::connect_for_pull(target, options.clone())?;
    let accept =
        [MediaType::OciManifest, MediaType::DockerManifest, MediaType::OciIndex, MediaType::DockerManifestList]
            .map(|m| m.as_str().to_string())
            .join(", ");
    let url = client.url(&format!("manifests/{}", target.manifest_reference()));
    let reply =
        client.send(ureq::http::Method::GET, &url, &[("accept", accept)], crate::registry::client::Body::Empty)?;
    if !reply.status.is_success() {
        return Err(client.fail(&format!(
            "GET manifest {} answered {}: {}",
            target.manifest_reference(),
            reply.status,
            reply.error_text()
        )));
    }
    if reply.truncated {
        return Err(client.fail(&format!(
            "the manifest is larger than {} bytes, the most this tool reads",
            crate::registry::client::MAX_DOCUMENT_LEN
        )));
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
    let descriptor =
        Descriptor { media_type, digest, size: reply.body.len() as u64, platform: None, annotations: None };
    // containers/image reads configs up to 4 MiB too (`iolimits.MaxConfigBodySize`).
    if manifest.config.size > crate::registry::client::MAX_DOCUMENT_LEN {
        return Err(client.fail(&format!(
            "the manifest declares a config of {} bytes, more than the {} this tool reads",
            manifest.config.size,
            crate::registry::client::MAX_DOCUMENT_LEN
        )));
    }
    let sizes = std::iter::once(&manifest.config).chain(&manifest.layers).map(|d| (d.digest.clone(), d.size)).collect();
    let blobs = Blobs::Registry { client: Box::new(client), sizes };
    let config_bytes = read_verified(&blobs, &manifest.config, display)?;
    let config = parse_config(&config_bytes)
        .map_err(|problem| Error::bad_image(display, format!("image config {}: {problem}", manifest.config.digest)))?;
    let layers = manifest
        .layers
        .iter()
        .zip(config.rootfs.diff_ids.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(d, diff_id)| SourceLayer {
            descriptor: d.clone(),
            diff_id: diff_id.cloned(),
            member: blob_member(&d.digest),
        })
        .collect();
    Ok(OpenedImage {
        reference: display.to_string(),
        names: vec![target.to_string()],
        manifest_descriptor: Some(descriptor),
        config_descriptor: manifest.config.clone(),
        config_member: blob_member(&manifest.config.digest),
        manifest_bytes: Some(reply.body),
        manifest: Some(manifest),
        config,
        layers,
        blobs,
    })
}

impl OpenedImage {
    /// The registry and repository the image comes from, when it comes from one (for cross-repository mounts).
    pub fn registry_origin(&self) -> Option<(String, String)> {
        match &self.blobs {
            Blobs::Registry { client, .. } => Some((client.host().to_string(), client.repository().to_string())),
            _ => None,
        }
    }
}

fn index_archive(file: &Path, image: &str) -> Result<Blobs> {
    let handle = File::open(file).map_err(|e| Error::io("cannot open", file, e))?;
    let meta = handle.metadata().map_err(|e| Error::io("cannot stat", file, e))?;
    if !meta.is_file() {
        // A FIFO or a device would be read without end.
        return Err(Error::bad_image(image, "an archive must be a regular file"));
    }
    let name = file.display().to_string();
    let mut reader = TarReader::new(io::BufReader::new(Bounded::new(handle, meta.len())), &name, "uncompressed");
    let mut members = HashMap::new();
    let mut count = 0usize;
    while let Some(entry) = reader.next_entry()? {
        count += 1;
        if count > MAX_ARCHIVE_MEMBERS {
            return Err(Error::bad_image(
                image,
                format!("the archive has more than {MAX_ARCHIVE_MEMBERS} entries, more than an image needs"),
            ));
        }
        if entry.path.len() > MAX_MEMBER_NAME {
            continue;
        }
        let mut path = String::from_utf8_lossy(&entry.path).into_owned();
        while let Some(stripped) = path.strip_prefix("./") {
            path = stripped.to_string();
        }
        let place = matches!(entry.kind, EntryKind::File { .. }).then(|| (reader.data_offset(), entry.size()));
        members.insert(path, place);
    }
    Ok(Blobs::Archive { file: file.to_path_buf(), image: image.to_string(), members })
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn open_oci(blobs: Blobs, display: &str, wanted: Option<&str>) -> Result<OpenedImage> {
    let index_bytes = blobs.read_path("index.json", MAX_DOCUMENT_SIZE, display)?;
    let index: Index = parse_index(&index_bytes).map_err(|e| Error::bad_image(display, format!("index.json: {e}")))?;
    let names = |d: &Descriptor| -> Vec<String> {
        let a = d.annotations.clone().unwrap_or_default();
        let mut names: Vec<String> =
            [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME].iter().filter_map(|k| a.get(*k).cloned()).collect();
        names.dedup();
        names
    };
    let chosen =
        match wanted {
            Some(wanted) => index.manifests.iter().find(|d| names(d).iter().any(|n| n == wanted)).ok_or_else(|| {
                Error::bad_image(display, format!("no image named `{}` in index.json", shown(wanted)))
            })?,
            None => match index.manifests.as_slice() {
                [one] => one,
                [] => return Err(Error::bad_image(display, "index.json lists no image")),
                many => {
                    let listed: Vec<String> = many.iter().flat_map(names).collect();
                    return Err(Error::bad_image(
                        display,
                        format!("index.json lists {} images: name one of: {}", many.len(), shown(&listed.join(", "))),
                    ));
                }
            },
        };
    if chosen.media_type.is_index() {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    if !chosen.media_type.is_manifest() {
        return Err(Error::bad_image(
            display,
            format!("unsupported manifest media type `{}`", shown(chosen.media_type.as_str())),
        ));
    }
    let manifest_bytes = read_verified(&blobs, chosen, display)?;
    let manifest: Manifest = parse_manifest(&manifest_bytes)
        .map_err(|e| Error::bad_image(display, format!("manifest {}: {e}", chosen.digest)))?;
    let config_bytes = read_verified(&blobs, &manifest.config, display)?;
    let config: ImageConfig = parse_config(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("image config {}: {e}", manifest.config.digest)))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::bad_image(
            display,
            format!(
                "the manifest lists {} layers but the config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    let layers = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(d, diff_id)| SourceLayer {
            descriptor: d.clone(),
            diff_id: Some(diff_id.clone()),
            member: blob_member(&d.digest),
        })
        .collect();
    Ok(OpenedImage {
        reference: display.to_string(),
        names: names(chosen),
        manifest_descriptor: Some(chosen.clone()),
        config_descriptor: manifest.config.clone(),
        config_member: blob_member(&manifest.config.digest),
        manifest: Some(manifest),
        manifest_bytes: Some(manifest_bytes),
        config,
        layers,
        blobs,
    })
}

/// One image of Docker's `manifest.json` (docker/image/tarexport).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct DockerSaveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Parses Docker's `manifest.json` and checks its size and every image's layer count.
pub fn parse_docker_manifest(bytes: &[u8]) -> std::result::Result<Vec<DockerSaveEntry>, String> {
    if bytes.len() as u64 > MAX_DOCKER_MANIFEST_SIZE {
        return Err(format!("it is {} bytes, more than the {MAX_DOCKER_MANIFEST_SIZE} it may have", bytes.len()));
    }
    let entries: Vec<DockerSaveEntry> = serde_json::from_slice(bytes).map_err(|e| format!("invalid: {e}"))?;
    if let Some(entry) = entries.iter().find(|e| e.layers.len() > MAX_IMAGE_LAYERS) {
        return Err(format!(
            "an image lists {} layers, more than the {MAX_IMAGE_LAYERS} an image may have",
            entry.layers.len()
        ));
    }
    Ok(entries)
}

/// An archive with only Docker's `manifest.json` (what `docker save` wrote before Docker 25).
fn open_docker_save(blobs: Blobs, display: &str) -> Result<OpenedImage> {
    let bytes = blobs.read_path("manifest.json", MAX_DOCKER_MANIFEST_SIZE, display)?;
    let entries =
        parse_docker_manifest(&bytes).map_err(|e| Error::bad_image(display, format!("manifest.json: {e}")))?;
    let [entry] = entries.as_slice() else {
        return Err(Error::bad_image(display, format!("manifest.json lists {} images, expected one", entries.len())));
    };
    let config_bytes = blobs.read_path(&entry.config, MAX_DOCUMENT_SIZE, display)?;
    let config: ImageConfig = parse_config(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("image config `{}`: {e}", shown(&entry.config))))?;
    let config_descriptor = Descriptor {
        media_type: MediaType::OciConfig,
        digest: Digest::of(&config_bytes),
        size: config_bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    let mut layers = Vec::new();
    for (i, member) in entry.layers.iter().enumerate() {
        let (mut reader, size) = blobs.open_path(member)?;
        let mut raw = crate::digest::DigestReader::new(&mut reader);
        io::copy(&mut raw, &mut io::sink())
            .map_err(|e| Error::bad_image(display, format!("`{}`: {e}", shown(member))))?;
        let (digest, _) = raw.finish();
        layers.push(SourceLayer {
            descriptor: Descriptor {
                media_type: MediaType::DockerLayer,
                digest,
                size,
                platform: None,
                annotations: None,
            },
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
            member: member.clone(),
        });
    }
    Ok(OpenedImage {
        reference: display.to_string(),
        manifest_descriptor: None,
        manifest: None,
        manifest_bytes: None,
        config_descriptor,
        config,
        layers,
        names: entry.repo_tags.clone().unwrap_or_default(),
        blobs,
        config_member: entry.config.clone(),
    })
}

/// A manifest or config named by `descriptor`, read within its declared size (at most [`MAX_DOCUMENT_SIZE`]) and
/// checked against its digest.
fn read_verified(blobs: &Blobs, descriptor: &Descriptor, display: &str) -> Result<Vec<u8>> {
    blob::check_document_size(descriptor, MAX_DOCUMENT_SIZE, display)?;
    let reader = blobs.open_within(&blob_member(&descriptor.digest), descriptor, display)?;
    blob::read_document(reader.into_inner(), descriptor, MAX_DOCUMENT_SIZE, display)
}

impl OpenedImage {
    /// Reads every layer once, checking its size and digest, and its uncompressed digest against the config's
    /// diff_id.
    pub fn verify_layers(&self) -> Result<Vec<VerifiedLayer>> {
        if self.manifest_descriptor.is_some() {
            read_verified(&self.blobs, &self.config_descriptor, &self.reference)?;
        }
        let mut verified = Vec::new();
        for layer in &self.layers {
            verified.push(self.read_layer(layer, |_| Ok(()))?);
        }
        Ok(verified)
    }

    /// Reads one layer through [`blob::read_layer`]: within its descriptor, checked against its digest and
    /// diff_id, its decoded tar stream given to `consume`.
    pub fn read_layer(
        &self,
        layer: &SourceLayer,
        consume: impl FnOnce(&mut dyn Read) -> Result<()>,
    ) -> Result<VerifiedLayer> {
        self.read_layer_through(layer, |raw| raw, consume)
    }

    /// Like [`OpenedImage::read_layer`], with the raw blob passed through `wrap` first (to copy it as it is read).
    pub fn read_layer_through<W: Read + Send>(
        &self,
        layer: &SourceLayer,
        wrap: impl FnOnce(Box<dyn Read + Send>) -> W,
        consume: impl FnOnce(&mut dyn Read) -> Result<()>,
    ) -> Result<VerifiedLayer> {
        let raw = self.blobs.open_within(&layer.member, &layer.descriptor, &self.reference)?.into_inner();
        blob::read_layer(wrap(raw), &layer.descriptor, layer.diff_id.as_ref(), &self.reference, consume)
    }

    /// The descriptor this image gives `digest` (its config or one of its layers) and where the blob is stored.
    fn blob_of(&self, digest: &Digest) -> Option<(&Descriptor, &str)> {
        if digest == &self.config_descriptor.digest {
            return Some((&self.config_descriptor, &self.config_member));
        }
        self.layers.iter().find(|l| &l.descriptor.digest == digest).map(|l| (&l.descriptor, l.member.as_str()))
    }
}

impl crate::registry::push::BlobSource for OpenedImage {
    /// A blob of this image, read within the size its descriptor declares.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        let (descriptor, member) = self
            .blob_of(digest)
            .ok_or_else(|| Error::bad_image(&self.reference, format!("the image has no blob {digest}")))?;
        Ok(Box::new(self.blobs.open_within(member, descriptor, &self.reference)?))
    }
}
