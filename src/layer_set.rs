//! Several layers written in one pass: each entry goes to the layer its [`LayerPlan`] names, every layer carries
//! the parent directories its files need, and a hardlink goes where its target went, so that the layers applied in
//! order give back the rootfs exactly.
//!
//! Directories: the top layer (or the only one) holds every directory with its real attributes, in stream order.
//! A lower layer holds the parents of its files as stubs with the real mode, owner and xattrs but mtime 0, so that
//! its bytes depend only on its own files; the top layer, applied last, sets the real mtimes. Layers are compressed
//! concurrently (each writer's compressor has its own worker threads), and none is held in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::compression::LayerCompression;
use crate::compression_pool::CompressionPool;
use crate::entry::{Entry, EntryKind};
use crate::error::Result;
use crate::layer::{Layer, LayerWriter};
use crate::layering::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE, Group, LayerPlan};

/// The mtime of parent-directory stubs in lower layers.
const STUB_MTIME: i64 = 0;

struct OpenLayer {
    writer: LayerWriter,
    /// Directories already written to this layer.
    directories: HashSet<Vec<u8>>,
    /// Packages with at least one entry here.
    packages: BTreeSet<u32>,
}

pub struct LayerSet<'a> {
    plan: &'a LayerPlan,
    blobs: &'a BlobStore,
    compression: LayerCompression,
    level: i32,
    threads: usize,
    /// Shared by every layer when there are several (see `compression_pool`).
    pool: Option<Arc<CompressionPool>>,
    layers: BTreeMap<Group, OpenLayer>,
    /// Every directory seen, with its real attributes.
    directories: HashMap<Vec<u8>, Entry>,
    /// The group of every non-directory written, for hardlinks to follow their target.
    placed: HashMap<Vec<u8>, Group>,
}

impl<'a> LayerSet<'a> {
    pub fn new(
        plan: &'a LayerPlan,
        blobs: &'a BlobStore,
        compression: LayerCompression,
        level: i32,
        threads: usize,
    ) -> LayerSet<'a> {
        LayerSet {
            plan,
            blobs,
            compression,
            level,
            threads,
            pool: (!plan.is_single()).then(|| CompressionPool::new(threads)),
            layers: BTreeMap::new(),
            directories: HashMap::new(),
            placed: HashMap::new(),
        }
    }

    fn layer(&mut self, group: Group) -> io::Result<&mut OpenLayer> {
        if !self.layers.contains_key(&group) {
            let writer =
                LayerWriter::create(self.blobs, self.compression, self.level, self.threads, self.pool.as_ref())
                    .map_err(io::Error::other)?;
            self.layers.insert(group, OpenLayer { writer, directories: HashSet::new(), packages: BTreeSet::new() });
        }
        Ok(self.layers.get_mut(&group).expect("just inserted"))
    }

    /// Appends one normalised entry to its layer, with the parent directories that layer still lacks.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let directory_group = self.plan.directory_group();
        let (group, package) = match &entry.kind {
            EntryKind::Directory => {
                self.directories.insert(entry.path.clone(), entry.clone());
                (directory_group, None)
            }
            // A hardlink goes where its target is (image-spec layer.md: the target must be in the same layer).
            EntryKind::Hardlink { target } => (self.placed.get(target).copied().unwrap_or(directory_group), None),
            _ => self.plan.route(&entry.path),
        };
        if !matches!(entry.kind, EntryKind::Directory) {
            self.placed.insert(entry.path.clone(), group);
        }
        let stubs = if group == directory_group { Vec::new() } else { self.missing_parents(group, &entry.path) };
        let layer = self.layer(group)?;
        for stub in &stubs {
            layer.writer.append(stub, &mut io::empty())?;
            layer.directories.insert(stub.path.clone());
        }
        if let Some(package) = package {
            layer.packages.insert(package);
        }
        if matches!(entry.kind, EntryKind::Directory) {
            layer.directories.insert(entry.path.clone());
        }
        layer.writer.append(entry, data)
    }

    /// Stubs for the ancestors of `path` that `group`'s layer has not written yet, outermost first.
    fn missing_parents(&self, group: Group, path: &[u8]) -> Vec<Entry> {
        let written = self.layers.get(&group).map(|l| &l.directories);
        let mut stubs = Vec::new();
        let mut end = path.len();
        while let Some(slash) = path[..end].iter().rposition(|&b| b == b'/') {
            let parent = &path[..slash];
            if written.is_some_and(|w| w.contains(parent)) {
                break;
            }
            if let Some(directory) = self.directories.get(parent) {
                stubs.push(Entry { mtime: STUB_MTIME, ..directory.clone() });
            }
            end = slash;
        }
        stubs.reverse();
        stubs
    }

    /// Ends every layer and returns them bottom first, each annotated with what it holds.
    pub fn finish(self) -> Result<Vec<Layer>> {
        let plan = self.plan;
        let mut layers = self.layers;
        let mut finished = Vec::new();
        for group in plan.order() {
            let Some(open) = layers.remove(&group) else { continue };
            let mut layer = open.writer.commit()?;
            match group {
                Group::Packages(_) => {
                    let names: Vec<&str> = open.packages.iter().map(|&p| plan.package_name(p)).collect();
                    let mut names = names;
                    names.sort_unstable();
                    layer.annotations.insert(ANNOTATION_PACKAGES.into(), names.join(" "));
                }
                Group::Rule(rule) => {
                    layer.annotations.insert(ANNOTATION_RULE.into(), plan.rule_name(rule).into());
                }
                Group::Rest => {
                    layer.annotations.insert(ANNOTATION_CONTENT.into(), "unowned".into());
                    if !open.packages.is_empty() {
                        let mut names: Vec<&str> = open.packages.iter().map(|&p| plan.package_name(p)).collect();
                        names.sort_unstable();
                        layer.annotations.insert(ANNOTATION_PACKAGES.into(), names.join(" "));
                    }
                }
                Group::Whole => {}
            }
            finished.push(layer);
        }
        if finished.is_empty() {
            // An empty rootfs still makes an image with one (empty) layer.
            let writer =
                LayerWriter::create(self.blobs, self.compression, self.level, self.threads, self.pool.as_ref())?;
            finished.push(writer.commit()?);
        }
        Ok(finished)
    }
}
