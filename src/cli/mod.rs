//! The command line: clap types ([`args`]), their resolution into the library's options ([`settings`]), and what
//! is printed ([`report`]).

pub mod args;
pub mod report;
pub mod settings;
