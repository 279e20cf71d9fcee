//! Debian trixie's skopeo 1.18, the reference verifier of cosign signatures here (bookworm's is built without
//! sigstore), run from the tree scripts/setup-test-env.sh makes (`IMGCRAFT_TRIXIE`): files it reads go into a
//! directory inside the tree, and the policy and registries.d files that make it verify.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A directory inside the trixie tree (its skopeo sees only the tree), removed when dropped.
pub struct InTree {
    pub tree: PathBuf,
    pub name: String,
}

impl InTree {
    pub fn new() -> InTree {
        let tree = PathBuf::from(std::env::var("IMGCRAFT_TRIXIE").expect("IMGCRAFT_TRIXIE: source env.sh"));
        let dir = tempfile::Builder::new().prefix("imgcraft-signing-").tempdir_in(tree.join("tmp")).unwrap();
        let name = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        std::mem::forget(dir);
        InTree { tree, name }
    }

    /// The path on the host of `file` inside this directory.
    pub fn host(&self, file: &str) -> PathBuf {
        self.tree.join("tmp").join(&self.name).join(file)
    }

    /// The path the tree's skopeo sees.
    pub fn inside(&self, file: &str) -> String {
        format!("/tmp/{}/{file}", self.name)
    }

    pub fn skopeo(&self, args: &[&str]) -> Output {
        Command::new("chroot").arg(&self.tree).arg("skopeo").args(args).output().unwrap()
    }
}

impl Drop for InTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.tree.join("tmp").join(&self.name));
    }
}

impl InTree {
    /// A registries.d that makes skopeo look for signatures at `registry` (without it, skopeo 1.18 neither signs
    /// into nor reads from the `.sig` tags), and a policy per key requiring a `sigstoreSigned` signature by it.
    pub fn trust(&self, registry: &str, keys: &[&str]) {
        std::fs::create_dir_all(self.host("registries.d")).unwrap();
        std::fs::write(
            self.host("registries.d/local.yaml"),
            format!("docker:\n  {registry}:\n    use-sigstore-attachments: true\n"),
        )
        .unwrap();
        for key in keys {
            let policy = format!(
                r#"{{"default": [{{"type": "reject"}}], "transports": {{"docker": {{"{registry}": [{{"type": "sigstoreSigned", "keyPath": "{}"}}]}}, "oci-archive": {{"": [{{"type": "insecureAcceptAnything"}}]}}}}}}"#,
                self.inside(key)
            );
            std::fs::write(self.host(&format!("policy-{key}.json")), policy).unwrap();
        }
    }

    /// skopeo copying `image` out under the policy of `key` (see [`InTree::trust`]): it verifies on the way.
    pub fn pull_verified(&self, key: &str, image: &str) -> Output {
        let out = self.inside(&format!("pulled-{}", self.name));
        let _ = std::fs::remove_dir_all(self.host(&format!("pulled-{}", self.name)));
        self.skopeo(&[
            "--policy",
            &self.inside(&format!("policy-{key}.json")),
            "--registries.d",
            &self.inside("registries.d"),
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--remove-signatures",
            image,
            &format!("oci:{out}:x"),
        ])
    }
}
