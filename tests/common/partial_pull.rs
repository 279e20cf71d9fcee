//! podman with zstd:chunked partial pulls, as containers/storage documents them: a storage of its own (overlay,
//! graphroot and runroot in a temporary directory) whose `storage.conf` sets `enable_partial_images = "true"` and
//! `use_hard_links = "false"`, named by `CONTAINERS_STORAGE_CONF`; runc with cgroupfs comes from the
//! containers.conf scripts/setup-test-env.sh writes. Bookworm's podman runs from the host; trixie's from a chroot
//! into the tree of tests/common/trixie.rs, with the storage inside that tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::command::run;

/// Which podman: the host's (Debian bookworm, 4.3) or the one installed in the trixie tree (5.x).
#[derive(Clone, Debug)]
pub enum Podman {
    Host,
    Chroot(PathBuf),
}

pub struct PartialPodman {
    podman: Podman,
    /// The storage directory as the host sees it.
    dir: PathBuf,
    /// The same directory as podman sees it (inside the chroot for trixie's).
    seen: PathBuf,
}

impl PartialPodman {
    pub fn new(podman: Podman) -> PartialPodman {
        let (dir, seen) = match &podman {
            Podman::Host => {
                let dir = tempfile::Builder::new().prefix("imgcraft-partial-").tempdir().unwrap().keep();
                (dir.clone(), dir)
            }
            Podman::Chroot(tree) => {
                let dir = tempfile::Builder::new().prefix("imgcraft-partial-").tempdir_in(tree.join("tmp")).unwrap();
                let seen = Path::new("/tmp").join(dir.path().file_name().unwrap());
                (dir.keep(), seen)
            }
        };
        let conf = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}/graph\"\nrunroot = \"{}/run\"\n\n[storage.options]\n\
             pull_options = {{enable_partial_images = \"true\", use_hard_links = \"false\"}}\n",
            seen.display(),
            seen.display()
        );
        std::fs::write(dir.join("storage.conf"), conf).unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n",
        )
        .unwrap();
        PartialPodman { podman, dir, seen }
    }

    pub fn command(&self) -> Command {
        let mut command = match &self.podman {
            Podman::Host => Command::new("podman"),
            // The tree bind-mounted onto itself with /proc, /dev, /sys (its cgroups) and a fresh /run, in a mount
            // namespace of the command's own: nothing stays mounted in the tree when podman exits.
            Podman::Chroot(tree) => {
                let mut c = Command::new("unshare");
                c.args([
                    "-m",
                    "sh",
                    "-c",
                    "mount --make-rprivate / && mount --bind \"$0\" \"$0\" && mount -t proc proc \"$0/proc\" && \
                     mount --rbind /dev \"$0/dev\" && mount --rbind /sys \"$0/sys\" && mount -t tmpfs tmpfs \"$0/run\" && \
                     exec chroot \"$0\" podman \"$@\"",
                ])
                .arg(tree)
                // podman 5 warns on every command of this machine's cgroups v1, which it still runs on.
                .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1");
                c
            }
        };
        command
            .env("CONTAINERS_STORAGE_CONF", self.seen.join("storage.conf"))
            .env("CONTAINERS_CONF", self.seen.join("containers.conf"));
        command
    }

    /// Pulls `image` from a plain-HTTP registry; returns podman's debug log, which says how each layer came.
    pub fn pull(&self, image: &str) -> String {
        let output = self.output(&["--log-level=debug", "pull", "-q", "--tls-verify=false", image]);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "podman pull {image} failed:\n{}", tail(&log));
        log
    }

    /// Runs `args` in `image` with no network.
    pub fn run(&self, image: &str, args: &[&str]) -> String {
        run(self.command().args(["run", "--rm", "--network", "none", image]).args(args))
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }
}

/// The end of a long log, for a failure message.
pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for PartialPodman {
    fn drop(&mut self) {
        // The storage may hold overlay mounts and files owned by other ids: podman removes it itself.
        let _ = self.command().args(["system", "reset", "--force"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
