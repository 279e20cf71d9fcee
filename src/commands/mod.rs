//! One pipeline per subcommand, each wiring the stages below it: a source or a rootfs in, a sink out.

pub mod attach;
pub mod convert;
pub mod copy;
pub mod diff;
pub mod index;
pub mod inspect;
pub mod keygen;
pub mod push;
pub mod unpack;
pub mod verify;
