//! Layered images on a base image (issue 6, `--base`): the base's blobs come first byte for byte, only what differs
//! goes on top with whiteouts for what the base had, the image runs in Docker, the base reads the same from a layout,
//! an archive or a registry, and a base of another architecture or that cannot be read is refused in one line with
//! nothing written.
#![cfg(feature = "engine-tests")]

mod common;

use std::collections::BTreeSet;

use common::layered::{
    Built, Member, args, assert_conversion_refused, assert_unpacks_to, build, shown, workspace_with_an_image,
};
use common::{Engine, fixtures, packages, shared_registry, snapshot};

/// CHANGES.txt of base/derived: (kind, path) rows.
fn changes() -> Vec<(String, String)> {
    std::fs::read_to_string(packages().join("base/CHANGES.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut fields = l.split('\t');
            (fields.next().unwrap().to_string(), fields.next().unwrap().to_string())
        })
        .collect()
}

fn paths_of(rows: &[(String, String)], kinds: &[&str]) -> BTreeSet<String> {
    rows.iter().filter(|(k, _)| kinds.contains(&k.as_str())).map(|(_, p)| p.clone()).collect()
}

/// base/rootfs, with some config of its own, and base/derived built on it.
fn base_and_derived(base_extra: &[&str], derived_extra: &[&str]) -> (Built, Built) {
    let mut options = args(&["--env", "BASE_ONLY=1", "--workdir", "/srv", "--label", "org.example.base=yes"]);
    options.extend(args(base_extra));
    let base = build(&packages().join("base/rootfs.tar"), &options);
    let mut options = args(&["--base", &base.reference()]);
    options.extend(args(derived_extra));
    let derived = build(&packages().join("base/derived.tar"), &options);
    (base, derived)
}

#[test]
fn on_a_base_its_blobs_come_first_byte_for_byte_and_the_layers_give_back_the_derived_tree() {
    let (base, derived) = base_and_derived(&[], &[]);
    let (base_layers, derived_layers) = (base.digests(), derived.digests());
    assert!(derived_layers.len() > base_layers.len(), "{derived_layers:?}");
    assert_eq!(derived_layers[..base_layers.len()], base_layers[..]);
    for digest in &base_layers {
        assert_eq!(std::fs::read(base.blob(digest)).unwrap(), std::fs::read(derived.blob(digest)).unwrap());
    }
    assert_unpacks_to(&derived, &packages().join("base/derived"));
    let config = derived.config();
    let env: Vec<&str> = config["config"]["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert!(env.contains(&"BASE_ONLY=1"), "{config}");
    assert_eq!(config["config"]["WorkingDir"], "/srv", "{config}");
    assert_eq!(config["config"]["Labels"]["org.example.base"], "yes", "{config}");
    let history = config["history"].as_array().unwrap();
    let base_history = base.config()["history"].as_array().unwrap().clone();
    assert_eq!(history[..base_history.len()], base_history[..], "the base's history is not kept");
}

#[test]
fn on_a_base_only_what_differs_goes_on_top_with_whiteouts_for_what_the_base_had() {
    let (base, derived) = base_and_derived(&[], &[]);
    let rows = changes();
    let new_listings: Vec<Member> = {
        let listings = derived.listings();
        listings[base.layers().len()..].iter().flatten().cloned().collect()
    };
    let whiteouts: BTreeSet<String> = new_listings
        .iter()
        .filter(|m| m.path.rsplit('/').next().unwrap().starts_with(".wh."))
        .map(|m| m.path.clone())
        .collect();
    assert_eq!(whiteouts, paths_of(&rows, &["whiteout"]));
    // Each whiteout hides something the base has.
    let base_tree = snapshot(&base.unpack());
    for whiteout in &whiteouts {
        let (dir, name) = whiteout.rsplit_once('/').unwrap();
        let hidden = if name == ".wh..wh..opq" { dir.to_string() } else { format!("{dir}/{}", &name[4..]) };
        assert!(base_tree.contains_key(hidden.as_bytes()), "{whiteout} hides `{hidden}`, which the base lacks");
    }
    let files: BTreeSet<String> =
        new_listings.iter().filter(|m| !m.is_dir() && !whiteouts.contains(&m.path)).map(|m| m.path.clone()).collect();
    let differing = paths_of(
        &rows,
        &["opaque-added", "content", "content-same-size-and-mtime", "mode", "mtime", "owner", "added", "added-symlink"],
    );
    assert_eq!(files, differing, "the new layers hold other files than those that differ from the base");
    let dirs: BTreeSet<String> = new_listings.iter().filter(|m| m.is_dir()).map(|m| m.path.clone()).collect();
    let changed_dirs = paths_of(&rows, &["added-dir", "dir-mtime"]);
    assert!(changed_dirs.is_subset(&dirs), "directories that differ are missing: {:?}", changed_dirs.difference(&dirs));
}

#[test]
fn an_image_on_a_base_runs_in_docker_without_the_removed_files() {
    let tag = "imgcraft-test/layers-derived:1";
    let (_base, derived) = base_and_derived(&[], &["-t", tag, "-o", "oci-archive:image.tar"]);
    Engine::Docker.load(&derived.dir.path().join("image.tar"));
    let paths = "/etc/issue /usr/share/doc/busybox-static/examples /usr/share/doc/libc6/copyright \
                 /usr/share/doc/libc6/NEWS.derived /etc/app-release /usr/bin/app";
    let script = format!(
        "for p in {paths}; do test -e $p && echo \"$p present\" || echo \"$p gone\"; done; ls /usr/share/doc/libc6; \
         /usr/bin/app; stat -c '%a %u %g' /etc/ld.so.conf.d/x86_64-linux-gnu.conf /srv/data/owned.txt; \
         echo $BASE_ONLY; pwd"
    );
    let stdout = Engine::Docker.script(tag, &script);
    assert_eq!(
        stdout,
        "/etc/issue gone\n/usr/share/doc/busybox-static/examples gone\n/usr/share/doc/libc6/copyright gone\n\
         /usr/share/doc/libc6/NEWS.derived present\n/etc/app-release present\n/usr/bin/app present\n\
         NEWS.derived\nREADME.derived\napp\n600 0 0\n644 1000 1000\n1\n/srv\n"
    );
    assert_eq!(Engine::Docker.layer_count(tag), derived.layers().len());
    Engine::Docker.remove(tag);
}

#[test]
fn a_base_from_an_archive_gives_the_same_image_as_from_a_layout() {
    let (base, derived) =
        base_and_derived(&["-o", "oci-archive:base.oci.tar", "-o", "docker-archive:base.docker.tar"], &[]);
    for archive in ["oci-archive:base.oci.tar", "docker-archive:base.docker.tar"] {
        let reference = archive.replace(':', &format!(":{}/", base.dir.path().display()));
        let again = build(&packages().join("base/derived.tar"), &["--base".to_string(), reference.clone()]);
        assert_eq!(again.report["manifest_digest"], derived.report["manifest_digest"], "{reference}");
    }
}

#[test]
fn a_base_from_a_registry_gives_the_same_image_as_from_a_layout() {
    let registry = shared_registry();
    let pushed = format!("docker://{registry}/imgcraft-test/layers-base:1");
    let (_base, derived) = base_and_derived(&["-o", &pushed], &[]);
    let again = build(&packages().join("base/derived.tar"), &["--base".to_string(), pushed]);
    assert_eq!(again.report["manifest_digest"], derived.report["manifest_digest"]);
    assert_unpacks_to(&again, &packages().join("base/derived"));
}

#[test]
fn layer_rules_on_a_base_split_only_what_differs() {
    let (base, derived) = base_and_derived(&[], &["--layer", "app=opt/**,usr/bin/app"]);
    assert_unpacks_to(&derived, &packages().join("base/derived"));
    let layers = derived.layers();
    let new = &layers[base.layers().len()..];
    let kinds: Vec<(Option<&str>, Option<&str>)> =
        new.iter().map(|l| (l.rule.as_deref(), l.content.as_deref())).collect();
    assert_eq!(kinds, [(None, Some("whiteouts")), (Some("app"), None), (None, Some("unowned"))], "{new:?}");
    let listings = derived.listings();
    let app: BTreeSet<&str> =
        listings[layers.len() - 2].iter().filter(|m| !m.is_dir()).map(|m| m.path.as_str()).collect();
    assert_eq!(app, BTreeSet::from(["opt/app/bin/app.sh", "opt/app/etc/app.conf", "usr/bin/app"]));
}

#[test]
fn a_package_layered_image_on_a_package_layered_base_adds_only_what_changed() {
    let base = build(&packages().join("dpkg/v1"), &[]);
    for (variant, new_packages) in [("added", vec![args(&["zlib1g"]), vec![]]), ("removed", vec![vec![]])] {
        let tree = packages().join("dpkg").join(variant);
        let derived = build(&tree, &["--base".to_string(), base.reference()]);
        let layers = derived.layers();
        assert_eq!(layers[..base.layers().len()], base.layers()[..], "{variant}: the base's layers are not kept");
        assert_unpacks_to(&derived, &tree);
        // Besides whiteouts, only new packages and the top layer (database, ld.so.cache, directories).
        let added: Vec<Vec<String>> = layers[base.layers().len()..]
            .iter()
            .filter(|l| l.content.as_deref() != Some("whiteouts"))
            .map(|l| l.packages.clone())
            .collect();
        assert_eq!(added, new_packages, "{variant}: {layers:?}");
    }
}

#[test]
fn a_base_with_whiteouts_of_its_own_is_read_as_an_engine_merges_it() {
    // base/rootfs on (derived on base): what derived removed comes back, what it added is whited out.
    let (_base, derived) = base_and_derived(&[], &[]);
    let tree = packages().join("base/rootfs");
    let again = build(&tree.with_extension("tar"), &["--base".to_string(), derived.reference()]);
    assert_eq!(again.digests()[..derived.layers().len()], derived.digests()[..]);
    assert_unpacks_to(&again, &tree);
}

#[test]
fn a_base_of_another_architecture_or_that_cannot_be_read_is_refused() {
    let ws = workspace_with_an_image();
    let arm = build(&fixtures().join("rootfs-arm64.tar.zst"), &[]);
    let derived = shown(&packages().join("base/derived.tar"));
    assert_conversion_refused(&ws, &[derived.clone(), "--base".into(), arm.reference()], &["arm64", "amd64"]);
    assert_conversion_refused(&ws, &[derived.clone(), "--base".into(), "oci:no-such-base:1".into()], &["no-such-base"]);
    // The base's layers and the whiteout layer count against --max-layers.
    let (base, _) = base_and_derived(&[], &[]);
    assert_conversion_refused(
        &ws,
        &[derived, "--base".into(), base.reference(), "--max-layers".into(), "2".into()],
        &[&base.reference(), "--max-layers 2"],
    );
}
