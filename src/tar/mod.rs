//! The tar format and the entry model it carries: [`entry`] (one file system object with all its attributes, what
//! every reader yields and every writer takes), [`reader`] (rootfs tarballs, layers, archives) and [`writer`] (the
//! canonical form of layers). It sits below every stage that reads or writes entries.

pub mod entry;
pub mod reader;
pub mod writer;
