//! How often layering by packages keeps every layer that holds no changed package, with no previous image: the
//! grouping is a pure function of the package set and sizes, so this measures it on a real package set without
//! building any image. For each installed package it changes that package alone (size x1.1, x0.9 and x2, removal)
//! and adds one new package, and counts the changes after which every other layer keeps exactly its members (and so,
//! with their files unchanged, its bytes and digest).
//!
//!     cargo run --release --example grouping_stability -- ROOTFS [MAX_LAYERS]
//!
//! ROOTFS is a directory or tarball with an opkg or dpkg database (`/` measures the build host's own packages).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use imgcraft::layering::packages::{Ownership, Package};
use imgcraft::layering::plan::{Group, LayerPlan};
use imgcraft::progress::Progress;

/// A package set: each package's name, size, dependencies and files.
type Set = Vec<(Package, Vec<Vec<u8>>)>;

/// The layers a set is grouped into, as sets of member names (files-less packages are in no layer).
fn layers(set: &Set, max_layers: usize) -> BTreeSet<BTreeSet<String>> {
    let mut ownership = Ownership::new("measure");
    let mut sorted: Vec<&(Package, Vec<Vec<u8>>)> = set.iter().collect();
    sorted.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (package, paths) in sorted {
        let index = ownership.add_package(package.clone());
        // One path is enough to find a package's layer: the grouping looks at names, sizes and dependencies only.
        if let Some(path) = paths.first() {
            ownership.add_path(path, index);
        }
    }
    let plan = LayerPlan::packages(ownership, max_layers, None);
    let mut groups: BTreeMap<Group, BTreeSet<String>> = BTreeMap::new();
    for (package, paths) in set {
        if let Some(path) = paths.first() {
            groups.entry(plan.route(path).0).or_default().insert(package.name.clone());
        }
    }
    groups.into_values().collect()
}

/// Whether every layer of `before` that holds none of `changed` is also a layer of `after`. A package that is new has
/// no layer before: the layer it joins (`after`'s, without it) is then the one allowed to change.
fn keeps_others(before: &BTreeSet<BTreeSet<String>>, after: &BTreeSet<BTreeSet<String>>, changed: &str) -> bool {
    let is_new = !before.iter().any(|layer| layer.contains(changed));
    let joined: Option<BTreeSet<String>> = if is_new {
        after.iter().find(|layer| layer.contains(changed)).map(|layer| {
            let mut others = layer.clone();
            others.remove(changed);
            others
        })
    } else {
        None
    };
    before
        .iter()
        .filter(|layer| !layer.contains(changed) && joined.as_ref() != Some(*layer))
        .all(|layer| after.contains(layer))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(rootfs) = args.get(1) else {
        eprintln!("usage: grouping_stability ROOTFS [MAX_LAYERS]");
        std::process::exit(2);
    };
    let max_layers: usize = args.get(2).map(|n| n.parse().expect("MAX_LAYERS is a number")).unwrap_or(64);
    let source = imgcraft::rootfs::source::RootfsSource::without_copy(Path::new(rootfs), rootfs);
    let ownership = imgcraft::layering::packages::database::read(&source, &Progress::new(false))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("{rootfs} has no opkg or dpkg database"));
    let by_package = ownership.paths_by_package();
    let set: Set = ownership
        .packages()
        .iter()
        .map(|p| {
            let paths = by_package.get(p.name.as_str()).map(|v| v.iter().map(|p| p.to_vec()).collect());
            (p.clone(), paths.unwrap_or_default())
        })
        .collect();
    let with_files = set.iter().filter(|(_, paths)| !paths.is_empty()).count();
    let before = layers(&set, max_layers);
    let big = set.iter().filter(|(p, _)| p.size >= 4 << 20).count();
    println!(
        "{rootfs}: {} packages ({with_files} with files, {big} of 4 MiB or more), {} package layers (max {max_layers})",
        set.len(),
        before.len()
    );

    let mut table: Vec<(String, usize, usize)> = Vec::new();
    let mut measure = |label: &str, change: &dyn Fn(&mut Set, usize) -> String| {
        let (mut kept, mut total) = (0, 0);
        for i in 0..set.len() {
            if set[i].1.is_empty() {
                continue;
            }
            let mut changed = set.clone();
            let name = change(&mut changed, i);
            total += 1;
            if keeps_others(&before, &layers(&changed, max_layers), &name) {
                kept += 1;
            }
        }
        table.push((label.to_string(), kept, total));
    };
    for (label, factor) in [("size x1.1", 1.1), ("size x0.9", 0.9), ("size x2", 2.0)] {
        measure(label, &|s: &mut Set, i: usize| {
            s[i].0.size = (s[i].0.size as f64 * factor) as u64;
            s[i].0.name.clone()
        });
    }
    measure("removed", &|s: &mut Set, i: usize| s.remove(i).0.name);
    measure("one added (small)", &|s: &mut Set, i: usize| {
        let name = format!("new-package-{i}");
        s.push((
            Package { name: name.clone(), size: 10_000, ..Package::default() },
            vec![format!("opt/{name}").into_bytes()],
        ));
        name
    });
    measure("one added (8 MiB)", &|s: &mut Set, i: usize| {
        let name = format!("new-package-{i}");
        s.push((
            Package { name: name.clone(), size: 8 << 20, ..Package::default() },
            vec![format!("opt/{name}").into_bytes()],
        ));
        name
    });
    println!("{:<20} {:>8} {:>8} {:>7}", "change", "kept", "of", "share");
    for (label, kept, total) in table {
        println!("{label:<20} {kept:>8} {total:>8} {:>6.1}%", 100.0 * kept as f64 / total.max(1) as f64);
    }
}
