//! Container engines as the tests drive them: the Docker engine that scripts/setup-test-env.sh starts, and podman.

use std::path::Path;
use std::process::Command;

use super::command::run;

/// The Docker client, pointed at the test engine that scripts/setup-test-env.sh starts.
pub fn docker() -> Command {
    assert!(
        std::env::var("DOCKER_HOST").is_ok(),
        "DOCKER_HOST unset: source the env.sh that scripts/setup-test-env.sh writes"
    );
    let mut c = Command::new(std::env::var("DOCKER").unwrap_or_else(|_| "docker".into()));
    c.args(["--log-level", "error"]);
    c
}

/// A container engine as the tests drive it: load an archive, run a command in an image with no network, inspect
/// and remove the image.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn command(self) -> Command {
        match self {
            Engine::Docker => docker(),
            Engine::Podman => Command::new("podman"),
        }
    }

    /// The name the engine lists an image tagged `tag` under.
    pub fn name(self, tag: &str) -> String {
        match self {
            Engine::Docker => tag.to_string(),
            Engine::Podman => format!("docker.io/{tag}"),
        }
    }

    pub fn load(self, archive: &Path) -> String {
        run(self.command().args(["load", "-i"]).arg(archive))
    }

    /// Runs `args` in `image` with no network; `platform` (`linux/arm64`) picks an emulated architecture.
    pub fn run(self, image: &str, platform: Option<&str>, args: &[&str]) -> String {
        let mut c = self.command();
        c.args(["run", "--rm", "--network", "none"]);
        if let Some(platform) = platform {
            c.args(["--platform", platform]);
        }
        run(c.arg(image).args(args))
    }

    /// Runs a shell script in `image` (its /bin/sh).
    pub fn script(self, image: &str, script: &str) -> String {
        self.run(image, None, &["/bin/sh", "-c", script])
    }

    /// How many layers the engine stores for `image`.
    pub fn layer_count(self, image: &str) -> usize {
        let out = run(self.command().args(["image", "inspect", "-f", "{{len .RootFS.Layers}}", image]));
        out.trim().parse().unwrap()
    }

    pub fn remove(self, image: &str) {
        run(self.command().args(["rmi", image]));
    }
}
