//! The tar format and the entry model it carries: [`entry`] (one file system object with all its attributes, what
//! every reader yields and every writer takes), [`reader`] (rootfs tarballs, layers, archives) and [`writer`] (the
//! canonical form of layers). It sits below every stage that reads or writes entries.
//!
//! The reader reads through two parts of its own: `header` (the fields of one header block) and `pax` (PAX records,
//! their numbers and times, and the two spellings of extended attributes).

pub mod entry;
mod header;
mod pax;
pub mod reader;
pub mod writer;
