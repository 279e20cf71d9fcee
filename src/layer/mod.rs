//! Writing layers: one layer's stream of entries to a compressed, digested blob ([`writer`]), several written in one
//! pass ([`set`]), and the compressors they share ([`compress`]).

pub mod compress;
pub mod set;
pub mod writer;
