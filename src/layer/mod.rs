//! Writing layers: one layer's stream of entries to a compressed, digested blob ([`writer`]), several written in one
//! pass ([`set`]), the compressors they share ([`compress`]), and with `--previous` the blobs a rebuild takes
//! instead of compressing again ([`reuse`]), checked by what this machine already knows of them ([`known`]).

pub mod compress;
pub mod known;
pub mod outline;
pub mod reuse;
pub mod set;
pub mod spool;
pub mod writer;
