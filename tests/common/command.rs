//! The built binary and the ways a test runs a command: to success, to failure, or within a time bound.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary, keeping no facts about layer blobs between runs (`IMGCRAFT_CACHE_DIR` empty): no test sees what an
/// earlier one, or the user's own builds, left in a cache. Tests of that cache set their own.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rootfs2image"));
    command.env("IMGCRAFT_CACHE_DIR", "");
    command
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail; returns its output.
pub fn run_failing(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(!output.status.success(), "{command:?} succeeded but should have failed");
    output
}

/// Runs `command` with no standard input, killing it and failing the test if it outlives `bound`.
pub fn run_within(command: &mut Command, bound: Duration) -> Output {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            let stderr = &output.stderr[..output.stderr.len().min(8192)];
            panic!("{command:?} still ran after {bound:?}; stderr so far: {}", String::from_utf8_lossy(stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A JSON text the binary printed (`--json`) or wrote (an index, a manifest).
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
