//! Deciding what goes in which layer: the plan ([`plan`]: modes, path rules, the group of each path), packages
//! grouped into layers ([`grouping`]), package ownership ([`packages`]: pkgdata, dpkg, opkg), and building on a
//! base image ([`base`]).

pub mod base;
pub mod grouping;
pub mod packages;
pub mod plan;
