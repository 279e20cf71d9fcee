//! Layered images (issue 6), end to end on the package fixtures of scripts/make-package-fixtures.sh: every layering
//! mode gives back the input tree entry by entry with each package's files in one layer; the images run in Docker
//! and podman; unchanged packages keep bit-identical layers, with and without `--previous`, and `diff` reports what
//! changed; bad input is one line and writes nothing; `--base` keeps the base's blobs and adds only what differs.
//!
//! Layer contents are listed with Python's tarfile, a reader independent of the crate's own.
#![cfg(feature = "engine-tests")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Engine, assert_same_tree, bin, fixtures, run, run_failing, snapshot};
use serde_json::Value;

// --- images and their layers ----------------------------------------------------------------------------------------

/// The package fixtures: dpkg/, opkg/, yocto/, base/ (see scripts/make-package-fixtures.sh).
fn packages() -> PathBuf {
    let dir = fixtures().join("packages");
    assert!(dir.join("stamp").is_file(), "{} missing: run scripts/make-fixtures.sh", dir.display());
    dir
}

/// A Yocto variant's rootfs with the options that give its ownership: pkgdata and (optionally) the image manifest.
fn yocto(variant: &str, manifest: bool) -> (PathBuf, Vec<String>) {
    let top = packages().join("yocto").join(variant);
    let mut args = vec!["--pkgdata".to_string(), top.join("pkgdata").display().to_string()];
    if manifest {
        args.extend(["--package-manifest".to_string(), top.join("image.manifest").display().to_string()]);
    }
    (top.join("rootfs"), args)
}

/// What a layer descriptor says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Layer {
    digest: String,
    size: u64,
    packages: Vec<String>,
    rule: Option<String>,
    content: Option<String>,
}

/// An image written to `oci:layout:img` in a temporary directory of its own, with the `--json` report.
struct Built {
    dir: tempfile::TempDir,
    report: Value,
}

impl Built {
    fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    fn reference(&self) -> String {
        format!("oci:{}:img", self.layout().display())
    }

    fn blob(&self, digest: &str) -> PathBuf {
        self.layout().join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    fn manifest(&self) -> Value {
        let index = json(&std::fs::read_to_string(self.layout().join("index.json")).unwrap());
        json(&std::fs::read_to_string(self.blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap())
    }

    fn config(&self) -> Value {
        json(&std::fs::read_to_string(self.blob(self.manifest()["config"]["digest"].as_str().unwrap())).unwrap())
    }

    /// The manifest's layers, bottom first.
    fn layers(&self) -> Vec<Layer> {
        let manifest = self.manifest();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let annotation = |key: &str| d["annotations"][key].as_str().map(str::to_string);
                Layer {
                    digest: d["digest"].as_str().unwrap().to_string(),
                    size: d["size"].as_u64().unwrap(),
                    packages: annotation("org.imgcraft.layer.packages")
                        .map(|p| p.split(' ').map(str::to_string).collect())
                        .unwrap_or_default(),
                    rule: annotation("org.imgcraft.layer.rule"),
                    content: annotation("org.imgcraft.layer.content"),
                }
            })
            .collect()
    }

    fn digests(&self) -> Vec<String> {
        self.layers().into_iter().map(|l| l.digest).collect()
    }

    /// Every layer's tar members, bottom first.
    fn listings(&self) -> Vec<Vec<Member>> {
        let blobs: Vec<PathBuf> = self.layers().iter().map(|l| self.blob(&l.digest)).collect();
        list_tars(&blobs)
    }

    /// `umoci unpack` of the image: the layers applied as an engine applies them.
    fn unpack(&self) -> PathBuf {
        let bundle = self.dir.path().join("bundle");
        if !bundle.exists() {
            run(Command::new("umoci")
                .args(["unpack", "--image", &format!("{}:img", self.layout().display())])
                .arg(&bundle));
        }
        bundle.join("rootfs")
    }
}

/// Converts `input` with `args`, writing `oci:layout:img` (and whatever outputs `args` add) in a new directory.
fn build(input: &Path, args: &[String]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run(bin().current_dir(dir.path()).env_remove("SOURCE_DATE_EPOCH").arg(input).args(args).args([
        "--json",
        "-o",
        "oci:layout:img",
    ]));
    let built = Built { dir, report: json(&stdout) };
    let reported: Vec<&str> =
        built.report["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(reported, built.digests(), "the --json report and the manifest disagree");
    built
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One tar member: its path as the layer has it (no `./`, no trailing `/`), tar type flag, link target and mtime.
#[derive(Clone, Debug)]
struct Member {
    path: String,
    kind: char,
    link: String,
    mtime: i64,
}

impl Member {
    fn is_dir(&self) -> bool {
        self.kind == '5'
    }
    fn is_hardlink(&self) -> bool {
        self.kind == '1'
    }
}

fn normal(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    path.trim_end_matches('/').to_string()
}

const LIST_TARS: &str = r#"
import json, sys, tarfile
for path in sys.argv[1:]:
    with tarfile.open(path) as tar:
        print(json.dumps([[m.name, m.type.decode(), m.linkname, m.mtime] for m in tar]))
"#;

/// The members of each (compressed or plain) tar, in archive order, listed by Python's tarfile.
fn list_tars(tars: &[PathBuf]) -> Vec<Vec<Member>> {
    let out = run(Command::new("python3").arg("-c").arg(LIST_TARS).args(tars));
    out.lines()
        .map(|line| {
            let rows: Vec<(String, String, String, i64)> = serde_json::from_str(line).unwrap();
            rows.into_iter()
                .map(|(path, kind, link, mtime)| Member {
                    path: normal(&path),
                    kind: kind.chars().next().unwrap_or('0'),
                    link: normal(&link),
                    mtime,
                })
                .filter(|m| !m.path.is_empty() && m.path != ".")
                .collect()
        })
        .collect()
}

/// A fixture's ground truth: `path<TAB>package` for every non-directory a package owns.
fn owners(tsv: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(tsv)
        .unwrap_or_else(|e| panic!("{}: {e}", tsv.display()))
        .lines()
        .map(|line| {
            let (path, package) = line.split_once('\t').unwrap();
            (path.to_string(), package.to_string())
        })
        .collect()
}

/// The layer (index) of every non-directory, checking that none is in two layers.
fn placement(listings: &[Vec<Member>]) -> BTreeMap<String, usize> {
    let mut placed = BTreeMap::new();
    for (index, members) in listings.iter().enumerate() {
        for member in members.iter().filter(|m| !m.is_dir()) {
            if let Some(other) = placed.insert(member.path.clone(), index) {
                panic!("`{}` is in layer {other} and in layer {index}", member.path);
            }
        }
    }
    placed
}

// --- what every layered image must satisfy ---------------------------------------------------------------------------

/// The layers applied in order equal `tree`, attribute by attribute.
fn assert_unpacks_to(built: &Built, tree: &Path) {
    assert_same_tree(&snapshot(tree), &snapshot(&built.unpack()));
}

/// Each layer's files, directories and hardlinks are where the layering promises: a hardlink after its target in
/// the same layer; lower layers carry directories only as stubs with mtime 0, the top one every directory of the
/// tree (it sets their real attributes).
fn assert_layer_structure(built: &Built, tree: &Path) {
    let listings = built.listings();
    let top = listings.len() - 1;
    for (index, members) in listings.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for member in members {
            if member.is_hardlink() {
                assert!(
                    seen.contains(&member.link),
                    "layer {index}: hardlink `{}` comes before its target `{}` or without it",
                    member.path,
                    member.link
                );
            }
            if member.is_dir() && index != top {
                assert_eq!(member.mtime, 0, "layer {index}: directory stub `{}` has a real mtime", member.path);
            }
            seen.insert(member.path.clone());
        }
    }
    let top_dirs: BTreeSet<&str> = listings[top].iter().filter(|m| m.is_dir()).map(|m| m.path.as_str()).collect();
    let tree_dirs =
        snapshot(tree).into_iter().filter(|(_, a)| a.kind == "dir").map(|(p, _)| String::from_utf8(p).unwrap());
    let missing: Vec<String> = tree_dirs.filter(|d| !top_dirs.contains(d.as_str())).collect();
    assert!(missing.is_empty(), "directories not in the top layer: {missing:?}");
}

/// Every package's non-directory files sit in one layer, whose annotation names it; a layer's annotation names
/// exactly the packages it holds; what no package owns is in the top layer, marked `unowned`.
fn assert_packages_whole(built: &Built, owners: &BTreeMap<String, String>) {
    let layers = built.layers();
    let listings = built.listings();
    let placed = placement(&listings);
    let mut layers_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut held: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); layers.len()];
    for (path, package) in owners {
        let index = *placed.get(path).unwrap_or_else(|| panic!("`{path}` of {package} is in no layer"));
        layers_of.entry(package).or_default().insert(index);
        held[index].insert(package);
    }
    for (package, indexes) in &layers_of {
        assert_eq!(indexes.len(), 1, "{package}'s files are spread over layers {indexes:?}");
    }
    for (index, layer) in layers.iter().enumerate() {
        let annotated: BTreeSet<&str> = layer.packages.iter().map(String::as_str).collect();
        assert_eq!(annotated, held[index], "layer {index} ({}) is annotated with other packages", layer.digest);
    }
    let top = layers.len() - 1;
    assert_eq!(layers[top].content.as_deref(), Some("unowned"), "{:?}", layers[top]);
    for (path, index) in &placed {
        if !owners.contains_key(path) {
            assert_eq!(*index, top, "`{path}`, owned by no package, is not in the top layer");
        }
    }
}

/// Whether a `--layer` glob of the two forms the tests use, `DIR/**` or a plain path, matches `path`.
fn glob_matches(glob: &str, path: &str) -> bool {
    match glob.strip_suffix("/**") {
        Some(dir) => path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')),
        None => path == glob,
    }
}

/// Paths mode: each non-directory is in the layer of the first rule that matches it, the rest on top; a hardlink
/// goes with its target, whatever rule its own path matches.
fn assert_rules_followed(built: &Built, rules: &[(&str, &[&str])]) {
    let layers = built.layers();
    let names: Vec<Option<&str>> = layers.iter().map(|l| l.rule.as_deref()).collect();
    let expected: Vec<Option<&str>> = rules.iter().map(|(name, _)| Some(*name)).chain([None]).collect();
    assert_eq!(names, expected, "layers are not the rules in order, then the rest");
    assert_eq!(layers.last().unwrap().content.as_deref(), Some("unowned"));
    let listings = built.listings();
    let placed = placement(&listings);
    let rule_of = |path: &str| rules.iter().position(|(_, globs)| globs.iter().any(|g| glob_matches(g, path)));
    for members in &listings {
        for member in members.iter().filter(|m| !m.is_dir()) {
            let by = if member.is_hardlink() { &member.link } else { &member.path };
            let want = rule_of(by).unwrap_or(rules.len());
            assert_eq!(placed[&member.path], want, "`{}` is in the wrong layer", member.path);
        }
    }
}

fn assert_layer_count(built: &Built, max: usize) {
    let count = built.layers().len();
    assert!((2..=max).contains(&count), "{count} layers, expected 2 to {max}");
}

// --- each layering mode ----------------------------------------------------------------------------------------------

#[test]
fn dpkg_database_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    let tree = packages().join("dpkg/v1");
    let built = build(&tree, &args(&["--layers", "packages"]));
    assert_eq!(built.report["layering"], "packages");
    assert!(built.report["ownership"].as_str().unwrap().contains("var/lib/dpkg/status"), "{}", built.report);
    assert_layer_count(&built, 64);
    assert_unpacks_to(&built, &tree);
    assert_layer_structure(&built, &tree);
    assert_packages_whole(&built, &owners(&packages().join("dpkg/v1.owners.tsv")));
}

#[test]
fn opkg_database_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    for (variant, database) in [("v1", "var/lib/opkg/status"), ("usr-lib-v1", "usr/lib/opkg/status")] {
        let tree = packages().join("opkg").join(variant);
        let built = build(&tree, &args(&["--layers", "packages"]));
        assert!(built.report["ownership"].as_str().unwrap().contains(database), "{variant}: {}", built.report);
        assert_layer_count(&built, 64);
        assert_unpacks_to(&built, &tree);
        assert_layer_structure(&built, &tree);
        assert_packages_whole(&built, &owners(&packages().join(format!("opkg/{variant}.owners.tsv"))));
    }
}

#[test]
fn yocto_pkgdata_with_manifest_packages_each_in_one_layer_and_the_layers_give_back_the_tree() {
    let (tree, mut options) = yocto("v1", true);
    options.extend(args(&["--layers", "packages"]));
    let built = build(&tree, &options);
    assert!(built.report["ownership"].as_str().unwrap().contains("pkgdata"), "{}", built.report);
    assert_layer_count(&built, 64);
    assert_unpacks_to(&built, &tree);
    assert_layer_structure(&built, &tree);
    assert_packages_whole(&built, &owners(&packages().join("yocto/v1/rootfs.owners.tsv")));
}

#[test]
fn yocto_pkgdata_without_manifest_counts_the_packages_that_own_paths_of_the_rootfs() {
    // bzip2 is in pkgdata but not installed, and every recipe has an empty -dbg package: none may show up.
    let (tree, options) = yocto("v1", false);
    let built = build(&tree, &options);
    assert_eq!(built.report["layering"], "packages", "auto with --pkgdata");
    assert_unpacks_to(&built, &tree);
    assert_layer_structure(&built, &tree);
    assert_packages_whole(&built, &owners(&packages().join("yocto/v1/rootfs.owners.tsv")));
}

#[test]
fn layer_rules_take_their_paths_bottom_first_and_the_rest_goes_on_top() {
    // bin/gunzip is the target of the hardlink bin/uncompress, which no rule matches: it must follow its target.
    let rules: &[(&str, &[&str])] = &[
        ("zoneinfo", &["usr/share/zoneinfo/**"]),
        ("libs", &["lib/**", "lib64/**", "usr/lib/**"]),
        ("gunzip", &["bin/gunzip"]),
        ("docs", &["usr/share/doc/**", "usr/share/man/**", "usr/share/zoneinfo/**"]),
    ];
    let tree = packages().join("dpkg/v1");
    let listed = snapshot(&tree);
    assert_eq!(listed[&b"bin/uncompress"[..]].hardlink_group.as_deref(), Some(&b"bin/gunzip"[..]));
    let mut options = Vec::new();
    for (name, globs) in rules {
        options.extend(["--layer".to_string(), format!("{name}={}", globs.join(","))]);
    }
    let built = build(&tree, &options);
    assert_eq!(built.report["layering"], "paths");
    assert_unpacks_to(&built, &tree);
    assert_layer_structure(&built, &tree);
    assert_rules_followed(&built, rules);
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
        for (tree, tsv, extra) in [
            (packages().join("dpkg/v1"), packages().join("dpkg/v1.owners.tsv"), vec![]),
            (yocto("v1", true).0, packages().join("yocto/v1/rootfs.owners.tsv"), yocto("v1", true).1),
        ] {
            let mut options = args(&["--layers", "packages", "--max-layers", &max.to_string()]);
            options.extend(extra);
            let built = build(&tree, &options);
            assert_layer_count(&built, max);
            assert_unpacks_to(&built, &tree);
            assert_layer_structure(&built, &tree);
            assert_packages_whole(&built, &owners(&tsv));
        }
    }
    let one = build(&packages().join("dpkg/v1"), &args(&["--layers", "packages", "--max-layers", "1"]));
    assert_eq!(one.layers().len(), 1, "{:?}", one.layers());
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

// --- engines ---------------------------------------------------------------------------------------------------------

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

// --- stability ------------------------------------------------------------------------------------------------------

/// A variant (v1, changed, added, removed) of a fixture kind (dpkg, opkg, yocto) with its ownership options.
fn variant(kind: &str, variant: &str) -> (PathBuf, Vec<String>) {
    match kind {
        "yocto" => yocto(variant, true),
        _ => (packages().join(kind).join(variant), vec![]),
    }
}

fn build_variant(kind: &str, name: &str, previous: Option<&Built>) -> Built {
    let (tree, mut options) = variant(kind, name);
    if let Some(previous) = previous {
        options.extend(["--previous".to_string(), previous.reference()]);
    }
    build(&tree, &options)
}

/// The layers of `new` that `old` lacks, and the layers of `old` that `new` lacks, by digest.
fn changed_layers(old: &Built, new: &Built) -> (Vec<Layer>, Vec<Layer>) {
    let (old_layers, new_layers) = (old.layers(), new.layers());
    let has = |layers: &[Layer], l: &Layer| layers.iter().any(|o| o.digest == l.digest);
    (
        new_layers.iter().filter(|l| !has(&old_layers, l)).cloned().collect(),
        old_layers.iter().filter(|l| !has(&new_layers, l)).cloned().collect(),
    )
}

fn is_top(layer: &Layer) -> bool {
    layer.content.as_deref() == Some("unowned")
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
fn rebuilding_gives_bit_identical_layers() {
    for kind in ["dpkg", "opkg", "yocto"] {
        let a = build_variant(kind, "v1", None);
        let b = build_variant(kind, "v1", None);
        assert_eq!(a.report["manifest_digest"], b.report["manifest_digest"], "{kind}");
        assert_eq!(a.digests(), b.digests(), "{kind}");
    }
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
        let v1 = build_variant(kind, "v1", None);
        let added = build_variant(kind, "added", Some(&v1));
        let (new, gone) = changed_layers(&v1, &added);
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
        let v1 = build_variant(kind, "v1", None);
        let removed = build_variant(kind, "removed", Some(&v1));
        let (new, gone) = changed_layers(&v1, &removed);
        assert_eq!(new.len(), 1, "{kind}: new layers {new:?}");
        assert!(is_top(&new[0]), "{kind}: {new:?}");
        let mut gone_packages: Vec<Vec<String>> = gone.iter().map(|l| l.packages.clone()).collect();
        gone_packages.sort();
        assert_eq!(gone_packages, [vec![], args(&["hello"])], "{kind}: layers gone {gone:?}");
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
    let mut gone_packages: Vec<Vec<String>> = gone.iter().map(|l| l.packages.clone()).collect();
    gone_packages.sort();
    assert_eq!(gone_packages, [vec![], args(&["hello"]), args(&["zlib1g"])], "{gone:?}");
    assert_diff_reports(&added, &removed, &new);
    assert_unpacks_to(&removed, &packages().join("dpkg/removed"));
    // The same layers as removed built straight from v1: the way there does not matter.
    assert_eq!(removed.digests(), build_variant("dpkg", "removed", Some(&v1)).digests());
    // v1 -> changed -> v1 again: every digest of v1 comes back.
    let changed = build_variant("dpkg", "changed", Some(&v1));
    assert_eq!(build_variant("dpkg", "v1", Some(&changed)).digests(), v1.digests());
}

// --- bad input ------------------------------------------------------------------------------------------------------

/// A scratch directory holding an image at `existing.tar` from an earlier run, which a failed run must not touch.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let tiny = dir.path().join("tiny");
        std::fs::create_dir_all(tiny.join("bin")).unwrap();
        std::fs::copy("/bin/true", tiny.join("bin/true")).unwrap();
        run(bin().current_dir(dir.path()).args(["tiny", "-q", "-o", "oci-archive:existing.tar"]));
        std::fs::remove_dir_all(&tiny).unwrap();
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn listing(&self) -> Vec<String> {
        common::listing(self.dir.path())
    }

    /// Runs `rootfs2image ARGS -o oci:fresh -o oci-archive:existing.tar`; asserts one error line naming every one of
    /// `words`, exit 1, no `fresh`, `existing.tar` unchanged and nothing else left behind.
    fn assert_refused(&self, arguments: &[String], words: &[&str]) {
        let before = (self.listing(), std::fs::read(self.path("existing.tar")).unwrap());
        let out = run_failing(bin().current_dir(self.dir.path()).args(arguments).args([
            "-o",
            "oci:fresh",
            "-o",
            "oci-archive:existing.tar",
        ]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{arguments:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{arguments:?}: not one line: {stderr}");
        assert!(stderr.starts_with("rootfs2image: error: "), "{arguments:?}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{arguments:?}: `{word}` not in: {stderr}");
        }
        assert!(!self.path("fresh").exists(), "{arguments:?}");
        assert_eq!((self.listing(), std::fs::read(self.path("existing.tar")).unwrap()), before, "{arguments:?}");
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn a_directory_that_is_not_pkgdata_is_refused_naming_it() {
    let ws = Workspace::new();
    let not_pkgdata = packages().join("dpkg/v1/etc");
    let (tree, _) = yocto("v1", false);
    ws.assert_refused(
        &[shown(&tree), "--pkgdata".into(), shown(&not_pkgdata)],
        &[&shown(&not_pkgdata), "not a Yocto pkgdata directory"],
    );
}

#[test]
fn a_manifest_naming_an_unknown_package_is_refused_naming_both() {
    let ws = Workspace::new();
    let manifest = ws.path("image.manifest");
    let mut text = std::fs::read_to_string(packages().join("yocto/v1/image.manifest")).unwrap();
    text.push_str("no-such-package core2-64 1.0-r0\n");
    std::fs::write(&manifest, text).unwrap();
    let (tree, mut options) = yocto("v1", false);
    options.insert(0, shown(&tree));
    options.extend(["--package-manifest".into(), shown(&manifest)]);
    ws.assert_refused(&options, &["image.manifest", "no-such-package"]);
}

#[test]
fn a_package_database_that_does_not_parse_is_refused_naming_the_file() {
    for (database, layers) in [("var/lib/dpkg/status", "auto"), ("var/lib/opkg/status", "packages")] {
        let ws = Workspace::new();
        let tree = ws.path("broken");
        let status = tree.join(database);
        std::fs::create_dir_all(status.parent().unwrap().join("info")).unwrap();
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::copy("/bin/true", tree.join("bin/true")).unwrap();
        std::fs::write(&status, "Package: hello\nStatus install ok installed\n\n").unwrap();
        ws.assert_refused(&[shown(&tree), "--layers".into(), layers.into()], &[database, "line 2"]);
    }
}

#[test]
fn a_layer_glob_that_does_not_compile_is_refused_naming_it() {
    let ws = Workspace::new();
    ws.assert_refused(
        &[shown(&packages().join("dpkg/v1.tar")), "--layer".into(), "libs=usr/[lib".into()],
        &["usr/[lib", "does not compile"],
    );
}

#[test]
fn layers_packages_without_any_ownership_is_refused() {
    let ws = Workspace::new();
    let tree = packages().join("yocto/v1/rootfs.tar");
    ws.assert_refused(&[shown(&tree), "--layers".into(), "packages".into()], &[&shown(&tree), "--pkgdata"]);
}

#[test]
fn a_previous_image_that_does_not_exist_is_refused_naming_it() {
    let ws = Workspace::new();
    let tree = shown(&packages().join("dpkg/v1.tar"));
    for previous in ["oci:no-such-layout:1", "oci-archive:no-such.tar"] {
        ws.assert_refused(&[tree.clone(), "--previous".into(), previous.into()], &["no-such"]);
    }
}

// --- a base image ---------------------------------------------------------------------------------------------------

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
    let registry = std::env::var("IMGCRAFT_REGISTRY")
        .expect("IMGCRAFT_REGISTRY unset: source the env.sh that scripts/setup-test-env.sh writes");
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
    let ws = Workspace::new();
    let arm = build(&fixtures().join("rootfs-arm64.tar.zst"), &[]);
    let derived = shown(&packages().join("base/derived.tar"));
    ws.assert_refused(&[derived.clone(), "--base".into(), arm.reference()], &["arm64", "amd64"]);
    ws.assert_refused(&[derived.clone(), "--base".into(), "oci:no-such-base:1".into()], &["no-such-base"]);
    // The base's layers and the whiteout layer count against --max-layers.
    let (base, _) = base_and_derived(&[], &[]);
    ws.assert_refused(
        &[derived, "--base".into(), base.reference(), "--max-layers".into(), "2".into()],
        &[&base.reference(), "--max-layers 2"],
    );
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
