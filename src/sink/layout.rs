//! The OCI image layout sink (`oci:DIR[:TAG]`). A new layout is built in a temporary directory beside `DIR` and
//! renamed into place. Writing into an existing layout adds the blobs, then replaces `index.json` atomically under
//! an exclusive lock on the directory, so that concurrent writers never lose each other's tags.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::Publication;
use super::{OCI_LAYOUT, PreparedOutput, attachment_entries, index_descriptor};
use crate::blobs::BlobStore;
use crate::cleanup::{TempDir, TempFile};
use crate::error::{Error, Result};
use crate::oci::descriptor::Descriptor;
use crate::oci::document::MAX_DOCUMENT_SIZE;
use crate::oci::index::{Index, parse_index};
use crate::oci::manifest::ANNOTATION_REF_NAME;
use crate::oci::reference::ImageName;
use crate::source::blob::{LayoutRefusal, open_in_layout};

pub fn prepare(
    dir: &Path,
    tag: &str,
    name: Option<&ImageName>,
    image: &Publication,
    staging: &BlobStore,
) -> Result<Box<dyn PreparedOutput>> {
    // The tagged image first, then its attachments.
    let mut entries = vec![index_descriptor(image, Some(tag), name)];
    entries.extend(attachment_entries(image));
    if is_nonempty_dir(dir) {
        check_layout(dir)?;
        let blobs = BlobStore::open(dir)?;
        for digest in image.blob_digests() {
            blobs.import(staging, &digest)?;
        }
        return Ok(Box::new(ExistingLayout { dir: dir.to_path_buf(), entries }));
    }
    let parent = parent_dir(dir);
    let temp = TempDir::new_in(&parent, super::TEMP_PREFIX)
        .map_err(|e| Error::io("cannot create a directory in", &parent, e))?;
    let blobs = BlobStore::open(temp.path())?;
    for digest in image.blob_digests() {
        blobs.import(staging, &digest)?;
    }
    write_file(&temp.path().join("oci-layout"), OCI_LAYOUT)?;
    write_index(temp.path(), &Index::new(entries.clone()))?;
    Ok(Box::new(NewLayout { temp, dir: dir.to_path_buf(), entries }))
}

struct NewLayout {
    temp: TempDir,
    dir: PathBuf,
    /// What `index.json` lists: the tagged image, then its attachments.
    entries: Vec<Descriptor>,
}

impl PreparedOutput for NewLayout {
    fn commit(self: Box<Self>) -> Result<Option<crate::registry::PushReport>> {
        let NewLayout { mut temp, dir, entries } = *self;
        // tempfile creates private (0700) directories; a layout is meant to be shared.
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755));
        match temp.rename_to(&dir) {
            Ok(()) => Ok(None),
            // Another writer created the layout meanwhile: merge into it like into any existing layout.
            Err(e) if is_nonempty_dir(&dir) && e.kind() != io::ErrorKind::PermissionDenied => {
                check_layout(&dir)?;
                let blobs = BlobStore::open(&dir)?;
                let ours = BlobStore::open(temp.path())?;
                for digest in ours.digests()? {
                    blobs.import(&ours, &digest)?;
                }
                update_index(&dir, &entries).map(|()| None)
            }
            Err(e) => Err(Error::io("cannot create", &dir, e)),
        }
    }
}

struct ExistingLayout {
    dir: PathBuf,
    entries: Vec<Descriptor>,
}

impl PreparedOutput for ExistingLayout {
    fn commit(self: Box<Self>) -> Result<Option<crate::registry::PushReport>> {
        update_index(&self.dir, &self.entries).map(|()| None)
    }
}

/// Adds `entries` to the layout's index under an exclusive lock: each replaces the entry with its tag (`ref.name`),
/// and one without a tag (a referrer) is listed once.
fn update_index(dir: &Path, entries: &[Descriptor]) -> Result<()> {
    let lock = File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
    // SAFETY: flock on a file descriptor we own; the lock is released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io("cannot lock", dir, io::Error::last_os_error()));
    }
    let mut index = read_index(dir)?;
    let tag_of = |d: &Descriptor| d.annotations.as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
    for entry in entries {
        match tag_of(entry) {
            // The same manifest listed without a tag is the one now tagged: listed once.
            Some(tag) => index.manifests.retain(|m| match tag_of(m) {
                Some(other) => other != tag,
                None => m.digest != entry.digest || m.artifact_type.is_some(),
            }),
            None => index.manifests.retain(|m| tag_of(m).is_some() || m.digest != entry.digest),
        }
        index.manifests.push(entry.clone());
    }
    write_index(dir, &index)
}

/// The index of an existing layout, read like any layout someone else made: a regular file inside it, at most
/// [`MAX_DOCUMENT_SIZE`] bytes.
fn read_index(dir: &Path) -> Result<Index> {
    let shown = dir.display();
    let (file, size) = open_in_layout(dir, "index.json")
        .map_err(|refusal| Error::bad_image(&shown, format!("`index.json`: {refusal}")))?;
    if size > MAX_DOCUMENT_SIZE {
        return Err(Error::bad_image(&shown, format!("`index.json` is larger than {MAX_DOCUMENT_SIZE} bytes")));
    }
    let mut bytes = Vec::new();
    io::Read::take(file, MAX_DOCUMENT_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read", dir.join("index.json"), e))?;
    parse_index(&bytes).map_err(|e| Error::bad_image(&shown, format!("index.json: {e}")))
}

fn write_index(dir: &Path, index: &Index) -> Result<()> {
    write_file(&dir.join("index.json"), &serde_json::to_vec(index).expect("an index always serialises"))
}

/// Writes a file atomically: a temporary file in the same directory, renamed over the target.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut temp =
        TempFile::new_in(&dir, super::TEMP_PREFIX).map_err(|e| Error::io("cannot create a file in", &dir, e))?;
    temp.file_mut().write_all(bytes).map_err(|e| Error::io("cannot write", temp.path(), e))?;
    // tempfile creates private (0600) files; index.json is read by every user of the layout.
    use std::os::unix::fs::PermissionsExt;
    let _ = temp.file().set_permissions(fs::Permissions::from_mode(0o644));
    temp.persist(path).map_err(|e| Error::io("cannot write", path, e))?;
    Ok(())
}

fn check_layout(dir: &Path) -> Result<()> {
    for name in ["oci-layout", "index.json"] {
        match open_in_layout(dir, name) {
            Ok(_) => {}
            Err(LayoutRefusal::Missing) => {
                return Err(Error::bad_image(
                    dir.display(),
                    "the directory exists and is not an OCI image layout (no oci-layout and index.json): choose \
                     another destination",
                ));
            }
            Err(refusal) => return Err(Error::bad_image(dir.display(), format!("`{name}`: {refusal}"))),
        }
    }
    // Blobs are written into `blobs/sha256`: a symlink on the way would send them out of the layout.
    for name in ["blobs", "blobs/sha256"] {
        match fs::symlink_metadata(dir.join(name)) {
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::bad_image(dir.display(), format!("`{name}` is not a directory inside the layout")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// An existing directory is a valid destination when it is empty or already a layout.
pub fn check_existing(dir: &Path) -> Result<()> {
    if is_nonempty_dir(dir) { check_layout(dir) } else { Ok(()) }
}

fn is_nonempty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).map(|mut entries| entries.next().is_some()).unwrap_or(false)
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
