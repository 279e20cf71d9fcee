//! Layered images in real engines (issue 6): Docker and podman load a package-layered image, see every layer, run
//! its binary, and show the directories' real attributes, which the top layer sets over the stubs below it.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::Path;

use common::Engine;
use common::layered::{args, build, yocto};
use common::packages;

/// `stat -c '%n %a %u %g %Y'` of `paths` in `tree`, as busybox prints it in a container.
fn expected_stat(tree: &Path, paths: &[&str]) -> String {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(tree.join(p.trim_start_matches('/'))).unwrap();
            format!("{p} {:o} {} {} {}\n", m.mode() & 0o7777, m.uid(), m.gid(), m.mtime())
        })
        .collect()
}

/// Loads the image in Docker and podman; each sees every layer, runs hello, and shows the directories' real
/// attributes, set by the top layer over the stubs below it. (Not /etc: the engines mount /etc/hostname and
/// /etc/hosts over it, which moves its mtime.)
fn assert_runs_in_engines(input: &Path, tree: &Path, mut options: Vec<String>, tag: &str) {
    options.extend(args(&["-t", tag, "-o", "oci-archive:image.tar"]));
    let built = build(input, &options);
    let layers = built.layers().len();
    assert!(layers > 2, "{layers} layers");
    let dirs = ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/share/zoneinfo", "/var/lib", "/tmp", "/home/user"];
    let script = format!("/usr/bin/hello && stat -c '%n %a %u %g %Y' {}", dirs.join(" "));
    let expected = format!("Hello, world!\n{}", expected_stat(tree, &dirs));
    for engine in [Engine::Docker, Engine::Podman] {
        let image = engine.name(tag);
        engine.load(&built.dir.path().join("image.tar"));
        assert_eq!(engine.layer_count(&image), layers, "{engine:?}");
        assert_eq!(engine.script(&image, &script), expected, "{engine:?}");
        engine.remove(&image);
    }
}

#[test]
fn the_dpkg_layered_image_runs_in_docker_and_podman() {
    let tree = packages().join("dpkg/v1");
    assert_runs_in_engines(&tree.with_extension("tar"), &tree, vec![], "imgcraft-test/layers-dpkg:1");
}

#[test]
fn the_yocto_pkgdata_layered_image_runs_in_docker_and_podman() {
    let (tree, options) = yocto("v1", true);
    assert_runs_in_engines(&tree.with_extension("tar"), &tree, options, "imgcraft-test/layers-yocto:1");
}
