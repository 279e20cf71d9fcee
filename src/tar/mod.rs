//! The tar format and the entry model it carries: [`entry`] (one file system object with all its attributes, what
//! every reader yields and every writer takes), [`reader`] (rootfs tarballs, layers, archives) and [`writer`] (the
//! canonical form of layers). It sits below every stage that reads or writes entries.
//! [`path`] holds the normal form of entry paths and [`whiteout`] the names by which a layer deletes from those below.
//!
//! The reader reads through two parts of its own: `header` (the fields of one header block) and `pax` (PAX records,
//! their numbers and times, and the two spellings of extended attributes).

pub mod entry;
pub mod file_digests;
mod header;
pub mod path;
mod pax;
pub mod reader;
pub mod whiteout;
pub mod writer;
