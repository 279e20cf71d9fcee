//! meta-imgcraft's own consistency: the recipe's crate list must match Cargo.lock, or the Yocto build of
//! rootfs2image fetches other crates than `cargo build` uses; its Rust version must be the crate's.

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

/// The recipe skips itself on a release whose Rust is older than IMGCRAFT_RUST_VERSION: that must be the crate's
/// own rust-version, or it would skip releases that build the crate, or let one fail in do_compile.
#[test]
fn the_recipe_rust_version_is_the_crates() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let value = |file: &str, key: &str| {
        let text = std::fs::read_to_string(repo.join(file)).unwrap();
        let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no `{key}` in {file}"));
        line.split('"').nth(1).unwrap_or_else(|| panic!("`{line}` in {file} has no quoted value")).to_string()
    };
    let crate_version = value("Cargo.toml", "rust-version = ");
    let recipe_version = value("meta-imgcraft/recipes-devtools/imgcraft/imgcraft_0.1.0.bb", "IMGCRAFT_RUST_VERSION = ");
    assert_eq!(recipe_version, crate_version, "the recipe's IMGCRAFT_RUST_VERSION is not Cargo.toml's rust-version");
}

/// oelint-adv (PyPI), pinned, in a venv under target/: every finding is either fixed or suppressed inline with a
/// reason in the layer itself.
#[cfg(feature = "engine-tests")]
#[test]
fn meta_imgcraft_passes_oelint_adv() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = repo.join("target/oelint-venv");
    let oelint = venv.join("bin/oelint-adv");
    if !oelint.exists() {
        let created = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
        assert!(created.success(), "python3 -m venv failed");
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "oelint-adv==9.11.2"])
            .status()
            .unwrap();
        assert!(installed.success(), "pip install oelint-adv failed");
    }
    let layer = repo.join("meta-imgcraft");
    let out = Command::new(&oelint)
        .arg("--quiet")
        .arg(layer.join("classes-recipe/imgcraft.bbclass"))
        .arg(layer.join("classes-recipe/imgcraft_index.bbclass"))
        .arg(layer.join("classes-recipe/imgcraft_supply_chain.bbclass"))
        .arg(layer.join("recipes-devtools/imgcraft/imgcraft_0.1.0.bb"))
        .arg(layer.join("recipes-devtools/imgcraft/imgcraft-crates.inc"))
        .arg(layer.join("conf/layer.conf"))
        .output()
        .unwrap();
    let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && findings.trim().is_empty(), "oelint-adv findings:\n{findings}");
}
