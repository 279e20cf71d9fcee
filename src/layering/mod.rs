//! Deciding what goes in which layer: what the caller chose ([`options`]) and the plan it becomes ([`plan`]: modes,
//! path rules, the group of each path), packages grouped into layers ([`grouping`]), package ownership
//! ([`packages`]: pkgdata, dpkg, opkg), and building on a base image ([`base`]).

pub mod base;
pub mod grouping;
pub mod options;
pub mod packages;
pub mod plan;
