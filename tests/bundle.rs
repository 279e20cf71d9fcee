//! Runtime bundles run by Debian's runc: the process sees the image's environment, working directory and user
//! (amd64, and arm64 under qemu-user), rootless too under `runc --root` as an unprivileged user; the
//! `oci-bundle:DIR` output holds the image just written, as `umoci unpack` gives it.
#![cfg(feature = "engine-tests")]

mod common;

use std::path::Path;
use std::process::Command;

use common::image::write_layout;
use common::tar::{Entry, archive};
use common::{Workspace, assert_refused, assert_same_tree, run, snapshot};
use serde_json::json;

/// The script every bundle runs: what the process sees, one item a line.
const PROBE: &str = r#"["/bin/sh","-c","id -u; id -g; pwd; echo \"$GREETING\"; uname -m"]"#;

/// Runs the bundle at `bundle` with runc, its state under `state`; returns standard output.
fn runc_run(runc: &mut Command, state: &Path, bundle: &Path, id: &str) -> String {
    run(runc.arg("--root").arg(state).args(["run", "--bundle"]).arg(bundle).arg(id))
}

/// Converts the fixture rootfs of `arch` with the probe as its command, `user`, a working directory and an
/// environment variable, to `oci:layout:1` in the workspace.
fn probe_image(ws: &Workspace, arch: &str, user: &str) {
    let rootfs = common::fixtures().join(format!("rootfs-{arch}.tar"));
    let args = ["--cmd", PROBE, "--user", user, "--workdir", "/home/user", "--env", "GREETING=hello there", "-q"];
    run(ws.cmd().arg(rootfs).args(["-o", "oci:layout:1"]).args(args));
}

#[test]
fn runc_runs_the_bundle_as_the_images_user_in_its_directory_with_its_environment() {
    for (arch, machine) in [("amd64", "x86_64"), ("arm64", "aarch64")] {
        let ws = Workspace::new();
        probe_image(&ws, arch, "user");
        run(ws.cmd().args(["unpack", "oci:layout:1", "bundle"]));
        let config = common::json(&std::fs::read_to_string(ws.path("bundle/config.json")).unwrap());
        assert_eq!(config["process"]["user"], json!({"uid": 1000, "gid": 1000}), "{arch}");
        assert_eq!(config["annotations"]["org.opencontainers.image.architecture"], arch);
        let out = runc_run(&mut Command::new("runc"), &ws.path("state"), &ws.path("bundle"), &format!("probe-{arch}"));
        assert_eq!(out, format!("1000\n1000\n/home/user\nhello there\n{machine}\n"), "{arch}");
    }
}

#[test]
fn the_oci_bundle_output_holds_the_image_just_written() {
    let ws = Workspace::new();
    let rootfs = common::fixtures().join("rootfs-amd64.tar");
    run(ws.cmd().arg(&rootfs).args(["--cmd", PROBE, "-o", "oci:layout:1", "-o", "oci-bundle:bundle", "-q"]));
    run(Command::new("umoci").current_dir(ws.dir.path()).args(["unpack", "--image", "layout:1", "umoci"]));
    assert_same_tree(&snapshot(&ws.path("umoci/rootfs")), &snapshot(&ws.path("bundle/rootfs")));
    let out = runc_run(&mut Command::new("runc"), &ws.path("state"), &ws.path("bundle"), "output");
    assert_eq!(out, "0\n0\n/\n\nx86_64\n");

    // An existing bundle is refused before any work: no other output is written either.
    assert_refused(&[ws.dir.path(), &ws.path("bundle")], &["`oci-bundle:bundle`", "exists", "--force"], || {
        ws.cmd().arg(&rootfs).args(["-o", "oci:second", "-o", "oci-bundle:bundle"]).output().unwrap()
    });
    // With --force it is replaced whole: the new image's command, nothing left of the old bundle.
    std::fs::write(ws.path("bundle/rootfs/left-behind"), b"old").unwrap();
    run(ws.cmd().arg(&rootfs).args(["--cmd", r#"["/bin/true"]"#, "--force", "-o", "oci-bundle:bundle", "-q"]));
    let config = common::json(&std::fs::read_to_string(ws.path("bundle/config.json")).unwrap());
    assert_eq!(config["process"]["args"], json!(["/bin/true"]));
    assert!(!ws.path("bundle/rootfs/left-behind").exists());
    assert_same_tree(&snapshot(&ws.path("umoci/rootfs")), &snapshot(&ws.path("bundle/rootfs")));
    // copy takes --force the same way.
    run(ws.cmd().args(["copy", "--force", "oci:layout:1", "oci-bundle:bundle"]));
    let config = common::json(&std::fs::read_to_string(ws.path("bundle/config.json")).unwrap());
    assert_eq!(config["process"]["args"], serde_json::from_str::<serde_json::Value>(PROBE).unwrap());
}

#[test]
fn a_bundle_that_cannot_be_finished_leaves_nothing() {
    let ws = Workspace::new();
    let layer = archive(&[Entry::dir("etc"), Entry::file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]);
    write_layout(&ws.path("nocmd"), "1", std::slice::from_ref(&layer), json!({}), json!({}));
    write_layout(&ws.path("nouser"), "1", &[layer], json!({"Cmd": ["/x"], "User": "app"}), json!({}));
    // No process at all: `sh`, as runc spec writes, and a warning saying so.
    let report = common::json(&run(ws.cmd().args(["unpack", "--json", "oci:nocmd:1", "nocmd-bundle"])));
    assert!(report["warnings"][0].as_str().unwrap().contains("neither an entrypoint nor a command"), "{report}");
    let config = common::json(&std::fs::read_to_string(ws.path("nocmd-bundle/config.json")).unwrap());
    assert_eq!(config["process"]["args"], json!(["sh"]));
    let before = ws.listing();
    assert_refused(&[ws.dir.path()], &["oci:nouser:1", "the user `app` is not in the rootfs's /etc/passwd"], || {
        ws.cmd().args(["unpack", "oci:nouser:1", "bundle"]).output().unwrap()
    });
    assert_eq!(ws.listing(), before);
}

#[test]
fn a_bundle_output_of_a_copy_or_a_conversion_passes_its_warnings_on_naming_it() {
    let ws = Workspace::new();
    let layer = archive(&[Entry::dir("etc"), Entry::file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]);
    write_layout(&ws.path("nocmd"), "1", &[layer], json!({}), json!({}));
    let warned = |output: &std::process::Output, bundle: &str| {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line =
            format!("rootfs2image: warning: oci-bundle:{}: the image config has neither", ws.path(bundle).display());
        assert!(stderr.lines().any(|l| l.starts_with(&line)), "{stderr}");
        let report = common::json(&String::from_utf8_lossy(&output.stdout));
        assert!(report["warnings"][0].as_str().unwrap().contains("neither an entrypoint nor a command"), "{report}");
    };
    let bundle = format!("oci-bundle:{}", ws.path("copied").display());
    warned(&ws.cmd().args(["copy", "--json", "oci:nocmd:1", &bundle]).output().unwrap(), "copied");
    // A rootfs without /bin/sh gets no default command either.
    let rootfs = ws.path("rootfs.tar");
    std::fs::write(&rootfs, archive(&[Entry::dir("etc"), Entry::file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")]))
        .unwrap();
    let bundle = format!("oci-bundle:{}", ws.path("converted").display());
    let output = ws.cmd().arg(&rootfs).args(["--arch", "amd64", "--json", "-o", &bundle]).output().unwrap();
    warned(&output, "converted");
}

/// A command run as `nobody` (uid and gid 65534, no other groups), with a home of its own.
fn as_nobody(program: &str, home: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", program]);
    c.env("HOME", home).env("XDG_RUNTIME_DIR", home);
    c
}

#[test]
fn a_rootless_bundle_runs_under_runc_as_an_unprivileged_user() {
    let ws = Workspace::new();
    probe_image(&ws, "amd64", "0");
    // The unprivileged user works in a directory of its own.
    let home = ws.path("nobody");
    std::fs::create_dir(&home).unwrap();
    run(Command::new("chown").args(["65534:65534"]).arg(&home));
    run(Command::new("chmod").args(["755"]).arg(ws.dir.path()));
    let userns = as_nobody("unshare", &home).args(["--user", "--map-root-user", "true"]).status().unwrap();
    if !userns.success() {
        eprintln!("skipped: this machine gives unprivileged users no user namespace, which rootless runc needs");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_rootfs2image");
    let image = format!("oci:{}:1", ws.path("layout").display());
    // Without --rootless, the owners nobody cannot set are refused, with what to do.
    let hint = "(hint: run as root, or unpack with --rootless";
    assert_refused(&[&home], &["cannot set the owner 0:0", hint], || {
        as_nobody(bin, &home).args(["unpack", &image]).arg(home.join("bundle")).output().unwrap()
    });
    let report = run(as_nobody(bin, &home).args(["unpack", "--rootless", "--json", &image]).arg(home.join("bundle")));
    let report = common::json(&report);
    // The fixture has device nodes and files owned by others, which nobody cannot make.
    assert!(report["left_out"]["devices"].as_u64() > Some(0), "{report}");
    assert!(report["left_out"]["owners"].as_u64() > Some(0), "{report}");
    let config = common::json(&std::fs::read_to_string(home.join("bundle/config.json")).unwrap());
    assert_eq!(config["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": 65534, "size": 1}]));
    let out = runc_run(&mut as_nobody("runc", &home), &home.join("state"), &home.join("bundle"), "rootless");
    assert_eq!(out, "0\n0\n/home/user\nhello there\nx86_64\n");
}

#[test]
fn an_image_on_a_registry_unpacks_into_a_bundle() {
    let registry = common::TestRegistry::start(common::RegistryConfig { port: Some(5160), ..Default::default() });
    let ws = Workspace::new();
    let image = format!("docker://{}/unpack/app:1", registry.addr);
    run(ws.cmd().arg(common::fixtures().join("rootfs-amd64.tar")).args(["--cmd", PROBE, "-o", &image, "-q"]));
    run(ws.cmd().args(["unpack", &image, "bundle"]));
    assert_same_tree(&snapshot(&common::fixtures().join("rootfs-amd64")), &snapshot(&ws.path("bundle/rootfs")));
    let out = runc_run(&mut Command::new("runc"), &ws.path("state"), &ws.path("bundle"), "from-registry");
    assert_eq!(out, "0\n0\n/\n\nx86_64\n");
}
