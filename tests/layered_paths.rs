//! Layered images by path (issue 6): `--layer NAME=GLOBS` rules take their paths bottom first, a hardlink follows
//! its target, the rest goes on top, and the layers give back the input tree; a glob that does not compile is
//! refused in one line with nothing written.
#![cfg(feature = "engine-tests")]

mod common;

use common::layered::{
    Built, assert_conversion_refused, assert_layer_structure, assert_unpacks_to, build, placement, shown,
    workspace_with_an_image,
};
use common::{packages, snapshot};

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
fn a_layer_glob_that_does_not_compile_is_refused_naming_it() {
    let ws = workspace_with_an_image();
    assert_conversion_refused(
        &ws,
        &[shown(&packages().join("dpkg/v1.tar")), "--layer".into(), "libs=usr/[lib".into()],
        &["usr/[lib", "does not compile"],
    );
}
