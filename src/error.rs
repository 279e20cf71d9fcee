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
    #[error(
        "`{input}`: --arch {requested} does not match the rootfs: `{file}` is {found} (use --arch {found}, or --no-arch-check to keep {requested})"
    )]
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
}

impl Error {
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io { action, path: path.as_ref().display().to_string(), source }
    }

    pub fn bad_image(image: impl std::fmt::Display, problem: impl Into<String>) -> Self {
        Error::BadImage { image: image.to_string(), problem: problem.into() }
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
