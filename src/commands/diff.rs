//! `diff`: what a device holding one image must download to get another: the layers they share (by digest), the
//! layers that are new, with the packages (or rule) each holds, and their bytes; and what a client with zstd:chunked
//! partial pulls fetches instead (each new layer's TOC and tar-split, and the frames of the files it does not hold).

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::commands::inspect::human_size;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::compress::chunked::read::read_toc;
use crate::layer::compress::chunked::toc::Toc;
use crate::layering::plan::{ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE};
use crate::oci::descriptor::Descriptor;
use crate::oci::reference::ImageRef;
use crate::registry::ClientOptions;
use crate::source::{self, SourceImage};

#[derive(Clone, Debug, Serialize)]
pub struct DiffLayer {
    pub digest: Digest,
    pub size: u64,
    /// The packages the layer holds, from its annotation (empty when it records none).
    pub packages: Vec<String>,
    /// The `--layer` rule it holds, or `unowned` for the top layer of a layered image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// For a new layer: what a client with zstd:chunked partial pulls fetches of it (its size if it is not
    /// zstd:chunked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub old: String,
    pub new: String,
    /// Layers of the new image the old one already has.
    pub shared_layers: Vec<DiffLayer>,
    /// Layers of the new image the old one lacks.
    pub new_layers: Vec<DiffLayer>,
    /// The compressed bytes of the new layers (each blob counted once).
    pub download_bytes: u64,
    /// What a client with zstd:chunked partial pulls holding the old image fetches: for each new zstd:chunked
    /// layer its TOC and tar-split (containers/storage 1.44+ fetches both; 1.43 the TOC alone) and the frames of
    /// the files (or chunks) whose sha256 no zstd:chunked layer of the old image lists; other new layers whole.
    pub partial_download_bytes: u64,
    /// The compressed bytes of all the new image's layers.
    pub total_bytes: u64,
}

pub fn diff(old: &ImageRef, new: &ImageRef, registry: &ClientOptions) -> Result<DiffReport> {
    let old_image = source::open_with(old, registry)?;
    let new_image = source::open_with(new, registry)?;
    let old_digests: BTreeSet<Digest> = layer_descriptors(&old_image).into_iter().map(|d| d.digest).collect();
    let held = held_contents(&old_image)?;
    let mut report = DiffReport {
        old: old_image.reference.clone(),
        new: new_image.reference.clone(),
        shared_layers: Vec::new(),
        new_layers: Vec::new(),
        download_bytes: 0,
        partial_download_bytes: 0,
        total_bytes: 0,
    };
    let mut counted = BTreeSet::new();
    for descriptor in layer_descriptors(&new_image) {
        let annotation = |key: &str| descriptor.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        let mut layer = DiffLayer {
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            packages: annotation(ANNOTATION_PACKAGES)
                .map(|p| p.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            content: annotation(ANNOTATION_RULE).or_else(|| annotation(ANNOTATION_CONTENT)),
            partial_bytes: None,
        };
        report.total_bytes += descriptor.size;
        if old_digests.contains(&descriptor.digest) {
            report.shared_layers.push(layer);
        } else {
            let partial = partial_bytes(&new_image, &descriptor, &held)?;
            if counted.insert(descriptor.digest.clone()) {
                report.download_bytes += descriptor.size;
                report.partial_download_bytes += partial;
            }
            layer.partial_bytes = Some(partial);
            report.new_layers.push(layer);
        }
    }
    Ok(report)
}

/// The TOC of a layer of `image`, if it is zstd:chunked; a malformed or oversized one is an error naming the layer.
fn toc_of(image: &SourceImage, descriptor: &Descriptor) -> Result<Option<(u64, Toc)>> {
    read_toc(image, &descriptor.digest, descriptor.size, descriptor.annotations.as_ref())
        .map(|read| read.map(|(position, toc)| (position.length + position.tar_split_length, toc)))
        .map_err(|problem| Error::bad_image(&image.reference, format!("layer {}: {problem}", descriptor.digest)))
}

/// The sha256 of every file and chunk the zstd:chunked layers of `image` list: what a client holding it finds
/// without fetching (containers/storage looks files up by digest in the TOCs of the layers it stores).
fn held_contents(image: &SourceImage) -> Result<HashSet<String>> {
    let mut held = HashSet::new();
    for descriptor in layer_descriptors(image) {
        if let Some((_, toc)) = toc_of(image, &descriptor)? {
            for file in toc.files {
                held.extend(file.chunks.into_iter().map(|(digest, _)| digest).filter(|d| !d.is_empty()));
                held.insert(file.digest);
            }
        }
    }
    Ok(held)
}

/// What a client holding `held` fetches of a new layer: its TOC and tar-split, then each file it lacks, chunk by
/// chunk (a chunk it holds elsewhere is copied); a layer that is not zstd:chunked, whole.
fn partial_bytes(image: &SourceImage, descriptor: &Descriptor, held: &HashSet<String>) -> Result<u64> {
    let Some((index_bytes, toc)) = toc_of(image, descriptor)? else {
        return Ok(descriptor.size);
    };
    let missing: u64 = toc
        .files
        .iter()
        .filter(|file| !held.contains(&file.digest))
        .flat_map(|file| &file.chunks)
        .filter(|(digest, _)| digest.is_empty() || !held.contains(digest))
        .map(|(_, compressed)| compressed)
        .sum();
    Ok(index_bytes + missing)
}

fn layer_descriptors(source: &SourceImage) -> Vec<Descriptor> {
    source.image.layers.iter().map(|l| l.descriptor.clone()).collect()
}

impl DiffReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let sum = |layers: &[DiffLayer]| layers.iter().map(|l| l.size).sum::<u64>();
        let _ =
            writeln!(out, "shared    {} layers ({})", self.shared_layers.len(), human_size(sum(&self.shared_layers)));
        let _ = writeln!(out, "new       {} layers ({})", self.new_layers.len(), human_size(sum(&self.new_layers)));
        for layer in &self.new_layers {
            let holds = match (&layer.content, layer.packages.is_empty()) {
                (Some(content), true) => content.clone(),
                (Some(content), false) => format!("{content}; packages: {}", layer.packages.join(" ")),
                (None, false) => format!("packages: {}", layer.packages.join(" ")),
                (None, true) => String::new(),
            };
            let _ = writeln!(out, "  {} {:>10}  {holds}", layer.digest, human_size(layer.size));
        }
        let percent =
            if self.total_bytes == 0 { 0.0 } else { 100.0 * self.download_bytes as f64 / self.total_bytes as f64 };
        let _ = writeln!(
            out,
            "download  {} of {} ({percent:.1}%)",
            human_size(self.download_bytes),
            human_size(self.total_bytes)
        );
        if self.partial_download_bytes != self.download_bytes {
            let percent = if self.total_bytes == 0 {
                0.0
            } else {
                100.0 * self.partial_download_bytes as f64 / self.total_bytes as f64
            };
            let _ = writeln!(
                out,
                "partial   {} of {} ({percent:.1}%) with zstd:chunked partial pulls",
                human_size(self.partial_download_bytes),
                human_size(self.total_bytes)
            );
        }
        out
    }
}
