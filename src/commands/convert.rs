//! The conversion pipeline: rootfs -> normalised entries -> layer blob -> image documents -> every output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::compress::LayerCompression;
use crate::layer::set::LayerSet;
use crate::layer::writer::WrittenLayer;
use crate::layering::base::BaseImage;
use crate::layering::packages::{database, pkgdata};
use crate::layering::plan::{
    ANNOTATION_CONTENT, ANNOTATION_PACKAGES, ANNOTATION_RULE, DEFAULT_MAX_LAYERS, LayerMode, LayerPlan, PathRule,
    PreviousLayers,
};
use crate::oci::config::{ContainerConfig, History, ImageConfig, RootFs, rfc3339};
use crate::oci::image::Image;
use crate::oci::manifest::ANNOTATION_CREATED;
use crate::oci::platform::Platform;
use crate::oci::reference::{ImageName, ImageRef};
use crate::progress::Progress;
use crate::registry::PushReport;
use crate::rootfs::elf::{ElfCensus, ElfSniffer};
use crate::rootfs::input;
use crate::rootfs::normalize::Normalizer;
use crate::sink::{self, SinkOptions};
use crate::source;
use crate::tar::entry::EntryKind;
use crate::tar::reader::input_fault;

/// Everything a conversion needs, validated.
#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// A tarball path, a directory, or `-` for standard input.
    pub rootfs: String,
    /// The target platform; detected from the rootfs's ELF binaries when `None`.
    pub platform: Option<Platform>,
    /// Refuse a `platform` that the rootfs's binaries contradict.
    pub check_platform: bool,
    pub config: ContainerConfig,
    pub author: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub compression: LayerCompression,
    pub compression_level: Option<i32>,
    /// Compression threads; 0 means every core.
    pub threads: usize,
    /// Creation time, and the ceiling for every mtime.
    pub source_date_epoch: Option<i64>,
    /// Destinations; when empty, `<stem>-<arch>.oci.tar` in `default_output_dir`.
    pub outputs: Vec<ImageRef>,
    pub default_output_dir: PathBuf,
    pub name: Option<ImageName>,
    pub progress: Progress,
    pub sink: SinkOptions,
    pub layering: LayeringOptions,
}

/// How the rootfs is split into layers (see [`crate::layering::plan`]).
#[derive(Clone, Debug)]
pub struct LayeringOptions {
    pub mode: LayerMode,
    /// Yocto's PKGDATA_DIR, for package ownership.
    pub pkgdata: Option<PathBuf>,
    /// The image manifest (IMAGE_MANIFEST) naming the installed packages of `pkgdata`.
    pub package_manifest: Option<PathBuf>,
    /// At most this many layers.
    pub max_layers: usize,
    /// `--layer NAME=GLOB,...` rules, bottom first.
    pub rules: Vec<PathRule>,
    /// An earlier image of this rootfs whose layer groups are kept.
    pub previous: Option<ImageRef>,
    /// An image to build on: its layers kept, only what differs from it added (see [`crate::layering::base`]).
    pub base: Option<ImageRef>,
}

impl Default for LayeringOptions {
    fn default() -> Self {
        LayeringOptions {
            mode: LayerMode::Auto,
            pkgdata: None,
            package_manifest: None,
            max_layers: DEFAULT_MAX_LAYERS,
            rules: Vec::new(),
            previous: None,
            base: None,
        }
    }
}

/// What a conversion produced, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ConvertReport {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub architecture: String,
    pub variant: Option<String>,
    pub os: String,
    pub created: Option<String>,
    pub layers: Vec<WrittenLayer>,
    pub outputs: Vec<String>,
    /// One report per registry output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushReport>,
    /// Where the platform came from: `option`, or `detected from <file>`.
    pub platform_source: String,
    /// The layering used: `single`, `packages` or `paths`.
    pub layering: String,
    /// Where package ownership came from (`pkgdata DIR`, `dpkg database ...`), in `packages` layering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// With `--previous`: what a device holding the previous image must download.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<Reuse>,
}

/// What a new image shares with a previous one.
#[derive(Clone, Debug, Serialize)]
pub struct Reuse {
    /// Layers whose blob the previous image already has.
    pub reused_layers: usize,
    /// Layers the previous image does not have.
    pub new_layers: usize,
    /// The compressed size of the new layers.
    pub download_bytes: u64,
}

pub fn convert(options: &ConvertOptions) -> Result<ConvertReport> {
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        n => n,
    };
    let level = options.compression_level.unwrap_or_else(|| options.compression.default_level());
    options.compression.check_level(level)?;

    for output in &options.outputs {
        sink::check_destination(output)?;
    }
    let outputs_known = !options.outputs.is_empty();
    // Blobs are staged beside the first local output so that they can be hardlinked, not copied, into a layout.
    let staging_parent = match options.outputs.iter().find_map(ImageRef::path) {
        Some(path) => sink::layout::parent_dir(path),
        None if outputs_known => std::env::temp_dir(),
        None => options.default_output_dir.clone(),
    };
    let staging_dir = crate::cleanup::TempDir::new_in(&staging_parent, sink::STAGING_PREFIX)
        .map_err(|e| Error::io("cannot create a staging directory in", &staging_parent, e))?;
    let staging = BlobStore::open(staging_dir.path())?;

    let previous = options.layering.previous.as_ref().map(|r| read_previous(r, options)).transpose()?;
    let base = match &options.layering.base {
        Some(reference) => {
            options.progress.message("reading the base image");
            Some(BaseImage::load(reference, &options.sink.registry, &staging)?)
        }
        None => None,
    };
    // Standard input is read twice when its package database is needed: spooled to a temporary file first.
    let spool = match needs_database(options)? {
        true if options.rootfs == "-" => Some(spool_stdin(options)?),
        _ => None,
    };
    let rootfs_path = spool.as_ref().map(|f| f.path().to_path_buf()).unwrap_or_else(|| PathBuf::from(&options.rootfs));
    let plan = plan_layers(options, &rootfs_path, previous.as_ref(), base.as_ref())?;
    let mut rootfs = match &spool {
        Some(file) => input::open_path(file.path(), "-", &options.progress)?,
        None => input::open(&options.rootfs, &options.progress)?,
    };

    let scan = write_layers(&mut rootfs, &plan, base.as_ref(), options, &staging, level, threads)?;
    options.progress.message("writing outputs");

    let fallback = base
        .as_ref()
        .map(|base| (base.config.platform().with_default_variant(), format!("from the base image {}", base.reference)));
    let (platform, platform_source) =
        scan.census.resolve(options.platform.as_ref(), options.check_platform, fallback, &rootfs.name)?;
    if let Some(base) = &base {
        check_base_platform(base, &platform, &platform_source)?;
    }
    let created = rfc3339(options.source_date_epoch.or(scan.newest_mtime).unwrap_or(0));
    let image_config = image_config(options, &platform, &created, scan.has_bin_sh, &scan.layers, base.as_ref());
    let mut annotations = options.annotations.clone();
    annotations.entry(ANNOTATION_CREATED.into()).or_insert_with(|| created.clone());
    let mut layers = base.map(|b| b.layers).unwrap_or_default();
    layers.extend(scan.layers);
    let reuse = previous.as_ref().map(|previous| {
        let new: Vec<&WrittenLayer> = layers.iter().filter(|l| !previous.digests.contains(&l.digest)).collect();
        Reuse {
            reused_layers: layers.len() - new.len(),
            new_layers: new.len(),
            download_bytes: new.iter().map(|l| l.size).sum(),
        }
    });
    let image =
        Image::assemble(&staging, image_config, layers.iter().map(WrittenLayer::to_oci).collect(), annotations)?;
    let publication = sink::Publication::single(image.clone()).expect("an assembled image has a manifest");
    let outputs = if outputs_known {
        options.outputs.clone()
    } else {
        let file = options.default_output_dir.join(format!("{}-{}.oci.tar", rootfs.stem, platform.file_stem()));
        vec![ImageRef::OciArchive { file, reference: None }]
    };
    let prepared = outputs
        .iter()
        .map(|output| sink::prepare(output, &publication, &staging, options.name.as_ref(), &options.sink))
        .collect::<Result<Vec<_>>>()?;
    let mut pushes = Vec::new();
    for output in prepared {
        pushes.extend(output.commit()?);
    }
    options.progress.finish();
    Ok(ConvertReport {
        manifest_digest: publication.top.descriptor.digest.clone(),
        config_digest: image.config_descriptor.digest.clone(),
        architecture: image.config.architecture.clone(),
        variant: image.config.variant.clone(),
        os: image.config.os.clone(),
        created: image.config.created.clone(),
        layers,
        outputs: outputs.iter().map(ToString::to_string).collect(),
        pushes,
        platform_source,
        layering: if plan.is_single() {
            "single"
        } else if plan.ownership_source().is_some() {
            "packages"
        } else {
            "paths"
        }
        .into(),
        ownership: plan.ownership_source().map(str::to_string),
        reuse,
    })
}

/// Whether package ownership must come from the rootfs's own database (read in a pass before the conversion).
fn needs_database(options: &ConvertOptions) -> Result<bool> {
    let layering = &options.layering;
    if layering.package_manifest.is_some() && layering.pkgdata.is_none() {
        return Err(Error::Invalid("--package-manifest names packages of --pkgdata: give --pkgdata too".into()));
    }
    let mode = effective_mode(layering)?;
    Ok(match mode {
        LayerMode::Packages => layering.pkgdata.is_none(),
        // Standard input is spooled only on request: `auto` reads it once, in one layer.
        LayerMode::Auto => layering.pkgdata.is_none() && options.rootfs != "-",
        LayerMode::Single | LayerMode::Paths => false,
    })
}

/// The mode after the options that imply one, refusing combinations that contradict each other.
fn effective_mode(layering: &LayeringOptions) -> Result<LayerMode> {
    let mode = match (layering.mode, layering.rules.is_empty()) {
        (LayerMode::Auto | LayerMode::Paths, false) => LayerMode::Paths,
        (mode, false) => {
            return Err(Error::Invalid(format!("--layer rules need --layers paths (or auto), not --layers {mode}")));
        }
        (LayerMode::Paths, true) => {
            return Err(Error::Invalid("--layers paths needs at least one --layer NAME=GLOB[,GLOB...]".into()));
        }
        (mode, true) => mode,
    };
    if layering.pkgdata.is_some() && matches!(mode, LayerMode::Single | LayerMode::Paths) {
        return Err(Error::Invalid(format!("--pkgdata gives package ownership, which --layers {mode} does not use")));
    }
    if layering.max_layers == 0 {
        return Err(Error::Invalid("--max-layers must be at least 1".into()));
    }
    Ok(mode)
}

/// The layer plan: package ownership from pkgdata or the rootfs's database, path rules, or one layer.
fn plan_layers(
    options: &ConvertOptions,
    rootfs: &Path,
    previous: Option<&PreviousLayers>,
    base: Option<&BaseImage>,
) -> Result<LayerPlan> {
    let layering = &options.layering;
    let mode = effective_mode(layering)?;
    // On a base, its layers and the whiteout layer count too.
    let reserved = base.map(|b| b.layers.len() + 1).unwrap_or(0);
    if reserved >= layering.max_layers {
        return Err(Error::Invalid(format!(
            "--max-layers {}: the base image `{}` already has {} layer{}; allow at least {}",
            layering.max_layers,
            base.map(|b| b.reference.as_str()).unwrap_or(""),
            reserved - 1,
            if reserved == 2 { "" } else { "s" },
            reserved + 1
        )));
    }
    let max_layers = layering.max_layers - reserved;
    if max_layers == 1 {
        return Ok(LayerPlan::single());
    }
    let ownership = match mode {
        LayerMode::Single => return Ok(LayerPlan::single()),
        LayerMode::Paths => return Ok(LayerPlan::paths(layering.rules.clone())),
        _ if layering.pkgdata.is_some() => {
            let dir = layering.pkgdata.as_deref().expect("checked");
            options.progress.message("reading pkgdata");
            Some(pkgdata::load(dir, layering.package_manifest.as_deref())?)
        }
        LayerMode::Auto if options.rootfs == "-" => None,
        _ => database::read(rootfs, &options.rootfs, &options.progress)?,
    };
    match ownership {
        Some(ownership) => Ok(LayerPlan::packages(ownership, max_layers, previous)),
        None if mode == LayerMode::Packages => Err(Error::BadInput {
            input: options.rootfs.clone(),
            problem: "--layers packages: no package ownership known: the rootfs has no dpkg or opkg database \
                (var/lib/dpkg/status, var/lib/opkg/status, usr/lib/opkg/status); give --pkgdata"
                .into(),
        }),
        None => Ok(LayerPlan::single()),
    }
}

/// Copies standard input to a temporary file, so that it can be read twice.
fn spool_stdin(options: &ConvertOptions) -> Result<crate::cleanup::TempFile> {
    options.progress.message("spooling standard input");
    let tmp = std::env::temp_dir();
    let mut spool = crate::cleanup::TempFile::new_in(&tmp, ".rootfs2image-stdin-")
        .map_err(|e| Error::io("cannot create a spool file in", &tmp, e))?;
    std::io::copy(&mut std::io::stdin().lock(), spool.file_mut()).map_err(|e| Error::BadInput {
        input: "-".into(),
        problem: format!("cannot spool standard input to {}: {e}", spool.path().display()),
    })?;
    Ok(spool)
}

/// The layer groups and blobs of a previous image, from its layer annotations.
fn read_previous(reference: &ImageRef, options: &ConvertOptions) -> Result<PreviousLayers> {
    let source = source::open_with(reference, &options.sink.registry)?;
    let descriptors = source.image.layers.iter().map(|l| l.descriptor.clone());
    let mut previous = PreviousLayers::default();
    for descriptor in descriptors {
        previous.digests.insert(descriptor.digest.clone());
        let annotation = |key: &str| descriptor.annotations.as_ref().and_then(|a| a.get(key));
        if let (Some(packages), None) = (annotation(ANNOTATION_PACKAGES), annotation(ANNOTATION_CONTENT)) {
            previous.groups.push(packages.split_whitespace().map(str::to_string).collect());
        }
    }
    Ok(previous)
}

/// What streaming the rootfs through the pipeline produced besides the layers themselves.
struct Scan {
    layers: Vec<WrittenLayer>,
    census: ElfCensus,
    newest_mtime: Option<i64>,
    has_bin_sh: bool,
}

/// Streams every entry through the normaliser into its layer, watching ELF headers on the way.
fn write_layers(
    rootfs: &mut input::Rootfs,
    plan: &LayerPlan,
    base: Option<&BaseImage>,
    options: &ConvertOptions,
    staging: &BlobStore,
    level: i32,
    threads: usize,
) -> Result<Scan> {
    let mut normalizer = Normalizer::new(&rootfs.name, options.source_date_epoch);
    let mut census = ElfCensus::default();
    let mut layers = LayerSet::new(plan, staging, options.compression, level, threads);
    if let Some(base) = base {
        layers = layers.on_base(base);
    }
    let mut has_bin_sh = false;
    while let Some(entry) = rootfs.entries.next_entry()? {
        let Some(entry) = normalizer.normalize(entry)? else {
            continue;
        };
        has_bin_sh |= entry.path == b"bin/sh";
        let size = matches!(entry.kind, EntryKind::File { .. }).then(|| entry.size());
        let mut data = ElfSniffer::new(rootfs.entries.data(), &census, size);
        layers.append(&entry, &mut data).map_err(|e| match input_fault(&e) {
            Some(problem) => Error::BadInput { input: rootfs.name.clone(), problem: problem.to_string() },
            None => Error::io("cannot write a layer in", staging.root(), e),
        })?;
        let (head, whole) = data.into_captured();
        census.observe(&entry.path, &head);
        if let Some(whole) = whole {
            census.observe_arm_file(&whole);
        }
    }
    Ok(Scan { layers: layers.finish()?, census, newest_mtime: normalizer.newest_mtime(), has_bin_sh })
}

/// The image config: the user's execution parameters with engine-like defaults, and one history entry.
fn image_config(
    options: &ConvertOptions,
    platform: &Platform,
    created: &str,
    has_bin_sh: bool,
    layers: &[WrittenLayer],
    base: Option<&BaseImage>,
) -> ImageConfig {
    let mut config = options.config.clone();
    if let Some(base) = base {
        config = inherit(config, &base.config.config);
    }
    if config.env.is_none() {
        // Docker's default PATH: engines add it only when they build an image, not when they load one.
        config.env = Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]);
    }
    if config.cmd.is_none() && config.entrypoint.is_none() && has_bin_sh {
        config.cmd = Some(vec!["/bin/sh".into()]);
    }
    let mut history = base.map(|b| b.config.history.clone()).unwrap_or_default();
    let new_layers = layers;
    ImageConfig {
        created: Some(created.to_string()),
        author: options.author.clone().or_else(|| base.and_then(|b| b.config.author.clone())),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
        os: "linux".into(),
        config,
        rootfs: RootFs { kind: "layers".into(), diff_ids: vec![] },
        history: {
            history.extend(new_layers.iter().map(|layer| History {
                created: Some(created.to_string()),
                created_by: Some("rootfs2image".into()),
                author: None,
                comment: Some(layer_comment(layer)),
                empty_layer: None,
            }));
            history
        },
    }
}

/// The base image's execution parameters under the user's: what the user gives wins; environment variables,
/// labels, ports and volumes are merged key by key, as a Dockerfile's instructions would on top of `FROM`.
fn inherit(mut config: ContainerConfig, base: &ContainerConfig) -> ContainerConfig {
    if let Some(base_env) = &base.env {
        let ours = config.env.take().unwrap_or_default();
        let key = |e: &String| e.split('=').next().unwrap_or("").to_string();
        let mut env: Vec<String> =
            base_env.iter().filter(|b| !ours.iter().any(|o| key(o) == key(b))).cloned().collect();
        env.extend(ours);
        config.env = Some(env);
    }
    if config.entrypoint.is_none() && config.cmd.is_none() {
        config.entrypoint = base.entrypoint.clone();
        config.cmd = base.cmd.clone();
    }
    config.user = config.user.or_else(|| base.user.clone());
    config.working_dir = config.working_dir.or_else(|| base.working_dir.clone());
    config.stop_signal = config.stop_signal.or_else(|| base.stop_signal.clone());
    fn merge<V: Clone>(
        ours: Option<BTreeMap<String, V>>,
        base: &Option<BTreeMap<String, V>>,
    ) -> Option<BTreeMap<String, V>> {
        match (ours, base) {
            (None, base) => base.clone(),
            (Some(ours), None) => Some(ours),
            (Some(ours), Some(base)) => {
                let mut merged = base.clone();
                merged.extend(ours);
                Some(merged)
            }
        }
    }
    config.labels = merge(config.labels, &base.labels);
    config.exposed_ports = merge(config.exposed_ports, &base.exposed_ports);
    config.volumes = merge(config.volumes, &base.volumes);
    config
}

/// A layer's history comment: what it holds.
fn layer_comment(layer: &WrittenLayer) -> String {
    let get = |key: &str| layer.annotations.get(key);
    match (get(ANNOTATION_RULE), get(ANNOTATION_CONTENT), get(ANNOTATION_PACKAGES)) {
        (Some(rule), _, _) => format!("paths of layer rule {rule}"),
        (None, Some(_), _) => "paths no package or rule owns, and directories".into(),
        (None, None, Some(packages)) => format!("packages: {packages}"),
        (None, None, None) => "root filesystem".into(),
    }
}

/// A base must be of the architecture being built (and of its variant, when both name one).
fn check_base_platform(base: &BaseImage, platform: &Platform, source: &str) -> Result<()> {
    let theirs = base.config.platform();
    if theirs.architecture != platform.architecture
        || (theirs.variant.is_some() && platform.variant.is_some() && theirs.variant != platform.variant)
    {
        return Err(Error::BadImage {
            image: base.reference.clone(),
            problem: format!(
                "the base image is {theirs}, but the image being built is {platform} ({source}): a base must be of the \
                 same architecture"
            ),
        });
    }
    Ok(())
}

/// Default directory for outputs when none is given.
pub fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_path_buf())
}
