//! meta-imgcraft under a real BitBake: tests/bitbake/run.py builds an image recipe that inherits the imgcraft class
//! for OE-core's qemu machines, with BitBake's `bb` library from the PyPI package bitbake-setup and a minimal
//! configuration of our own (tests/bitbake). The images it deploys are checked with `rootfs2image inspect`, skopeo
//! and Docker. Needs python3 and PyPI (for the first run), Debian's pseudo (the fakeroot of do_rootfs and do_image*,
//! as in OE-core), skopeo, umoci, and the Docker engine of scripts/setup-test-env.sh (DOCKER, DOCKER_HOST).
#![cfg(feature = "engine-tests")]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::bitbake::{Build, CREATED, CREATED_EPOCH, PV, driver, inspect};
use common::{
    RegistryConfig, TestRegistry, assert_same_tree, bin, fixtures, run, run_failing, shared_registry, snapshot,
};

/// The image config as skopeo reads it (`skopeo inspect` alone shows no variant).
fn skopeo_config(reference: &str) -> Value {
    serde_json::from_str(&run(Command::new("skopeo").args(["inspect", "--config", reference]))).unwrap()
}

/// What every image the class makes carries: the platform, the standard labels and annotations, the creation time
/// from SOURCE_DATE_EPOCH; and skopeo reads the same.
fn assert_platform_and_labels(build: &Build, architecture: &str, variant: Option<&str>) {
    let reference = format!("oci-archive:{}", build.archive().display());
    let image = inspect(&reference);
    assert_eq!(image["verified"], true, "{image}");
    assert_eq!(image["architecture"], architecture, "{image}");
    assert_eq!(image["variant"].as_str(), variant, "{image}");
    assert_eq!(image["os"], "linux");
    assert_eq!(image["created"], CREATED);
    let labels = &image["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], PV, "{image}");
    assert_eq!(labels["org.opencontainers.image.title"], "imgcraft-test-image", "{image}");
    assert_eq!(image["annotations"]["org.opencontainers.image.version"], PV, "{image}");
    assert_eq!(build.var("pv"), PV);

    let config = skopeo_config(&reference);
    assert_eq!(config["architecture"], architecture, "{config}");
    assert_eq!(config["variant"].as_str(), variant, "{config}");
    assert_eq!(config["config"]["Labels"], *labels, "{config}");
    let summary: Value = serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &reference]))).unwrap();
    assert_eq!(summary["Digest"], image["manifest_digest"], "{summary}");
    assert_eq!(summary["Labels"], *labels, "{summary}");
}

/// Loads the build's archive into Docker, runs `args` in it (on `platform`, `linux/arm64`, if given), removes it.
fn docker_run(build: &Build, platform: Option<&str>, args: &[&str]) -> String {
    let loaded = run(common::docker().arg("load").arg("-i").arg(build.archive()));
    assert!(loaded.contains(&build.tag), "docker load said {loaded}");
    let mut c = common::docker();
    c.args(["run", "--rm", "--network", "none"]);
    if let Some(platform) = platform {
        c.args(["--platform", platform]);
    }
    let output = run(c.arg(&build.tag).args(args));
    run(common::docker().args(["rmi", &build.tag]));
    output.trim().to_owned()
}

#[test]
fn qemuarm64_image_is_arm64_v8_and_runs_in_docker() {
    let build = Build::new("arm64", "qemuarm64", &fixtures().join("rootfs-arm64.tar"), &[]);
    assert_eq!(build.var("target_arch"), "aarch64");
    assert_platform_and_labels(&build, "arm64", Some("v8"));
    assert_eq!(docker_run(&build, Some("linux/arm64"), &["uname", "-m"]), "aarch64");
}

#[test]
fn qemuarm_image_is_arm_v7_from_its_overrides_and_package_archs_and_runs_in_docker() {
    // qemuarm's TUNE_FEATURES name no ARM level: v7 comes from MACHINEOVERRIDES (armv7ve) and PACKAGE_EXTRA_ARCHS.
    let build = Build::new("armv7", "qemuarm", &fixtures().join("rootfs-armhf.tar"), &[]);
    assert_eq!(build.var("target_arch"), "arm");
    assert_platform_and_labels(&build, "arm", Some("v7"));
    assert_eq!(docker_run(&build, Some("linux/arm/v7"), &["uname", "-m"]), "armv7l");
}

#[test]
fn qemuriscv64_image_is_riscv64_without_variant() {
    // No riscv64 fixture: a small tree without ELF files, which rootfs2image takes for any --arch.
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/os-release"), "ID=imgcraft-test\n").unwrap();
    let tarball = dir.path().join("rootfs-riscv64.tar");
    run(Command::new("tar").arg("-cf").arg(&tarball).arg("-C").arg(&tree).arg("."));
    let build = Build::new("riscv64", "qemuriscv64", &tarball, &[]);
    assert_eq!(build.var("target_arch"), "riscv64");
    assert_platform_and_labels(&build, "riscv64", None);
}

#[test]
fn qemux86_64_image_is_amd64_and_runs_in_docker() {
    let build = Build::new("amd64", "qemux86-64", &fixtures().join("rootfs-amd64.tar"), &[]);
    assert_eq!(build.var("target_arch"), "x86_64");
    assert_platform_and_labels(&build, "amd64", None);
    assert_eq!(docker_run(&build, None, &["uname", "-m"]), "x86_64");
}

#[test]
fn container_settings_from_local_conf_reach_the_config_and_both_outputs_are_deployed() {
    let build = Build::new(
        "settings",
        "qemux86-64",
        &fixtures().join("rootfs-amd64.tar"),
        &[
            r#"IMGCRAFT_ENTRYPOINT = '["/bin/echo", "entry"]'"#,
            r#"IMGCRAFT_CMD = "from bitbake""#,
            r#"IMGCRAFT_ENV = "APP_MODE=test GREETING=hello""#,
            r#"IMGCRAFT_PORTS = "8080 53/udp""#,
            r#"IMGCRAFT_OUTPUTS = "archive layout""#,
        ],
    );
    let layout = build.linked("oci");
    assert!(layout.join("index.json").is_file(), "{} is no OCI layout", layout.display());
    let archive = build.archive();
    for reference in [format!("oci-archive:{}", archive.display()), format!("oci:{}", layout.display())] {
        let image = inspect(&reference);
        let config = &image["config"];
        assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/echo", "entry"]), "{reference}: {image}");
        assert_eq!(config["Cmd"], serde_json::json!(["from", "bitbake"]), "{reference}: {image}");
        let env: Vec<&str> = config["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert!(env.contains(&"APP_MODE=test") && env.contains(&"GREETING=hello"), "{reference}: {env:?}");
        let ports = config["ExposedPorts"].as_object().unwrap_or_else(|| panic!("{reference}: {image}"));
        let mut ports: Vec<&str> = ports.keys().map(String::as_str).collect();
        ports.sort();
        assert_eq!(ports, ["53/udp", "8080/tcp"], "{reference}");
        assert_eq!(image["architecture"], "amd64");
    }
    let config = skopeo_config(&format!("oci:{}", layout.display()));
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/bin/echo", "entry"]), "{config}");
    assert_eq!(docker_run(&build, None, &[]), "entry from bitbake");
    // OE-core's postfuncs found both outputs through the task's [subimages] flag: they made the links above and
    // recorded the files.
    let name = |link: &Path| std::fs::read_link(link).unwrap().to_str().unwrap().to_owned();
    assert_eq!(build.recorded_outputs("image_imgcraft"), [name(&archive), name(&layout)]);
}

#[test]
fn pseudo_alone_gives_the_image_the_rootfs_owners_devices_and_capabilities() {
    // do_rootfs unpacks the fixture under pseudo and do_image_imgcraft streams it out under pseudo. On disk the tree
    // is the building user's, without device nodes or capabilities, even when the build runs as root (whose tasks
    // BitBake's worker puts in a user namespace that maps only root, where mknod and chown to others fail anyway):
    // what the image carries can only come from pseudo's database.
    let build =
        Build::new("pseudo", "qemux86-64", &fixtures().join("rootfs-amd64.tar"), &[r#"IMGCRAFT_OUTPUTS = "layout""#]);
    let builder = std::fs::metadata(build.deploy_dir()).unwrap().uid();
    let on_disk = snapshot(Path::new(build.var("image_rootfs")));
    let entry = |path: &str| &on_disk[path.as_bytes()];
    assert_eq!(entry("dev/null-test").kind, "file", "{:?}", entry("dev/null-test"));
    assert_eq!(entry("usr/share/owners/huge-id").uid, builder, "{:?}", entry("usr/share/owners/huge-id"));
    assert!(entry("usr/bin/ping-cap").xattrs.is_empty(), "{:?}", entry("usr/bin/ping-cap"));
    let database = Path::new(build.var("pseudo_localstatedir")).join("files.db");
    assert!(database.is_file(), "{} is missing", database.display());

    // The image holds the fixture's tree exactly, mtimes clamped to REPRODUCIBLE_TIMESTAMP_ROOTFS.
    let layout = build.linked("oci");
    let bundle = tempfile::tempdir().unwrap();
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{PV}", layout.display()))
        .arg(bundle.path().join("bundle")));
    let mut expected = snapshot(&fixtures().join("rootfs-amd64"));
    for attrs in expected.values_mut() {
        attrs.mtime = attrs.mtime.min(CREATED_EPOCH);
    }
    assert_same_tree(&expected, &snapshot(&bundle.path().join("bundle/rootfs")));
}

#[test]
fn imgcraft_rootfs_type_converts_the_tar_zst_image_type_built_before_it() {
    // IMAGE_TYPEDEP:imgcraft makes do_image_imgcraft wait for do_image_tar and read its tar.zst.
    let build = Build::new(
        "rootfs-type",
        "qemuarm64",
        &fixtures().join("rootfs-arm64.tar"),
        &[r#"IMGCRAFT_ROOTFS_TYPE = "tar.zst""#],
    );
    assert_platform_and_labels(&build, "arm64", Some("v8"));
}

#[test]
fn imgcraft_push_task_pushes_the_deployed_archive_to_the_registry() {
    let registry = shared_registry();
    let destination = format!("docker://{registry}/imgcraft-bitbake-test/push:{PV}");
    let push_ref = format!("IMGCRAFT_PUSH_REF = \"{destination}\"");
    let build = Build::with_task(
        "push",
        "qemuarm64",
        &fixtures().join("rootfs-arm64.tar"),
        &[&push_ref, r#"IMGCRAFT_PUSH_ARGS = "--tls-verify=false""#],
        Some("imgcraft_push"),
    );
    let deployed = inspect(&format!("oci-archive:{}", build.archive().display()));
    let pushed: Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &destination])))
            .unwrap();
    assert_eq!(pushed["Digest"], deployed["manifest_digest"], "{pushed}");
    assert_eq!(pushed["Architecture"], "arm64", "{pushed}");
}

#[test]
fn layer_parses_with_the_series_it_names_and_not_with_others() {
    let parse_once = |series: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut c = driver();
        c.args(["--parse-only", "--machine", "qemux86-64", "--series", series, "--rootfs", "unused.tar"]);
        c.arg("--workdir").arg(dir.path());
        (c.output().unwrap(), dir)
    };
    // Once in a full CI run, with a build running beside it, bitbake exited 1 within a second having written nothing
    // at all to its log (not even an error), which no layer content can cause: such a run is tried once more, and
    // said so. A run that printed anything is judged as it is.
    let parse = |series: &str| {
        let (output, dir) = parse_once(series);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() && stderr.trim_end().ends_with("bitbake.log:") {
            eprintln!("{series}: bitbake exited {} with an empty log; parsing again:\n{stderr}", output.status);
            return parse_once(series);
        }
        (output, dir)
    };
    for series in ["scarthgap", "whinlatter", "wrynose", "blacksail"] {
        let (output, _dir) = parse(series);
        assert!(output.status.success(), "{series}: {}", String::from_utf8_lossy(&output.stderr));
    }
    let (output, _dir) = parse("kirkstone");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Layer imgcraft is not compatible"), "{stderr}");
}

#[test]
fn a_failing_task_fails_the_driver_with_the_task_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = driver();
    c.args(["--machine", "qemux86-64", "--rootfs", "/nonexistent/rootfs.tar"]).arg("--workdir").arg(dir.path());
    let output = run_failing(&mut c);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("do_rootfs") && stderr.contains("/nonexistent/rootfs.tar"), "{stderr}");
}

/// The layer descriptors of an image: (digest, the packages annotation).
fn layers_of(reference: &str) -> Vec<(String, String)> {
    let image = inspect(reference);
    assert_eq!(image["verified"], true, "{image}");
    let diff: Value = serde_json::from_str(&run(bin().args(["diff", "--json", reference, reference]))).unwrap();
    diff["shared_layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let packages: Vec<&str> = l["packages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            (l["digest"].as_str().unwrap().to_owned(), packages.join(" "))
        })
        .collect()
}

#[test]
fn packages_layering_from_pkgdata_keeps_every_unchanged_layer_on_the_next_build() {
    // Two builds deploying to one DEPLOY_DIR_IMAGE, the second with netbase rebuilt: IMGCRAFT_LAYERS defaults to
    // packages (PKGDATA_DIR and IMAGE_MANIFEST) and IMGCRAFT_PREVIOUS to nothing: the pure grouping alone keeps
    // every unchanged package's layer, and the image does not depend on what the deploy directory held.
    let yocto = fixtures().join("packages/yocto");
    let deploy = tempfile::tempdir().unwrap();
    let shared = format!("DEPLOY_DIR_IMAGE = \"{}\"", deploy.path().display());
    let first = Build::with_packages("layers-v1", "qemux86-64", &yocto.join("v1"), &[&shared]);
    let first_ref = format!("oci-archive:{}", std::fs::canonicalize(first.archive()).unwrap().display());
    let before = layers_of(&first_ref);
    assert!(before.len() >= 4, "one layer per package group and the top: {before:?}");
    let holding = |layers: &[(String, String)], package: &str| {
        layers.iter().filter(|(_, p)| p.split(' ').any(|n| n == package)).count()
    };
    for package in ["busybox-static", "libc6", "netbase", "tzdata", "hello"] {
        assert_eq!(holding(&before, package), 1, "{package} in one layer: {before:?}");
    }
    assert_eq!(holding(&before, "bzip2"), 0, "bzip2 is in pkgdata but not installed: {before:?}");
    assert_eq!(docker_run(&first, None, &["/usr/bin/hello"]), "Hello, world!");

    let second = Build::with_packages("layers-changed", "qemux86-64", &yocto.join("changed"), &[&shared]);
    assert_eq!(second.var("imgcraft_layers"), "packages");
    assert_eq!(second.var("imgcraft_previous"), "", "no previous image unless asked for");
    let second_ref = format!("oci-archive:{}", std::fs::canonicalize(second.archive()).unwrap().display());
    assert_ne!(first_ref, second_ref, "the second build deployed a new archive");
    let after = layers_of(&second_ref);
    let diff: Value = serde_json::from_str(&run(bin().args(["diff", "--json", &first_ref, &second_ref]))).unwrap();
    let new: Vec<&Value> = diff["new_layers"].as_array().unwrap().iter().collect();
    assert_eq!(new.len(), 1, "only netbase's layer is new: {diff}");
    assert_eq!(new[0]["packages"].as_array().unwrap().iter().filter(|p| *p == "netbase").count(), 1, "{diff}");
    assert_eq!(after.len(), before.len(), "{before:?} -> {after:?}");
    assert_eq!(diff["download_bytes"], new[0]["size"], "{diff}");

    // The same inputs in an empty deploy directory give the same image, byte for byte.
    let fresh = Build::with_packages("layers-changed", "qemux86-64", &yocto.join("changed"), &[]);
    let fresh_ref = format!("oci-archive:{}", std::fs::canonicalize(fresh.archive()).unwrap().display());
    assert_eq!(inspect(&fresh_ref)["manifest_digest"], inspect(&second_ref)["manifest_digest"]);
}

/// The output of a driver run expected to fail: its stdout and stderr together.
fn failing_build(machine: &str, conf: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut c = driver();
    c.args(["--machine", machine, "--rootfs"])
        .arg(fixtures().join("rootfs-amd64.tar"))
        .arg("--workdir")
        .arg(dir.path());
    for line in conf {
        c.args(["--conf", line]);
    }
    let output = run_failing(&mut c);
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn an_architecture_no_engine_knows_skips_the_image_recipe_instead_of_ending_the_parse() {
    // With bb.fatal the whole parse would end ("ParseError"); a skipped recipe is reported when it is asked for.
    let output = failing_build("qemux86-64", &[r#"TARGET_ARCH:forcevariable = "powerpc""#]);
    assert!(output.contains("was skipped: imgcraft: TARGET_ARCH 'powerpc'"), "{output}");
    assert!(!output.contains("ParseError") && !output.contains("ExpansionError"), "{output}");
}

/// The manifest's layer digests of an image.
fn layer_digests(reference: &str) -> Vec<String> {
    layers_of(reference).into_iter().map(|(digest, _)| digest).collect()
}

#[test]
fn a_base_named_by_recipe_is_built_first_and_its_layers_come_first() {
    // No dependency written by hand: naming the recipe makes do_image_imgcraft wait for its do_image_complete.
    // The base is the fixture without usr/share, so the image adds a layer on top of the base's.
    let work = tempfile::tempdir().unwrap();
    let base_rootfs = work.path().join("base.tar");
    std::fs::copy(fixtures().join("rootfs-amd64.tar"), &base_rootfs).unwrap();
    run(Command::new("tar").arg("-f").arg(&base_rootfs).args(["--delete", "./usr/share"]));
    let base_conf = format!("IMGCRAFT_TEST_BASE_ROOTFS = \"{}\"", base_rootfs.display());
    let build = Build::new(
        "on-recipe-base",
        "qemux86-64",
        &fixtures().join("rootfs-amd64.tar"),
        &[r#"IMGCRAFT_BASE_IMAGE:pn-imgcraft-test-image = "imgcraft-test-base""#, &base_conf],
    );
    let base = build.deploy_dir().join("imgcraft-test-base-qemux86-64.rootfs.oci.tar");
    let base_layers = layer_digests(&format!("oci-archive:{}", std::fs::canonicalize(&base).unwrap().display()));
    let layers = layer_digests(&format!("oci-archive:{}", std::fs::canonicalize(build.archive()).unwrap().display()));
    assert_eq!(base_layers.len(), 1, "{base_layers:?}");
    assert!(layers.len() > base_layers.len() && layers.starts_with(&base_layers), "{base_layers:?} {layers:?}");
    assert_eq!(docker_run(&build, None, &["uname", "-m"]), "x86_64");
}

#[test]
fn a_registry_base_pinned_by_digest_is_fetched_once_into_dl_dir_and_builds_offline_after() {
    let registry = shared_registry();
    let work = tempfile::tempdir().unwrap();
    let pushed: Value = serde_json::from_str(&run(bin().arg(fixtures().join("rootfs-amd64.tar")).args([
        "--json",
        "-o",
        &format!("docker://{registry}/imgcraft-bitbake-test/base:1"),
    ])))
    .unwrap();
    let digest = pushed["manifest_digest"].as_str().unwrap();
    let base = format!("IMGCRAFT_BASE_IMAGE = \"docker://{registry}/imgcraft-bitbake-test/base@{digest}\"");
    let downloads = work.path().join("downloads");
    let dl_dir = format!("IMGCRAFT_BASE_DL_DIR = \"{}\"", downloads.display());

    let online = Build::new("registry-base", "qemux86-64", &fixtures().join("rootfs-amd64.tar"), &[&base, &dl_dir]);
    let fetched = downloads
        .join(registry.replace(':', "_"))
        .join(format!("imgcraft-bitbake-test/base@{}.oci.tar", digest.replace(':', "-")));
    assert_eq!(inspect(&format!("oci-archive:{}", fetched.display()))["manifest_digest"], digest);
    let layers = layer_digests(&format!("oci-archive:{}", std::fs::canonicalize(online.archive()).unwrap().display()));
    let base_layers = layer_digests(&format!("oci-archive:{}", fetched.display()));
    assert!(layers.starts_with(&base_layers) && layers.len() > base_layers.len(), "{base_layers:?} {layers:?}");

    // Offline with the base in DL_DIR: the same image.
    let offline = Build::new(
        "registry-base",
        "qemux86-64",
        &fixtures().join("rootfs-amd64.tar"),
        &[&base, &dl_dir, r#"BB_NO_NETWORK = "1""#],
    );
    let offline_ref = format!("oci-archive:{}", std::fs::canonicalize(offline.archive()).unwrap().display());
    assert_eq!(layer_digests(&offline_ref), layers);

    // Offline without it: the fetch task refuses, saying why.
    let empty = format!("IMGCRAFT_BASE_DL_DIR = \"{}\"", work.path().join("empty").display());
    let output = failing_build("qemux86-64", &[&base, &empty, r#"BB_NO_NETWORK = "1""#]);
    assert!(output.contains("do_imgcraft_fetch_base") && output.contains("BB_NO_NETWORK"), "{output}");

    // A tag alone is refused when the recipe is parsed, before anything runs.
    let tagged = format!("IMGCRAFT_BASE_IMAGE = \"docker://{registry}/imgcraft-bitbake-test/base:1\"");
    let output = failing_build("qemux86-64", &[&tagged]);
    assert!(output.contains("was skipped") && output.contains("is not pinned by digest"), "{output}");
}

#[test]
fn an_index_recipe_builds_the_image_in_each_multiconfig_and_deploys_and_pushes_one_signed_index() {
    // A registry of its own: a signature found there was made by this push.
    let registry = TestRegistry::start(RegistryConfig::default());
    let repository = format!("{}/imgcraft-bitbake-test/index", registry.addr);
    let destination = format!("docker://{repository}:{PV}");
    let dir = tempfile::tempdir().unwrap();
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, "bitbake-index-passphrase\n").unwrap();
    let prefix = dir.path().join("release");
    run(bin().arg("keygen").arg("--output-prefix").arg(&prefix).arg("--sign-passphrase-file").arg(&passphrase_file));
    let sign_key = format!("IMGCRAFT_SIGN_KEY = \"{}\"", prefix.with_extension("key").display());
    let sign_passphrase = format!("IMGCRAFT_SIGN_PASSPHRASE_FILE = \"{}\"", passphrase_file.display());
    let arm64_rootfs =
        format!("IMGCRAFT_TEST_ROOTFS:qemuarm64 = \"{}\"", fixtures().join("rootfs-arm64.tar").display());
    let push_ref = format!("IMGCRAFT_INDEX_PUSH_REF = \"{destination}\"");
    let mut c = driver();
    c.args(["--json", "--machine", "qemux86-64", "--rootfs"]).arg(fixtures().join("rootfs-amd64.tar"));
    c.arg("--workdir").arg(dir.path());
    c.args(["--recipe", "imgcraft-test-index", "--task", "imgcraft_index_push"]);
    c.args(["--multiconfig", "arm64=qemuarm64", "--multiconfig", "amd64=qemux86-64"]);
    for line in [
        r#"IMGCRAFT_INDEX_MULTICONFIGS = "arm64:qemuarm64 amd64:qemux86-64""#,
        &arm64_rootfs,
        &push_ref,
        r#"IMGCRAFT_INDEX_PUSH_ARGS = "--tls-verify=false""#,
        r#"IMGCRAFT_TAG = "imgcraft-bitbake-test/index:1.2.3""#,
        &sign_key,
        &sign_passphrase,
    ] {
        c.args(["--conf", line]);
    }
    let results: Value = serde_json::from_str(&run(&mut c)).unwrap();
    let builddir = PathBuf::from(results[0]["builddir"].as_str().unwrap());
    let deploy = builddir.join("tmp/deploy/images");
    let index = deploy.join("imgcraft-test-index/imgcraft-test-index.oci.tar");
    let raw: Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", index.display()))))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json", "{raw}");
    // Each entry is the very image its multiconfig deployed, with that machine's platform.
    for (machine, architecture, variant) in [("qemuarm64", "arm64", Some("v8")), ("qemux86-64", "amd64", None)] {
        let archive = deploy.join(format!("{machine}/imgcraft-test-image-{machine}.rootfs.oci.tar"));
        let image = inspect(&format!("oci-archive:{}", std::fs::canonicalize(&archive).unwrap().display()));
        let entry = raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == architecture)
            .unwrap_or_else(|| panic!("no {architecture} in {raw}"));
        assert_eq!(entry["digest"], image["manifest_digest"], "{machine}: {raw}");
        assert_eq!(entry["platform"]["variant"].as_str(), variant, "{machine}: {raw}");
    }
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2, "{raw}");
    // The pushed index is the deployed one, byte for byte.
    let local = run(Command::new("skopeo").args(["inspect", "--raw"]).arg(format!("oci-archive:{}", index.display())));
    let pushed = run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &destination]));
    assert_eq!(pushed, local);
    // Signed with IMGCRAFT_SIGN_KEY: the index by its own signature, and each image it lists by its digest.
    let verify = |reference: &str| -> Value {
        let mut c = bin();
        c.args(["verify", "--json", "--tls-verify=false", reference, "--key"]).arg(prefix.with_extension("pub"));
        serde_json::from_str(&run(&mut c)).unwrap()
    };
    let top = verify(&destination);
    assert_eq!(top["verified"], true, "{top}");
    let index_digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(local.as_bytes())));
    assert_eq!(top["manifest_digest"], index_digest.as_str(), "{top}");
    for entry in raw["manifests"].as_array().unwrap() {
        let child = format!("docker://{repository}@{}", entry["digest"].as_str().unwrap());
        let report = verify(&child);
        assert_eq!(report["verified"], true, "{child}: {report}");
        assert_eq!(report["manifest_digest"], entry["digest"], "{child}: {report}");
    }
}

/// The user and password of the registry the push-task test starts with htpasswd basic auth.
const USER: &str = "ci";
const PASSWORD: &str = "bitbake-s3cret";

/// Runs the push task with `env` added to bitbake's environment; the driver's output and whether it succeeded.
fn push_with_env(registry: &TestRegistry, name: &str, env: &[(&str, &Path)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = driver();
    c.args(["--machine", "qemux86-64", "--rootfs"]).arg(fixtures().join("rootfs-amd64.tar"));
    c.arg("--workdir").arg(dir.path()).args(["--task", "imgcraft_push"]);
    c.args([
        "--conf",
        &format!("IMGCRAFT_PUSH_REF = \"docker://{}/imgcraft-bitbake-test/{name}:{PV}\"", registry.addr),
    ]);
    c.args(["--conf", &format!("IMGCRAFT_TAG = \"imgcraft-bitbake-test/{name}:{PV}\"")]);
    for name in ["REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"] {
        c.env_remove(name);
    }
    for (name, value) in env {
        c.env(name, value);
    }
    let output = c.output().unwrap();
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn the_push_task_finds_credentials_where_rootfs2image_by_hand_would() {
    let registry = TestRegistry::start(RegistryConfig {
        htpasswd: Some((USER.into(), PASSWORD.into())),
        ..RegistryConfig::default()
    });
    let work = tempfile::tempdir().unwrap();
    // HOME without credentials, so that only what the environment names can log in.
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();

    let (pushed, output) = push_with_env(&registry, "anonymous", &[("HOME", &home)]);
    assert!(!pushed && output.contains("requires a login"), "no credentials, no push: {output}");

    // REGISTRY_AUTH_FILE, as podman and skopeo read it.
    let auth_file = work.path().join("auth.json");
    let token = base64_encode(&format!("{USER}:{PASSWORD}"));
    std::fs::write(&auth_file, format!(r#"{{"auths":{{"{}":{{"auth":"{token}"}}}}}}"#, registry.addr)).unwrap();
    let (pushed, output) =
        push_with_env(&registry, "auth-file", &[("HOME", &home), ("REGISTRY_AUTH_FILE", &auth_file)]);
    assert!(pushed, "{output}");

    // DOCKER_CONFIG naming a credential helper, found on the task's PATH.
    let docker_config = work.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"imgcraft-test"}}}}"#, registry.addr),
    )
    .unwrap();
    let helpers = work.path().join("bin");
    std::fs::create_dir(&helpers).unwrap();
    let helper = helpers.join("docker-credential-imgcraft-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nprintf '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    let (pushed, output) = push_with_env(
        &registry,
        "helper",
        &[("HOME", &home), ("DOCKER_CONFIG", &docker_config), ("PATH", Path::new(&path))],
    );
    assert!(pushed, "{output}");
    for name in ["auth-file", "helper"] {
        let reference = format!("docker://{}/imgcraft-bitbake-test/{name}:{PV}", registry.addr);
        let creds = format!("--creds={USER}:{PASSWORD}");
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &creds, &reference]));
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
