//! `--base IMAGE`: building on an existing image. The base's layers are kept as they are (their blobs copied
//! byte for byte, never recompressed); its merged file system (every layer applied in order, whiteouts honoured)
//! is what the rootfs is compared with, so that only entries that are new or differ in some attribute go into the
//! new layers, and paths of the base that the rootfs lacks become whiteouts.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, Read};

use crate::blobs::{BlobStore, CopyingReader};
use crate::digest::{Digest, DigestReader};
use crate::error::{Error, Result};
use crate::oci::config::ImageConfig;
use crate::oci::platform::Platform;
use crate::oci::reference::ImageRef;
use crate::registry::ClientOptions;
use crate::source::{self, VerifiedLayer};
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::path::{normal_form, parent_of};
use crate::tar::whiteout::{self, Whiteout};

/// The most bytes of records the base's merged file system may make this tool keep, counted as entries are applied
/// (removals are not subtracted, so a base whose layers rewrite the same paths counts each time): the same budget as
/// a rootfs's own entries ([`crate::rootfs::normalize::MAX_HELD_BYTES`]), so a base of any size stays within the memory bound.
pub const MAX_BASE_HELD_BYTES: u64 = crate::rootfs::normalize::MAX_HELD_BYTES;

/// What one merged-tree record costs beyond its path, link target and xattrs: the map node, the entry, the content
/// digest and the path kept again for the layer being applied.
const BASE_ENTRY_OVERHEAD: u64 = 192;

/// One path of the base's merged file system, with what a comparison needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BaseEntry {
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: BTreeMap<String, Vec<u8>>,
    /// A regular file's content digest.
    content: Option<Digest>,
}

/// What the base holds at a path, compared with a rootfs entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Nothing, or something that differs: the entry goes into a new layer.
    Differs,
    /// The same entry: it stays out of the new layers.
    Same,
    /// A regular file whose attributes and size match: its content decides.
    SameIfContent,
}

pub struct BaseImage {
    pub reference: String,
    /// The digest of its manifest, which the provenance names (`None` for an old `docker save` archive).
    pub manifest_digest: Option<crate::digest::Digest>,
    pub config: ImageConfig,
    /// The base's layers, their blobs already in the staging store.
    pub layers: Vec<BaseLayer>,
    tree: BTreeMap<Vec<u8>, BaseEntry>,
}

/// A layer of the base, kept byte for byte: what reading it found, and the annotations its descriptor had.
#[derive(Clone, Debug)]
pub struct BaseLayer {
    pub read: VerifiedLayer,
    pub annotations: BTreeMap<String, String>,
}

impl BaseImage {
    /// Reads the base image once: each layer blob is copied into `staging` while it is decompressed and applied.
    pub fn load(reference: &ImageRef, registry: &ClientOptions, staging: &BlobStore) -> Result<BaseImage> {
        let image = source::open_with(reference, registry)?;
        let shown = image.reference.clone();
        let mut tree = BTreeMap::new();
        let mut held = 0u64;
        let mut layers = Vec::new();
        for source_layer in &image.image.layers {
            let mut blob = staging.writer()?;
            let name = format!("{shown} layer {}", source_layer.descriptor.digest);
            // The source's layer reader bounds, decodes and verifies the blob; the tee keeps its bytes as read.
            let verified = image.read_layer_through(
                source_layer,
                |raw| CopyingReader { inner: raw, copy: &mut blob },
                |decoded| apply_layer(&mut tree, &mut held, decoded, &name),
            )?;
            blob.commit()?;
            layers.push(BaseLayer {
                read: verified,
                annotations: source_layer.descriptor.annotations.clone().unwrap_or_default(),
            });
        }
        let manifest_digest = image.image.manifest.as_ref().map(|m| m.descriptor.digest.clone());
        Ok(BaseImage { reference: shown, manifest_digest, config: image.image.config.clone(), layers, tree })
    }

    /// How the base's entry at `entry.path` compares with `entry`.
    pub fn compare(&self, entry: &Entry) -> Comparison {
        let Some(base) = self.tree.get(&entry.path) else {
            return Comparison::Differs;
        };
        let same_attributes = base.mode == entry.mode
            && base.uid == entry.uid
            && base.gid == entry.gid
            && base.mtime == entry.mtime
            && base.xattrs == entry.xattrs;
        match (same_attributes, base.kind == entry.kind) {
            (true, true) if matches!(entry.kind, EntryKind::File { .. }) => Comparison::SameIfContent,
            (true, true) => Comparison::Same,
            _ => Comparison::Differs,
        }
    }

    /// Whether the base's file at `path` has this content.
    pub fn same_content(&self, path: &[u8], content: &Digest) -> bool {
        self.tree.get(path).and_then(|b| b.content.as_ref()) == Some(content)
    }

    /// The whiteouts that remove from the base what the rootfs lacks: `.wh.NAME` for the topmost missing path,
    /// or one `.wh..wh..opq` for a directory that the rootfs keeps but whose every old child is gone while it has
    /// new ones. `present` holds every path of the rootfs (directories implied by their children included) and
    /// `directories` those that are directories.
    pub fn whiteouts(&self, present: &HashSet<Vec<u8>>, directories: &HashSet<Vec<u8>>) -> Vec<Entry> {
        let mut missing_by_parent: BTreeMap<&[u8], Vec<&[u8]>> = BTreeMap::new();
        let mut children_by_parent: BTreeMap<&[u8], usize> = BTreeMap::new();
        for path in self.tree.keys() {
            let parent = parent_of(path);
            *children_by_parent.entry(parent).or_default() += 1;
            if present.contains(path) {
                continue;
            }
            // Under a directory that is itself gone or is no longer a directory, nothing more is needed.
            if !parent.is_empty() && !directories.contains(parent) {
                continue;
            }
            missing_by_parent.entry(parent).or_default().push(path);
        }
        let has_new_children: BTreeSet<&[u8]> =
            present.iter().filter(|p| !self.tree.contains_key(*p)).map(|p| parent_of(p)).collect();
        let mut whiteouts = Vec::new();
        for (parent, missing) in missing_by_parent {
            let all_gone = children_by_parent.get(parent) == Some(&missing.len());
            if all_gone && !parent.is_empty() && has_new_children.contains(parent) {
                whiteouts.push(whiteout::opaque(parent));
                continue;
            }
            whiteouts.extend(missing.into_iter().map(whiteout::removing));
        }
        whiteouts.sort_by(|a, b| a.path.cmp(&b.path));
        whiteouts
    }
}

/// Removes `path` and everything under it.
fn remove_tree(tree: &mut BTreeMap<Vec<u8>, BaseEntry>, path: &[u8]) {
    tree.remove(path);
    remove_children(tree, path, &HashSet::new());
}

/// Removes everything under `dir` except what `keep` holds (entries of the layer being applied).
fn remove_children(tree: &mut BTreeMap<Vec<u8>, BaseEntry>, dir: &[u8], keep: &HashSet<Vec<u8>>) {
    let mut start = dir.to_vec();
    start.push(b'/');
    let mut end = dir.to_vec();
    end.push(b'/' + 1);
    let doomed: Vec<Vec<u8>> =
        tree.range(start..end).map(|(path, _)| path.clone()).filter(|p| !keep.contains(p)).collect();
    for path in doomed {
        tree.remove(&path);
    }
}

/// Applies one layer's tar stream to the merged tree, as an engine would.
/// `held` counts the bytes of records kept, against [`MAX_BASE_HELD_BYTES`].
fn apply_layer(
    tree: &mut BTreeMap<Vec<u8>, BaseEntry>,
    held: &mut u64,
    decoded: &mut dyn Read,
    name: &str,
) -> Result<()> {
    let mut reader = crate::tar::reader::TarReader::new(decoded, name, "layer");
    let mut this_layer = HashSet::new();
    while let Some(entry) = reader.next_entry()? {
        let Some(path) = normal_form(&entry.path) else {
            return Err(Error::bad_image(
                name,
                format!("entry `{}` climbs out of the root", crate::error::display_bytes(&entry.path)),
            ));
        };
        if path.is_empty() {
            continue;
        }
        match whiteout::read(&path) {
            Some(Whiteout::Opaque { directory }) => {
                remove_children(tree, &directory, &this_layer);
                continue;
            }
            Some(Whiteout::Removes { path: hidden }) => {
                remove_tree(tree, &hidden);
                continue;
            }
            None => {}
        }
        // The base's layers are copied into the image as they are: overlayfs's own xattrs in them would hide the
        // layers below on an overlay-backed engine, as in a rootfs (see `whiteout::is_overlay_xattr`).
        if let Some(xattr) = entry.xattrs.keys().find(|x| whiteout::is_overlay_xattr(x)) {
            return Err(Error::bad_image(
                name,
                format!(
                    "entry `{}` carries the xattr `{}`, overlayfs's own state, which can hide the layers below",
                    crate::error::display_bytes(&path),
                    crate::error::display_text(xattr, 255)
                ),
            ));
        }
        *held += 2 * path.len() as u64 + BASE_ENTRY_OVERHEAD;
        if let EntryKind::Symlink { target } | EntryKind::Hardlink { target } = &entry.kind {
            *held += target.len() as u64;
        }
        *held += entry.xattrs.iter().map(|(x, value)| (x.len() + value.len()) as u64).sum::<u64>();
        if *held > MAX_BASE_HELD_BYTES {
            return Err(Error::bad_image(
                name,
                format!(
                    "the base's entries hold more than {} MiB of names and attributes, the most kept in memory",
                    MAX_BASE_HELD_BYTES >> 20
                ),
            ));
        }
        let content = match entry.kind {
            EntryKind::File { .. } => {
                let mut hashed = DigestReader::new(reader.data());
                io::copy(&mut hashed, &mut io::sink()).map_err(|e| {
                    Error::bad_image(name, format!("entry `{}`: {e}", crate::error::display_bytes(&path)))
                })?;
                Some(hashed.finish().0)
            }
            _ => None,
        };
        // A non-directory replaces whatever was there, directory and its children included.
        if !matches!(entry.kind, EntryKind::Directory)
            && tree.get(&path).is_some_and(|old| matches!(old.kind, EntryKind::Directory))
        {
            remove_tree(tree, &path);
        }
        let kind = match entry.kind {
            EntryKind::Hardlink { target } => EntryKind::Hardlink { target: normal_form(&target).unwrap_or(target) },
            other => other,
        };
        // A hardlink has its target's content.
        let content = match &kind {
            EntryKind::Hardlink { target } => tree.get(target).and_then(|t| t.content.clone()),
            _ => content,
        };
        this_layer.insert(path.clone());
        tree.insert(
            path,
            BaseEntry {
                kind,
                mode: entry.mode,
                uid: entry.uid,
                gid: entry.gid,
                mtime: entry.mtime,
                xattrs: entry.xattrs,
                content,
            },
        );
    }
    Ok(())
}

/// Copies what is read into a blob: the base's layers are kept byte for byte, so each blob is read only once.
impl BaseImage {
    /// A base must be of the architecture being built (and of its variant, when both name one); `source` says where
    /// the platform being built came from.
    pub fn check_platform(&self, platform: &Platform, source: &str) -> Result<()> {
        let theirs = self.config.platform();
        if theirs.architecture != platform.architecture
            || (theirs.variant.is_some() && platform.variant.is_some() && theirs.variant != platform.variant)
        {
            return Err(Error::BadImage {
                image: self.reference.clone(),
                problem: format!(
                    "the base image is {theirs}, but the image being built is {platform} ({source}): a base must be of \
                     the same architecture"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> (Vec<u8>, BaseEntry) {
        (
            path.as_bytes().to_vec(),
            BaseEntry {
                kind: EntryKind::File { size: 1 },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 1,
                xattrs: BTreeMap::new(),
                content: Some(Digest::of(b"x")),
            },
        )
    }

    fn dir(path: &str) -> (Vec<u8>, BaseEntry) {
        let (p, mut e) = file(path);
        e.kind = EntryKind::Directory;
        e.content = None;
        (p, e)
    }

    fn set(paths: &[&str]) -> HashSet<Vec<u8>> {
        paths.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn whiteouts_name_the_topmost_missing_path_or_make_a_directory_opaque() {
        let base = BaseImage {
            reference: "base".into(),
            manifest_digest: None,
            config: serde_json::from_str(
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
            )
            .unwrap(),
            layers: vec![],
            tree: [
                dir("etc"),
                file("etc/gone"),
                file("etc/kept"),
                dir("opt"),
                dir("opt/old"),
                file("opt/old/a"),
                file("opt/old/b"),
                dir("srv"),
                file("srv/x"),
                file("srv/y"),
                file("top-file"),
            ]
            .into_iter()
            .collect(),
        };
        let present = set(&["etc", "etc/kept", "opt", "srv", "srv/new"]);
        let directories = set(&["etc", "opt", "srv"]);
        let names: Vec<String> =
            base.whiteouts(&present, &directories).iter().map(|e| String::from_utf8(e.path.clone()).unwrap()).collect();
        assert_eq!(
            names,
            ["etc/.wh.gone", "opt/.wh.old", "srv/.wh..wh..opq", ".wh.top-file"]
                .map(String::from)
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
    }
}
