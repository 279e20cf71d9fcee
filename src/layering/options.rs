//! What the caller decided about layering (resolved and validated before the conversion starts), and turning it
//! into a [`LayerPlan`] once the rootfs, the previous image and the base are known.

use std::path::PathBuf;

use crate::error::{Error, Remedy, Result};
use crate::layering::packages::{Ownership, database, pkgdata};
use crate::layering::plan::{
    ANNOTATION_CONTENT, ANNOTATION_PACKAGES, DEFAULT_MAX_LAYERS, LayerPlan, PathRule, PreviousLayers,
};
use crate::oci::reference::ImageRef;
use crate::progress::Progress;
use crate::rootfs::source::RootfsSource;

/// Where the split into layers comes from.
#[derive(Clone, Debug, Default)]
pub enum Layering {
    /// One layer.
    #[default]
    Single,
    /// Layers of the paths each rule matches, bottom first; the rest on top.
    Paths(Vec<PathRule>),
    /// Package ownership from Yocto's package data (`PKGDATA_DIR`), the installed packages named by the image
    /// manifest when given.
    PackageData { dir: PathBuf, manifest: Option<PathBuf> },
    /// Package ownership from the rootfs's own dpkg or opkg database, read in a pass before the conversion; when it
    /// has none, one layer, or an error when `required`.
    Database { required: bool },
}

impl Layering {
    /// The layering as a record says it: `single`, `paths NAME=GLOB,...`, `pkgdata DIR`, `packages`.
    pub fn describe(&self) -> String {
        match self {
            Layering::Single => "single".into(),
            Layering::Paths(rules) => {
                let rules: Vec<String> = rules.iter().map(|r| format!("{}={}", r.name, r.patterns.join(","))).collect();
                format!("paths {}", rules.join(" "))
            }
            Layering::PackageData { dir, manifest } => match manifest {
                Some(manifest) => format!("pkgdata {} manifest {}", dir.display(), manifest.display()),
                None => format!("pkgdata {}", dir.display()),
            },
            Layering::Database { .. } => "packages".into(),
        }
    }

    /// Whether the rootfs is read twice (its database first), so that standard input must be spooled.
    pub fn reads_rootfs_twice(&self) -> bool {
        matches!(self, Layering::Database { .. })
    }
}

/// How the rootfs is split into layers.
#[derive(Clone, Debug)]
pub struct LayeringOptions {
    pub layering: Layering,
    /// At most this many layers (at least 1).
    pub max_layers: usize,
    /// An earlier image of this rootfs whose layer groups are kept.
    pub previous: Option<ImageRef>,
    /// An image to build on: its layers kept, only what differs from it added (see [`crate::layering::base`]).
    pub base: Option<ImageRef>,
}

impl Default for LayeringOptions {
    fn default() -> Self {
        LayeringOptions { layering: Layering::Single, max_layers: DEFAULT_MAX_LAYERS, previous: None, base: None }
    }
}

impl LayeringOptions {
    /// The layer plan for `rootfs`, with `base_layers` layers of a base image below it.
    pub fn plan(
        &self,
        rootfs: &RootfsSource,
        previous: Option<&PreviousLayers>,
        base: Option<(&str, usize)>,
        progress: &Progress,
    ) -> Result<LayerPlan> {
        // On a base, its layers and the whiteout layer count too.
        let reserved = base.map(|(_, layers)| layers + 1).unwrap_or(0);
        if reserved >= self.max_layers {
            let (reference, layers) = base.expect("only a base reserves layers");
            return Err(Error::BadImage {
                image: reference.to_string(),
                problem: format!(
                    "the base image already has {layers} layer{} and its whiteouts need one more: with at most {} \
                     layers, none is left for the rootfs",
                    if layers == 1 { "" } else { "s" },
                    self.max_layers
                ),
            }
            .with_remedy(Remedy::AllowLayers { given: self.max_layers, needed: reserved + 1 }));
        }
        let max_layers = self.max_layers - reserved;
        if max_layers == 1 {
            return Ok(LayerPlan::single());
        }
        let ownership = match &self.layering {
            Layering::Single => return Ok(LayerPlan::single()),
            Layering::Paths(rules) => return Ok(LayerPlan::paths(rules.clone())),
            Layering::PackageData { dir, manifest } => {
                progress.message("reading pkgdata");
                Some(pkgdata::load(dir, manifest.as_deref())?)
            }
            Layering::Database { .. } => database::read(rootfs, progress)?,
        };
        match ownership {
            Some(ownership) => Ok(LayerPlan::packages(ownership, max_layers, previous)),
            None if matches!(self.layering, Layering::Database { required: true }) => Err(Error::BadInput {
                input: rootfs.name().to_string(),
                problem: "no package ownership known: the rootfs has no dpkg or opkg database (var/lib/dpkg/status, \
                    var/lib/opkg/status, usr/lib/opkg/status)"
                    .into(),
            }
            .with_remedy(Remedy::GivePackageData)),
            None => Ok(LayerPlan::single()),
        }
    }
}

impl LayeringOptions {
    /// The package ownership an SBOM lists when the layer plan holds none (one layer, path rules, or too few layers
    /// to split): Yocto's pkgdata when given, else the rootfs's own dpkg or opkg database, if it has one.
    pub fn ownership_for_sbom(&self, rootfs: &RootfsSource, progress: &Progress) -> Result<Option<Ownership>> {
        match &self.layering {
            Layering::PackageData { dir, manifest } => Ok(Some(pkgdata::load(dir, manifest.as_deref())?)),
            _ => database::read(rootfs, progress),
        }
    }
}

/// The layer groups and blobs of a previous image, from its layer annotations.
pub fn read_previous(source: &crate::source::SourceImage) -> PreviousLayers {
    let mut previous = PreviousLayers::default();
    for layer in &source.image.layers {
        let descriptor = &layer.descriptor;
        previous.digests.insert(descriptor.digest.clone());
        let annotation = |key: &str| descriptor.annotations.as_ref().and_then(|a| a.get(key));
        if let (Some(packages), None) = (annotation(ANNOTATION_PACKAGES), annotation(ANNOTATION_CONTENT)) {
            previous.groups.push(packages.split_whitespace().map(str::to_string).collect());
        }
    }
    previous
}
