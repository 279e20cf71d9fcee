//! End-to-end tests against real engines and tools: Docker, podman, skopeo, umoci, oci-image-tool, and arm64
//! under qemu-user. `scripts/test.sh` prepares the machine (engines, binfmt, fixtures) and runs these with
//! `--features engine-tests`.
#![cfg(feature = "engine-tests")]

mod common;

use std::process::Command;

use common::{Engine, assert_same_tree, bin, fixtures, run, snapshot};

fn convert(input: &str, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    run(bin().current_dir(out.path()).arg(fixtures().join(input)).args(extra).arg("--quiet"));
    out
}

#[test]
fn umoci_unpack_gives_back_the_input_tree_entry_by_entry() {
    let out = convert("rootfs-amd64.tar.xz", &["-o", "oci:layout:1.0"]);
    let bundle = out.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(out.path().join("layout:1.0")).arg(&bundle));
    let expected = snapshot(&fixtures().join("rootfs-amd64"));
    assert_same_tree(&expected, &snapshot(&bundle.join("rootfs")));
}

#[test]
fn the_snapshot_sees_the_attributes_the_fixture_was_made_with() {
    // Guards the comparison above: a snapshot that missed xattrs or hardlinks would make it pass vacuously.
    let tree = snapshot(&fixtures().join("rootfs-amd64"));
    let cap = &tree[&b"usr/bin/ping-cap"[..]];
    assert!(cap.xattrs.contains_key("security.capability"), "{cap:?}");
    assert_eq!(tree[&b"usr/bin/suid-tool"[..]].mode, 0o4755);
    assert_eq!(tree[&b"usr/share/hl/b"[..]].hardlink_group.as_deref(), Some(&b"usr/share/hl/a"[..]));
    assert!(tree.values().any(|a| a.rdev == Some((1, 3))));
    assert!(tree.values().any(|a| a.kind == "fifo"));
    assert!(tree.keys().any(|p| p.len() > 200));
    assert!(tree.keys().any(|p| std::str::from_utf8(p).is_err()));
    assert!(tree.values().any(|a| a.uid == 3_000_000));
}

#[test]
fn oci_image_tool_validates_the_layout() {
    let out = convert("rootfs-amd64.tar", &["-o", "oci:layout:1.0"]);
    let stdout = run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref", "name=1.0"])
        .arg(out.path().join("layout")));
    assert!(stdout.contains("Validation succeeded"), "{stdout}");
}

#[test]
fn skopeo_reads_the_image_under_every_transport_with_one_digest() {
    let out = convert(
        "rootfs-amd64.tar.gz",
        &[
            "-t",
            "myorg/minimal:1.0",
            "-o",
            "oci:layout:1.0",
            "-o",
            "oci-archive:o.tar",
            "-o",
            "docker-archive:d.tar",
            "--json",
        ],
    );
    let mut digests = Vec::new();
    for reference in ["oci:layout:1.0", "oci-archive:o.tar", "oci-archive:o.tar:docker.io/myorg/minimal:1.0"] {
        let json = run(Command::new("skopeo").current_dir(out.path()).args(["inspect", reference]));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["Architecture"], "amd64", "{reference}");
        assert_eq!(value["Os"], "linux", "{reference}");
        digests.push(value["Digest"].as_str().unwrap().to_string());
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    // docker-archive: skopeo recomputes a Docker schema-2 manifest, so compare the config instead.
    let config =
        run(Command::new("skopeo").current_dir(out.path()).args(["inspect", "--config", "docker-archive:d.tar"]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Cmd"][0], "/bin/sh");
}

#[test]
fn docker_loads_the_archive_and_runs_it_with_every_attribute_intact() {
    let out = convert("rootfs-amd64.tar.zst", &["-t", "imgcraft-test/amd64:1", "-o", "oci-archive:image.tar"]);
    let loaded = Engine::Docker.load(&out.path().join("image.tar"));
    assert!(loaded.contains("imgcraft-test/amd64:1"), "{loaded}");
    let script = "stat -c '%a %u %g %Y' /usr/bin/suid-tool /tmp /srv/shared; \
                  [ $(stat -c %i /usr/share/hl/a) = $(stat -c %i /usr/share/hl/b) ] && echo hardlinked; uname -m";
    let stdout = Engine::Docker.run("imgcraft-test/amd64:1", None, &["/bin/sh", "-c", script]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "4755 0 0 1700000000", "{stdout}");
    assert_eq!(lines[1], "1777 0 0 1700000000", "{stdout}");
    assert!(lines[2].starts_with("2775 0 1000 "), "{stdout}");
    assert_eq!(lines[3..], ["hardlinked", "x86_64"], "{stdout}");
    Engine::Docker.remove("imgcraft-test/amd64:1");
}

#[test]
fn docker_runs_the_arm64_image_under_qemu_user() {
    let out = convert("rootfs-arm64.tar.zst", &["-t", "imgcraft-test/arm64:1", "-o", "docker-archive:image.tar"]);
    Engine::Docker.load(&out.path().join("image.tar"));
    assert_eq!(Engine::Docker.run("imgcraft-test/arm64:1", Some("linux/arm64"), &["uname", "-m"]).trim(), "aarch64");
    let inspect = run(Engine::Docker.command().args([
        "image",
        "inspect",
        "-f",
        "{{.Architecture}}/{{.Variant}}",
        "imgcraft-test/arm64:1",
    ]));
    assert_eq!(inspect.trim(), "arm64/v8");
    Engine::Docker.remove("imgcraft-test/arm64:1");
}

#[test]
fn podman_loads_both_archive_kinds_under_the_tag_and_runs_them() {
    let out = convert(
        "rootfs-amd64.tar.bz2",
        &["-t", "imgcraft-test/podman:1", "-o", "oci-archive:o.tar", "-o", "docker-archive:d.tar"],
    );
    let image = "docker.io/imgcraft-test/podman:1";
    for archive in ["o.tar", "d.tar"] {
        let loaded = Engine::Podman.load(&out.path().join(archive));
        assert!(loaded.contains(image), "{archive}: {loaded}");
        let script = "stat -c '%a %u %g' /usr/bin/suid-tool /var/empty; cat /usr/share/hl/b";
        let stdout = Engine::Podman.run(image, None, &["/bin/sh", "-c", script]);
        assert_eq!(stdout, "4755 0 0\n700 1000 1000\nhardlinked\n", "{archive}");
        Engine::Podman.remove(image);
    }
}

#[test]
fn podman_runs_the_arm64_image_under_qemu_user() {
    let out = convert("rootfs-arm64.tar", &["-t", "imgcraft-test/podman-arm64:1", "-o", "oci-archive:o.tar"]);
    Engine::Podman.load(&out.path().join("o.tar"));
    let image = "docker.io/imgcraft-test/podman-arm64:1";
    assert_eq!(Engine::Podman.run(image, Some("linux/arm64"), &["uname", "-m"]).trim(), "aarch64");
    Engine::Podman.remove(image);
}

#[test]
fn every_input_compression_gives_the_same_manifest_digest() {
    let mut digests = Vec::new();
    for suffix in ["tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2"] {
        let out = tempfile::tempdir().unwrap();
        let json = run(bin().current_dir(out.path()).arg(fixtures().join(format!("rootfs-amd64.{suffix}"))).args([
            "--json",
            "-o",
            "oci:layout",
        ]));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        digests.push((suffix, value["manifest_digest"].as_str().unwrap().to_string()));
    }
    assert!(digests.iter().all(|(_, d)| *d == digests[0].1), "{digests:?}");
}

#[test]
fn a_directory_and_its_yocto_style_tarball_give_the_same_layer_content() {
    let tar = convert("rootfs-amd64.tar", &["-o", "oci:layout", "--json"]);
    let dir = tempfile::tempdir().unwrap();
    run(bin().current_dir(dir.path()).arg(fixtures().join("rootfs-amd64")).args(["-o", "oci:layout", "--quiet"]));
    let unpack = |layout: &std::path::Path, name: &str| {
        let bundle = layout.parent().unwrap().join(name);
        run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:latest", layout.display())).arg(&bundle));
        snapshot(&bundle.join("rootfs"))
    };
    assert_same_tree(&unpack(&tar.path().join("layout"), "a"), &unpack(&dir.path().join("layout"), "b"));
}

#[test]
fn inspect_reads_what_docker_save_writes() {
    let out = convert("rootfs-amd64.tar", &["-t", "imgcraft-test/saved:1", "-o", "docker-archive:image.tar"]);
    Engine::Docker.load(&out.path().join("image.tar"));
    let saved = out.path().join("saved.tar");
    run(Engine::Docker.command().args(["save", "-o"]).arg(&saved).arg("imgcraft-test/saved:1"));
    let report = run(bin().arg("inspect").arg("--json").arg(format!("docker-archive:{}", saved.display())));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let ours = run(bin()
        .arg("inspect")
        .arg("--json")
        .arg(format!("docker-archive:{}", out.path().join("image.tar").display())));
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    // Docker keeps the config byte for byte and stores the layer uncompressed: same config, same diff_id.
    assert_eq!(report["config_digest"], ours["config_digest"]);
    assert_eq!(report["layers"][0]["diff_id"], ours["layers"][0]["diff_id"]);
    assert_eq!(report["names"][0], "imgcraft-test/saved:1");
    Engine::Docker.remove("imgcraft-test/saved:1");
}

#[test]
fn arm_v7_is_detected_from_arm_attributes_and_runs_under_qemu_user() {
    let out = tempfile::tempdir().unwrap();
    let summary = run(bin().current_dir(out.path()).arg(fixtures().join("rootfs-armhf.tar.zst")).args([
        "-t",
        "imgcraft-test/armv7:1",
        "-o",
        "docker-archive:image.tar",
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!((summary["architecture"].as_str(), summary["variant"].as_str()), (Some("arm"), Some("v7")));
    assert_eq!(summary["platform_source"], "detected from `bin/busybox`");
    Engine::Docker.load(&out.path().join("image.tar"));
    assert_eq!(Engine::Docker.run("imgcraft-test/armv7:1", Some("linux/arm/v7"), &["uname", "-m"]).trim(), "armv7l");
    Engine::Docker.remove("imgcraft-test/armv7:1");
    Engine::Podman.load(&out.path().join("image.tar"));
    let image = "docker.io/imgcraft-test/armv7:1";
    assert_eq!(Engine::Podman.run(image, Some("linux/arm/v7"), &["uname", "-m"]).trim(), "armv7l");
    Engine::Podman.remove(image);
}
