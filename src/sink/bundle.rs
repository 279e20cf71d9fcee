//! OCI runtime bundles (runtime-spec bundle.md), what runc and crun run: `DIR/rootfs`, the image's layers applied
//! ([`crate::unpack`]), and `DIR/config.json` ([`crate::oci::runtime`]), for `unpack IMAGE DIR` and the
//! `oci-bundle:DIR` output. Built in a temporary directory beside DIR and renamed into place only when complete, so
//! a failure leaves nothing; an existing DIR is replaced only when asked, in one exchange of names.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{PreparedOutput, Publication};
use crate::blobs::BlobStore;
use crate::cleanup::TempDir;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::runtime::{self, Runner, RuntimeConfig, User};
use crate::progress::Progress;
use crate::source::{SourceImage, VerifiedLayer};
use crate::unpack::root::Root;
use crate::unpack::{Unprivileged, accounts, unpack_image};

/// What the temporary directory a bundle is built in is named (a [`super::TEMP_PREFIX`] name).
const BUNDLE_PREFIX: &str = ".rootfs2image-bundle-";

#[derive(Clone, Debug, Default)]
pub struct BundleOptions {
    /// A bundle for `runc --rootless` (the invoking user's id mappings); unpacked by a user other than root, owners,
    /// device nodes and privileged xattrs are left out.
    pub rootless: bool,
    /// Replace an existing bundle directory.
    pub replace: bool,
    pub progress: Progress,
}

/// What writing a bundle did, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct BundleReport {
    pub bundle: PathBuf,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub layers: Vec<VerifiedLayer>,
    pub entries: u64,
    pub args: Vec<String>,
    pub user: User,
    pub cwd: String,
    pub rootless: bool,
    /// What an unprivileged unpack left out.
    pub left_out: Unprivileged,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Checks, before any work, that a bundle can go to `dir`: nothing there (or a directory to `replace`), in an
/// existing directory. `shown` is how the user named it (`oci-bundle:DIR`, or DIR).
pub fn check_destination(dir: &Path, replace: bool, shown: &str) -> Result<()> {
    let refuse = |problem: &str| Err(Error::Invalid(format!("cannot write the bundle `{shown}`: {problem}")));
    match fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => return refuse("it exists and is not a directory"),
        Ok(_) if !replace => return refuse("it exists: give --force to replace it"),
        _ => {}
    }
    let parent = super::layout::parent_dir(dir);
    if !parent.is_dir() {
        return refuse(&format!("the directory `{}` does not exist", parent.display()));
    }
    Ok(())
}

/// A bundle built beside its destination, waiting to be renamed into place.
pub struct PreparedBundle {
    temp: TempDir,
    dir: PathBuf,
    replace: bool,
}

/// Builds the bundle of `image` for `dir` in a temporary directory beside it.
pub fn prepare(image: &SourceImage, dir: &Path, options: &BundleOptions) -> Result<(PreparedBundle, BundleReport)> {
    check_destination(dir, options.replace, &dir.display().to_string())?;
    let parent = super::layout::parent_dir(dir);
    let temp =
        TempDir::new_in(&parent, BUNDLE_PREFIX).map_err(|e| Error::io("cannot create a directory in", &parent, e))?;
    // Private while it is built and after (as umoci makes bundles): host users cannot reach the setuid files of
    // its rootfs through it.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("cannot create", temp.path(), e))?;
    let rootfs = temp.path().join("rootfs");
    fs::DirBuilder::new().mode(0o755).create(&rootfs).map_err(|e| Error::io("cannot create", &rootfs, e))?;
    // SAFETY: geteuid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let unprivileged = options.rootless && uid != 0;
    let unpacked = unpack_image(image, &rootfs, unprivileged, &options.progress)?;
    options.progress.message("writing config.json");

    let config = &image.image.config;
    let mut warnings = Vec::new();
    let mut args = runtime::process_args(config);
    if args.is_empty() {
        // As umoci does: the bundle is still what the user wants to look into or run with args of their own.
        args = vec!["sh".to_string()];
        warnings.push(
            "the image config has neither an entrypoint nor a command: the bundle runs `sh`, as `runc spec` writes; \
             set process.args in config.json to run something else"
                .to_string(),
        );
    }
    if let Some(cwd) = config.config.working_dir.as_deref().filter(|w| !w.is_empty() && !w.starts_with('/')) {
        return Err(Error::bad_image(
            &image.reference,
            format!("the working directory `{}` is not absolute, as a runtime needs", shown(cwd)),
        ));
    }
    let root = Root::open(&rootfs).map_err(|e| Error::io("cannot open", &rootfs, e))?;
    let user = accounts::resolve(config.config.user.as_deref(), &root, &image.reference)?;
    let runner = if options.rootless { Runner::Rootless { uid, gid } } else { Runner::Root };
    if options.rootless && (user.uid != 0 || user.gid != 0) {
        warnings.push(format!(
            "the image runs as {}:{}, but a rootless bundle maps only the container's root (to you): runc will \
             refuse to start it",
            user.uid, user.gid
        ));
    }
    let annotations = runtime::annotations(config, &image.image.annotations);
    let spec = RuntimeConfig::new(config, args.clone(), user.clone(), annotations, runner);
    let cwd = spec.process.cwd.clone();
    let mut bytes = serde_json::to_vec_pretty(&spec).expect("a runtime config serialises");
    bytes.push(b'\n');
    let config_path = temp.path().join("config.json");
    fs::write(&config_path, bytes).map_err(|e| Error::io("cannot write", &config_path, e))?;
    let report = BundleReport {
        bundle: dir.to_path_buf(),
        image: image.reference.clone(),
        manifest_digest: image.image.manifest.as_ref().map(|m| m.descriptor.digest.clone()),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
        layers: unpacked.layers,
        entries: unpacked.entries,
        args,
        user,
        cwd,
        rootless: options.rootless,
        left_out: unpacked.left_out,
        warnings,
    };
    Ok((PreparedBundle { temp, dir: dir.to_path_buf(), replace: options.replace }, report))
}

impl PreparedBundle {
    /// Renames the bundle into place, exchanging it with the directory it replaces (then removed).
    pub fn commit(mut self) -> Result<()> {
        let result = if self.replace && self.dir.is_dir() {
            self.temp.exchange_with(&self.dir)
        } else {
            self.temp.rename_to(&self.dir)
        };
        result.map_err(|e| Error::io("cannot create", &self.dir, e))
    }
}

/// A bundle as an output of a conversion or a copy, with the warnings its report gave, naming it.
struct BundleOutput {
    prepared: PreparedBundle,
    warnings: Vec<String>,
}

impl PreparedOutput for BundleOutput {
    fn commit(self: Box<Self>) -> Result<Option<crate::registry::PushReport>> {
        self.prepared.commit().map(|()| None)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// `oci-bundle:DIR` as an output: the image just written, unpacked from the staging store.
pub fn prepare_output(
    dir: &Path,
    publication: &Publication,
    staging: &BlobStore,
    replace: bool,
) -> Result<Box<dyn PreparedOutput>> {
    let shown = format!("oci-bundle:{}", dir.display());
    let [image] = publication.images.as_slice() else {
        return Err(Error::Invalid(format!("cannot write `{shown}`: a runtime bundle holds one image, not an index")));
    };
    let source = SourceImage::from_store(image.clone(), staging.root(), &shown);
    let (prepared, report) = prepare(&source, dir, &BundleOptions { replace, ..BundleOptions::default() })?;
    let warnings = report.warnings.iter().map(|warning| format!("{shown}: {warning}")).collect();
    Ok(Box::new(BundleOutput { prepared, warnings }))
}

fn shown(text: &str) -> String {
    crate::error::display_text(text, 255)
}
