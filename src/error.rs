//! The library's error type: every variant names what the user gave (a file, an entry, a reference) and what is wrong.

use std::io;
use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input as a whole is unusable: not a tar, truncated, corrupt compressed data.
    #[error("`{input}`: {problem}")]
    BadInput { input: String, problem: String },

    /// One entry of the input cannot be represented or is hostile.
    #[error("`{input}`: entry `{entry}`: {problem}")]
    BadEntry { input: String, entry: String, problem: String },

    /// The rootfs's binaries are for another architecture than the one asked for.
    #[error("`{input}`: {requested} does not match the rootfs: `{file}` is {found}")]
    ArchMismatch { input: String, requested: String, found: String, file: String },

    /// An image that was read back (for inspect, or an existing layout) is malformed.
    #[error("`{image}`: {problem}")]
    BadImage { image: String, problem: String },

    /// A registry refused or failed a request; the message says why and what to do.
    #[error("{registry}/{repository}: {problem}")]
    Registry { registry: String, repository: String, problem: String },

    /// A value given by the user does not parse.
    #[error("{0}")]
    Invalid(String),

    /// An operating-system error, with what was being done to which path.
    #[error("{action} `{path}`: {source}")]
    Io { action: &'static str, path: String, source: io::Error },

    /// An error the user can act on in a way the front end knows how to say (see [`Remedy`]).
    #[error("{error}")]
    Remedied { error: Box<Error>, remedy: Remedy },
}

/// What the user can do about an error. The library names the remedy; a front end says it in its own words (the
/// command line's `hint:` names its flags), so that no library message names a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Remedy {
    /// Nothing in the rootfs shows its architecture: name the target platform.
    NamePlatform,
    /// The requested platform contradicts the binaries: request the one they show, or keep the request unchecked.
    MatchPlatform { found: String, requested: String },
    /// No package ownership is known: give Yocto's package data, or ask for one layer.
    GivePackageData,
    /// The layer budget is used up by a base image: allow at least `needed` layers (`given` were allowed).
    AllowLayers { given: usize, needed: usize },
    /// The registry wants credentials.
    LogIn,
    /// The registry's certificate is not trusted here: add its CA, or turn verification off.
    TrustRegistry,
    /// The registry refused zstd layers: write gzip ones.
    UseGzip,
    /// Unpacking needs privileges this user lacks (setting owners, making device nodes): run as root, or unpack
    /// rootless, leaving those out.
    RunPrivileged,
}

impl Error {
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io { action, path: path.as_ref().display().to_string(), source }
    }

    pub fn bad_image(image: impl std::fmt::Display, problem: impl Into<String>) -> Self {
        Error::BadImage { image: image.to_string(), problem: problem.into() }
    }

    /// This error, with what the user can do about it.
    pub fn with_remedy(self, remedy: Remedy) -> Self {
        Error::Remedied { error: Box::new(self), remedy }
    }

    /// What the user can do about this error, when the library knows.
    pub fn remedy(&self) -> Option<&Remedy> {
        match self {
            Error::Remedied { remedy, .. } => Some(remedy),
            _ => None,
        }
    }
}

/// Shows bytes (paths may not be UTF-8) the way GNU tar does: printable ASCII as is, the rest as `\ooo` octal.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else if b == b'\\' {
            out.push_str("\\\\");
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}

/// The longest error line the binary prints, in bytes: room for a path, an entry name and a registry's reason, while
/// an answer of megabytes (a registry's error body of 10 MB would be a stderr line of 10 MB) cannot flood a terminal
/// or a CI log.
pub const MAX_ERROR_LINE: usize = 4096;

/// The most of one piece of outside text (a registry's `errors[].message`, a body, a member name from an image)
/// quoted in one error message, in bytes: enough to say what is wrong, never enough to drown the rest of the line.
pub const MAX_QUOTED_TEXT: usize = 512;

/// Shows text that came from outside (a registry's answer, a header, a file name) safely on a terminal: control
/// characters (C0 with `\n`, `\r` and ESC, DEL, C1) and the bidirectional controls that can reorder what is shown
/// (Trojan Source, CVE-2021-42574) are written as `\u{..}` escapes, and the result is cut to at most `limit` bytes
/// with a `... [truncated]` marker. A backslash is kept as is, so escaping twice changes nothing more.
pub fn display_text(text: &str, limit: usize) -> String {
    const MARKER: &str = "... [truncated]";
    let mut out = String::with_capacity(text.len().min(limit) + 8);
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
        if out.len() > limit {
            // Cut on a character boundary, leaving room for the marker.
            let mut cut = limit.saturating_sub(MARKER.len());
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str(MARKER);
            break;
        }
    }
    out
}

/// Unicode's explicit bidirectional formatting characters (UAX #9: embeddings, overrides, isolates, marks), and the
/// line and paragraph separators, which some terminals and log viewers break lines on.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod display_text_tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let shown = display_text("a\x1b]0;title\x07\r\n\u{9b}2J\u{202e}b\\c", 100);
        assert_eq!(shown, "a\\u{1b}]0;title\\u{7}\\u{d}\\u{a}\\u{9b}2J\\u{202e}b\\c");
        assert_eq!(display_text(&shown, 100), shown);
    }

    #[test]
    fn long_text_is_cut_with_a_marker_within_the_limit() {
        let shown = display_text(&"\u{e9}".repeat(10_000), 101);
        assert!(shown.len() <= 101 && shown.ends_with("... [truncated]"), "{shown}");
        let escapes = display_text(&"\x1b".repeat(10_000), 64);
        assert!(escapes.len() <= 64 && !escapes.contains('\x1b'));
        assert_eq!(display_text("short", 64), "short");
    }
}
