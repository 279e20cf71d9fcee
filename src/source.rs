//! Reading images back (for `inspect`, and for later steps that build on existing images): an OCI layout directory
//! or an archive written by this tool, `docker save` or `podman save`, with every blob read through a digest check.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, ImageConfig, Index, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest,
};
use crate::reference::{ImageRef, RegistryRef, RegistryTarget};
use crate::registry::{ClientOptions, RegistryClient};
use crate::tar_reader::TarReader;

/// Where blobs are read from.
enum Blobs {
    Layout(PathBuf),
    /// An archive: member path -> (offset, size) of its data in the file.
    Archive {
        file: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
    /// A repository on a registry; blobs are streamed from it, never held whole, each held to the size the manifest
    /// declares for it (only blobs the manifest lists are read).
    Registry {
        client: Box<RegistryClient>,
        sizes: HashMap<Digest, u64>,
    },
}

impl Blobs {
    fn open_path(&self, member: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        match self {
            Blobs::Registry { client, sizes } => {
                let digest: Digest = member
                    .strip_prefix("blobs/sha256/")
                    .and_then(|hex| format!("sha256:{hex}").parse().ok())
                    .ok_or_else(|| client.fail(&format!("`{member}` is not a blob")))?;
                let &size = sizes
                    .get(&digest)
                    .ok_or_else(|| client.fail(&format!("blob {digest} is not one the manifest lists")))?;
                Ok((client.open_blob(&digest, size)?, size))
            }
            Blobs::Layout(dir) => {
                let path = dir.join(member);
                let file = File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
                let size = file.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len();
                Ok((Box::new(file), size))
            }
            Blobs::Archive { file, members } => {
                let &(offset, size) = members
                    .get(member)
                    .ok_or_else(|| Error::bad_image(file.display(), format!("the archive has no member `{member}`")))?;
                let mut f = File::open(file).map_err(|e| Error::io("cannot open", file, e))?;
                f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("cannot read", file, e))?;
                Ok((Box::new(f.take(size)), size))
            }
        }
    }

    fn read_path(&self, member: &str, image: &str) -> Result<Vec<u8>> {
        const LIMIT: u64 = 64 << 20;
        let (reader, _) = self.open_path(member)?;
        let mut bytes = Vec::new();
        reader.take(LIMIT + 1).read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", member, e))?;
        if bytes.len() as u64 > LIMIT {
            return Err(Error::bad_image(
                image,
                format!("`{member}` is larger than {LIMIT} bytes, too large for a JSON document"),
            ));
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
        ImageRef::Layout { dir, tag } => (Blobs::Layout(dir.clone()), tag.clone()),
        ImageRef::OciArchive { file, reference } => (index_archive(file)?, reference.clone()),
        ImageRef::DockerArchive { file, reference } => {
            (index_archive(file)?, reference.as_ref().map(|r| r.to_string()))
        }
        ImageRef::Registry(target) => return open_registry(target, registry, &display),
    };
    if let Blobs::Layout(dir) = &blobs
        && !dir.join("index.json").is_file()
    {
        return Err(Error::bad_image(&display, "not an OCI image layout: no index.json"));
    }
    let has_index = match &blobs {
        Blobs::Layout(_) | Blobs::Registry { .. } => true,
        Blobs::Archive { members, .. } => members.contains_key("index.json"),
    };
    if has_index { open_oci(blobs, &display, wanted.as_deref()) } else { open_docker_save(blobs, &display) }
}

/// A manifest from a registry: fetched by tag or digest, checked against its digest, config read and checked.
fn open_registry(target: &RegistryRef, options: &ClientOptions, display: &str) -> Result<OpenedImage> {
    let client = RegistryClient::connect_for_pull(target, options.clone())?;
    let accept =
        [MEDIA_TYPE_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST].join(", ");
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
    let media_type =
        reply.header("content-type").unwrap_or(MEDIA_TYPE_MANIFEST).split(';').next().unwrap_or("").trim().to_string();
    if media_type == MEDIA_TYPE_INDEX || media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    let digest = Digest::of(&reply.body);
    if let RegistryTarget::Digest(expected) = &target.target
        && *expected != digest
    {
        return Err(Error::bad_image(display, format!("the registry served a manifest with digest {digest}")));
    }
    let manifest: Manifest =
        serde_json::from_slice(&reply.body).map_err(|e| Error::bad_image(display, format!("invalid manifest: {e}")))?;
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
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("invalid image config {}: {e}", manifest.config.digest)))?;
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

fn index_archive(file: &Path) -> Result<Blobs> {
    let handle = File::open(file).map_err(|e| Error::io("cannot open", file, e))?;
    let name = file.display().to_string();
    let mut reader = TarReader::new(io::BufReader::new(handle), &name, "uncompressed");
    let mut members = HashMap::new();
    while let Some(entry) = reader.next_entry()? {
        let mut path = String::from_utf8_lossy(&entry.path).into_owned();
        while let Some(stripped) = path.strip_prefix("./") {
            path = stripped.to_string();
        }
        members.insert(path, (reader.data_offset(), entry.size()));
    }
    Ok(Blobs::Archive { file: file.to_path_buf(), members })
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn open_oci(blobs: Blobs, display: &str, wanted: Option<&str>) -> Result<OpenedImage> {
    let index_bytes = blobs.read_path("index.json", display)?;
    let index: Index = serde_json::from_slice(&index_bytes)
        .map_err(|e| Error::bad_image(display, format!("invalid index.json: {e}")))?;
    let names = |d: &Descriptor| -> Vec<String> {
        let a = d.annotations.clone().unwrap_or_default();
        let mut names: Vec<String> =
            [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME].iter().filter_map(|k| a.get(*k).cloned()).collect();
        names.dedup();
        names
    };
    let chosen = match wanted {
        Some(wanted) => index
            .manifests
            .iter()
            .find(|d| names(d).iter().any(|n| n == wanted))
            .ok_or_else(|| Error::bad_image(display, format!("no image named `{wanted}` in index.json")))?,
        None => match index.manifests.as_slice() {
            [one] => one,
            [] => return Err(Error::bad_image(display, "index.json lists no image")),
            many => {
                let listed: Vec<String> = many.iter().flat_map(names).collect();
                return Err(Error::bad_image(
                    display,
                    format!("index.json lists {} images: name one of: {}", many.len(), listed.join(", ")),
                ));
            }
        },
    };
    if chosen.media_type == MEDIA_TYPE_INDEX || chosen.media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST {
        return Err(Error::bad_image(display, "the reference names a multi-platform index, not one image"));
    }
    if chosen.media_type != MEDIA_TYPE_MANIFEST && chosen.media_type != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(Error::bad_image(display, format!("unsupported manifest media type `{}`", chosen.media_type)));
    }
    let manifest_bytes = read_verified(&blobs, chosen, display)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::bad_image(display, format!("invalid manifest {}: {e}", chosen.digest)))?;
    let config_bytes = read_verified(&blobs, &manifest.config, display)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("invalid image config {}: {e}", manifest.config.digest)))?;
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

/// An archive with only Docker's `manifest.json` (what `docker save` wrote before Docker 25).
fn open_docker_save(blobs: Blobs, display: &str) -> Result<OpenedImage> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "Config")]
        config: String,
        #[serde(rename = "RepoTags", default)]
        repo_tags: Option<Vec<String>>,
        #[serde(rename = "Layers")]
        layers: Vec<String>,
    }
    let bytes = blobs.read_path("manifest.json", display)?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::bad_image(display, format!("invalid manifest.json: {e}")))?;
    let [entry] = entries.as_slice() else {
        return Err(Error::bad_image(display, format!("manifest.json lists {} images, expected one", entries.len())));
    };
    let config_bytes = blobs.read_path(&entry.config, display)?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("invalid image config `{}`: {e}", entry.config)))?;
    let config_descriptor = Descriptor {
        media_type: crate::image::MEDIA_TYPE_CONFIG.into(),
        digest: Digest::of(&config_bytes),
        size: config_bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    let mut layers = Vec::new();
    for (i, member) in entry.layers.iter().enumerate() {
        let (mut reader, size) = blobs.open_path(member)?;
        let mut raw = crate::digest::DigestReader::new(&mut reader);
        io::copy(&mut raw, &mut io::sink()).map_err(|e| Error::io("cannot read", member, e))?;
        let (digest, _) = raw.finish();
        layers.push(SourceLayer {
            descriptor: Descriptor {
                media_type: MEDIA_TYPE_DOCKER_LAYER.into(),
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

const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

fn read_verified(blobs: &Blobs, descriptor: &Descriptor, display: &str) -> Result<Vec<u8>> {
    let bytes = blobs.read_path(&blob_member(&descriptor.digest), display)?;
    check(descriptor, &Digest::of(&bytes), bytes.len() as u64, display)?;
    Ok(bytes)
}

fn check(descriptor: &Descriptor, digest: &Digest, size: u64, display: &str) -> Result<()> {
    if size != descriptor.size {
        return Err(Error::bad_image(
            display,
            format!("blob {} is {size} bytes, but its descriptor says {}", descriptor.digest, descriptor.size),
        ));
    }
    if digest != &descriptor.digest {
        return Err(Error::bad_image(
            display,
            format!("blob {} has digest {digest}: it is corrupt", descriptor.digest),
        ));
    }
    Ok(())
}

/// What verifying one layer found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifiedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    pub uncompressed_size: u64,
}

impl OpenedImage {
    /// Reads every layer once, checking its size and digest, and its uncompressed digest against the config's
    /// diff_id.
    pub fn verify_layers(&self) -> Result<Vec<VerifiedLayer>> {
        let (mut config, _) = self.blobs.open_path(&self.config_member)?;
        let mut config_bytes = Vec::new();
        config.read_to_end(&mut config_bytes).map_err(|e| Error::io("cannot read", &self.config_member, e))?;
        check(&self.config_descriptor, &Digest::of(&config_bytes), config_bytes.len() as u64, &self.reference)?;
        let mut verified = Vec::new();
        for layer in &self.layers {
            let (reader, _) = self.blobs.open_path(&layer.member)?;
            let mut raw = crate::digest::DigestReader::new(reader);
            let mut head = [0u8; crate::compression::SNIFF_LEN];
            let got = read_up_to(&mut raw, &mut head).map_err(|e| Error::io("cannot read", &layer.member, e))?;
            let compression = crate::compression::InputCompression::sniff(&head[..got])
                .map_err(|p| Error::bad_image(&self.reference, format!("layer {}: {p}", layer.descriptor.digest)))?;
            let (diff_id, uncompressed_size) = {
                let chained = io::Cursor::new(head[..got].to_vec()).chain(&mut raw);
                let mut decoded = crate::digest::DigestReader::new(compression.decoder(chained));
                io::copy(&mut decoded, &mut io::sink()).map_err(|e| {
                    Error::bad_image(
                        &self.reference,
                        format!("layer {} does not decompress: {e}", layer.descriptor.digest),
                    )
                })?;
                decoded.finish()
            };
            let (digest, size) = raw.finish();
            check(&layer.descriptor, &digest, size, &self.reference)?;
            if let Some(expected) = &layer.diff_id
                && expected != &diff_id
            {
                return Err(Error::bad_image(
                    &self.reference,
                    format!(
                        "layer {} decompresses to {diff_id}, but the config says {expected}",
                        layer.descriptor.digest
                    ),
                ));
            }
            verified.push(VerifiedLayer {
                digest,
                diff_id,
                size,
                media_type: layer.descriptor.media_type.clone(),
                uncompressed_size,
            });
        }
        Ok(verified)
    }
}

impl OpenedImage {
    /// A layer's blob as stored (checked by the caller against its descriptor).
    pub fn open_layer(&self, layer: &SourceLayer) -> Result<Box<dyn Read + Send + '_>> {
        Ok(self.blobs.open_path(&layer.member)?.0)
    }
}

impl crate::registry::push::BlobSource for OpenedImage {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        Ok(self.blobs.open_path(&blob_member(digest))?.0)
    }
}

/// Fills `buf` as far as the reader goes (a sniffing read that may meet the end early).
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
