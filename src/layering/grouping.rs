//! Grouping packages into at most `--max-layers` layers so that a layer stays bit-identical from build to build while
//! its packages do not change:
//! - the grouping is a pure function of the package set and the packages' sizes, and each package's place depends
//!   only on itself: big packages (at least [`OWN_LAYER_MIN_SIZE`]) get layers of their own, the others are spread
//!   over a fixed number of shared layers by a hash of their name, as nix's buildLayeredImage gives popular store
//!   paths their own layers and merges the rest; so adding, removing or changing one package changes only its own
//!   layer (see [`group_fresh`] for the one exception);
//! - with `--previous`, the groups recorded in the previous image's layer annotations are kept wherever their
//!   packages still exist, and only new packages are grouped afresh.

use std::collections::{BTreeMap, HashMap};

use crate::digest::Digest;
use crate::layering::packages::Ownership;

/// Packages at least this large (installed size) get a layer of their own. Smaller ones share layers: on a large
/// Debian rootfs (700 MiB, 198 packages) 35 packages are this big and hold 85% of the bytes, so each changed big
/// package costs a device its own layer and each small one a shared layer of about 1% of the image.
pub const OWN_LAYER_MIN_SIZE: u64 = 4 << 20;

/// Groups packages into at most `slots` groups, bottom first; `previous` holds the package names of each layer of a
/// previous image, whose groups are kept.
pub(crate) fn group_packages(ownership: &Ownership, slots: usize, previous: Option<&[Vec<String>]>) -> Vec<Vec<u32>> {
    let packages = ownership.packages();
    if slots == 0 {
        return vec![];
    }
    let by_name: HashMap<&str, u32> = packages.iter().enumerate().map(|(i, p)| (p.name.as_str(), i as u32)).collect();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut placed = vec![false; packages.len()];
    if let Some(previous) = previous {
        for names in previous {
            let members: Vec<u32> = names.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect();
            if members.is_empty() {
                continue;
            }
            for &m in &members {
                placed[m as usize] = true;
            }
            groups.push(members);
        }
    }
    let fresh: Vec<u32> = (0..packages.len() as u32).filter(|&p| !placed[p as usize]).collect();
    if !fresh.is_empty() {
        if groups.len() >= slots {
            // No room left for new layers: the new packages share the last one (its digest changes, the others'
            // do not).
            groups.truncate(slots);
            groups.last_mut().expect("slots > 0").extend(fresh);
        } else {
            groups.extend(group_fresh(ownership, &fresh, slots - groups.len()));
        }
    }
    for group in &mut groups {
        group.sort_by(|&a, &b| packages[a as usize].name.cmp(&packages[b as usize].name));
    }
    // Base packages lowest: a group ranks by how many packages depend on its members, directly or not.
    let dependents = dependent_counts(ownership);
    let rank = |group: &Vec<u32>| group.iter().map(|&p| dependents[p as usize]).max().unwrap_or(0);
    groups.sort_by(|a, b| {
        rank(b).cmp(&rank(a)).then_with(|| packages[a[0] as usize].name.cmp(&packages[b[0] as usize].name))
    });
    groups
}

/// Groups packages with no previous place. Packages of at least [`OWN_LAYER_MIN_SIZE`] get a layer each when there
/// are no more of them than three quarters of the slots (else they share those slots by a hash of their name); the
/// others share the remaining quarter by a hash of their name. A package's group depends only on its name, whether
/// it is big, and whether the big ones outnumber their slots: adding, removing or changing one package moves no
/// other, except when that changes whether the big ones fit.
fn group_fresh(ownership: &Ownership, fresh: &[u32], slots: usize) -> Vec<Vec<u32>> {
    let packages = ownership.packages();
    let shared_slots = slots.div_ceil(4);
    let own_slots = slots - shared_slots;
    let (big, small): (Vec<u32>, Vec<u32>) =
        fresh.iter().partition(|&&p| own_slots > 0 && packages[p as usize].size >= OWN_LAYER_MIN_SIZE);
    let mut groups: BTreeMap<(bool, u64), Vec<u32>> = BTreeMap::new();
    let big_fit = big.len() <= own_slots;
    for &p in &big {
        let name = &packages[p as usize].name;
        let key = if big_fit { name_hash(name) } else { name_hash(name) % own_slots as u64 };
        groups.entry((true, key)).or_default().push(p);
    }
    for &p in &small {
        groups.entry((false, name_hash(&packages[p as usize].name) % shared_slots as u64)).or_default().push(p);
    }
    groups.into_values().collect()
}

/// A hash of a package name that never changes between versions, machines or runs.
fn name_hash(name: &str) -> u64 {
    let digest = Digest::of(name.as_bytes());
    let hex = digest.hex();
    u64::from_str_radix(&hex[..16], 16).expect("a sha256 digest is hex")
}

/// For each package, how many packages of the set depend on it, directly or through others.
fn dependent_counts(ownership: &Ownership) -> Vec<usize> {
    let packages = ownership.packages();
    let by_name: HashMap<&str, usize> = packages.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
    let depends: Vec<Vec<usize>> =
        packages.iter().map(|p| p.depends.iter().filter_map(|d| by_name.get(d.as_str()).copied()).collect()).collect();
    let mut counts = vec![0; packages.len()];
    for start in 0..packages.len() {
        // Every package `start` reaches is depended on by it.
        let mut seen = vec![false; packages.len()];
        let mut stack = depends[start].clone();
        while let Some(p) = stack.pop() {
            if p == start || std::mem::replace(&mut seen[p], true) {
                continue;
            }
            counts[p] += 1;
            stack.extend(&depends[p]);
        }
    }
    counts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::layering::packages::Package;

    pub(crate) fn ownership(packages: &[(&str, u64, &[&str])]) -> Ownership {
        let mut ownership = Ownership::new("test");
        let mut sorted = packages.to_vec();
        sorted.sort_by_key(|p| p.0);
        for (name, size, depends) in sorted {
            let index = ownership.add_package(Package {
                name: name.to_string(),
                size,
                depends: depends.iter().map(|d| d.to_string()).collect(),
                ..Package::default()
            });
            ownership.add_path(format!("usr/share/{name}/file").as_bytes(), index);
        }
        ownership
    }

    /// The package names of each group, for `layers` layers in all, as `LayerPlan::packages` asks for them.
    fn named_groups(ownership: &Ownership, layers: usize, previous: Option<&[Vec<String>]>) -> Vec<Vec<String>> {
        let groups = group_packages(ownership, layers.saturating_sub(1), previous);
        groups.iter().map(|g| g.iter().map(|&p| ownership.package(p).name.clone()).collect()).collect()
    }

    pub(crate) fn many(
        extra: &[(&'static str, u64, &'static [&'static str])],
    ) -> Vec<(&'static str, u64, &'static [&'static str])> {
        let names: &[&'static str] = &[
            "libc6",
            "busybox",
            "zlib",
            "openssl",
            "python3",
            "python3-numpy",
            "perl",
            "vim",
            "git",
            "curl",
            "tzdata",
            "netbase",
            "ca-certificates",
            "libssl3",
            "libffi",
            "ncurses",
            "readline",
            "sqlite3",
            "expat",
            "xz",
        ];
        let mut packages: Vec<(&'static str, u64, &'static [&'static str])> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, if i % 3 == 0 { (i as u64 + 2) << 20 } else { 1000 * i as u64 }, &["libc6"][..]))
            .collect();
        packages[0].2 = &[];
        packages.extend_from_slice(extra);
        packages
    }

    /// Every group of `before` is in `after`, except at most one, which `after` holds with `changed` added or
    /// removed.
    fn only_one_group_changed(before: &[Vec<String>], after: &[Vec<String>], changed: &str) {
        let without = |g: &Vec<String>| g.iter().filter(|p| *p != changed).cloned().collect::<Vec<_>>();
        let lost: Vec<_> = before.iter().filter(|g| !after.contains(g)).collect();
        let gained: Vec<_> = after.iter().filter(|g| !before.contains(g)).collect();
        assert!(lost.len() <= 1 && gained.len() <= 1, "{before:?} -> {after:?}");
        for g in lost.iter().chain(&gained) {
            let other = if lost.contains(g) { gained.first() } else { lost.first() };
            assert_eq!(other.map(|o| without(o)).unwrap_or_default(), without(g), "{before:?} -> {after:?}");
        }
        assert!(!lost.is_empty() || !gained.is_empty(), "{changed} changed no group");
    }

    #[test]
    fn adding_or_removing_one_package_moves_no_other() {
        // 9 slots under the top layer: 6 for the 6 big packages (which fit, so each is alone), 3 shared.
        let before = named_groups(&ownership(&many(&[])), 10, None);
        assert!(before.len() <= 9, "{before:?}");
        for extra in ["newapp", "a", "zz-tool", "libnew"] {
            let added = named_groups(&ownership(&many(&[(extra, 5000, &["libc6"])])), 10, None);
            only_one_group_changed(&before, &added, extra);
        }
        for gone in ["curl", "vim", "expat"] {
            let mut fewer = many(&[]);
            fewer.retain(|p| p.0 != gone);
            let removed = named_groups(&ownership(&fewer), 10, None);
            only_one_group_changed(&before, &removed, gone);
        }
    }

    #[test]
    fn base_packages_go_lowest_and_big_ones_alone() {
        let groups = named_groups(&ownership(&many(&[])), 10, None);
        assert!(groups[0].contains(&"libc6".to_string()), "{groups:?}");
        // 7 slots: 3 own layers for the largest big packages.
        let alone: Vec<_> = groups.iter().filter(|g| g.len() == 1).collect();
        assert!(alone.iter().any(|g| g[0] == "ncurses"), "{groups:?}");
    }

    #[test]
    fn previous_groups_are_kept_and_new_packages_grouped_apart() {
        let previous = [vec!["busybox".into(), "zlib".into(), "gone".into()], vec!["libc6".into()]];
        let packages =
            ownership(&[("libc6", 100, &[]), ("busybox", 10, &["libc6"]), ("zlib", 10, &[]), ("app", 1, &[])]);
        let groups = named_groups(&packages, 64, Some(&previous));
        assert_eq!(groups, [vec!["libc6"], vec!["app"], vec!["busybox", "zlib"]]);
    }
}
