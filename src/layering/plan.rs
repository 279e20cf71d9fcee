//! How a rootfs is split into layers: the layering mode, the path rules of `--layer`, and the [`LayerPlan`] built
//! from them or from package groups ([`crate::layering::grouping`]). A plan answers, for each path, which [`Group`]
//! (layer) it goes to; [`crate::layer::set`] writes the layers.
//!
//! Directories carry their real attributes only in the top layer: a lower layer holds the parent directories its
//! files need with mtime 0 (see [`crate::layer::set`]), so a directory whose mtime changed because another package
//! added a file there does not change that layer; apko gets the same effect by clamping every mtime.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use globset::{GlobSet, GlobSetBuilder};

use crate::digest::Digest;
use crate::error::Error;
use crate::layering::grouping::group_packages;
use crate::layering::packages::Ownership;

/// Layer descriptor annotations that say what a layer holds, read back by `--previous` and `diff`.
pub const ANNOTATION_PACKAGES: &str = "org.imgcraft.layer.packages";
pub const ANNOTATION_RULE: &str = "org.imgcraft.layer.rule";
pub const ANNOTATION_CONTENT: &str = "org.imgcraft.layer.content";

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
        let invalid = |problem: String| Error::Invalid(format!("layer rule `{s}`: {problem}"));
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

    /// Packages grouped into at most `layers - 1` layers under the top one (see [`crate::layering::grouping`]).
    pub fn packages(ownership: Ownership, layers: usize, previous: Option<&PreviousLayers>) -> LayerPlan {
        let previous = previous.map(|p| p.groups.as_slice());
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

    /// The package ownership the plan routes by, if it routes by packages.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.ownership.as_ref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layering::grouping::tests::{many, ownership};

    #[test]
    fn the_top_layer_takes_what_no_package_claims() {
        let plan = LayerPlan::packages(ownership(&many(&[])), 10, None);
        assert_eq!(plan.order().last(), Some(&Group::Rest));
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
        assert!(err.starts_with("layer rule `bad=usr/[lib`: the glob `usr/[lib` does not compile"), "{err}");
        assert!("noequals".parse::<PathRule>().is_err());
    }
}
