//! Layered images over time (issue 6): unchanged packages keep bit-identical layers, with `--previous` and by the
//! grouping alone without it; an added, removed or changed package changes only its own layer and the top; chained
//! builds keep every unchanged layer; `diff` and the `--previous` summary report what changed; `--max-layers` still
//! holds; a previous image that does not exist is refused in one line with nothing written.
#![cfg(feature = "engine-tests")]

mod common;

use common::layered::{
    Built, Layer, args, assert_conversion_refused, assert_layer_count, assert_packages_whole, assert_unpacks_to, build,
    build_variant, owners, shown, workspace_with_an_image,
};
use common::{bin, json, packages, run};

/// The layers of `new` that `old` lacks, and the layers of `old` that `new` lacks, by digest.
fn changed_layers(old: &Built, new: &Built) -> (Vec<Layer>, Vec<Layer>) {
    let (old_layers, new_layers) = (old.layers(), new.layers());
    let has = |layers: &[Layer], l: &Layer| layers.iter().any(|o| o.digest == l.digest);
    (
        new_layers.iter().filter(|l| !has(&old_layers, l)).cloned().collect(),
        old_layers.iter().filter(|l| !has(&new_layers, l)).cloned().collect(),
    )
}

/// `kind`'s v1, then its variant `name` built with v1 as the previous image, and the layers that build added and
/// dropped.
fn after_v1(kind: &str, name: &str) -> (Built, Built, Vec<Layer>, Vec<Layer>) {
    let v1 = build_variant(kind, "v1", None);
    let next = build_variant(kind, name, Some(&v1));
    let (new, gone) = changed_layers(&v1, &next);
    (v1, next, new, gone)
}

fn is_top(layer: &Layer) -> bool {
    layer.content.as_deref() == Some("unowned")
}

/// Each layer's packages, the layers sorted by them.
fn packages_by_layer(layers: &[Layer]) -> Vec<Vec<String>> {
    let mut packages: Vec<Vec<String>> = layers.iter().map(|l| l.packages.clone()).collect();
    packages.sort();
    packages
}

/// `diff --json OLD NEW` lists exactly `expected_new` as new layers (with their packages), every other layer as
/// shared, and `download_bytes` as their sizes; the --previous summary says the same.
fn assert_diff_reports(old: &Built, new: &Built, expected_new: &[Layer]) {
    let report = json(&run(bin().args(["diff", "--json", &old.reference(), &new.reference()])));
    let digests = |key: &str| -> Vec<String> {
        report[key].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect()
    };
    let all = new.layers();
    let expected: Vec<String> = expected_new.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(digests("new_layers"), expected, "{report}");
    let shared: Vec<String> = all.iter().map(|l| l.digest.clone()).filter(|d| !expected.contains(d)).collect();
    assert_eq!(digests("shared_layers"), shared, "{report}");
    for (reported, layer) in report["new_layers"].as_array().unwrap().iter().zip(expected_new) {
        let packages: Vec<&str> =
            reported["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        assert_eq!(packages, layer.packages, "{report}");
        assert_eq!(reported["size"], layer.size, "{report}");
        assert_eq!(reported["content"].as_str(), layer.rule.as_deref().or(layer.content.as_deref()), "{report}");
    }
    let download: u64 = expected_new.iter().map(|l| l.size).sum();
    assert_eq!(report["download_bytes"], download, "{report}");
    assert_eq!(report["total_bytes"], all.iter().map(|l| l.size).sum::<u64>(), "{report}");
    if new.report.get("reused_layers").is_some() {
        assert_eq!(new.report["reused_layers"], all.len() - expected_new.len(), "{}", new.report);
        assert_eq!(new.report["new_layers"], expected_new.len(), "{}", new.report);
        assert_eq!(new.report["download_bytes"], download, "{}", new.report);
    }
}

/// changed: only the layer holding netbase (whose etc/protocols changed) is new; it replaces netbase's old layer.
fn assert_only_netbase_changed(v1: &Built, changed: &Built) {
    let (new, gone) = changed_layers(v1, changed);
    assert_eq!(new.len(), 1, "new layers: {new:?}");
    assert!(new[0].packages.contains(&"netbase".to_string()), "{new:?}");
    assert_eq!(gone.len(), 1, "layers gone: {gone:?}");
    assert_eq!(gone[0].packages, new[0].packages);
    assert_eq!(v1.layers().len(), changed.layers().len());
    assert_diff_reports(v1, changed, &new);
}

#[test]
fn with_previous_a_changed_file_changes_only_its_packages_layer() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let v1 = build_variant(kind, "v1", None);
        let changed = build_variant(kind, "changed", Some(&v1));
        assert_only_netbase_changed(&v1, &changed);
    }
}

#[test]
fn without_previous_the_grouping_alone_changes_only_the_changed_packages_layer() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let v1 = build_variant(kind, "v1", None);
        let changed = build_variant(kind, "changed", None);
        assert!(changed.report.get("reused_layers").is_none(), "{}", changed.report);
        assert_only_netbase_changed(&v1, &changed);
    }
}

#[test]
fn with_previous_an_added_package_adds_its_own_layer_and_changes_only_the_top() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let (v1, added, new, gone) = after_v1(kind, "added");
        // The package database (or ld.so.cache and the directories' mtimes) changed: the top layer is new too.
        assert_eq!(new.len(), 2, "{kind}: new layers {new:?}");
        assert_eq!(new[0].packages, args(&["zlib1g"]), "{kind}: {new:?}");
        assert!(is_top(&new[1]), "{kind}: {new:?}");
        assert_eq!(gone.len(), 1, "{kind}: layers gone {gone:?}");
        assert!(is_top(&gone[0]), "{kind}: {gone:?}");
        assert_eq!(added.layers().len(), v1.layers().len() + 1, "{kind}");
        assert_diff_reports(&v1, &added, &new);
    }
}

#[test]
fn with_previous_a_removed_package_drops_its_layer_and_changes_only_the_top() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let (v1, removed, new, gone) = after_v1(kind, "removed");
        assert_eq!(new.len(), 1, "{kind}: new layers {new:?}");
        assert!(is_top(&new[0]), "{kind}: {new:?}");
        assert_eq!(packages_by_layer(&gone), [vec![], args(&["hello"])], "{kind}: layers gone {gone:?}");
        assert!(gone.iter().any(is_top), "{kind}: {gone:?}");
        assert_eq!(removed.layers().len(), v1.layers().len() - 1, "{kind}");
        assert_diff_reports(&v1, &removed, &new);
    }
}

#[test]
fn chained_previous_builds_keep_every_unchanged_layer() {
    // v1 -> added -> removed, each naming the one before: removed lacks zlib1g and hello, the rest is as in v1.
    let v1 = build_variant("dpkg", "v1", None);
    let added = build_variant("dpkg", "added", Some(&v1));
    let removed = build_variant("dpkg", "removed", Some(&added));
    let (new, gone) = changed_layers(&added, &removed);
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(is_top(&new[0]), "{new:?}");
    assert_eq!(packages_by_layer(&gone), [vec![], args(&["hello"]), args(&["zlib1g"])], "{gone:?}");
    assert_diff_reports(&added, &removed, &new);
    assert_unpacks_to(&removed, &packages().join("dpkg/removed"));
    // The same layers as removed built straight from v1: the way there does not matter.
    assert_eq!(removed.digests(), build_variant("dpkg", "removed", Some(&v1)).digests());
    // v1 -> changed -> v1 again: every digest of v1 comes back.
    let changed = build_variant("dpkg", "changed", Some(&v1));
    assert_eq!(build_variant("dpkg", "v1", Some(&changed)).digests(), v1.digests());
}

#[test]
fn with_previous_the_layer_count_still_respects_max_layers() {
    // v1 fills every slot; zlib1g, new in added, must share a layer rather than add one.
    let max = ["--layers", "packages", "--max-layers", "4"];
    let v1 = build(&packages().join("dpkg/v1"), &args(&max));
    assert_layer_count(&v1, 4);
    let tree = packages().join("dpkg/added");
    let mut options = args(&max);
    options.extend(["--previous".to_string(), v1.reference()]);
    let added = build(&tree, &options);
    assert_layer_count(&added, 4);
    assert_unpacks_to(&added, &tree);
    assert_packages_whole(&added, &owners(&packages().join("dpkg/added.owners.tsv")));
    let (new, _) = changed_layers(&v1, &added);
    assert!(new.len() <= 2 && new.iter().any(|l| l.packages.contains(&"zlib1g".to_string())), "{new:?}");
}

#[test]
fn a_previous_image_that_does_not_exist_is_refused_naming_it() {
    let ws = workspace_with_an_image();
    let tree = shown(&packages().join("dpkg/v1.tar"));
    for previous in ["oci:no-such-layout:1", "oci-archive:no-such.tar"] {
        assert_conversion_refused(&ws, &[tree.clone(), "--previous".into(), previous.into()], &["no-such"]);
    }
}
