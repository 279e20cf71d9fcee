//! meta-imgcraft's own consistency: the recipe's crate list must match Cargo.lock, or the Yocto build of
//! rootfs2image fetches other crates than `cargo build` uses.

use std::process::Command;

#[test]
fn the_recipe_crate_list_matches_cargo_lock() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{repo}/scripts/update-recipe-crates.py"))
        .arg("--check")
        .output()
        .expect("python3 runs scripts/update-recipe-crates.py");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
