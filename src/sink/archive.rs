//! The archive sink (`oci-archive:` and `docker-archive:`): one tar holding a full OCI layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`) and Docker's `manifest.json` and `repositories`, the way Docker 25 writes
//! `docker save`. Docker 20.10+ reads `manifest.json`; podman and skopeo read either half.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Publication;
use super::layout::parent_dir;
use super::{OCI_LAYOUT, PreparedOutput, attachment_entries, index_descriptor};
use crate::blobs::BlobStore;
use crate::cleanup::TempFile;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::index::Index;
use crate::oci::reference::ImageName;
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::writer::TarWriter;

/// docker/image/tarexport: one element of `manifest.json`.
#[derive(Serialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

pub fn prepare(
    file: &Path,
    ref_name: Option<&str>,
    name: Option<&ImageName>,
    image: &Publication,
    staging: &BlobStore,
) -> Result<Box<dyn PreparedOutput>> {
    if file.is_dir() {
        return Err(Error::Invalid(format!(
            "`{}` is a directory: an archive output needs a file name",
            file.display()
        )));
    }
    let dir = parent_dir(file);
    let temp = TempFile::new_in(&dir, super::TEMP_PREFIX).map_err(|e| Error::io("cannot create a file in", &dir, e))?;
    let write_error = |e| Error::io("cannot write", temp.path(), e);
    let blobs = image
        .blob_digests()
        .into_iter()
        .map(|digest| Ok((staging.open_file(&digest)?, digest)))
        .collect::<Result<Vec<_>>>()?;
    let out = write(BufWriter::with_capacity(1 << 20, temp.file()), ref_name, name, image, &blobs, &write_error)?;
    let mut out = out;
    out.flush().map_err(write_error)?;
    drop(out);
    Ok(Box::new(PreparedArchive { temp, file: file.to_path_buf() }))
}

/// Writes the archive of `image` to `out`: `blobs` are its blobs (every one of [`Publication::blob_digests`], in that
/// order), opened; `write_error` says what a failed write was writing to.
pub(crate) fn write<W: crate::tar::writer::TarOutput>(
    out: W,
    ref_name: Option<&str>,
    name: Option<&ImageName>,
    image: &Publication,
    blobs: &[(File, Digest)],
    write_error: &dyn Fn(std::io::Error) -> Error,
) -> Result<W> {
    let mut tar = TarWriter::new(out);
    let blob_name = |digest: &crate::digest::Digest| format!("blobs/sha256/{}", digest.hex());
    // Docker loads every image listed; an index's images stay untagged (Docker 20.10 has no multi-platform store).
    // With attachments beside the image in index.json, containers/image reads no unnamed image from the OCI half
    // ("more than one image in oci"), so `podman load` reads this half, and names a familiar `app:1` `localhost/app:1`:
    // the full name keeps the name it has without attachments (Docker reads either).
    let repo_tag = |n: &ImageName| if image.attachments.is_empty() { n.familiar() } else { n.to_string() };
    let docker_manifest: Vec<DockerManifest> = image
        .images
        .iter()
        .map(|i| DockerManifest {
            config: blob_name(&i.config_descriptor.digest),
            repo_tags: name.filter(|_| !image.is_index()).map(|n| vec![repo_tag(n)]),
            layers: i.layers.iter().map(|l| blob_name(&l.descriptor.digest)).collect(),
        })
        .collect();
    let mut entries = vec![index_descriptor(image, ref_name, name)];
    entries.extend(attachment_entries(image));
    let index = Index::new(entries);

    let member = |path: &str, kind: EntryKind| Entry {
        path: path.as_bytes().to_vec(),
        mode: if kind == EntryKind::Directory { 0o755 } else { 0o644 },
        kind,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: BTreeMap::new(),
    };
    let add_bytes = |tar: &mut TarWriter<_>, path: &str, bytes: &[u8]| {
        tar.append(&member(path, EntryKind::File { size: bytes.len() as u64 }), &mut &bytes[..])
    };
    tar.append(&member("blobs", EntryKind::Directory), &mut std::io::empty()).map_err(write_error)?;
    tar.append(&member("blobs/sha256", EntryKind::Directory), &mut std::io::empty()).map_err(write_error)?;
    for (blob, digest) in blobs.iter() {
        let size = blob.metadata().map_err(|e| Error::io("cannot read blob", digest.to_string(), e))?.len();
        tar.append_file(&member(&blob_name(digest), EntryKind::File { size }), blob).map_err(write_error)?;
    }
    add_bytes(&mut tar, "index.json", &serde_json::to_vec(&index).expect("an index serialises"))
        .map_err(write_error)?;
    add_bytes(&mut tar, "manifest.json", &serde_json::to_vec(&docker_manifest).expect("serialises"))
        .map_err(write_error)?;
    add_bytes(&mut tar, "oci-layout", OCI_LAYOUT).map_err(write_error)?;
    let top_layer = image.images.first().and_then(|i| i.layers.last()).filter(|_| !image.is_index());
    if let (Some(name), Some(top)) = (name, top_layer) {
        // The legacy `repositories` file maps repository -> tag -> top layer id.
        let repositories = BTreeMap::from([(
            name.familiar_repository(),
            BTreeMap::from([(name.tag.clone(), top.descriptor.digest.hex().to_string())]),
        )]);
        add_bytes(&mut tar, "repositories", &serde_json::to_vec(&repositories).expect("serialises"))
            .map_err(write_error)?;
    }
    tar.finish().map_err(write_error)
}

struct PreparedArchive {
    temp: TempFile,
    file: PathBuf,
}

impl PreparedOutput for PreparedArchive {
    fn commit(self: Box<Self>) -> Result<Option<crate::registry::PushReport>> {
        let PreparedArchive { temp, file } = *self;
        // Archives are read by other users' tools: the usual 0644, not the temporary file's 0600.
        use std::os::unix::fs::PermissionsExt;
        let _ = temp.file().set_permissions(std::fs::Permissions::from_mode(0o644));
        temp.persist(&file).map_err(|e| Error::io("cannot write", &file, e))?;
        Ok(None)
    }
}
