//! Reading a root filesystem: opening it ([`input`]) once or more ([`source`]), recognising and decoding its compression ([`decode`]),
//! walking a directory ([`directory`]), the policy every entry passes before it may enter a layer ([`normalize`]),
//! and the architecture its ELF binaries show ([`elf`]).

pub mod decode;
pub mod directory;
pub mod elf;
pub mod input;
pub mod normalize;
pub mod source;
