//! Layered images as the layering tests (tests/layered_*.rs) read them, on the package fixtures of
//! scripts/make-package-fixtures.sh: an image built into a layout of its own with its `--json` report, its layers'
//! annotations and tar members (listed with Python's tarfile, a reader independent of the crate's own), and what
//! every layered image must satisfy: the layers applied in order give back the input tree, directories are stubs
//! below the top layer, each package's files sit in one layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::command::{bin, json, run};
use super::fixtures::packages;
use super::refusal::assert_refused;
use super::tree::{assert_same_tree, snapshot};
use super::workspace::Workspace;

/// A Yocto variant's rootfs with the options that give its ownership: pkgdata and (optionally) the image manifest.
pub fn yocto(variant: &str, manifest: bool) -> (PathBuf, Vec<String>) {
    let top = packages().join("yocto").join(variant);
    let mut args = vec!["--pkgdata".to_string(), top.join("pkgdata").display().to_string()];
    if manifest {
        args.extend(["--package-manifest".to_string(), top.join("image.manifest").display().to_string()]);
    }
    (top.join("rootfs"), args)
}

/// What a layer descriptor says it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub packages: Vec<String>,
    pub rule: Option<String>,
    pub content: Option<String>,
}

/// An image written to `oci:layout:img` in a temporary directory of its own, with the `--json` report.
pub struct Built {
    pub dir: tempfile::TempDir,
    pub report: Value,
}

impl Built {
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }

    pub fn reference(&self) -> String {
        format!("oci:{}:img", self.layout().display())
    }

    pub fn blob(&self, digest: &str) -> PathBuf {
        self.layout().join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    pub fn manifest(&self) -> Value {
        let index = json(&std::fs::read_to_string(self.layout().join("index.json")).unwrap());
        json(&std::fs::read_to_string(self.blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap())
    }

    pub fn config(&self) -> Value {
        json(&std::fs::read_to_string(self.blob(self.manifest()["config"]["digest"].as_str().unwrap())).unwrap())
    }

    /// The manifest's layers, bottom first.
    pub fn layers(&self) -> Vec<Layer> {
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

    pub fn digests(&self) -> Vec<String> {
        self.layers().into_iter().map(|l| l.digest).collect()
    }

    /// Every layer's tar members, bottom first.
    pub fn listings(&self) -> Vec<Vec<Member>> {
        let blobs: Vec<PathBuf> = self.layers().iter().map(|l| self.blob(&l.digest)).collect();
        list_tars(&blobs)
    }

    /// `umoci unpack` of the image: the layers applied as an engine applies them.
    pub fn unpack(&self) -> PathBuf {
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
pub fn build(input: &Path, args: &[String]) -> Built {
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

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One tar member: its path as the layer has it (no `./`, no trailing `/`), tar type flag, link target and mtime.
#[derive(Clone, Debug)]
pub struct Member {
    pub path: String,
    pub kind: char,
    pub link: String,
    pub mtime: i64,
}

impl Member {
    pub fn is_dir(&self) -> bool {
        self.kind == '5'
    }
    pub fn is_hardlink(&self) -> bool {
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
pub fn list_tars(tars: &[PathBuf]) -> Vec<Vec<Member>> {
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
pub fn owners(tsv: &Path) -> BTreeMap<String, String> {
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
pub fn placement(listings: &[Vec<Member>]) -> BTreeMap<String, usize> {
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

/// The layers applied in order equal `tree`, attribute by attribute.
pub fn assert_unpacks_to(built: &Built, tree: &Path) {
    assert_same_tree(&snapshot(tree), &snapshot(&built.unpack()));
}

/// Each layer's files, directories and hardlinks are where the layering promises: a hardlink after its target in
/// the same layer; lower layers carry directories only as stubs with mtime 0, the top one every directory of the
/// tree (it sets their real attributes).
pub fn assert_layer_structure(built: &Built, tree: &Path) {
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
pub fn assert_packages_whole(built: &Built, owners: &BTreeMap<String, String>) {
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
pub fn assert_layer_count(built: &Built, max: usize) {
    let count = built.layers().len();
    assert!((2..=max).contains(&count), "{count} layers, expected 2 to {max}");
}
/// A variant (v1, changed, added, removed) of a fixture kind (dpkg, opkg, yocto) with its ownership options.
pub fn variant(kind: &str, variant: &str) -> (PathBuf, Vec<String>) {
    match kind {
        "yocto" => yocto(variant, true),
        _ => (packages().join(kind).join(variant), vec![]),
    }
}

pub fn build_variant(kind: &str, name: &str, previous: Option<&Built>) -> Built {
    let (tree, mut options) = variant(kind, name);
    if let Some(previous) = previous {
        options.extend(["--previous".to_string(), previous.reference()]);
    }
    build(&tree, &options)
}

/// A workspace holding an image at `existing.tar` from an earlier run, which a refused run must not touch.
pub fn workspace_with_an_image() -> Workspace {
    let ws = Workspace::new();
    let tiny = ws.path("tiny");
    std::fs::create_dir_all(tiny.join("bin")).unwrap();
    std::fs::copy("/bin/true", tiny.join("bin/true")).unwrap();
    run(bin().current_dir(ws.dir.path()).args(["tiny", "-q", "-o", "oci-archive:existing.tar"]));
    std::fs::remove_dir_all(&tiny).unwrap();
    ws
}

/// Runs `rootfs2image ARGUMENTS -o oci:fresh -o oci-archive:existing.tar` in `ws` (made by
/// [`workspace_with_an_image`]) and asserts the refusal: naming every one of `words`, no `fresh`, `existing.tar`
/// unchanged and nothing else left behind.
pub fn assert_conversion_refused(ws: &Workspace, arguments: &[String], words: &[&str]) {
    let (fresh, existing) = (ws.path("fresh"), ws.path("existing.tar"));
    assert!(existing.is_file(), "no earlier image in the workspace");
    assert_refused(&[ws.dir.path(), &fresh, &existing], words, || {
        let outputs = ["-o", "oci:fresh", "-o", "oci-archive:existing.tar"];
        bin().current_dir(ws.dir.path()).args(arguments).args(outputs).output().unwrap()
    });
}

pub fn shown(path: &Path) -> String {
    path.display().to_string()
}
