//! Deciding what goes in which layer: the plan ([`plan`]: modes, path rules, package groups), package ownership
//! ([`packages`]: pkgdata, dpkg, opkg), and building on a base image ([`base`]).

pub mod base;
pub mod packages;
pub mod plan;
