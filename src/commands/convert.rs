//! `rootfs2image ROOTFS`: the conversion pipeline. One rootfs streams once through every stage:
//! [`input::open`] (sniff, decode) -> [`Normalizer`] (the rootfs policy) -> [`LayerSet`] (each entry to the layer its
//! [`LayerPlan`] names: canonical tar, digests, compression, blob) -> [`Image::assemble`] (config and manifest) ->
//! [`sink::publish`] (every output). What is decided before the stream starts: the layer plan (package ownership,
//! the previous image's groups, the base image's layers); after it ends: the platform (from the ELF binaries seen on
//! the way) and the config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attach::provenance::BuildRecord;
use crate::attach::sbom::{file_artifact, generated_artifact};
use crate::attach::{AttachOptions, SbomRequest};
use crate::blobs::BlobStore;
use crate::commands::inspect::AttachmentReport;
use crate::digest::{Digest, FileHash};
use crate::error::{Error, Result};
use crate::layer::compress::Compression;
use crate::layer::known::{KnownLayer, KnownLayers};
use crate::layer::reuse::PreviousBlobs;
use crate::layer::set::LayerSet;
use crate::layer::writer::WrittenLayer;
use crate::layering::base::BaseImage;
use crate::layering::options::{LayeringOptions, read_previous};
use crate::layering::plan::LayerPlan;
use crate::oci::config::{ContainerConfig, History, ImageConfig, RootFs, rfc3339};
use crate::oci::image::Image;
use crate::oci::manifest::ANNOTATION_CREATED;
use crate::oci::platform::Platform;
use crate::oci::reference::{ImageName, ImageRef};
use crate::progress::Progress;
use crate::registry::PushReport;
use crate::rootfs::elf::{ElfCensus, ElfSniffer, PlatformOptions};
use crate::rootfs::input;
use crate::rootfs::normalize::Normalizer;
use crate::rootfs::source::RootfsSource;
use crate::sbom::{FileInventory, SbomSubject};
use crate::sign::provenance::Dependency;
use crate::sink::{self, SinkOptions};
use crate::tar::entry::EntryKind;
use crate::tar::reader::input_fault;

/// Everything a conversion needs, resolved and validated by the caller; each stage takes its own part.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// A tarball path, a directory, or `-` for standard input.
    pub rootfs: String,
    pub platform: PlatformOptions,
    pub image: ImageOptions,
    pub compression: Compression,
    pub layering: LayeringOptions,
    pub output: OutputOptions,
    /// SBOMs and provenance to attach (signing is the outputs': [`SinkOptions::signer`]).
    pub attach: AttachOptions,
    /// Facts about layer blobs kept between runs: each layer written is recorded, and with `--previous` a blob
    /// recorded before is not decompressed to be checked.
    pub known_layers: KnownLayers,
    pub progress: Progress,
}

/// What goes into the image config and manifest besides the layers.
#[derive(Clone, Debug, Default)]
pub struct ImageOptions {
    /// The execution parameters (user, env, entrypoint, ...); a base image's fill what these leave unset.
    pub config: ContainerConfig,
    pub author: Option<String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Creation time, and the ceiling for every mtime; `None`: the newest mtime in the rootfs.
    pub source_date_epoch: Option<i64>,
}

/// Where the image goes.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// Destinations; when empty, `<stem>-<arch>.oci.tar` in `default_dir`.
    pub outputs: Vec<ImageRef>,
    pub default_dir: PathBuf,
    /// The image's name (`--tag`) where a destination names none.
    pub name: Option<ImageName>,
    pub sink: SinkOptions,
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
    /// SBOMs, provenance and attestations attached to the image (signatures are listed with each push).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentReport>,
    /// What went otherwise than asked without failing the conversion (a previous blob passed over), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
    /// Layers that took the previous image's blob of the same content instead of being compressed again.
    pub blobs_taken: usize,
    /// Of those, the blobs checked by their digest alone, without decompressing them: this machine had written or
    /// checked them before (see [`KnownLayers`]).
    pub blobs_known: usize,
    /// Layers whose diff_id this machine knew from their outline (their tar with each large file's data replaced
    /// by its recorded digest, see [`crate::layer::outline`]), so that their data was neither hashed nor spooled.
    pub layers_recognised: usize,
}

pub fn convert(options: &ConvertOptions) -> Result<ConvertReport> {
    let output = &options.output;
    for destination in &output.outputs {
        sink::check_destination(destination, &output.sink)?;
    }
    // Blobs are staged beside the first local output so that they can be hardlinked, not copied, into a layout.
    // The default output's name waits for the platform, but its directory is known.
    let staging_dir = if output.outputs.is_empty() {
        sink::staging_dir_in(&output.default_dir)?
    } else {
        sink::staging_dir(&output.outputs)?
    };
    let staging = BlobStore::open(staging_dir.path())?;

    let layering = &options.layering;
    let previous_image =
        layering.previous.as_ref().map(|r| crate::source::open_with(r, &output.sink.registry)).transpose()?;
    let previous = previous_image.as_ref().map(read_previous);
    let previous_blobs =
        previous_image.map(|image| PreviousBlobs::start(image, &staging, &options.known_layers)).transpose()?;
    let base = match &layering.base {
        Some(reference) => {
            options.progress.message("reading the base image");
            Some(BaseImage::load(reference, &output.sink.registry, &staging)?)
        }
        None => None,
    };
    let sbom_format = options.attach.generated_sbom();
    let provenance = options.attach.provenance.as_ref();
    // Standard input is read twice when its package database is needed, and hashed whole for the provenance:
    // spooled to a temporary file first.
    let reads_twice = layering.layering.reads_rootfs_twice() || sbom_format.is_some() || provenance.is_some();
    let spool = match reads_twice && options.rootfs == "-" {
        true => Some(input::spool_stdin(&options.progress)?),
        false => None,
    };
    let rootfs_path = spool.as_ref().map(|f| f.path().to_path_buf()).unwrap_or_else(|| PathBuf::from(&options.rootfs));
    let mut source = RootfsSource::new(&rootfs_path, &options.rootfs, staging_dir.path());
    if options.known_layers.dir().is_some() {
        source = source.recording_file_digests();
    }
    let base_layers = base.as_ref().map(|b| (b.reference.as_str(), b.layers.len()));
    let plan = layering.plan(&source, previous.as_ref(), base_layers, &options.progress)?;
    // The input's sha256 for the provenance, hashed beside the conversion (a directory has none).
    let input_digest = match provenance {
        Some(_) if rootfs_path.is_file() => Some(FileHash::start(rootfs_path.clone())),
        _ => None,
    };
    let sbom_ownership = match sbom_format {
        Some(_) if plan.ownership().is_none() => layering.ownership_for_sbom(&source, &options.progress)?,
        _ => None,
    };
    let mut inventory = if sbom_format.is_some() { FileInventory::new() } else { FileInventory::disabled() };
    let mut rootfs = match (&spool, reads_twice) {
        (None, false) => input::open(&options.rootfs, &options.progress)?,
        _ => source.open(&options.progress)?,
    };

    let scan =
        write_layers(&mut rootfs, &plan, base.as_ref(), previous_blobs.as_ref(), options, &staging, &mut inventory)?;
    for layer in &scan.layers {
        let fact = KnownLayer {
            diff_id: layer.diff_id.clone(),
            media_type: layer.media_type.clone(),
            uncompressed_size: layer.uncompressed_size,
        };
        options.known_layers.record(&layer.digest, &fact);
    }
    options.progress.message("writing outputs");

    let fallback = base
        .as_ref()
        .map(|base| (base.config.platform().with_default_variant(), format!("from the base image {}", base.reference)));
    let (platform, platform_source) = scan.census.resolve(&options.platform, fallback, &rootfs.name)?;
    if let Some(base) = &base {
        base.check_platform(&platform, &platform_source)?;
    }
    let created = rfc3339(options.image.source_date_epoch.or(scan.newest_mtime).unwrap_or(0));
    let config = image_config(&options.image, &platform, &created, scan.has_bin_sh, &scan.layers, base.as_ref());
    let mut annotations = options.image.annotations.clone();
    annotations.entry(ANNOTATION_CREATED.into()).or_insert_with(|| created.clone());
    let mut layers: Vec<WrittenLayer> = match &base {
        Some(base) => base.layers.iter().map(|l| WrittenLayer::kept(&l.read, &l.annotations)).collect(),
        None => Vec::new(),
    };
    layers.extend(scan.layers);
    let blobs_taken = previous_blobs.as_ref().map_or(0, PreviousBlobs::taken);
    let blobs_known = previous_blobs.as_ref().map_or(0, PreviousBlobs::taken_known);
    let layers_recognised = previous_blobs.as_ref().map_or(0, PreviousBlobs::recognised);
    let mut warnings = previous_blobs.as_ref().map(PreviousBlobs::warnings).unwrap_or_default();
    let reuse = previous.as_ref().map(|previous| {
        let new: Vec<&WrittenLayer> = layers.iter().filter(|l| !previous.digests.contains(&l.digest)).collect();
        Reuse {
            reused_layers: layers.len() - new.len(),
            new_layers: new.len(),
            download_bytes: new.iter().map(|l| l.size).sum(),
            blobs_taken,
            blobs_known,
            layers_recognised,
        }
    });
    let image = Image::assemble(&staging, config, layers.iter().map(WrittenLayer::to_oci).collect(), annotations)?;
    let mut publication = sink::Publication::single(image).expect("an assembled image has a manifest");
    let subject = publication.top.descriptor.clone();
    for request in &options.attach.sboms {
        let attachment = match request {
            SbomRequest::File(file) => file_artifact(&staging, &subject, file)?,
            SbomRequest::Generate(format) => {
                let described = SbomSubject {
                    name: output.name.as_ref().map(ToString::to_string),
                    digest: subject.digest.clone(),
                    created: options.image.source_date_epoch.or(scan.newest_mtime).unwrap_or(0),
                    platform: platform.clone(),
                    tool_version: env!("CARGO_PKG_VERSION").to_string(),
                };
                let ownership = plan.ownership().or(sbom_ownership.as_ref());
                let bytes = crate::sbom::generate(*format, &described, &inventory, ownership);
                generated_artifact(&staging, &subject, *format, &bytes)?
            }
        };
        publication.attachments.push(attachment);
    }
    if let Some(request) = provenance {
        let mut inputs = Vec::new();
        let input_name = if options.rootfs == "-" { "-".to_string() } else { options.rootfs.clone() };
        match input_digest {
            Some(digest) => inputs.push(Dependency::file(&input_name, &digest.finish()?)),
            None => inputs.push(Dependency { name: Some(input_name), uri: None, digest: Default::default() }),
        }
        if let Some((base, digest)) = base.as_ref().and_then(|b| Some((b, b.manifest_digest.as_ref()?))) {
            inputs.push(Dependency::image(&base.reference, digest));
        }
        let record = BuildRecord {
            subject_name: output.name.as_ref().map(ToString::to_string).unwrap_or_else(|| rootfs.stem.clone()),
            options: recorded_options(options),
            inputs,
            created: Some(created.clone()),
        };
        let signer = output.sink.signer.as_ref();
        publication
            .attachments
            .extend(crate::attach::provenance::attach(&staging, &subject, &record, request, signer)?);
    }

    let outputs = if output.outputs.is_empty() {
        let file = output.default_dir.join(format!("{}-{}.oci.tar", rootfs.stem, platform.file_stem()));
        vec![ImageRef::OciArchive { file, reference: None }]
    } else {
        output.outputs.clone()
    };
    let published = sink::publish(&outputs, &publication, &staging, output.name.as_ref(), &output.sink)?;
    let pushes = published.pushes;
    warnings.extend(published.warnings);
    options.progress.finish();
    let config = &publication.images[0].config;
    Ok(ConvertReport {
        manifest_digest: publication.top.descriptor.digest.clone(),
        config_digest: publication.images[0].config_descriptor.digest.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        os: config.os.clone(),
        created: config.created.clone(),
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
        attachments: publication.attachments.iter().map(AttachmentReport::of).collect(),
        warnings,
    })
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
    previous: Option<&PreviousBlobs>,
    options: &ConvertOptions,
    staging: &BlobStore,
    inventory: &mut FileInventory,
) -> Result<Scan> {
    let mut normalizer = Normalizer::new(&rootfs.name, options.image.source_date_epoch);
    let mut census = ElfCensus::default();
    let compression = &options.compression;
    let mut layers = LayerSet::new(plan, staging, compression.algorithm, compression.level, compression.threads);
    if let Some(base) = base {
        layers = layers.on_base(base);
    }
    if let Some(previous) = previous {
        layers = layers.reusing(previous);
    }
    if rootfs.entries.knows_data() && options.known_layers.dir().is_some() {
        layers = layers.outlining(&options.known_layers);
    }
    let mut has_bin_sh = false;
    while let Some(entry) = rootfs.entries.next_entry()? {
        let Some(entry) = normalizer.normalize(entry)? else {
            continue;
        };
        has_bin_sh |= entry.path == b"bin/sh";
        let size = matches!(entry.kind, EntryKind::File { .. }).then(|| entry.size());
        let known = rootfs.entries.known_data();
        let mut data = ElfSniffer::new(rootfs.entries.data(), &census, size);
        let fault = |e: std::io::Error| match input_fault(&e) {
            Some(problem) => Error::BadInput { input: rootfs.name.clone(), problem: problem.to_string() },
            None => Error::io("cannot write a layer in", staging.root(), e),
        };
        let mut hashed = inventory.hashing(&entry, &mut data);
        layers.append(&entry, &mut hashed, known).map_err(fault)?;
        hashed.finish().map_err(fault)?;
        data.read_rest_needed().map_err(fault)?;
        let (head, whole) = data.into_captured();
        census.observe(&entry.path, &head);
        if let Some(whole) = whole {
            census.observe_arm_file(&whole);
        }
    }
    Ok(Scan { layers: layers.finish()?, census, newest_mtime: normalizer.newest_mtime(), has_bin_sh })
}

/// The image config: the user's execution parameters over the base's, with engine-like defaults, and one history
/// entry per new layer after the base's.
fn image_config(
    options: &ImageOptions,
    platform: &Platform,
    created: &str,
    has_bin_sh: bool,
    new_layers: &[WrittenLayer],
    base: Option<&BaseImage>,
) -> ImageConfig {
    let config = match base {
        Some(base) => options.config.clone().over(&base.config.config),
        None => options.config.clone(),
    };
    let mut history = base.map(|b| b.config.history.clone()).unwrap_or_default();
    history.extend(new_layers.iter().map(|layer| History {
        created: Some(created.to_string()),
        created_by: Some("rootfs2image".into()),
        author: None,
        comment: Some(layer.comment()),
        empty_layer: None,
    }));
    ImageConfig {
        created: Some(created.to_string()),
        author: options.author.clone().or_else(|| base.and_then(|b| b.config.author.clone())),
        architecture: platform.architecture.clone(),
        variant: platform.variant.clone(),
        os: "linux".into(),
        config: config.with_defaults(has_bin_sh),
        rootfs: RootFs { kind: "layers".into(), diff_ids: vec![] },
        history,
    }
}

/// Every option that shapes the output, as the provenance records it (threads and progress do not).
fn recorded_options(options: &ConvertOptions) -> BTreeMap<String, serde_json::Value> {
    use serde_json::{Value, json};
    let layering = &options.layering;
    let mut recorded = BTreeMap::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            recorded.insert(key.to_string(), value);
        }
    };
    put("arch", json!(options.platform.requested.as_ref().map(ToString::to_string)));
    put("compression", json!(options.compression.algorithm.to_string()));
    put("compressionLevel", json!(options.compression.level));
    put("layers", json!(layering.layering.describe()));
    put("maxLayers", json!(layering.max_layers));
    put("previous", json!(layering.previous.as_ref().map(ToString::to_string)));
    put("base", json!(layering.base.as_ref().map(ToString::to_string)));
    put("config", serde_json::to_value(&options.image.config).unwrap_or(Value::Null));
    put("author", json!(options.image.author));
    put("annotations", json!(options.image.annotations));
    put("sourceDateEpoch", json!(options.image.source_date_epoch));
    put("tag", json!(options.output.name.as_ref().map(ToString::to_string)));
    recorded
}

/// Default directory for outputs when none is given.
pub fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| Path::new(".").to_path_buf())
}
