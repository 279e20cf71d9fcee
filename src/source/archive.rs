//! Archives (`oci-archive:`, `docker-archive:`): a tar whose members are indexed once, then read in place; and the
//! old `docker save` format (before Docker 25), which has only Docker's `manifest.json` and layers named by path.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;

use super::blob::Bounded;
use super::{Blobs, SourceImage, layers_of, shown};
use crate::digest::{Digest, DigestReader};
use crate::error::{Error, Result};
use crate::oci::config::{ImageConfig, parse_config};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::MAX_DOCUMENT_SIZE;
use crate::oci::image::Image;
use crate::oci::manifest::MAX_IMAGE_LAYERS;
use crate::oci::media_type::MediaType;
use crate::tar::entry::EntryKind;
use crate::tar::reader::TarReader;

/// The most entries an archive (`oci-archive:`, `docker-archive:`) may hold: an image of [`MAX_IMAGE_LAYERS`]
/// layers needs a few more than that; past it the archive is refused while it is indexed.
pub const MAX_ARCHIVE_MEMBERS: usize = 10_000;
/// The longest member name of an archive that is remembered: blob names are 77 bytes (`blobs/sha256/<hex>`), old
/// `docker save` layer names about as long; longer names are skipped, so an archive's index stays small.
const MAX_MEMBER_NAME: usize = 4096;
/// The largest Docker `manifest.json` read from an archive (containers/image `iolimits.MaxTarFileManifestSize`).
pub const MAX_DOCKER_MANIFEST_SIZE: u64 = 1 << 20;

/// Indexes an archive's members (where each regular file's data starts, and its size) without reading any data.
pub(super) fn index(file: &Path, image: &str) -> Result<Blobs> {
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
pub(super) fn open_docker_save(blobs: Blobs, display: &str) -> Result<SourceImage> {
    let bytes = blobs.read_path("manifest.json", MAX_DOCKER_MANIFEST_SIZE, display)?;
    let entries =
        parse_docker_manifest(&bytes).map_err(|e| Error::bad_image(display, format!("manifest.json: {e}")))?;
    let [entry] = entries.as_slice() else {
        return Err(Error::bad_image(display, format!("manifest.json lists {} images, expected one", entries.len())));
    };
    let config_bytes = blobs.read_path(&entry.config, MAX_DOCUMENT_SIZE, display)?;
    let config: ImageConfig = parse_config(&config_bytes)
        .map_err(|e| Error::bad_image(display, format!("image config `{}`: {e}", shown(&entry.config))))?;
    let config_descriptor = Descriptor::new(MediaType::OciConfig, Digest::of(&config_bytes), config_bytes.len() as u64);
    let mut members = HashMap::from([(config_descriptor.digest.clone(), entry.config.clone())]);
    let mut descriptors = Vec::new();
    for member in &entry.layers {
        // Layers are named by path: their digests are known only by reading them.
        let (mut reader, size) = blobs.open_path(member)?;
        let mut raw = DigestReader::new(&mut reader);
        io::copy(&mut raw, &mut io::sink())
            .map_err(|e| Error::bad_image(display, format!("`{}`: {e}", shown(member))))?;
        let (digest, _) = raw.finish();
        members.insert(digest.clone(), member.clone());
        descriptors.push(Descriptor::new(MediaType::DockerLayer, digest, size));
    }
    let image = Image {
        manifest: None,
        config_descriptor,
        layers: layers_of(&descriptors, &config.rootfs.diff_ids),
        config,
        annotations: Default::default(),
        origin: None,
    };
    Ok(SourceImage {
        reference: display.to_string(),
        names: entry.repo_tags.clone().unwrap_or_default(),
        image,
        blobs,
        members,
        attachments: Vec::new(),
        candidates: Vec::new(),
    })
}
