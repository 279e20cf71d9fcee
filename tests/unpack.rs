//! `rootfs2image unpack IMAGE DIR`: the layers applied by an engine's rules give the tree `umoci unpack` gives,
//! entry by entry; hostile layers are refused with one line naming the image, the layer and the entry, and nothing
//! is written outside DIR (nor DIR itself); DIR is replaced only with --force. The comparisons with umoci run with
//! the feature `engine-tests` (scripts/test.sh installs umoci).

mod common;

use std::path::Path;

use common::image::write_layout;
use common::tar::{Entry, Kind, archive};
use common::{Workspace, assert_refused, run};
#[cfg(feature = "engine-tests")]
use common::{assert_same_tree, snapshot};
use serde_json::json;

/// A v2 `security.capability` granting CAP_NET_RAW, effective (linux/capability.h `vfs_cap_data`).
const CAP_NET_RAW: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn hardlink(path: &str, target: &str) -> Entry {
    Entry::new(path, Kind::Hardlink(target.into()))
}

/// Two layers that use every rule: replacement both ways between files and directories, a whiteout, an opaque
/// directory with a new child of the same layer listed before the marker, a hardlink across layers, and every kind
/// and attribute (owners, setuid, sticky, xattrs with a file capability, devices, a fifo, symlinks as written).
fn engine_rule_layers() -> Vec<Vec<u8>> {
    let lower = archive(&[
        Entry::dir("etc").mtime(1_600_000_000),
        Entry::file("etc/keep", b"old\n"),
        Entry::file("etc/gone", b"deleted by the upper layer\n"),
        Entry::dir("var"),
        Entry::dir("var/cache").mode(0o750).owner(0, 4),
        Entry::file("var/cache/old1", b"1"),
        Entry::dir("var/cache/sub"),
        Entry::file("var/cache/sub/old2", b"2"),
        Entry::dir("bin"),
        Entry::file("bin/tool", b"#!/bin/sh\n").mode(0o4755),
        Entry::file("bin/group-tool", b"#!/bin/sh\n").mode(0o2755).owner(0, 6),
        Entry::dir("dev"),
        Entry::new("dev/null", Kind::Char(1, 3)).mode(0o666),
        Entry::new("dev/loop0", Kind::Block(7, 0)).mode(0o660).owner(0, 6),
        Entry::new("dev/pipe", Kind::Fifo).mode(0o640),
        Entry::dir("usr"),
        Entry::file("usr/ping", b"\x7fELF").mode(0o755).xattr("security.capability", &CAP_NET_RAW),
        Entry::file("usr/noted", b"x").xattr("user.note", b"kept"),
        Entry::symlink("usr/abs-link", "/etc/keep"),
        Entry::symlink("usr/dangling", "../missing/nothing"),
        Entry::dir("becomes-file"),
        Entry::file("becomes-file/child", b"c"),
        Entry::file("becomes-dir", b"f"),
        Entry::file("usr/shared", b"linked twice\n").mtime(1_500_000_000),
        hardlink("usr/shared-too", "usr/shared"),
    ]);
    let upper = archive(&[
        Entry::file("etc/.wh.gone", b""),
        Entry::file("var/cache/new", b"this layer's own").mtime(1_650_000_000),
        Entry::file("var/cache/.wh..wh..opq", b""),
        Entry::file("becomes-file", b"now a file"),
        Entry::dir("becomes-dir").mode(0o700),
        Entry::file("becomes-dir/inner", b"i"),
        Entry::file("etc/keep", b"new\n").mode(0o600).owner(1000, 1000).mtime(1_700_000_100),
        Entry::dir("srv").mode(0o1777).owner(1, 2).mtime(1_234_567_890),
        hardlink("usr/shared-three", "usr/shared"),
        Entry::dir("home"),
        Entry::dir("home/user").owner(1000, 1000).mode(0o2775),
    ]);
    vec![lower, upper]
}

fn unpack(ws: &Workspace, image: &str, dir: &str) -> String {
    run(ws.cmd().args(["unpack", image, dir]))
}

#[cfg(feature = "engine-tests")]
#[test]
fn layers_apply_by_the_engine_rules_as_umoci_applies_them() {
    let ws = Workspace::new();
    write_layout(&ws.path("layout"), "1", &engine_rule_layers(), json!({"Cmd": ["/bin/tool"]}), json!({}));
    unpack(&ws, "oci:layout:1", "bundle");
    run(std::process::Command::new("umoci")
        .current_dir(ws.dir.path())
        .args(["unpack", "--image", "layout:1", "umoci"]));
    let ours = snapshot(&ws.path("bundle/rootfs"));
    assert_same_tree(&snapshot(&ws.path("umoci/rootfs")), &ours);

    // What umoci agrees on, spelled out, so that a shared mistake cannot pass.
    let at = |path: &str| ours.get(path.as_bytes()).unwrap_or_else(|| panic!("{path} missing"));
    assert!(!ours.contains_key(&b"etc/gone"[..]), "the whiteout did not delete etc/gone");
    let cache: Vec<&[u8]> = ours.keys().filter(|p| p.starts_with(b"var/cache/")).map(|p| &p[..]).collect();
    assert_eq!(cache, [&b"var/cache/new"[..]], "the opaque directory keeps only the upper layer's child");
    assert_eq!((at("var/cache").mode, at("var/cache").gid), (0o750, 4), "an opaque directory keeps its attributes");
    assert_eq!((at("becomes-file").kind, at("becomes-dir").kind), ("file", "dir"));
    assert_eq!((at("etc/keep").uid, at("etc/keep").mode, at("etc/keep").mtime), (1000, 0o600, 1_700_000_100));
    assert_eq!((at("srv").mode, at("srv").uid, at("srv").gid, at("srv").mtime), (0o1777, 1, 2, 1_234_567_890));
    assert_eq!((at("bin/tool").mode, at("bin/group-tool").mode), (0o4755, 0o2755));
    assert_eq!(at("usr/ping").xattrs.get("security.capability").map(Vec::as_slice), Some(&CAP_NET_RAW[..]));
    assert_eq!(at("usr/abs-link").link.as_deref(), Some(&b"/etc/keep"[..]), "a symlink is stored as written");
    assert_eq!((at("dev/loop0").kind, at("dev/loop0").rdev), ("block", Some((7, 0))));
    assert_eq!(at("dev/pipe").kind, "fifo");
    assert_eq!(at("usr/shared-three").hardlink_group.as_deref(), Some(&b"usr/shared"[..]));
    assert_eq!(at("usr/shared-too").hardlink_group, at("usr/shared-three").hardlink_group);
    assert_eq!(at("etc").mtime, 1_600_000_000, "a directory's mtime is set after its children changed");
}

#[cfg(feature = "engine-tests")]
#[test]
fn a_converted_rootfs_unpacks_as_umoci_unpacks_it() {
    let ws = Workspace::new();
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    run(ws.cmd().arg(&rootfs).args(["-o", "oci:layout:1", "--layers", "paths", "--layer", "bin=bin/**", "-q"]));
    unpack(&ws, "oci:layout:1", "bundle");
    run(std::process::Command::new("umoci")
        .current_dir(ws.dir.path())
        .args(["unpack", "--image", "layout:1", "umoci"]));
    assert_same_tree(&snapshot(&ws.path("umoci/rootfs")), &snapshot(&ws.path("bundle/rootfs")));
    // And both are the input tree, every attribute of it.
    assert_same_tree(&snapshot(&common::fixtures().join("rootfs-amd64")), &snapshot(&ws.path("bundle/rootfs")));
}

/// A workspace with `outside/victim`, a file that no layer may reach, and an OCI layout at `layout` of the layers
/// `make` gives for the absolute path of `outside`. Returns the layers' digests too.
fn hostile_image(make: impl FnOnce(&str) -> Vec<Vec<u8>>) -> (Workspace, Vec<String>) {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("outside")).unwrap();
    ws.write("outside/victim", b"untouched");
    let layers = make(&ws.path("outside").display().to_string());
    let digests = write_layout(&ws.path("layout"), "1", &layers, json!({"Cmd": ["/bin/sh"]}), json!({}));
    (ws, digests)
}

/// Asserts that unpacking the workspace's image is refused naming the image, `layer` and `words`, and that
/// nothing changed outside (the workspace holds no bundle and no leftover, `outside/` its one file as it was).
fn assert_unpack_refused(ws: &Workspace, layer: &str, words: &[&str]) {
    let image = format!("oci:{}:1", ws.path("layout").display());
    let mut expected = vec![image.as_str(), layer];
    expected.extend(words);
    let untouched = [ws.dir.path(), &ws.path("outside"), &ws.path("outside/victim"), &ws.path("layout")];
    assert_refused(&untouched, &expected, || {
        ws.cmd().args(["unpack", &image]).arg(ws.path("bundle")).output().unwrap()
    });
}

#[test]
fn an_entry_through_a_symlink_of_the_same_or_an_earlier_layer_is_refused() {
    let (ws, digests) =
        hostile_image(|outside| vec![archive(&[Entry::symlink("evil", outside), Entry::file("evil/planted", b"x")])]);
    assert_unpack_refused(&ws, &digests[0], &["entry `evil/planted`", "`evil` is a symlink"]);

    let (ws, digests) = hostile_image(|outside| {
        vec![
            archive(&[Entry::dir("etc"), Entry::symlink("etc/evil", outside)]),
            archive(&[Entry::file("etc/evil/victim", b"overwritten")]),
        ]
    });
    assert_unpack_refused(&ws, &digests[1], &["entry `etc/evil/victim`", "`etc/evil` is a symlink"]);

    // A relative link climbing out is no different.
    let (ws, digests) = hostile_image(|_| {
        vec![archive(&[
            Entry::symlink("up", "../../../../../../../.."),
            Entry::dir("up/tmp"),
            Entry::file("up/tmp/x", b""),
        ])]
    });
    assert_unpack_refused(&ws, &digests[0], &["entry `up/tmp/`", "`up` is a symlink"]);
}

#[test]
fn names_climbing_out_of_the_root_are_refused() {
    for (name, problem) in [
        ("../planted", "climbs out of the root"),
        ("/../../planted", "climbs out of the root"),
        ("a/../../planted", "climbs out of the root"),
        ("a/../b", "`..` component"),
        ("../.wh.victim", "climbs out of the root"),
    ] {
        let (ws, digests) = hostile_image(|_| vec![archive(&[Entry::dir("a"), Entry::file(name, b"x")])]);
        assert_unpack_refused(&ws, &digests[0], &[&format!("entry `{name}`"), problem]);
    }
}

#[test]
fn a_whiteout_through_a_symlink_deletes_nothing_outside() {
    for marker in [".wh.victim", ".wh..wh..opq"] {
        let (ws, digests) = hostile_image(|outside| {
            vec![archive(&[Entry::symlink("evil", outside)]), archive(&[Entry::file(&format!("evil/{marker}"), b"")])]
        });
        assert_unpack_refused(&ws, &digests[1], &[&format!("entry `evil/{marker}`"), "`evil` is a symlink"]);
    }
}

#[test]
fn a_hardlink_to_outside_the_root_is_refused() {
    let (ws, digests) = hostile_image(|_| vec![archive(&[hardlink("stolen", "../../etc/passwd")])]);
    assert_unpack_refused(&ws, &digests[0], &["entry `stolen`", "outside the root"]);

    let (ws, digests) =
        hostile_image(|outside| vec![archive(&[Entry::symlink("evil", outside), hardlink("stolen", "evil/victim")])]);
    assert_unpack_refused(&ws, &digests[0], &["entry `stolen`", "`evil` is a symlink"]);

    let (ws, digests) = hostile_image(|_| vec![archive(&[hardlink("orphan", "no/such/file")])]);
    assert_unpack_refused(&ws, &digests[0], &["entry `orphan`", "which no earlier entry made"]);
}

#[test]
fn an_existing_bundle_is_replaced_only_with_force() {
    let ws = Workspace::new();
    let layer = |content: &[u8]| archive(&[Entry::dir("bin"), Entry::file("bin/marker", content)]);
    write_layout(&ws.path("one"), "1", &[layer(b"one")], json!({"Cmd": ["/bin/marker"]}), json!({}));
    write_layout(&ws.path("two"), "1", &[layer(b"two")], json!({"Cmd": ["/bin/marker"]}), json!({}));
    unpack(&ws, "oci:one:1", "bundle");
    let marker = ws.path("bundle/rootfs/bin/marker");
    assert_refused(&[ws.dir.path(), &ws.path("bundle"), &marker], &["`bundle`", "exists"], || {
        ws.cmd().args(["unpack", "oci:two:1", "bundle"]).output().unwrap()
    });
    let before = ws.listing();
    run(ws.cmd().args(["unpack", "--force", "oci:two:1", "bundle"]));
    assert_eq!(std::fs::read(&marker).unwrap(), b"two");
    assert_eq!(ws.listing(), before, "the replaced bundle left something behind");
}

#[test]
fn the_report_names_the_process_and_every_layer() {
    let ws = Workspace::new();
    let digests = write_layout(
        &ws.path("layout"),
        "1",
        &engine_rule_layers(),
        json!({"Entrypoint": ["/bin/tool", "-v"], "Cmd": ["x"], "User": "1000:6", "WorkingDir": "/srv"}),
        json!({}),
    );
    let report = common::json(&run(ws.cmd().args(["unpack", "--json", "oci:layout:1", "bundle"])));
    let layers: Vec<&str> =
        report["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers, digests);
    assert_eq!(report["args"], json!(["/bin/tool", "-v", "x"]));
    assert_eq!((report["user"]["uid"].as_u64(), report["user"]["gid"].as_u64()), (Some(1000), Some(6)));
    assert_eq!(report["cwd"], "/srv");
    assert!(Path::new(&ws.path("bundle/config.json")).is_file());
}
