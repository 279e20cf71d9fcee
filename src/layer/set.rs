//! Several layers written in one pass: each entry goes to the layer its [`LayerPlan`] names, every layer carries
//! the parent directories its files need, and a hardlink goes where its target went, so that the layers applied in
//! order give back the rootfs exactly.
//!
//! Directories: the top layer (or the only one) holds every directory with its real attributes, in stream order.
//! A lower layer holds the parents of its files as stubs with the real mode, owner and xattrs but mtime 0, so that
//! its bytes depend only on its own files; the top layer, applied last, sets the real mtimes. Several layers are
//! compressed concurrently on one shared pool of worker threads, and none is held in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::blobs::BlobStore;
use crate::error::Result;
use crate::layer::compress::LayerCompression;
use crate::layer::compress::pool::CompressionPool;
use crate::layer::known::KnownLayers;
use crate::layer::reuse::PreviousBlobs;
use crate::layer::writer::{LayerShape, LayerWriter, WrittenLayer};
use crate::layering::base::{BaseImage, Comparison};
use crate::layering::plan::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE, Group, LayerPlan};
use crate::tar::entry::{Entry, EntryKind};
use crate::tar::file_digests::KnownData;
use crate::tar::path::{PathHasher, normal_form, parent_of, shown_name};

/// The mtime of parent-directory stubs in lower layers.
const STUB_MTIME: i64 = 0;

/// The most bytes of records the layers may keep about the entries written (where each path went, every directory
/// with its attributes, the directories each layer holds, with `--base` every path present), each record counted
/// with [`crate::rootfs::normalize::ENTRY_OVERHEAD`]. Each layer keeps its own parents, so without this bound a few
/// thousand deep directories in 64 layers could take gigabytes; a large Debian split in 64 layers keeps under 20 MiB.
pub const MAX_LAYER_RECORDS_BYTES: u64 = 64 << 20;

/// The most top-level directory symlinks (`bin -> usr/bin`) remembered as other names for owned paths: a merged
/// /usr has about six. Every unowned path is looked up under each, so more are ignored rather than kept.
const MAX_DIRECTORY_ALIASES: usize = 64;

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
    /// Every directory seen, as lower layers carry it: real attributes, mtime 0 unless the base has it as it is.
    directories: HashMap<Vec<u8>, Entry>,
    /// With `--base`: what the rootfs is compared with, and every path of the rootfs (for whiteouts).
    base: Option<&'a BaseImage>,
    present: HashSet<Vec<u8>>,
    present_directories: HashSet<Vec<u8>>,
    /// Top-level directory symlinks, (target, link), for owners listed under the link's name.
    directory_aliases: Vec<(Vec<u8>, Vec<u8>)>,
    /// The group of every non-directory written, for hardlinks to follow their target.
    placed: HashMap<Vec<u8>, Group>,
    /// Bytes of the records above, counted against [`MAX_LAYER_RECORDS_BYTES`].
    held: u64,
    /// Hashes of the paths in `directories`, so that the ancestors of a path are looked up in one pass over it.
    directory_hashes: HashSet<u64>,
    hasher: PathHasher,
    /// With `--previous`: blobs a layer of the same content takes instead of being compressed again.
    previous: Option<&'a PreviousBlobs>,
    /// Where layer outlines are recorded and looked up, when the rootfs's read knows its files' digests.
    outlines: Option<&'a KnownLayers>,
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
            base: None,
            present: HashSet::new(),
            present_directories: HashSet::new(),
            placed: HashMap::new(),
            directory_aliases: Vec::new(),
            held: 0,
            directory_hashes: HashSet::new(),
            hasher: PathHasher::default(),
            previous: None,
            outlines: None,
        }
    }

    /// Takes the blob of `previous`'s layer of the same content for any layer that has one (see
    /// [`crate::layer::reuse`]).
    pub fn reusing(mut self, previous: &'a PreviousBlobs) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Describes each layer by its outline too (see [`crate::layer::outline`]), recorded in `known`: given only when
    /// the rootfs's read hands over each large file's recorded digest.
    pub fn outlining(mut self, known: &'a KnownLayers) -> Self {
        self.outlines = Some(known);
        self
    }

    fn new_writer(&self) -> Result<LayerWriter> {
        let shape = match (self.previous.is_some(), self.outlines.is_some()) {
            (false, false) => LayerShape::Compressed,
            (false, true) => LayerShape::CompressedOutlined,
            (true, false) => LayerShape::Spooled,
            (true, true) => LayerShape::Outlined,
        };
        LayerWriter::create(self.blobs, self.compression, self.level, self.threads, self.pool.as_ref(), shape)
    }

    /// Keeps `entry` as the record of a directory, for lower layers to carry as a parent.
    fn note_directory(&mut self, entry: Entry) {
        self.directory_hashes.insert(self.hasher.hash(&entry.path));
        self.directories.insert(entry.path.clone(), entry);
    }

    /// Counts a record about to be kept for `entry`, refusing the input past [`MAX_LAYER_RECORDS_BYTES`].
    fn charge(&mut self, bytes: usize, entry: &Entry) -> io::Result<()> {
        self.held += bytes as u64 + crate::rootfs::normalize::ENTRY_OVERHEAD;
        if self.held > MAX_LAYER_RECORDS_BYTES {
            return Err(io::Error::other(crate::tar::reader::InputFault(format!(
                "entry `{}`: the layers keep more than {} MiB of records about the entries, the most kept in memory",
                shown_name(&entry.path),
                MAX_LAYER_RECORDS_BYTES >> 20
            ))));
        }
        Ok(())
    }

    /// The bytes a directory record of `entry` takes.
    fn record_size(entry: &Entry) -> usize {
        entry.path.len() + entry.xattrs.iter().map(|(name, value)| name.len() + value.len()).sum::<usize>()
    }

    /// Writes only what differs from `base`, and whiteouts for what the rootfs lacks.
    pub fn on_base(mut self, base: &'a BaseImage) -> Self {
        self.base = Some(base);
        self
    }

    fn layer(&mut self, group: Group) -> io::Result<&mut OpenLayer> {
        if !self.layers.contains_key(&group) {
            let writer = self.new_writer().map_err(io::Error::other)?;
            self.layers.insert(group, OpenLayer { writer, directories: HashSet::new(), packages: BTreeSet::new() });
        }
        Ok(self.layers.get_mut(&group).expect("just inserted"))
    }

    /// Appends one normalised entry to its layer, with the parent directories that layer still lacks; on a base,
    /// only if the base does not have it as it is. `known` is its data as the rootfs's read knows it.
    pub fn append(&mut self, entry: &Entry, data: &mut dyn Read, known: Option<KnownData>) -> io::Result<()> {
        let Some(base) = self.base else {
            return self.write(entry, data, known);
        };
        self.note_present(entry)?;
        match base.compare(entry) {
            Comparison::Differs => self.write(entry, data, known),
            Comparison::Same => {
                if matches!(entry.kind, EntryKind::Directory) {
                    self.charge(Self::record_size(entry), entry)?;
                    // Lower layers may carry it as it is: no later layer needs to correct it.
                    self.note_directory(entry.clone());
                }
                Ok(())
            }
            Comparison::SameIfContent => {
                let mut content = Spool::read(data, entry.size())?;
                if base.same_content(&entry.path, &content.digest) {
                    return Ok(());
                }
                content.rewind()?;
                self.write(entry, &mut content, known)
            }
        }
    }

    fn note_present(&mut self, entry: &Entry) -> io::Result<()> {
        if matches!(entry.kind, EntryKind::Directory) {
            self.charge(entry.path.len(), entry)?;
            self.present_directories.insert(entry.path.clone());
        }
        let mut path = entry.path.as_slice();
        while !self.present.contains(path) {
            self.charge(path.len() * 2, entry)?;
            self.present.insert(path.to_vec());
            path = parent_of(path);
            if path.is_empty() {
                break;
            }
            // A directory implied by its child, in a tarball that does not list it.
            self.present_directories.insert(path.to_vec());
        }
        Ok(())
    }

    fn write(&mut self, entry: &Entry, data: &mut dyn Read, known: Option<KnownData>) -> io::Result<()> {
        let directory_group = self.plan.directory_group();
        let (group, package) = match &entry.kind {
            EntryKind::Directory => {
                if !self.plan.is_single() {
                    self.charge(Self::record_size(entry), entry)?;
                    self.note_directory(Entry { mtime: STUB_MTIME, ..entry.clone() });
                }
                (directory_group, None)
            }
            // A hardlink goes where its target is (image-spec layer.md: the target must be in the same layer).
            EntryKind::Hardlink { target } => (self.placed.get(target).copied().unwrap_or(directory_group), None),
            _ => self.route(&entry.path),
        };
        if let EntryKind::Symlink { target } = &entry.kind {
            self.note_directory_alias(&entry.path, target);
        }
        // One layer needs no record of where things went.
        if !self.plan.is_single() && !matches!(entry.kind, EntryKind::Directory) {
            self.charge(entry.path.len(), entry)?;
            self.placed.insert(entry.path.clone(), group);
        }
        let stubs = if group == directory_group { Vec::new() } else { self.missing_parents(group, &entry.path) };
        for stub in &stubs {
            self.charge(stub.path.len(), entry)?;
        }
        if matches!(entry.kind, EntryKind::Directory) {
            self.charge(entry.path.len(), entry)?;
        }
        let layer = self.layer(group)?;
        for stub in &stubs {
            layer.writer.append(stub, &mut io::empty(), None)?;
            layer.directories.insert(stub.path.clone());
        }
        if let Some(package) = package {
            layer.packages.insert(package);
        }
        if matches!(entry.kind, EntryKind::Directory) {
            layer.directories.insert(entry.path.clone());
        }
        layer.writer.append(entry, data, known)
    }

    /// The group of a non-directory path, looking its owner up under a top-level directory symlink too: with a
    /// merged /usr, dpkg lists `/bin/bash` while the tarball holds `usr/bin/bash` under a `bin -> usr/bin` link.
    fn route(&self, path: &[u8]) -> (Group, Option<u32>) {
        let routed = self.plan.route(path);
        if routed.1.is_some() {
            return routed;
        }
        for (target, link) in &self.directory_aliases {
            if let Some(rest) = path.strip_prefix(target.as_slice()).filter(|rest| rest.starts_with(b"/")) {
                let mut alias = link.clone();
                alias.extend_from_slice(rest);
                let aliased = self.plan.route(&alias);
                if aliased.1.is_some() {
                    return aliased;
                }
            }
        }
        routed
    }

    /// Remembers a top-level symlink (`bin -> usr/bin`) as another name for the paths under its target.
    fn note_directory_alias(&mut self, link: &[u8], target: &[u8]) {
        if link.contains(&b'/') {
            return;
        }
        if self.directory_aliases.len() >= MAX_DIRECTORY_ALIASES {
            return;
        }
        if let Some(target) = normal_form(target).filter(|t| !t.is_empty() && t != link) {
            self.directory_aliases.push((target, link.to_vec()));
        }
    }

    /// Stubs for the ancestors of `path` that `group`'s layer has not written yet, outermost first.
    fn missing_parents(&self, group: Group, path: &[u8]) -> Vec<Entry> {
        if self.directories.is_empty() {
            return Vec::new();
        }
        // Every directory a layer wrote is in `directories`: ancestors whose hash is not there are skipped
        // without hashing their whole prefix again.
        let written = self.layers.get(&group).map(|l| &l.directories);
        let mut stubs = Vec::new();
        for (end, hash) in self.hasher.ancestors(path).into_iter().rev() {
            if !self.directory_hashes.contains(&hash) {
                continue;
            }
            let parent = &path[..end];
            if written.is_some_and(|w| w.contains(parent)) {
                break;
            }
            if let Some(directory) = self.directories.get(parent) {
                stubs.push(directory.clone());
            }
        }
        stubs.reverse();
        stubs
    }

    /// Ends every layer and returns them bottom first, each annotated with what it holds.
    pub fn finish(mut self) -> Result<Vec<WrittenLayer>> {
        let plan = self.plan;
        // Bottom first: each layer's writer and the annotations that say what it holds.
        let mut ending: Vec<(LayerWriter, BTreeMap<String, String>)> = Vec::new();
        if let Some(base) = self.base {
            // First of the new layers: an opaque marker hides the base's children from the layers below it only.
            let whiteouts = base.whiteouts(&self.present, &self.present_directories);
            if !whiteouts.is_empty() {
                let mut writer = self.new_writer()?;
                for whiteout in &whiteouts {
                    writer
                        .append(whiteout, &mut io::empty(), None)
                        .map_err(|e| crate::error::Error::io("cannot write a layer in", self.blobs.root(), e))?;
                }
                ending.push((writer, BTreeMap::from([(ANNOTATION_CONTENT.into(), "whiteouts".into())])));
            }
        }
        let mut layers = std::mem::take(&mut self.layers);
        for group in plan.order() {
            let Some(open) = layers.remove(&group) else { continue };
            let names = || {
                let mut names: Vec<&str> = open.packages.iter().map(|&p| plan.package_name(p)).collect();
                names.sort_unstable();
                names.join(" ")
            };
            let mut annotations = BTreeMap::new();
            match group {
                Group::Packages(_) => {
                    annotations.insert(ANNOTATION_PACKAGES.into(), names());
                }
                Group::Rule(rule) => {
                    annotations.insert(ANNOTATION_RULE.into(), plan.rule_name(rule).into());
                }
                Group::Rest => {
                    annotations.insert(ANNOTATION_CONTENT.into(), "unowned".into());
                    if !open.packages.is_empty() {
                        annotations.insert(ANNOTATION_PACKAGES.into(), names());
                    }
                }
                Group::Whole => {}
            }
            ending.push((open.writer, annotations));
        }
        if ending.is_empty() && self.base.is_none() {
            // An empty rootfs still makes an image with one (empty) layer.
            ending.push((self.new_writer()?, BTreeMap::new()));
        }
        let (writers, annotations): (Vec<LayerWriter>, Vec<_>) = ending.into_iter().unzip();
        let no_cache = KnownLayers::none();
        let known = self.outlines.unwrap_or(&no_cache);
        let committed = commit_all(writers, self.threads, self.blobs, self.previous, known)?;
        Ok(committed
            .into_iter()
            .zip(annotations)
            // Added to what the compressor annotated (zstd:chunked's table of contents).
            .map(|(mut layer, annotations)| {
                layer.annotations.extend(annotations);
                layer
            })
            .collect())
    }
}

/// Ends every layer, in order. Spooled layers (`--previous`) are compressed or checked against the previous blob
/// only now, so they are ended on `threads` threads at once; a compressed stream only has its last blocks to wait
/// for, so those are ended one after the other.
fn commit_all(
    writers: Vec<LayerWriter>,
    threads: usize,
    blobs: &BlobStore,
    previous: Option<&PreviousBlobs>,
    known: &KnownLayers,
) -> Result<Vec<WrittenLayer>> {
    let workers = threads.min(writers.len());
    if previous.is_none() || workers <= 1 {
        return writers.into_iter().map(|writer| writer.commit(blobs, previous, known)).collect();
    }
    let queue = Mutex::new(writers.into_iter().enumerate());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut queue| queue.next());
                    let Some((index, writer)) = next else { break };
                    let committed = writer.commit(blobs, previous, known);
                    let failed = committed.is_err();
                    if let Ok(mut done) = done.lock() {
                        done.push((index, committed));
                    }
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(index, _)| *index);
    // A failure stops its worker and the layers left are never ended: the first failure in layer order is
    // reported, and no layer past it can be missing from a successful result.
    done.into_iter().map(|(_, layer)| layer).collect()
}

/// A file's content held to compare it with the base's: in memory, or in a temporary file when large.
struct Spool {
    digest: crate::digest::Digest,
    memory: io::Cursor<Vec<u8>>,
    file: Option<std::fs::File>,
}

impl Spool {
    const MEMORY_LIMIT: u64 = 8 << 20;

    fn read(data: &mut dyn Read, size: u64) -> io::Result<Spool> {
        let mut hashed = crate::digest::DigestReader::new(data);
        if size <= Self::MEMORY_LIMIT {
            let mut bytes = Vec::with_capacity(size as usize);
            hashed.read_to_end(&mut bytes)?;
            let (digest, _) = hashed.finish();
            return Ok(Spool { digest, memory: io::Cursor::new(bytes), file: None });
        }
        let mut file = tempfile::tempfile()?;
        io::copy(&mut hashed, &mut file)?;
        let (digest, _) = hashed.finish();
        Ok(Spool { digest, memory: io::Cursor::new(Vec::new()), file: Some(file) })
    }

    fn rewind(&mut self) -> io::Result<()> {
        use std::io::Seek;
        self.memory.set_position(0);
        if let Some(file) = &mut self.file {
            file.rewind()?;
        }
        Ok(())
    }
}

impl Read for Spool {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(file) => file.read(buf),
            None => self.memory.read(buf),
        }
    }
}
