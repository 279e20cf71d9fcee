//! Shared test harness, one concept per module: the built binary and command runners, BitBake builds of
//! meta-imgcraft, the fixtures, a tar writer of the tests' own, file-tree snapshots that compare every attribute the
//! converter promises to keep, OCI layouts written from such tars, scratch workspaces, the refusal every bad input
//! must end in, container engines, registry servers, podman with zstd:chunked partial pulls, the trixie skopeo, and
//! layered images as the layering tests read them.

// Each test file is a crate of its own that uses a part of the harness and of these re-exports.
#![allow(dead_code, unused_imports)]

pub mod bitbake;
pub mod command;
pub mod engine;
pub mod fixtures;
pub mod image;
pub mod layered;
pub mod partial_pull;
pub mod refusal;
pub mod registry;
pub mod tar;
pub mod tree;
pub mod trixie;
pub mod workspace;

pub use command::{bin, json, run, run_failing, run_within};
pub use engine::{Engine, docker};
pub use fixtures::{fixtures, packages};
pub use refusal::assert_refused;
pub use registry::{RegistryConfig, TestRegistry, shared_registry};
pub use tree::{Attrs, assert_same_tree, listing, snapshot};
pub use workspace::Workspace;
