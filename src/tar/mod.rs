//! The tar format and the entry model it carries: [`entry`] (one file system object with all its attributes, what
//! every reader yields and every writer takes), [`reader`] (rootfs tarballs, layers, archives) and [`writer`] (the
//! canonical form of layers). It sits below every stage that reads or writes entries.
//! [`path`] holds the normal form of entry paths and [`whiteout`] the names by which a layer deletes from those below.

pub mod entry;
pub mod path;
pub mod reader;
pub mod whiteout;
pub mod writer;
