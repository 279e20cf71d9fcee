//! The one way the binary refuses, as a user sees it: exit status 1 and one line on standard error,
//! `rootfs2image: error: ...`, printable, bounded, naming what is wrong, with nothing written.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The longest refusal line: the binary cuts what a registry says to 4096 bytes, and adds its own words.
const LONGEST_LINE: usize = 4096 + 64;

/// Runs `run` and asserts that it was refused: exit 1, one line on stderr starting `rootfs2image: error: `, no
/// control character (no escape sequence reaches the terminal), at most [`LONGEST_LINE`] bytes, naming every one of
/// `words`; and that every path of `untouched` is as it was before the run (still absent, a file or symlink of the
/// same bytes or target, a directory of the same names). Returns the line.
pub fn assert_refused(untouched: &[&Path], words: &[&str], run: impl FnOnce() -> Output) -> String {
    let before: Vec<(PathBuf, State)> = untouched.iter().map(|p| (p.to_path_buf(), State::of(p))).collect();
    let output = run();
    let shown = String::from_utf8_lossy(&output.stderr[..output.stderr.len().min(8192)]).into_owned();
    let line = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "expected exit 1, got {}: {shown}", output.status);
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "not one line on stderr: {shown}");
    assert!(line.starts_with("rootfs2image: error: "), "not the binary's error line: {shown}");
    assert!(!line.trim_end().chars().any(char::is_control), "control characters on stderr: {shown:?}");
    assert!(output.stderr.len() <= LONGEST_LINE, "stderr is {} bytes: {shown}", output.stderr.len());
    for word in words {
        assert!(line.contains(word), "`{word}` not in: {line}");
    }
    for (path, was) in before {
        assert_eq!(State::of(&path), was, "{} changed, after: {line}", path.display());
    }
    line
}

/// What a refused run must leave as it was.
#[derive(Debug, PartialEq)]
enum State {
    Absent,
    File(Vec<u8>),
    Symlink(PathBuf),
    /// Names inside, hidden ones included, sorted.
    Directory(Vec<String>),
    /// A FIFO, a device or a socket: only its kind.
    Special,
}

impl State {
    fn of(path: &Path) -> State {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return State::Absent };
        let kind = meta.file_type();
        if kind.is_dir() {
            State::Directory(super::tree::listing(path))
        } else if kind.is_symlink() {
            State::Symlink(std::fs::read_link(path).unwrap())
        } else if kind.is_file() {
            State::File(std::fs::read(path).unwrap())
        } else {
            assert!(kind.is_fifo() || kind.is_block_device() || kind.is_char_device() || kind.is_socket());
            State::Special
        }
    }
}
