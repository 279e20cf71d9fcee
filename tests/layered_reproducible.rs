//! Layered images are reproducible (issue 6): a rebuild gives bit-identical layers, and neither the input's form
//! (directory, tarball, compressed, standard input) nor the thread count nor the run changes a digest.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::Path;
use std::process::Command;

use common::layered::{args, build, build_variant, variant, yocto};
use common::{bin, json, packages, run};

#[test]
fn rebuilding_gives_bit_identical_layers() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let a = build_variant(kind, "v1", None);
        let b = build_variant(kind, "v1", None);
        assert_eq!(a.report["manifest_digest"], b.report["manifest_digest"], "{kind}");
        assert_eq!(a.digests(), b.digests(), "{kind}");
    }
}

#[test]
fn a_directory_and_its_tarball_give_the_same_layered_image() {
    let (yocto_tree, yocto_options) = yocto("v1", true);
    for (tree, options) in [
        (packages().join("dpkg/v1"), vec![]),
        (packages().join("opkg/v1"), vec![]),
        (yocto_tree, yocto_options),
        (packages().join("dpkg/v1"), args(&["--layer", "libs=usr/lib/**", "--layer", "etc=etc/**"])),
    ] {
        let from_dir = build(&tree, &options);
        let from_tar = build(&tree.with_extension("tar"), &options);
        assert!(from_dir.layers().len() > 1, "{}", tree.display());
        assert_eq!(from_dir.report["manifest_digest"], from_tar.report["manifest_digest"], "{}", tree.display());
    }
}

#[test]
fn standard_input_and_a_compressed_tarball_give_the_same_layered_image() {
    // The database comes near the end of the tar: standard input is spooled, a compressed file decoded twice.
    let tar = packages().join("dpkg/v1.tar");
    let from_file = build(&tar, &[]);
    let dir = tempfile::tempdir().unwrap();
    let stdin = std::fs::File::open(&tar).unwrap();
    let stdout =
        run(bin().current_dir(dir.path()).stdin(stdin).args(["-", "--layers", "packages", "--json", "-o", "oci:l"]));
    assert_eq!(json(&stdout)["manifest_digest"], from_file.report["manifest_digest"]);
    let zst = dir.path().join("v1.tar.zst");
    run(Command::new("zstd").args(["-q", "-o"]).arg(&zst).arg(&tar));
    let from_zst = build(&zst, &[]);
    assert_eq!(from_zst.report["manifest_digest"], from_file.report["manifest_digest"]);
}

#[test]
fn layered_digests_do_not_depend_on_the_thread_count_or_the_run() {
    // Many layers share one compression pool: their bytes must not depend on its size or on scheduling.
    let (tree, _) = variant("dpkg", "v1");
    let tar = packages().join("dpkg/v1.tar");
    for compression in ["gzip", "zstd"] {
        let with = |input: &Path, threads: &str| {
            build(input, &args(&["--layers", "packages", "--compression", compression, "--threads", threads]))
        };
        let one = with(&tar, "1");
        assert!(one.digests().len() > 3, "{compression}: {:?}", one.digests());
        for (input, threads) in [(&tar, "2"), (&tar, "4"), (&tree, "2"), (&tar, "1")] {
            assert_eq!(with(input, threads).digests(), one.digests(), "{compression}, {threads} threads, {input:?}");
        }
    }
}
