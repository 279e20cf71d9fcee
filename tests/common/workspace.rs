//! A scratch directory for one test's inputs and outputs, where the binary runs.

use std::path::PathBuf;
use std::process::Command;

use super::command::bin;
use super::tree::listing;

/// A temporary directory for one test's inputs and outputs, removed when dropped.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Names in the workspace (hidden ones included), sorted.
    pub fn listing(&self) -> Vec<String> {
        listing(self.dir.path())
    }

    /// The binary, run in the workspace without the caller's SOURCE_DATE_EPOCH.
    pub fn cmd(&self) -> Command {
        let mut c = bin();
        c.current_dir(self.dir.path()).env_remove("SOURCE_DATE_EPOCH");
        c
    }
}
