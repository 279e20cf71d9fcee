//! `rootfs2image`: the command-line front end. Parses flags, calls the library, prints the result.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command};
use cli::settings;
use imgcraft::commands::convert::{ConvertReport, convert};
use imgcraft::commands::index::build_index;
use imgcraft::commands::inspect::{human_size, inspect_with};
use imgcraft::commands::push::push_image;
use imgcraft::oci::reference::ImageRef;
use imgcraft::registry::PushReport;

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
        Some(Command::Diff(args)) => settings::sink_options(&args.registry, false)
            .and_then(|options| imgcraft::commands::diff::diff(&args.old, &args.new, &options.registry))
            .map(|report| {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
                } else {
                    print!("{}", report.to_text());
                }
            }),
        None => settings::resolve(&cli.convert).and_then(|options| {
            let report = convert(&options);
            options.progress.finish();
            report.map(|report| print_report(&report, cli.convert.json, cli.convert.quiet))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, naming the input and the problem (ripgrep prints the whole chain once and exits).
            // Escaped and cut as a last line of defence: the message may quote what a registry or a file said.
            let line = imgcraft::error::display_text(&err.to_string(), imgcraft::error::MAX_ERROR_LINE);
            eprintln!("rootfs2image: error: {line}");
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
    let options = settings::sink_options(&args.registry, false)?;
    let report = push_image(&args.source, target, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises"));
    } else {
        print_push(&report);
    }
    Ok(())
}

fn index(args: &cli::args::IndexArgs) -> Result<(), imgcraft::Error> {
    let options = settings::sink_options(&args.registry, false)?;
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
    let options = settings::sink_options(&args.registry, false)?;
    let report = imgcraft::commands::copy::copy_image(&args.source, &args.destinations, args.tag.as_ref(), &options)?;
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

fn print_push(report: &PushReport) {
    if let Some(digest) = &report.manifest_digest {
        println!("pushed    {}@{digest}", report.reference);
    }
    println!(
        "blobs     {} uploaded ({}), {} already there, {} mounted",
        report.uploaded.len(),
        human_size(report.bytes_sent),
        report.skipped.len(),
        report.mounted.len()
    );
}

fn print_report(report: &ConvertReport, json: bool, quiet: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(report).expect("a report serialises"));
        return;
    }
    if quiet {
        return;
    }
    let platform = match &report.variant {
        Some(v) => format!("{}/{}/{v}", report.os, report.architecture),
        None => format!("{}/{}", report.os, report.architecture),
    };
    let size: u64 = report.layers.iter().map(|l| l.size).sum();
    let uncompressed: u64 = report.layers.iter().map(|l| l.uncompressed_size).sum();
    println!("manifest  {}", report.manifest_digest);
    println!("platform  {platform} ({})", report.platform_source);
    println!(
        "layers    {} ({} compressed, {} uncompressed), {}{}",
        report.layers.len(),
        human_size(size),
        human_size(uncompressed),
        report.layering,
        report.ownership.as_deref().map(|o| format!(" from {o}")).unwrap_or_default()
    );
    if let Some(reuse) = &report.reuse {
        println!(
            "previous  {} layers reused, {} new: a device holding it downloads {}",
            reuse.reused_layers,
            reuse.new_layers,
            human_size(reuse.download_bytes)
        );
    }
    for output in report.outputs.iter().filter(|o| !o.starts_with("docker://")) {
        println!("wrote     {output}");
    }
    for push in &report.pushes {
        print_push(push);
    }
}
