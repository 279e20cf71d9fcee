//! How a rootfs is split into layers: the layering mode, the path rules of `--layer`, and the grouping of packages
//! into at most `--max-layers` layers. A [`LayerPlan`] answers, for each path, which [`Group`] (layer) it goes to;
//! [`crate::layer::set`] writes the layers.
//!
//! The grouping is built so that a layer stays bit-identical from build to build while its packages do not change:
//! - it is a pure function of the package set and the packages' sizes, and each package's place depends only on
//!   itself: big packages (at least [`OWN_LAYER_MIN_SIZE`]) get layers of their own, the others are spread over a
//!   fixed number of shared layers by a hash of their name, as nix's buildLayeredImage gives popular store paths
//!   their own layers and merges the rest; so adding, removing or changing one package changes only its own layer
//!   (see [`group_fresh`] for the one exception);
//! - with `--previous`, the groups recorded in the previous image's layer annotations are kept wherever their
//!   packages still exist, and only new packages are grouped afresh;
//! - directories carry their real attributes only in the top layer: a lower layer holds the parent directories its
//!   files need with mtime 0 (see `layer_set`), so a directory whose mtime changed because another package added a
//!   file there does not change this layer; apko gets the same effect by clamping every mtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use globset::{GlobSet, GlobSetBuilder};

use crate::digest::Digest;
use crate::error::Error;
use crate::layering::packages::Ownership;

/// Layer descriptor annotations that say what a layer holds, read back by `--previous` and `diff`.
pub const ANNOTATION_PACKAGES: &str = "org.imgcraft.layer.packages";
pub const ANNOTATION_RULE: &str = "org.imgcraft.layer.rule";
pub const ANNOTATION_CONTENT: &str = "org.imgcraft.layer.content";

/// Packages at least this large (installed size) get a layer of their own. Smaller ones share layers: on a large
/// Debian rootfs (700 MiB, 198 packages) 35 packages are this big and hold 85% of the bytes, so each changed big
/// package costs a device its own layer and each small one a shared layer of about 1% of the image.
pub const OWN_LAYER_MIN_SIZE: u64 = 4 << 20;

/// Docker and containerd fail past about 125 layers; 64 leaves room for images built on this one.
pub const DEFAULT_MAX_LAYERS: usize = 64;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayerMode {
    /// `packages` when package ownership is known, else `single`.
    #[default]
    Auto,
    Single,
    Packages,
    Paths,
}

impl FromStr for LayerMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(LayerMode::Auto),
            "single" => Ok(LayerMode::Single),
            "packages" => Ok(LayerMode::Packages),
            "paths" => Ok(LayerMode::Paths),
            _ => Err(Error::Invalid(format!("unknown layering `{s}`: use auto, single, packages or paths"))),
        }
    }
}

impl fmt::Display for LayerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayerMode::Auto => "auto",
            LayerMode::Single => "single",
            LayerMode::Packages => "packages",
            LayerMode::Paths => "paths",
        })
    }
}

/// `--layer NAME=GLOB[,GLOB...]`: the paths a named layer takes. Globs use `globset`'s syntax with `*` stopping at
/// `/` (`**` crosses it), matched against paths without a leading `/` or `./`.
#[derive(Clone, Debug)]
pub struct PathRule {
    pub name: String,
    pub patterns: Vec<String>,
    matcher: GlobSet,
}

impl FromStr for PathRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |problem: String| Error::Invalid(format!("--layer `{s}`: {problem}"));
        let (name, globs) = s.split_once('=').ok_or_else(|| invalid("expected NAME=GLOB[,GLOB...]".into()))?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(invalid("the layer name must be non-empty, without spaces or commas".into()));
        }
        let mut builder = GlobSetBuilder::new();
        let mut patterns = Vec::new();
        for glob in globs.split(',') {
            let pattern = glob.trim().trim_start_matches("./").trim_start_matches('/');
            if pattern.is_empty() {
                return Err(invalid("an empty glob".into()));
            }
            let compiled = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| invalid(format!("the glob `{glob}` does not compile: {}", e.kind())))?;
            builder.add(compiled);
            patterns.push(pattern.to_string());
        }
        let matcher = builder.build().map_err(|e| invalid(format!("the globs do not compile: {e}")))?;
        Ok(PathRule { name: name.to_string(), patterns, matcher })
    }
}

impl PathRule {
    fn matches(&self, path: &[u8]) -> bool {
        // globset 0.4.16 (the last for Rust 1.75) has no `Candidate::from_bytes`; on Unix a path is its bytes.
        use std::os::unix::ffi::OsStrExt;
        self.matcher.is_match_candidate(&globset::Candidate::new(std::ffi::OsStr::from_bytes(path)))
    }
}

/// Which layer an entry goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Everything, in `single` mode.
    Whole,
    /// A group of packages, by index into [`LayerPlan::package_groups`].
    Packages(usize),
    /// The paths of a `--layer` rule, by index.
    Rule(usize),
    /// Paths no package or rule claims, and every directory's real attributes: always the top layer.
    Rest,
}

/// The layers of a previous image, as its annotations describe them: each layer's package names.
#[derive(Clone, Debug, Default)]
pub struct PreviousLayers {
    pub groups: Vec<Vec<String>>,
    pub digests: BTreeSet<Digest>,
}

/// The layers a rootfs is split into and the rule that routes each path to one of them.
#[derive(Debug)]
pub struct LayerPlan {
    ownership: Option<Ownership>,
    /// Package indexes of each package group, in layer order (bottom first).
    package_groups: Vec<Vec<u32>>,
    /// Package index -> its group.
    group_of: HashMap<u32, usize>,
    rules: Vec<PathRule>,
}

impl LayerPlan {
    pub fn single() -> LayerPlan {
        LayerPlan { ownership: None, package_groups: vec![], group_of: HashMap::new(), rules: vec![] }
    }

    pub fn paths(rules: Vec<PathRule>) -> LayerPlan {
        LayerPlan { ownership: None, package_groups: vec![], group_of: HashMap::new(), rules }
    }

    /// Packages grouped into at most `layers - 1` layers under the top one (see the module's notes).
    pub fn packages(ownership: Ownership, layers: usize, previous: Option<&PreviousLayers>) -> LayerPlan {
        let package_groups = group_packages(&ownership, layers.saturating_sub(1), previous);
        let group_of =
            package_groups.iter().enumerate().flat_map(|(g, members)| members.iter().map(move |&p| (p, g))).collect();
        LayerPlan { ownership: Some(ownership), package_groups, group_of, rules: vec![] }
    }

    pub fn is_single(&self) -> bool {
        self.ownership.is_none() && self.rules.is_empty()
    }

    /// Where directories (with their real attributes) go: the top layer.
    pub fn directory_group(&self) -> Group {
        if self.is_single() { Group::Whole } else { Group::Rest }
    }

    /// The group of a non-directory path (normal form), and the package that owns it.
    pub fn route(&self, path: &[u8]) -> (Group, Option<u32>) {
        if let Some(ownership) = &self.ownership {
            return match ownership.owner(path) {
                Some(package) => match self.group_of.get(&package) {
                    Some(&group) => (Group::Packages(group), Some(package)),
                    None => (Group::Rest, Some(package)),
                },
                None => (Group::Rest, None),
            };
        }
        if self.rules.is_empty() {
            return (Group::Whole, None);
        }
        match self.rules.iter().position(|rule| rule.matches(path)) {
            Some(i) => (Group::Rule(i), None),
            None => (Group::Rest, None),
        }
    }

    pub fn package_name(&self, package: u32) -> &str {
        self.ownership.as_ref().map(|o| o.package(package).name.as_str()).unwrap_or("")
    }

    pub fn rule_name(&self, rule: usize) -> &str {
        &self.rules[rule].name
    }

    /// Where the ownership came from, for the summary.
    pub fn ownership_source(&self) -> Option<&str> {
        self.ownership.as_ref().map(|o| o.source.as_str())
    }

    /// The order layers take in the image, bottom first: package groups (base packages first) or rules in order,
    /// then the rest.
    pub fn order(&self) -> Vec<Group> {
        let mut order: Vec<Group> = (0..self.package_groups.len()).map(Group::Packages).collect();
        order.extend((0..self.rules.len()).map(Group::Rule));
        order.push(if self.is_single() { Group::Whole } else { Group::Rest });
        order
    }
}

/// Groups packages into at most `slots` groups, bottom first.
fn group_packages(ownership: &Ownership, slots: usize, previous: Option<&PreviousLayers>) -> Vec<Vec<u32>> {
    let packages = ownership.packages();
    if slots == 0 {
        return vec![];
    }
    let by_name: HashMap<&str, u32> = packages.iter().enumerate().map(|(i, p)| (p.name.as_str(), i as u32)).collect();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut placed = vec![false; packages.len()];
    if let Some(previous) = previous {
        for names in &previous.groups {
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
mod tests {
    use super::*;
    use crate::layering::packages::Package;

    fn ownership(packages: &[(&str, u64, &[&str])]) -> Ownership {
        let mut ownership = Ownership::new("test");
        let mut sorted = packages.to_vec();
        sorted.sort_by_key(|p| p.0);
        for (name, size, depends) in sorted {
            let index = ownership.add_package(Package {
                name: name.to_string(),
                size,
                depends: depends.iter().map(|d| d.to_string()).collect(),
            });
            ownership.add_path(format!("usr/share/{name}/file").as_bytes(), index);
        }
        ownership
    }

    fn named_groups(plan: &LayerPlan) -> Vec<Vec<String>> {
        let ownership = plan.ownership.as_ref().unwrap();
        plan.package_groups.iter().map(|g| g.iter().map(|&p| ownership.package(p).name.clone()).collect()).collect()
    }

    fn many(
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
        let before = named_groups(&LayerPlan::packages(ownership(&many(&[])), 10, None));
        assert!(before.len() <= 9, "{before:?}");
        for extra in ["newapp", "a", "zz-tool", "libnew"] {
            let added = named_groups(&LayerPlan::packages(ownership(&many(&[(extra, 5000, &["libc6"])])), 10, None));
            only_one_group_changed(&before, &added, extra);
        }
        for gone in ["curl", "vim", "expat"] {
            let mut fewer = many(&[]);
            fewer.retain(|p| p.0 != gone);
            let removed = named_groups(&LayerPlan::packages(ownership(&fewer), 10, None));
            only_one_group_changed(&before, &removed, gone);
        }
    }

    #[test]
    fn base_packages_go_lowest_and_big_ones_alone() {
        let plan = LayerPlan::packages(ownership(&many(&[])), 10, None);
        let groups = named_groups(&plan);
        assert!(groups[0].contains(&"libc6".to_string()), "{groups:?}");
        // 7 slots: 3 own layers for the largest big packages.
        let alone: Vec<_> = groups.iter().filter(|g| g.len() == 1).collect();
        assert!(alone.iter().any(|g| g[0] == "ncurses"), "{groups:?}");
        assert_eq!(plan.order().last(), Some(&Group::Rest));
    }

    #[test]
    fn previous_groups_are_kept_and_new_packages_grouped_apart() {
        let previous = PreviousLayers {
            groups: vec![vec!["busybox".into(), "zlib".into(), "gone".into()], vec!["libc6".into()]],
            digests: BTreeSet::new(),
        };
        let packages =
            ownership(&[("libc6", 100, &[]), ("busybox", 10, &["libc6"]), ("zlib", 10, &[]), ("app", 1, &[])]);
        let groups = named_groups(&LayerPlan::packages(packages, 64, Some(&previous)));
        assert_eq!(groups, [vec!["libc6"], vec!["app"], vec!["busybox", "zlib"]]);
    }

    #[test]
    fn max_layers_bounds_the_groups() {
        for layers in 1..6 {
            let plan = LayerPlan::packages(ownership(&many(&[])), layers, None);
            assert!(plan.order().len() <= layers.max(1), "{layers}: {:?}", plan.order());
        }
    }

    #[test]
    fn rules_take_the_first_match_and_refuse_bad_globs() {
        let plan = LayerPlan::paths(vec!["libs=usr/lib/**,lib/*".parse().unwrap(), "all=**".parse().unwrap()]);
        assert_eq!(plan.route(b"usr/lib/x/y.so").0, Group::Rule(0));
        assert_eq!(plan.route(b"lib/libc.so").0, Group::Rule(0));
        assert_eq!(plan.route(b"lib/sub/libc.so").0, Group::Rule(1));
        let only = LayerPlan::paths(vec!["etc=/etc/*".parse().unwrap()]);
        assert_eq!(only.route(b"etc/passwd").0, Group::Rule(0));
        assert_eq!(only.route(b"etc/ssh/config").0, Group::Rest);
        let err = "bad=usr/[lib".parse::<PathRule>().unwrap_err().to_string();
        assert!(err.starts_with("--layer `bad=usr/[lib`: the glob `usr/[lib` does not compile"), "{err}");
        assert!("noequals".parse::<PathRule>().is_err());
    }
}
