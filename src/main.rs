//! `rootfs2image`: the command-line front end. Parses flags, calls the library, prints the result.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command};
use cli::report::{self, print_push, print_report};
use cli::settings;
use imgcraft::commands::convert::convert;
use imgcraft::commands::index::build_index;
use imgcraft::commands::inspect::inspect_with;
use imgcraft::commands::push::push_image;
use imgcraft::oci::reference::ImageRef;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`rootfs2image inspect ... | head`).
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts: Ctrl-C, SIGTERM and SIGHUP remove this run's temporary files, then exit 130/143/129.
    imgcraft::cleanup::install();
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Inspect(args)) => settings::sink_options(&args.registry, false)
            .and_then(|options| inspect_with(&args.image, &options.registry))
            .map(|report| {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
                } else {
                    print!("{}", report.to_text());
                }
            }),
        Some(Command::Push(args)) => push(args),
        Some(Command::Index(args)) => index(args),
        Some(Command::Copy(args)) => copy(args),
        Some(Command::Keygen(args)) => settings::sign_passphrase(args.sign_passphrase_file.as_deref())
            .and_then(|passphrase| imgcraft::commands::keygen::keygen(&args.output_prefix, &passphrase))
            .map(|report| {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
                } else {
                    println!("private key  {} (encrypted)", report.private_key.display());
                    println!("public key   {}", report.public_key.display());
                }
            }),
        Some(Command::Diff(args)) => settings::sink_options(&args.registry, false)
            .and_then(|options| imgcraft::commands::diff::diff(&args.old, &args.new, &options.registry))
            .map(|report| {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
                } else {
                    print!("{}", report.to_text());
                }
            }),
        Some(Command::Attach(args)) => attach(args),
        Some(Command::Verify(args)) => verify(args),
        Some(Command::Unpack(args)) => unpack(args),
        None => settings::resolve(&cli.convert).and_then(|options| {
            let report = convert(&options);
            options.progress.finish();
            report.map(|report| print_report(&report, cli.convert.json, cli.convert.quiet))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", report::error_line(&err));
            ExitCode::from(1)
        }
    }
}

fn push(args: &cli::args::PushArgs) -> Result<(), imgcraft::Error> {
    let ImageRef::Registry(target) = &args.destination else {
        return Err(imgcraft::Error::Invalid(format!(
            "push destination `{}` is not a registry: write docker://HOST/REPO[:TAG]",
            args.destination
        )));
    };
    let options = signed_sink_options(&args.registry, &args.sign)?;
    let report = push_image(&args.source, target, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
    } else {
        print_push(&report);
    }
    Ok(())
}

fn index(args: &cli::args::IndexArgs) -> Result<(), imgcraft::Error> {
    let options = signed_sink_options(&args.registry, &args.sign)?;
    let report = build_index(&args.sources, &args.outputs, args.tag.as_ref(), &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
        return Ok(());
    }
    println!("index     {}", report.index_digest);
    for manifest in &report.manifests {
        if let Some(p) = &manifest.platform {
            let variant = p.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default();
            println!("  {}/{}{variant}  {}", p.os, p.architecture, manifest.digest);
        }
    }
    for output in report.outputs.iter().filter(|o| !o.starts_with("docker://")) {
        println!("wrote     {output}");
    }
    for push in &report.pushes {
        print_push(push);
    }
    Ok(())
}

fn copy(args: &cli::args::CopyArgs) -> Result<(), imgcraft::Error> {
    let options =
        imgcraft::sink::SinkOptions { replace_bundle: args.force, ..signed_sink_options(&args.registry, &args.sign)? };
    let report = imgcraft::commands::copy::copy_image(&args.source, &args.destinations, args.tag.as_ref(), &options)?;
    for warning in &report.warnings {
        eprintln!("rootfs2image: warning: {}", imgcraft::error::display_text(warning, imgcraft::error::MAX_ERROR_LINE));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
        return Ok(());
    }
    let variant = report.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default();
    println!("manifest  {} ({}{variant})", report.manifest_digest, report.architecture);
    for output in report.outputs.iter().filter(|o| !o.starts_with("docker://")) {
        println!("wrote     {output}");
    }
    for push in &report.pushes {
        print_push(push);
    }
    Ok(())
}

/// Registry settings and the signing key of `--sign-key`.
fn signed_sink_options(
    registry: &cli::args::RegistryArgs,
    sign: &cli::args::SignArgs,
) -> Result<imgcraft::sink::SinkOptions, imgcraft::Error> {
    let signer = settings::signer(sign)?;
    Ok(imgcraft::sink::SinkOptions { signer, ..settings::sink_options(registry, false)? })
}

fn attach(args: &cli::args::AttachArgs) -> Result<(), imgcraft::Error> {
    let options = signed_sink_options(&args.registry, &args.sign)?;
    let mut files = Vec::new();
    for request in settings::sboms(&args.sbom)? {
        match request {
            imgcraft::attach::SbomRequest::File(file) => files.push(file),
            imgcraft::attach::SbomRequest::Generate(_) => {
                return Err(imgcraft::Error::Invalid(
                    "attach cannot --sbom generate: an SBOM is generated while the rootfs is converted".into(),
                ));
            }
        }
    }
    let report = imgcraft::commands::attach::attach(&args.image, &files, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
        return Ok(());
    }
    println!("manifest  {} (unchanged)", report.manifest_digest);
    for attachment in &report.attachments {
        let kind = attachment.artifact_type.as_deref().unwrap_or("signature image");
        println!("attached  {}  {kind}  ({})", attachment.digest, attachment.placement);
    }
    for push in &report.pushes {
        print_push(push);
    }
    Ok(())
}

fn unpack(args: &cli::args::UnpackArgs) -> Result<(), imgcraft::Error> {
    let registry = settings::sink_options(&args.registry, false)?.registry;
    let options = imgcraft::sink::bundle::BundleOptions {
        rootless: args.rootless,
        replace: args.force,
        progress: imgcraft::progress::Progress::new(!args.quiet && !args.json),
    };
    let report = imgcraft::commands::unpack::unpack(&args.image, &args.dir, &options, &registry);
    options.progress.finish();
    let report = report?;
    for warning in &report.warnings {
        eprintln!("rootfs2image: warning: {warning}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
        return Ok(());
    }
    if args.quiet {
        return Ok(());
    }
    let variant = report.variant.as_deref().map(|v| format!("/{v}")).unwrap_or_default();
    if let Some(digest) = &report.manifest_digest {
        println!("manifest  {digest} ({}{variant})", report.architecture);
    }
    println!("layers    {} applied, {} entries", report.layers.len(), report.entries);
    let user = &report.user;
    println!("process   {} (uid {}, gid {}, cwd {})", shell_words::join(&report.args), user.uid, user.gid, report.cwd);
    let left = &report.left_out;
    if left.owners + left.devices + left.xattrs > 0 {
        println!(
            "rootless  left out: {} owners, {} device nodes (empty files instead), {} privileged xattrs",
            left.owners, left.devices, left.xattrs
        );
    }
    println!("wrote     {} (runc run -b {} NAME)", report.bundle.display(), report.bundle.display());
    Ok(())
}

fn verify(args: &cli::args::VerifyArgs) -> Result<(), imgcraft::Error> {
    let options = settings::sink_options(&args.registry, false)?;
    let key_text = settings::read_key_file(&args.key)?;
    let key =
        imgcraft::sign::key::PublicKey::from_pem(&String::from_utf8_lossy(&key_text), &args.key.display().to_string())?;
    let report = imgcraft::commands::verify::verify(&args.image, &key, &options.registry)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
    } else {
        print!("{}", report.to_text());
    }
    if !report.verified {
        return Err(imgcraft::Error::BadImage {
            image: args.image.to_string(),
            problem: format!("no valid signature by the key {} (fingerprint {})", args.key.display(), report.key),
        });
    }
    Ok(())
}
