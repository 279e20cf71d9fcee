//! The command line: clap types ([`args`]) and their resolution into the library's options ([`settings`]).

pub mod args;
pub mod settings;
