//! meta-imgcraft under a real BitBake, as the bitbake test files drive it: tests/bitbake/run.py builds
//! imgcraft-test-image for one of OE-core's qemu machines, and `Build` holds what it deployed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{bin, run};

pub const PV: &str = "1.2.3";
/// OE-core's REPRODUCIBLE_TIMESTAMP_ROOTFS (the rootfs mtime clamp), which the class makes the creation time and the
/// mtime ceiling.
pub const CREATED: &str = "2018-03-09T12:34:56Z";
pub const CREATED_EPOCH: i64 = 1_520_598_896;

pub fn driver() -> Command {
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bitbake/run.py"));
    // The rootfs2image these tests were built with, not whatever target/release holds.
    c.arg("--tools").arg(Path::new(env!("CARGO_BIN_EXE_rootfs2image")).parent().unwrap());
    c
}

/// One build of imgcraft-test-image by run.py, in a directory removed when it is dropped.
pub struct Build {
    _dir: tempfile::TempDir,
    pub result: Value,
    /// IMGCRAFT_TAG: imgcraft-bitbake-test/NAME:PV, so that tests running at once never share a Docker tag.
    pub tag: String,
}

impl Build {
    /// Builds for `machine` from `rootfs` with `conf` lines added to local.conf.
    pub fn new(name: &str, machine: &str, rootfs: &Path, conf: &[&str]) -> Build {
        Build::with_task(name, machine, rootfs, conf, None)
    }

    /// Runs `task` of the image recipe (and the tasks it needs) instead of do_build.
    pub fn with_task(name: &str, machine: &str, rootfs: &Path, conf: &[&str], task: Option<&str>) -> Build {
        Build::run(name, machine, rootfs, conf, task, &[])
    }

    /// Builds from a Yocto-style fixture: `variant/rootfs.tar` with its `pkgdata` and `image.manifest`.
    pub fn with_packages(name: &str, machine: &str, variant: &Path, conf: &[&str]) -> Build {
        let pkgdata = variant.join("pkgdata");
        let manifest = variant.join("image.manifest");
        let extra = ["--pkgdata", pkgdata.to_str().unwrap(), "--package-manifest", manifest.to_str().unwrap()];
        Build::run(name, machine, &variant.join("rootfs.tar"), conf, None, &extra)
    }

    /// Builds, then adds the `again` lines to local.conf and builds again in the same directory, so that
    /// `rebuilt_tasks` tells which tasks' signatures the lines changed.
    pub fn rebuilt(name: &str, machine: &str, rootfs: &Path, conf: &[&str], again: &[&str]) -> Build {
        let extra: Vec<&str> = again.iter().flat_map(|line| ["--rebuild-conf", *line]).collect();
        Build::run(name, machine, rootfs, conf, None, &extra)
    }

    /// The tasks the second build of `rebuilt` ran.
    pub fn rebuilt_tasks(&self) -> Vec<&str> {
        let tasks = self.result["rebuilt_tasks"].as_array();
        tasks
            .unwrap_or_else(|| panic!("run.py gave no rebuilt_tasks: {}", self.result))
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect()
    }

    fn run(name: &str, machine: &str, rootfs: &Path, conf: &[&str], task: Option<&str>, extra: &[&str]) -> Build {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("imgcraft-bitbake-test/{name}:{PV}");
        let mut c = driver();
        c.args(["--json", "--machine", machine, "--rootfs"]).arg(rootfs).arg("--workdir").arg(dir.path());
        c.args(["--conf", &format!("IMGCRAFT_TAG = \"{tag}\"")]);
        for line in conf {
            c.args(["--conf", line]);
        }
        if let Some(task) = task {
            c.args(["--task", task]);
        }
        c.args(extra);
        let stdout = run(&mut c);
        let results: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("run.py printed {stdout}: {e}"));
        Build { _dir: dir, result: results[0].clone(), tag }
    }

    pub fn var(&self, name: &str) -> &str {
        self.result[name].as_str().unwrap_or_else(|| panic!("run.py gave no {name}: {}", self.result))
    }

    pub fn deploy_dir(&self) -> PathBuf {
        PathBuf::from(self.var("deploy_dir_image"))
    }

    /// Where the IMAGE_LINK_NAME symlink of an output (`oci.tar`, `oci`) points; asserts that it points at the
    /// IMAGE_NAME file, named as OE-core's own IMAGE_CMD:tar names the tar.zst of the same build.
    pub fn linked(&self, suffix: &str) -> PathBuf {
        let link_name = self.var("image_link_name");
        let deploy = self.deploy_dir();
        let target = |suffix: &str| {
            let link = deploy.join(format!("{link_name}.{suffix}"));
            let target = std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
            target.to_str().unwrap().to_owned()
        };
        let image_name = target("tar.zst").strip_suffix(".tar.zst").unwrap().to_owned();
        assert!(image_name.starts_with(&format!("{link_name}-")), "IMAGE_NAME {image_name}");
        assert_eq!(target(suffix), format!("{image_name}.{suffix}"), "{link_name}.{suffix} points elsewhere");
        let file = deploy.join(format!("{image_name}.{suffix}"));
        assert!(file.exists(), "{} is missing", file.display());
        deploy.join(format!("{link_name}.{suffix}"))
    }

    pub fn archive(&self) -> PathBuf {
        self.linked("oci.tar")
    }

    /// The file names IMAGE_OUTPUT_MANIFEST (OE-core's write_image_output_manifest, gathered by do_image_complete)
    /// records for `task`.
    pub fn recorded_outputs(&self, task: &str) -> Vec<String> {
        let path = self.var("image_output_manifest");
        let manifest: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let entry = manifest.as_array().unwrap().iter().find(|e| e["taskname"] == task);
        let images = entry.unwrap_or_else(|| panic!("{path} has no {task}: {manifest}"))["images"].as_array().unwrap();
        images.iter().map(|i| i["filename"].as_str().unwrap().to_owned()).collect()
    }
}

pub fn inspect(reference: &str) -> Value {
    serde_json::from_str(&run(bin().args(["inspect", "--json", reference]))).unwrap()
}
