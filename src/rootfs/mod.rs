//! Reading a root filesystem: opening it ([`input`]), recognising and decoding its compression ([`decode`]),
//! walking a directory ([`directory`]), and the policy every entry passes before it may enter a layer
//! ([`normalize`]).

pub mod decode;
pub mod directory;
pub mod elf;
pub mod input;
pub mod normalize;
