//! `diff`: what a device holding one image must download to get another: the layers they share (by digest), the
//! layers that are new, with the packages (or rule) each holds, and their bytes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::commands::inspect::human_size;
use crate::digest::Digest;
use crate::error::Result;
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
    /// The compressed bytes of all the new image's layers.
    pub total_bytes: u64,
}

pub fn diff(old: &ImageRef, new: &ImageRef, registry: &ClientOptions) -> Result<DiffReport> {
    let old_image = source::open_with(old, registry)?;
    let new_image = source::open_with(new, registry)?;
    let old_digests: BTreeSet<Digest> = layer_descriptors(&old_image).into_iter().map(|d| d.digest).collect();
    let mut report = DiffReport {
        old: old_image.reference.clone(),
        new: new_image.reference.clone(),
        shared_layers: Vec::new(),
        new_layers: Vec::new(),
        download_bytes: 0,
        total_bytes: 0,
    };
    let mut counted = BTreeSet::new();
    for descriptor in layer_descriptors(&new_image) {
        let annotation = |key: &str| descriptor.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        let layer = DiffLayer {
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            packages: annotation(ANNOTATION_PACKAGES)
                .map(|p| p.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            content: annotation(ANNOTATION_RULE).or_else(|| annotation(ANNOTATION_CONTENT)),
        };
        report.total_bytes += descriptor.size;
        if old_digests.contains(&descriptor.digest) {
            report.shared_layers.push(layer);
        } else {
            if counted.insert(descriptor.digest.clone()) {
                report.download_bytes += descriptor.size;
            }
            report.new_layers.push(layer);
        }
    }
    Ok(report)
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
        out
    }
}
