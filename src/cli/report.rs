//! What the command line prints: the reports of each subcommand for people (`--json` prints the library's report
//! structs as they are), and the one error line, with a `hint:` in one style for what the user can do.

use imgcraft::commands::convert::ConvertReport;
use imgcraft::commands::inspect::human_size;
use imgcraft::error::{Error, MAX_ERROR_LINE, Remedy, display_text};
use imgcraft::registry::PushReport;

/// The error as one line: the problem, naming the input (escaped and cut as a last line of defence: it may quote
/// what a registry or a file said), then what to do about it in this command line's flags.
pub fn error_line(err: &Error) -> String {
    let problem = display_text(&err.to_string(), MAX_ERROR_LINE);
    match err.remedy() {
        Some(remedy) => format!("rootfs2image: error: {problem} (hint: {})", hint(remedy)),
        None => format!("rootfs2image: error: {problem}"),
    }
}

/// A remedy in the words of this command line.
fn hint(remedy: &Remedy) -> String {
    match remedy {
        Remedy::NamePlatform => "give --arch ARCH: amd64, arm64, arm/v7, riscv64, ...".into(),
        Remedy::MatchPlatform { found, requested } => {
            format!("use --arch {found}, or --no-arch-check to keep {requested}")
        }
        Remedy::GivePackageData => "give --pkgdata DIR, Yocto's PKGDATA_DIR, or --layers single".into(),
        Remedy::AllowLayers { given, needed } => {
            format!("--max-layers {given} leaves no layer for the rootfs: give --max-layers {needed} or more")
        }
        Remedy::LogIn => "give --creds USER:PASSWORD or --creds-stdin, or log in with docker or podman".into(),
        Remedy::TrustRegistry => "a private CA? give --cert-dir DIR with its .crt, or --tls-verify=false".into(),
        Remedy::UseGzip => "this image has zstd layers, which some registries refuse: try --compression gzip".into(),
        Remedy::RunPrivileged => "run as root, or unpack with --rootless, which leaves owners and devices out".into(),
    }
}

pub fn print_push(report: &PushReport) {
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

pub fn print_report(report: &ConvertReport, json: bool, quiet: bool) {
    // Warnings go to standard error whatever else is asked for: they quote names from the images read.
    for warning in &report.warnings {
        eprintln!("rootfs2image: warning: {}", display_text(warning, MAX_ERROR_LINE));
    }
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
            "previous  {} layers reused ({} blobs taken, not compressed again), {} new: a device holding it \
             downloads {}",
            reuse.reused_layers,
            reuse.blobs_taken,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remedy_becomes_a_hint_on_the_same_line() {
        let err = Error::BadInput { input: "rootfs".into(), problem: "no ELF executables".into() }
            .with_remedy(Remedy::AllowLayers { given: 2, needed: 3 });
        let line = error_line(&err);
        assert_eq!(
            line,
            "rootfs2image: error: `rootfs`: no ELF executables (hint: --max-layers 2 leaves no layer for the rootfs: \
             give --max-layers 3 or more)"
        );
        let plain = error_line(&Error::Invalid("bad\nvalue".into()));
        assert_eq!(plain, "rootfs2image: error: bad\\u{a}value");
    }
}
