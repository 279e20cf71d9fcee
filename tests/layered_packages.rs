//! Layered images by package (issue 6), end to end on the package fixtures of scripts/make-package-fixtures.sh:
//! each package's files in one layer from a dpkg or opkg database or Yocto's pkgdata (with or without the image
//! manifest), the layers giving back the input tree entry by entry; `--max-layers` merging packages; `auto` choosing
//! packages where the rootfs has a database and one layer where it has none; and ownership input that does not
//! parse, refused in one line with nothing written.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::Path;

use serde_json::Value;

use common::layered::{
    Built, args, assert_conversion_refused, assert_layer_count, assert_layer_structure, assert_packages_whole,
    assert_unpacks_to, build, owners, shown, workspace_with_an_image, yocto,
};
use common::packages;

/// `built`, layered by package from `tree`, gives back the tree with each package whole, as the fixture's
/// `owners` file (under the package fixtures: `path<TAB>package` rows) has them.
fn assert_layered_by_package(built: &Built, tree: &Path, owners_file: &str) {
    assert_unpacks_to(built, tree);
    assert_layer_structure(built, tree);
    assert_packages_whole(built, &owners(&packages().join(owners_file)));
}

#[test]
fn dpkg_database_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    let tree = packages().join("dpkg/v1");
    let built = build(&tree, &args(&["--layers", "packages"]));
    assert_eq!(built.report["layering"], "packages");
    assert!(built.report["ownership"].as_str().unwrap().contains("var/lib/dpkg/status"), "{}", built.report);
    assert_layer_count(&built, 64);
    assert_layered_by_package(&built, &tree, "dpkg/v1.owners.tsv");
}

#[test]
fn opkg_database_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    for (variant, database) in [("v1", "var/lib/opkg/status"), ("usr-lib-v1", "usr/lib/opkg/status")] {
        let tree = packages().join("opkg").join(variant);
        let built = build(&tree, &args(&["--layers", "packages"]));
        assert!(built.report["ownership"].as_str().unwrap().contains(database), "{variant}: {}", built.report);
        assert_layer_count(&built, 64);
        assert_layered_by_package(&built, &tree, &format!("opkg/{variant}.owners.tsv"));
    }
}

#[test]
fn yocto_pkgdata_with_manifest_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    let (tree, mut options) = yocto("v1", true);
    options.extend(args(&["--layers", "packages"]));
    let built = build(&tree, &options);
    assert!(built.report["ownership"].as_str().unwrap().contains("pkgdata"), "{}", built.report);
    assert_layer_count(&built, 64);
    assert_layered_by_package(&built, &tree, "yocto/v1/rootfs.owners.tsv");
}

#[test]
fn yocto_pkgdata_without_manifest_counts_the_packages_that_own_paths_of_the_rootfs() {
    // bzip2 is in pkgdata but not installed, and every recipe has an empty -dbg package: none may show up.
    let (tree, options) = yocto("v1", false);
    let built = build(&tree, &options);
    assert_eq!(built.report["layering"], "packages", "auto with --pkgdata");
    assert_layered_by_package(&built, &tree, "yocto/v1/rootfs.owners.tsv");
}

#[test]
fn single_mode_writes_one_layer_that_gives_back_the_tree() {
    let tree = packages().join("dpkg/v1");
    let built = build(&tree, &args(&["--layers", "single"]));
    assert_eq!(built.report["layering"], "single");
    let layers = built.layers();
    assert_eq!(layers.len(), 1, "{layers:?}");
    assert!(layers[0].packages.is_empty() && layers[0].rule.is_none(), "{layers:?}");
    assert_unpacks_to(&built, &tree);
}

#[test]
fn a_small_max_layers_merges_packages_and_still_gives_back_the_tree() {
    for max in [3, 2] {
        for (tree, owners_file, extra) in [
            (packages().join("dpkg/v1"), "dpkg/v1.owners.tsv", vec![]),
            (yocto("v1", true).0, "yocto/v1/rootfs.owners.tsv", yocto("v1", true).1),
        ] {
            let mut options = args(&["--layers", "packages", "--max-layers", &max.to_string()]);
            options.extend(extra);
            let built = build(&tree, &options);
            assert_layer_count(&built, max);
            assert_layered_by_package(&built, &tree, owners_file);
        }
    }
    let one = build(&packages().join("dpkg/v1"), &args(&["--layers", "packages", "--max-layers", "1"]));
    assert_eq!(one.layers().len(), 1, "{:?}", one.layers());
}

#[test]
fn auto_layers_by_packages_when_the_rootfs_has_a_database_and_else_in_one_layer() {
    for tree in [packages().join("dpkg/v1.tar"), packages().join("opkg/v1.tar"), packages().join("opkg/usr-lib-v1")] {
        let built = build(&tree, &[]);
        assert_eq!(built.report["layering"], "packages", "{}", tree.display());
        assert!(built.layers().len() > 2, "{}: {:?}", tree.display(), built.layers());
    }
    let built = build(&packages().join("yocto/v1/rootfs.tar"), &[]);
    assert_eq!(built.report["layering"], "single");
    assert_eq!(built.layers().len(), 1);
    assert!(built.report.get("ownership").map_or(true, Value::is_null), "{}", built.report);
}

#[test]
fn a_directory_that_is_not_pkgdata_is_refused_naming_it() {
    let ws = workspace_with_an_image();
    let not_pkgdata = packages().join("dpkg/v1/etc");
    let (tree, _) = yocto("v1", false);
    assert_conversion_refused(
        &ws,
        &[shown(&tree), "--pkgdata".into(), shown(&not_pkgdata)],
        &[&shown(&not_pkgdata), "not a Yocto pkgdata directory"],
    );
}

#[test]
fn a_manifest_naming_an_unknown_package_is_refused_naming_both() {
    let ws = workspace_with_an_image();
    let manifest = ws.path("image.manifest");
    let mut text = std::fs::read_to_string(packages().join("yocto/v1/image.manifest")).unwrap();
    text.push_str("no-such-package core2-64 1.0-r0\n");
    std::fs::write(&manifest, text).unwrap();
    let (tree, mut options) = yocto("v1", false);
    options.insert(0, shown(&tree));
    options.extend(["--package-manifest".into(), shown(&manifest)]);
    assert_conversion_refused(&ws, &options, &["image.manifest", "no-such-package"]);
}

#[test]
fn a_package_database_that_does_not_parse_is_refused_naming_the_file() {
    for (database, layers) in [("var/lib/dpkg/status", "auto"), ("var/lib/opkg/status", "packages")] {
        let ws = workspace_with_an_image();
        let tree = ws.path("broken");
        let status = tree.join(database);
        std::fs::create_dir_all(status.parent().unwrap().join("info")).unwrap();
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::copy("/bin/true", tree.join("bin/true")).unwrap();
        std::fs::write(&status, "Package: hello\nStatus install ok installed\n\n").unwrap();
        assert_conversion_refused(&ws, &[shown(&tree), "--layers".into(), layers.into()], &[database, "line 2"]);
    }
}

#[test]
fn layers_packages_without_any_ownership_is_refused() {
    let ws = workspace_with_an_image();
    let tree = packages().join("yocto/v1/rootfs.tar");
    assert_conversion_refused(
        &ws,
        &[shown(&tree), "--layers".into(), "packages".into()],
        &[&shown(&tree), "--pkgdata"],
    );
}
