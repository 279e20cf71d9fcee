//! Resolves command-line flags and the environment, once, into the library's validated options: defaults are filled
//! and combinations checked here, in the flags' own words, so that the library never names a flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use imgcraft::commands::convert::{ConvertOptions, ImageOptions, OutputOptions, current_dir};
use imgcraft::error::Error;
use imgcraft::layer::compress::{Compression, LayerCompression};
use imgcraft::layer::known::KnownLayers;
use imgcraft::layering::options::{Layering, LayeringOptions};
use imgcraft::layering::plan::{LayerMode, PathRule};
use imgcraft::oci::config::{ContainerConfig, Empty};
use imgcraft::oci::reference::ImageRef;
use imgcraft::progress::Progress;
use imgcraft::rootfs::elf::PlatformOptions;

use imgcraft::registry::{ClientOptions, Credentials};
use imgcraft::sink::SinkOptions;

use imgcraft::attach::{AttachOptions, ProvenanceRequest, SbomRequest, Signer};
use imgcraft::sbom::GeneratedFormat;
use imgcraft::sign::key::PrivateKey;
use imgcraft::sign::provenance::Dependency;

use super::args::{ConvertArgs, RegistryArgs, SbomArgs, SignArgs};

pub fn resolve(args: &ConvertArgs) -> Result<ConvertOptions, Error> {
    let source_date_epoch = match args.source_date_epoch {
        Some(epoch) => Some(epoch),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(text) if !text.trim().is_empty() => Some(
                text.trim()
                    .parse()
                    .map_err(|_| Error::Invalid(format!("SOURCE_DATE_EPOCH=`{text}` is not a number of seconds")))?,
            ),
            _ => None,
        },
    };
    if let Some(epoch) = source_date_epoch
        .filter(|epoch| !(imgcraft::tar::entry::MIN_MTIME..=imgcraft::tar::entry::MAX_MTIME).contains(epoch))
    {
        return Err(Error::Invalid(format!(
            "--source-date-epoch / SOURCE_DATE_EPOCH {epoch} is outside the years 0000 to 9999 that an image's \
             RFC 3339 times can say ({}..={})",
            imgcraft::tar::entry::MIN_MTIME,
            imgcraft::tar::entry::MAX_MTIME
        )));
    }
    let config = ContainerConfig {
        user: args.user.clone(),
        exposed_ports: set(args.expose.iter().map(|p| port(p)).collect::<Result<Vec<_>, _>>()?),
        env: (!args.env.is_empty())
            .then(|| args.env.iter().map(|e| key_value("--env", e).map(|_| e.clone())).collect())
            .transpose()?,
        entrypoint: args.entrypoint.as_deref().map(|c| command("--entrypoint", c)).transpose()?,
        cmd: args.cmd.as_deref().map(|c| command("--cmd", c)).transpose()?,
        volumes: set(args.volumes.iter().map(|v| volume(v)).collect::<Result<Vec<_>, _>>()?),
        working_dir: args.workdir.clone(),
        labels: map("--label", &args.labels)?,
        stop_signal: args.stop_signal.clone(),
    };
    let rootfs = args.rootfs.clone().unwrap_or_default();
    // A signature names the image; a layout or an archive has no name but --tag's. Refused before any work.
    let local_output = args.outputs.is_empty() || args.outputs.iter().any(|o| o.path().is_some());
    if args.sign.sign_key.is_some() && args.tag.is_none() && local_output {
        return Err(Error::Invalid(
            "--sign-key with a layout or archive output needs --tag NAME[:TAG]: a signature names the image it vouches \
             for (as it will be pushed: registry.example.com/team/app:1.0)"
                .into(),
        ));
    }
    // zstd:chunked lives in its layers' annotations (where each table of contents is): an output with no place for
    // them would hold layers no client can pull partially. Refused before any work.
    let chunked_nowhere =
        args.outputs.iter().find(|o| matches!(o, ImageRef::DockerArchive { .. } | ImageRef::DockerDaemon { .. }));
    if let Some(output) = chunked_nowhere.filter(|_| args.compression() == LayerCompression::ZstdChunked) {
        return Err(Error::Invalid(format!(
            "--compression zstd:chunked cannot go into {output}: a docker-archive's manifest.json has no layer \
             annotations, where zstd:chunked says where each table of contents is (use oci-archive: or oci:, or \
             --compression zstd)"
        )));
    }
    Ok(ConvertOptions {
        platform: PlatformOptions {
            // Parsed here rather than by clap: an unknown architecture is bad input (exit 1), not a usage error.
            requested: args.arch.as_deref().map(str::parse).transpose()?,
            check: !args.no_arch_check,
        },
        image: ImageOptions {
            config,
            author: args.author.clone(),
            annotations: map("--annotation", &args.annotations)?.unwrap_or_default(),
            source_date_epoch,
        },
        compression: compression(args)?,
        layering: layering(args, &rootfs)?,
        output: OutputOptions {
            outputs: args.outputs.clone(),
            default_dir: current_dir(),
            name: args.tag.clone(),
            sink: SinkOptions {
                signer: signer(&args.sign)?,
                replace_bundle: args.force,
                ..sink_options(&args.registry, rootfs == "-")?
            },
        },
        attach: AttachOptions { sboms: sboms(&args.sbom)?, provenance: provenance(args)? },
        known_layers: known_layers(),
        progress: Progress::new(!args.quiet && !args.json),
        rootfs,
    })
}

/// Where facts about layer blobs are kept between runs: `$IMGCRAFT_CACHE_DIR` (empty: nowhere), else
/// `$XDG_CACHE_HOME/imgcraft`, else `~/.cache/imgcraft` (the XDG base directory spec's default).
fn known_layers() -> KnownLayers {
    let var = |name| std::env::var_os(name).map(PathBuf::from);
    let dir = match var("IMGCRAFT_CACHE_DIR") {
        Some(dir) if dir.as_os_str().is_empty() => None,
        Some(dir) => Some(dir),
        None => var("XDG_CACHE_HOME")
            .filter(|d| d.is_absolute())
            .or_else(|| var("HOME").filter(|d| d.is_absolute()).map(|home| home.join(".cache")))
            .map(|cache| cache.join("imgcraft")),
    };
    dir.map(KnownLayers::at).unwrap_or_else(KnownLayers::none)
}

/// `--compression`, `--compression-level` (the algorithm's default, checked against its range) and `--threads`
/// (every core by default).
fn compression(args: &ConvertArgs) -> Result<Compression, Error> {
    let algorithm = args.compression();
    let level = args.compression_level.unwrap_or_else(|| algorithm.default_level());
    let levels = algorithm.levels();
    if !levels.contains(&level) {
        return Err(Error::Invalid(format!(
            "--compression-level {level} is out of range for {algorithm}: use {}..={}",
            levels.start(),
            levels.end()
        )));
    }
    let threads = match args.threads {
        None | Some(0) => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
        Some(n) => n,
    };
    Ok(Compression { algorithm, level, threads })
}

/// `--layers` and the options that imply or refine a mode, resolved once into what the library does; combinations
/// that contradict each other are refused here, in the flags' own words.
fn layering(args: &ConvertArgs, rootfs: &str) -> Result<LayeringOptions, Error> {
    let mode: LayerMode = args.layers.parse()?;
    // Parsed here: a glob that does not compile is bad input (exit 1), not a usage error.
    let rules: Vec<PathRule> = args
        .layer_rules
        .iter()
        .map(|r| r.parse().map_err(|e: Error| Error::Invalid(format!("--layer: {e}"))))
        .collect::<Result<_, _>>()?;
    if args.package_manifest.is_some() && args.pkgdata.is_none() {
        return Err(Error::Invalid("--package-manifest names packages of --pkgdata: give --pkgdata too".into()));
    }
    let mode = match (mode, rules.is_empty()) {
        (LayerMode::Auto | LayerMode::Paths, false) => LayerMode::Paths,
        (mode, false) => {
            return Err(Error::Invalid(format!("--layer rules need --layers paths (or auto), not --layers {mode}")));
        }
        (LayerMode::Paths, true) => {
            return Err(Error::Invalid("--layers paths needs at least one --layer NAME=GLOB[,GLOB...]".into()));
        }
        (mode, true) => mode,
    };
    if args.pkgdata.is_some() && matches!(mode, LayerMode::Single | LayerMode::Paths) {
        return Err(Error::Invalid(format!("--pkgdata gives package ownership, which --layers {mode} does not use")));
    }
    if args.max_layers == 0 {
        return Err(Error::Invalid("--max-layers must be at least 1".into()));
    }
    let layering = match (mode, &args.pkgdata) {
        (LayerMode::Single, _) => Layering::Single,
        (LayerMode::Paths, _) => Layering::Paths(rules),
        (_, Some(dir)) => Layering::PackageData { dir: dir.clone(), manifest: args.package_manifest.clone() },
        (LayerMode::Packages, None) => Layering::Database { required: true },
        // `auto` reads standard input once, in one layer: it is spooled only when packages are asked for.
        (LayerMode::Auto, None) if rootfs == "-" => Layering::Single,
        (LayerMode::Auto, None) => Layering::Database { required: false },
    };
    Ok(LayeringOptions {
        layering,
        max_layers: args.max_layers,
        previous: args.previous.clone(),
        base: args.base.clone(),
    })
}

/// The passphrase of a signing key: the first line of `file` (without its line ending), else
/// `$IMGCRAFT_SIGN_PASSPHRASE` (which may be empty, for a key sealed under an empty passphrase, as cosign allows).
pub fn sign_passphrase(file: Option<&std::path::Path>) -> Result<Vec<u8>, Error> {
    if let Some(file) = file {
        let text = std::fs::read(file).map_err(|e| Error::io("cannot read the passphrase file", file, e))?;
        let line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
        return Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec());
    }
    match std::env::var_os("IMGCRAFT_SIGN_PASSPHRASE") {
        Some(value) => Ok(std::os::unix::ffi::OsStrExt::as_bytes(value.as_os_str()).to_vec()),
        None => Err(Error::Invalid(
            "a signing key needs a passphrase: give --sign-passphrase-file FILE or set IMGCRAFT_SIGN_PASSPHRASE".into(),
        )),
    }
}

/// The signing key of `--sign-key`, unsealed with the passphrase of `--sign-passphrase-file` or
/// `$IMGCRAFT_SIGN_PASSPHRASE` (a PKCS#8 key needs none): read before any work, so that a bad key or passphrase
/// stops the run before anything is written.
pub fn signer(args: &SignArgs) -> Result<Option<Signer>, Error> {
    let Some(path) = &args.sign_key else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let text = read_key_file(path)?;
    let passphrase = match (&args.sign_passphrase_file, std::env::var_os("IMGCRAFT_SIGN_PASSPHRASE")) {
        (None, None) => None,
        _ => Some(sign_passphrase(args.sign_passphrase_file.as_deref())?),
    };
    let encrypted = ENCRYPTED_PEM.iter().any(|label| text.windows(label.len()).any(|w| w == *label));
    if passphrase.is_none() && encrypted {
        return Err(Error::BadInput {
            input: shown,
            problem: "the key is encrypted and no passphrase was given: give --sign-passphrase-file FILE or set \
                      IMGCRAFT_SIGN_PASSPHRASE"
                .into(),
        });
    }
    let key = PrivateKey::from_pem(&text, passphrase.as_deref(), &shown)?;
    Ok(Some(Signer::new(key, shown)))
}

/// The PEM labels of cosign's encrypted keys (`ENCRYPTED COSIGN PRIVATE KEY` before cosign 2), which need a
/// passphrase.
const ENCRYPTED_PEM: [&[u8]; 2] =
    [b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----", b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"];

/// A key file, read up to a bound (a key is a few hundred bytes; a large file is something else).
pub fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    use imgcraft::sign::key::MAX_KEY_FILE;
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot read the key", path, e))?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_KEY_FILE + 1), &mut text)
        .map_err(|e| Error::io("cannot read the key", path, e))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(Error::BadInput {
            input: path.display().to_string(),
            problem: format!("larger than {MAX_KEY_FILE} bytes: not a key"),
        });
    }
    Ok(text)
}

/// `--sbom` and `--sbom-format`: files recognised now (one line naming a file that is no SBOM), `generate` kept
/// as a request.
pub fn sboms(args: &SbomArgs) -> Result<Vec<SbomRequest>, Error> {
    let format = match args.sbom_format.as_str() {
        "cyclonedx" => GeneratedFormat::CycloneDx16,
        _ => GeneratedFormat::Spdx23,
    };
    let mut requests = Vec::new();
    for sbom in &args.sboms {
        if sbom == "generate" {
            if requests.iter().any(|r| matches!(r, SbomRequest::Generate(_))) {
                return Err(Error::Invalid("--sbom generate is given twice".into()));
            }
            requests.push(SbomRequest::Generate(format));
        } else {
            requests.push(SbomRequest::File(imgcraft::sbom::recognise(std::path::Path::new(sbom))?));
        }
    }
    Ok(requests)
}

/// `--provenance`, `--provenance-param` and `--provenance-dependency` (either implies the first).
fn provenance(args: &ConvertArgs) -> Result<Option<ProvenanceRequest>, Error> {
    if !args.provenance && args.provenance_params.is_empty() && args.provenance_dependencies.is_empty() {
        return Ok(None);
    }
    let parameters = map("--provenance-param", &args.provenance_params)?.unwrap_or_default();
    let mut dependencies = Vec::new();
    for text in &args.provenance_dependencies {
        let invalid = || {
            Error::Invalid(format!(
                "--provenance-dependency `{text}`: write NAME=URI@REVISION (URI may be empty, REVISION is a git \
                 commit)"
            ))
        };
        let (name, rest) = text.split_once('=').filter(|(name, _)| !name.is_empty()).ok_or_else(invalid)?;
        let (uri, revision) = rest.rsplit_once('@').ok_or_else(invalid)?;
        if revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let mut dependency = Dependency::git(name, uri, revision);
        if uri.is_empty() {
            dependency.uri = None;
        }
        dependencies.push(dependency);
    }
    Ok(Some(ProvenanceRequest { parameters, dependencies }))
}

/// Registry settings; `stdin_taken` when the rootfs itself comes from standard input.
pub fn sink_options(args: &RegistryArgs, stdin_taken: bool) -> Result<SinkOptions, Error> {
    let credentials = match (&args.creds, args.creds_stdin) {
        (Some(text), _) => Some(Credentials::parse(text)?),
        (None, true) if stdin_taken => {
            return Err(Error::Invalid(
                "--creds-stdin cannot be used when the rootfs is read from standard input".into(),
            ));
        }
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| Error::Invalid(format!("--creds-stdin: cannot read standard input: {e}")))?;
            Some(Credentials::parse(line.trim_end_matches(['\r', '\n']))?)
        }
        (None, false) => None,
    };
    if args.timeout == 0 {
        return Err(Error::Invalid("--timeout must be at least 1 second".into()));
    }
    Ok(SinkOptions {
        registry: ClientOptions {
            timeout: std::time::Duration::from_secs(args.timeout),
            tls_verify: args.tls_verify,
            cert_dir: args.cert_dir.clone(),
            credentials,
            attempts: args.retries.max(1),
            chunk_size: args.chunk_size.max(1) << 20,
            ..ClientOptions::default()
        },
        mount_from: args.mount_from.clone(),
        signer: None,
        replace_bundle: false,
    })
}

fn key_value<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str), Error> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(Error::Invalid(format!("{flag} `{text}`: expected KEY=VALUE"))),
    }
}

fn map(flag: &str, items: &[String]) -> Result<Option<BTreeMap<String, String>>, Error> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = BTreeMap::new();
    for item in items {
        let (k, v) = key_value(flag, item)?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(Some(out))
}

fn set(items: Vec<String>) -> Option<BTreeMap<String, Empty>> {
    (!items.is_empty()).then(|| items.into_iter().map(|i| (i, Empty {})).collect())
}

/// A JSON array of strings, or a shell-like string split into words.
fn command(flag: &str, text: &str) -> Result<Vec<String>, Error> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("{flag} `{text}`: not a JSON array of strings: {e}")))
    } else {
        shell_words::split(text).map_err(|e| Error::Invalid(format!("{flag} `{text}`: {e}")))
    }
}

/// `80` -> `80/tcp`; `53/udp` stays.
fn port(text: &str) -> Result<String, Error> {
    let (number, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    let valid_number = number.parse::<u16>().is_ok_and(|n| n > 0);
    if !valid_number || !["tcp", "udp", "sctp"].contains(&protocol) {
        return Err(Error::Invalid(format!("--expose `{text}`: expected PORT, PORT/tcp or PORT/udp")));
    }
    Ok(format!("{number}/{protocol}"))
}

fn volume(text: &str) -> Result<String, Error> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err(Error::Invalid(format!("--volume `{text}`: a volume is an absolute path in the container")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_json_or_shell_words() {
        assert_eq!(command("--cmd", r#"["/bin/app","-v x"]"#).unwrap(), vec!["/bin/app", "-v x"]);
        assert_eq!(command("--cmd", "/bin/app -v 'x y'").unwrap(), vec!["/bin/app", "-v", "x y"]);
        assert!(command("--cmd", "[1, 2]").is_err());
    }

    #[test]
    fn ports_default_to_tcp_and_are_checked() {
        assert_eq!(port("80").unwrap(), "80/tcp");
        assert_eq!(port("53/udp").unwrap(), "53/udp");
        assert!(port("0").is_err());
        assert!(port("80/icmp").is_err());
    }
}
