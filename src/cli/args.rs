//! Command-line definitions (clap types only, no I/O). Every flag is defined once here with its documentation;
//! `--help` is generated from it.

use clap::{Args, Parser, Subcommand};

use imgcraft::layer::compress::LayerCompression;
use imgcraft::oci::reference::{ImageName, ImageRef};

#[derive(Parser, Debug)]
#[command(
    name = "rootfs2image",
    version,
    about = "Turn a root filesystem (a tarball or a directory) into an exact, reproducible container image",
    long_about = "Turn a root filesystem (a tarball or a directory) into an exact, reproducible container image.\n\n\
        The input is a tar archive (plain, gzip, xz, zstd or bzip2, recognised by content), a directory, or `-` for \
        standard input. The output is an OCI image layout, or one archive that `docker load`, `podman load` and \
        skopeo all accept.",
    after_help = "Examples:\n  \
        rootfs2image core-image-minimal-qemuarm64.rootfs.tar.zst --arch arm64 --tag myorg/minimal:1.0\n  \
        rootfs2image rootfs.tar.gz -o oci:layout:1.0 -o docker-archive:image.tar:myorg/app:1.0\n  \
        rootfs2image inspect oci-archive:image.tar",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub convert: ConvertArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Verify every blob of an image (digest, size, diff_id) and describe it
    Inspect(InspectArgs),
    /// Push an image written earlier (oci:, oci-archive:, docker-archive:) to a registry
    Push(PushArgs),
    /// Combine single-platform images into one multi-platform OCI image index
    Index(IndexArgs),
    /// Copy an image unchanged (same manifest digest) between a registry, layouts and archives
    Copy(CopyArgs),
    /// What a device holding OLD must download to get NEW: shared and new layers, and their bytes
    Diff(DiffArgs),
    /// Make a signing key pair: PREFIX.key (cosign's encrypted format, which skopeo and cosign read) and PREFIX.pub
    Keygen(KeygenArgs),
    /// Attach SBOMs (and signatures) to an image written or pushed earlier; its manifest digest does not change
    Attach(AttachArgs),
    /// Check an image's signatures against a public key and list its SBOMs and attestations (exit 1 when no valid
    /// signature by the key is found)
    Verify(VerifyArgs),
    /// Unpack an image into an OCI runtime bundle (DIR/rootfs and DIR/config.json) that runc or crun runs
    Unpack(UnpackArgs),
}

#[derive(Args, Debug)]
pub struct UnpackArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://HOST/REPO[:TAG|@DIGEST]
    pub image: ImageRef,
    /// The bundle directory to create (it must not exist, unless --force)
    pub dir: std::path::PathBuf,
    /// A bundle for rootless runc: the container's root maps to the invoking user; run by a user other than root,
    /// owners, device nodes and security.*/trusted.* xattrs are left out
    #[arg(long)]
    pub rootless: bool,
    /// Replace DIR if it exists (in one step, once the new bundle is complete)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
    /// No progress and no summary; errors only
    #[arg(short, long)]
    pub quiet: bool,
}

/// Signing what is written or pushed.
#[derive(Args, Debug, Clone, Default)]
pub struct SignArgs {
    /// Sign every image manifest (and the index) written or pushed, as cosign does (a signature image at the tag
    /// sha256-<hex>.sig that skopeo, podman and cosign verify): a key from `rootfs2image keygen`, cosign or
    /// `skopeo generate-sigstore-key`, or a PKCS#8 PEM ECDSA P-256 key
    #[arg(long, value_name = "FILE", help_heading = "Supply chain")]
    pub sign_key: Option<std::path::PathBuf>,
    /// The key's passphrase: the file's first line [default: $IMGCRAFT_SIGN_PASSPHRASE]
    #[arg(long, value_name = "FILE", help_heading = "Supply chain", requires = "sign_key")]
    pub sign_passphrase_file: Option<std::path::PathBuf>,
}

/// SBOMs to attach.
#[derive(Args, Debug, Clone, Default)]
pub struct SbomArgs {
    /// Attach an SBOM (repeatable): an SPDX 2.x or 3.0 JSON, a CycloneDX JSON or a Yocto *.spdx.tar.zst,
    /// recognised by content and attached unchanged as an OCI 1.1 artifact (the image's digest does not change);
    /// `generate` writes one from the package data and every file's sha256
    #[arg(long = "sbom", value_name = "FILE|generate", help_heading = "Supply chain")]
    pub sboms: Vec<String>,
    /// The format of `--sbom generate`
    #[arg(long, value_name = "FORMAT", default_value = "spdx", help_heading = "Supply chain",
          value_parser = ["spdx", "cyclonedx"])]
    pub sbom_format: String,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://HOST/REPO[:TAG]
    pub image: ImageRef,
    #[command(flatten)]
    pub sbom: SbomArgs,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF]
    pub image: ImageRef,
    /// The public key (PEM) whose signature is required: PREFIX.pub from `rootfs2image keygen`, cosign's or skopeo's
    #[arg(long, value_name = "FILE")]
    pub key: std::path::PathBuf,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub (neither may exist)
    #[arg(long, value_name = "PREFIX")]
    pub output_prefix: std::path::PathBuf,
    /// The passphrase that encrypts the private key: the file's first line
    /// [default: $IMGCRAFT_SIGN_PASSPHRASE]
    #[arg(long, value_name = "FILE")]
    pub sign_passphrase_file: Option<std::path::PathBuf>,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The image the device has: oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF], docker://...
    pub old: ImageRef,
    /// The image it is to get
    pub new: ImageRef,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON object on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// The images to combine, one per platform: oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF]
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<ImageRef>,
    /// Where to write the index (repeatable): oci:DIR[:TAG], oci-archive:FILE[:REF], docker://HOST/REPO[:TAG]
    #[arg(short, long = "output", value_name = "DEST", required = true)]
    pub outputs: Vec<ImageRef>,
    /// The index's name in layouts and archives
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub tag: Option<ImageName>,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// The image: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF]
    pub source: ImageRef,
    /// Where to (repeatable): oci:DIR[:TAG], oci-archive:FILE[:REF], docker://HOST/REPO[:TAG], oci-bundle:DIR,
    /// docker-daemon:NAME[:TAG]
    #[arg(required = true, value_name = "DEST")]
    pub destinations: Vec<ImageRef>,
    /// Replace an oci-bundle:DIR destination that exists (in one step, once the new bundle is complete)
    #[arg(long)]
    pub force: bool,
    /// The image's name in layouts and archives [default: the destination's tag, else the source's]
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub tag: Option<ImageName>,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:REF] or docker-archive:FILE[:REF]
    pub source: ImageRef,
    /// Where to: docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
    pub destination: ImageRef,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON report on standard output
    #[arg(long)]
    pub json: bool,
}

/// How to reach and log in to registries.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry credentials [default: from $REGISTRY_AUTH_FILE, podman's auth.json or ~/.docker/config.json]
    #[arg(long, value_name = "USER:PASSWORD", help_heading = "Registry", conflicts_with = "creds_stdin")]
    pub creds: Option<String>,
    /// Read USER:PASSWORD from the first line of standard input (for CI secrets)
    #[arg(long, help_heading = "Registry")]
    pub creds_stdin: bool,
    /// Verify TLS certificates; false also allows plain HTTP (always allowed for loopback registries)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Registry")]
    pub tls_verify: bool,
    /// A directory of extra CA certificates (*.crt) for registries with a private CA
    #[arg(long, value_name = "DIR", help_heading = "Registry")]
    pub cert_dir: Option<std::path::PathBuf>,
    /// Mount blobs from this repository of the same registry instead of uploading them (no data sent)
    #[arg(long, value_name = "REPO", help_heading = "Registry")]
    pub mount_from: Option<String>,
    /// Upload blobs larger than this many MiB in chunks of this size (for proxies that limit request bodies)
    #[arg(long, value_name = "MIB", default_value_t = 64, help_heading = "Registry")]
    pub chunk_size: u64,
    /// Attempts per request on connection errors, timeouts, 5xx and 429
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = "Registry")]
    pub retries: u32,
    /// Give up on a registry silent this long: to connect, to answer, or between two reads or writes (a transfer must
    /// also average 16 KiB/s); a timeout is retried once
    #[arg(long, value_name = "SECONDS", default_value_t = 30, help_heading = "Registry")]
    pub timeout: u64,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or docker://HOST/REPO[:TAG|@DIGEST]
    pub image: ImageRef,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print a JSON object on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The rootfs: a tarball (tar, tar.gz, tar.xz, tar.zst, tar.bz2), a directory, or `-` for standard input
    #[arg(value_name = "ROOTFS", required = true)]
    pub rootfs: Option<String>,

    /// Target architecture: amd64, arm64, arm/v7, riscv64, ... or aarch64, armv7a, x86_64, ...
    /// [default: detected from the rootfs's ELF binaries]
    #[arg(long, value_name = "ARCH", help_heading = "Platform")]
    pub arch: Option<String>,

    /// Keep --arch even when the rootfs's binaries are for another architecture
    #[arg(long, help_heading = "Platform")]
    pub no_arch_check: bool,

    /// Where to write the image (repeatable): oci:DIR[:TAG], oci-archive:FILE[:REF], docker-archive:FILE[:REF],
    /// docker://HOST[:PORT]/REPO[:TAG], oci-bundle:DIR (a runtime bundle for runc), docker-daemon:NAME[:TAG] (loaded
    /// into the Docker engine at $DOCKER_HOST)
    /// [default: oci-archive:<input stem>-<arch>.oci.tar]
    #[arg(short, long = "output", value_name = "DEST", help_heading = "Output")]
    pub outputs: Vec<ImageRef>,

    /// Replace an oci-bundle:DIR output that exists (in one step, once the new bundle is complete)
    #[arg(long, help_heading = "Output")]
    pub force: bool,

    /// The image's name in archives, so that `docker load` and `podman load` list it under it
    #[arg(short, long, value_name = "NAME[:TAG]", help_heading = "Output")]
    pub tag: Option<ImageName>,

    /// Layer compression; zstd:chunked lets podman and CRI-O with partial pulls fetch only the files they lack
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip", help_heading = "Output",
          value_parser = ["gzip", "zstd", "zstd:chunked", "none"])]
    pub compression: String,

    /// Compression level [default: 6 for gzip, 3 for zstd and zstd:chunked]
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub compression_level: Option<i32>,

    /// Compression threads [default: every core]; the output is the same for any number
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub threads: Option<usize>,

    /// Image creation time in seconds since the epoch; newer mtimes are clamped to it
    /// [default: $SOURCE_DATE_EPOCH, else the newest mtime in the rootfs]
    #[arg(long, value_name = "SECONDS", help_heading = "Output")]
    pub source_date_epoch: Option<i64>,

    /// Entrypoint: a JSON array (["/bin/app","-v"]) or a shell-like string (/bin/app -v)
    #[arg(long, value_name = "COMMAND", help_heading = "Image config", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,

    /// Default command: a JSON array or a shell-like string [default: /bin/sh when the rootfs has it]
    #[arg(long, value_name = "COMMAND", help_heading = "Image config", allow_hyphen_values = true)]
    pub cmd: Option<String>,

    /// Environment variable (repeatable) [default: PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]
    #[arg(long = "env", value_name = "KEY=VALUE", help_heading = "Image config")]
    pub env: Vec<String>,

    /// Working directory of the container's process
    #[arg(long, value_name = "DIR", help_heading = "Image config")]
    pub workdir: Option<String>,

    /// User (and group) the process runs as: NAME, UID, NAME:GROUP or UID:GID
    #[arg(long, value_name = "USER", help_heading = "Image config")]
    pub user: Option<String>,

    /// Config label (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE", help_heading = "Image config")]
    pub labels: Vec<String>,

    /// Manifest annotation (repeatable)
    #[arg(long = "annotation", value_name = "KEY=VALUE", help_heading = "Image config")]
    pub annotations: Vec<String>,

    /// Port the container listens on (repeatable): PORT, PORT/tcp or PORT/udp
    #[arg(long = "expose", value_name = "PORT[/PROTO]", help_heading = "Image config")]
    pub expose: Vec<String>,

    /// Mount point for a volume (repeatable)
    #[arg(long = "volume", value_name = "PATH", help_heading = "Image config")]
    pub volumes: Vec<String>,

    /// Signal that stops the container (SIGTERM, SIGINT, ...)
    #[arg(long, value_name = "SIGNAL", help_heading = "Image config")]
    pub stop_signal: Option<String>,

    /// Author of the image
    #[arg(long, value_name = "AUTHOR", help_heading = "Image config")]
    pub author: Option<String>,

    /// How to split the rootfs into layers: by package ownership, by --layer rules, or one layer
    /// [default: packages when ownership is known (--pkgdata, or an opkg or dpkg database in the rootfs), else single]
    #[arg(long, value_name = "MODE", default_value = "auto", help_heading = "Layers",
          value_parser = ["auto", "single", "packages", "paths"])]
    pub layers: String,

    /// Yocto's PKGDATA_DIR (tmp/pkgdata/MACHINE): which package owns which path, with sizes and dependencies
    #[arg(long, value_name = "DIR", help_heading = "Layers")]
    pub pkgdata: Option<std::path::PathBuf>,

    /// The image's package manifest (IMAGE_MANIFEST, lines `NAME ARCH VERSION`): the packages of --pkgdata installed
    /// [default: every package of --pkgdata that owns a path of the rootfs]
    #[arg(long, value_name = "FILE", help_heading = "Layers")]
    pub package_manifest: Option<std::path::PathBuf>,

    /// At most this many layers (Docker and containerd fail past about 125)
    #[arg(long, value_name = "N", default_value_t = 64, help_heading = "Layers")]
    pub max_layers: usize,

    /// A layer of the paths matching these globs (repeatable, bottom first; implies --layers paths): each rule
    /// takes what no earlier rule took, the rest goes on top. Globs match paths without a leading `/`; `*` stops at
    /// `/`, `**` crosses it. Example: --layer libs='usr/lib/**,lib/**'
    #[arg(long = "layer", value_name = "NAME=GLOB[,GLOB...]", help_heading = "Layers")]
    pub layer_rules: Vec<String>,

    /// An earlier image of this rootfs (oci:DIR[:TAG], oci-archive:FILE, docker://...): keep its package groups so
    /// that unchanged packages keep bit-identical layers, take its blob of every layer whose content did not change
    /// instead of compressing it again, and report what a device holding it must download. Blobs this machine wrote
    /// or checked before are checked by digest alone (cache: $IMGCRAFT_CACHE_DIR, else
    /// $XDG_CACHE_HOME/imgcraft; empty keeps none)
    #[arg(long, value_name = "IMAGE", help_heading = "Layers")]
    pub previous: Option<ImageRef>,

    /// Build on this image (oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, docker://...): its layers are kept
    /// as they are, only what differs from it goes on top, paths it has and the rootfs lacks become whiteouts, and
    /// its config (environment, entrypoint, user, ...) is inherited unless an option overrides it
    #[arg(long, value_name = "IMAGE", help_heading = "Layers")]
    pub base: Option<ImageRef>,

    #[command(flatten)]
    pub sbom: SbomArgs,

    /// Attach an in-toto SLSA provenance statement (the input's sha256, the tool, every option that shapes the
    /// output), signed too with --sign-key
    #[arg(long, help_heading = "Supply chain")]
    pub provenance: bool,

    /// A build parameter the provenance records (repeatable; implies --provenance): MACHINE=qemuarm64, ...
    #[arg(long = "provenance-param", value_name = "KEY=VALUE", help_heading = "Supply chain")]
    pub provenance_params: Vec<String>,

    /// A source the build used, at a revision (repeatable; implies --provenance):
    /// meta=https://git.openembedded.org/openembedded-core@<commit>
    #[arg(long = "provenance-dependency", value_name = "NAME=URI@REVISION", help_heading = "Supply chain")]
    pub provenance_dependencies: Vec<String>,

    #[command(flatten)]
    pub sign: SignArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Print a JSON summary on standard output
    #[arg(long)]
    pub json: bool,

    /// No progress and no summary; errors only
    #[arg(short, long)]
    pub quiet: bool,
}

impl ConvertArgs {
    pub fn compression(&self) -> LayerCompression {
        self.compression.parse().expect("clap allows only known values")
    }
}
