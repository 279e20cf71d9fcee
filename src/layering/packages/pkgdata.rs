//! A Yocto build's package data (`PKGDATA_DIR`, OE-core `meta/lib/oe/packagedata.py`): `runtime/<pkg>` holds lines
//! `VAR:<pkg>: value` with the value escaped by Python's `unicode_escape`, among them `PKG` (the final, possibly
//! renamed, package name), `FILES_INFO` (a JSON object whose keys are the package's absolute paths), `RDEPENDS` and
//! `PKGSIZE`, and what an SBOM tells of the package: `PN` and `PV` (its recipe), `PKGE`, `PKGV` and `PKGR` (its
//! version), `LICENSE`; `runtime-reverse/<final name>` links back to the `runtime/<pkg>` file. The image's manifest
//! (`IMAGE_MANIFEST`: lines `name arch version`) names what is installed, with each package's `PACKAGE_ARCH`, which
//! the runtime files do not hold.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{Ownership, Package, Recipe, dependency_names};
use crate::error::Error;

/// The largest `runtime/<pkg>` file read: its FILES_INFO lists every file of the package, and the largest real
/// ones (linux-firmware, kernel modules) take a few MiB.
pub const MAX_RUNTIME_FILE: u64 = 32 << 20;

/// Reads `dir` and, if given, the image manifest naming the installed packages. Without a manifest every package
/// of the pkgdata counts, and those owning no path of the rootfs simply stay empty.
pub fn load(dir: &Path, manifest: Option<&Path>) -> Result<Ownership, Error> {
    let shown = dir.display().to_string();
    let bad = |problem: String| Error::BadInput { input: shown.clone(), problem };
    let runtime = dir.join("runtime");
    if !runtime.is_dir() {
        return Err(bad(if dir.is_dir() {
            "not a Yocto pkgdata directory: it has no runtime/ (give PKGDATA_DIR, e.g. tmp/pkgdata/MACHINE)".into()
        } else {
            "no such directory (give PKGDATA_DIR, e.g. tmp/pkgdata/MACHINE)".into()
        }));
    }
    let files: Vec<(std::path::PathBuf, Option<Listed>)> = match manifest {
        Some(manifest) => installed_from_manifest(dir, manifest)?,
        None => {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&runtime).map_err(|e| Error::io("cannot read", &runtime, e))? {
                let entry = entry.map_err(|e| Error::io("cannot read", &runtime, e))?;
                // runtime/<pkg>.packaged markers say a package was written; they are not package files.
                if !entry.path().is_file() || entry.file_name().to_string_lossy().ends_with(".packaged") {
                    continue;
                }
                files.push((entry.path(), None));
            }
            files.sort_by(|a, b| a.0.cmp(&b.0));
            files
        }
    };

    let mut packages = Vec::new();
    let mut collected = 0u64;
    for (file, listed) in &files {
        let text = super::read_bounded(file, MAX_RUNTIME_FILE)?;
        let pkg = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let vars = parse_pkgdata_file(&text).map_err(|problem| Error::BadInput {
            input: file.display().to_string(),
            problem: format!("not a pkgdata runtime file: {problem}"),
        })?;
        let get = |var: &str| vars.get(&format!("{var}:{pkg}")).or_else(|| vars.get(var));
        let name = get("PKG").cloned().unwrap_or_else(|| pkg.clone());
        let size = get("PKGSIZE").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let depends = get("RDEPENDS").map(|d| dependency_names(d)).unwrap_or_default();
        let version = extended_version(&get).or_else(|| listed.as_ref().and_then(|l| l.version.clone()));
        let architecture = get("PACKAGE_ARCH").cloned().or_else(|| listed.as_ref().map(|l| l.architecture.clone()));
        let recipe = match (get("PN"), get("PV")) {
            (Some(name), Some(version)) => Some(Recipe { name: name.clone(), version: version.clone() }),
            _ => None,
        };
        let license = get("LICENSE").cloned();
        let paths: Vec<String> = match get("FILES_INFO") {
            Some(json) => {
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(json).map_err(|e| Error::BadInput {
                        input: file.display().to_string(),
                        problem: format!("FILES_INFO:{pkg} is not a JSON object: {e}"),
                    })?;
                object.into_iter().map(|(path, _)| path).collect()
            }
            None => Vec::new(),
        };
        // Every package's paths are held until all are read: bound them as the ownership is bounded.
        collected += paths.iter().map(|p| p.len() as u64 + 64).sum::<u64>();
        if collected > super::MAX_OWNERSHIP_BYTES {
            return Err(bad(format!(
                "the packages list more paths than the {} MiB kept in memory",
                super::MAX_OWNERSHIP_BYTES >> 20
            )));
        }
        packages.push((pkg, Package { name, size, depends, version, architecture, license, recipe }, paths));
    }
    if packages.is_empty() {
        return Err(bad("the pkgdata directory describes no package (runtime/ is empty)".into()));
    }

    // RDEPENDS may name packages by their recipe-time names; map those to the installed names.
    let renamed: HashMap<String, String> = packages.iter().map(|(pkg, p, _)| (pkg.clone(), p.name.clone())).collect();
    packages.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut ownership = Ownership::new(format!("pkgdata {shown}"));
    ownership.data = Some(super::PackageData::Pkgdata);
    for (_, mut package, paths) in packages {
        for dep in &mut package.depends {
            if let Some(name) = renamed.get(dep) {
                *dep = name.clone();
            }
        }
        let index = ownership.add_package(package);
        for path in paths {
            ownership.add_path(path.as_bytes(), index);
        }
        if ownership.over_limit() {
            return Err(bad(format!(
                "the packages list more paths than the {} MiB kept in memory",
                super::MAX_OWNERSHIP_BYTES >> 20
            )));
        }
    }
    Ok(ownership)
}

/// The package version as Yocto writes it in package feeds and the image manifest (bitbake.conf `EXTENDPKGV`):
/// `[PKGE:]PKGV-PKGR`, from whichever of those the runtime file holds (`PV` when it has no `PKGV`).
fn extended_version<'a>(get: &impl Fn(&str) -> Option<&'a String>) -> Option<String> {
    let set = |var: &str| get(var).filter(|v| !v.trim().is_empty());
    let pkgv = set("PKGV").or_else(|| set("PV"))?;
    let mut version = set("PKGE").map(|e| format!("{e}:")).unwrap_or_default();
    version.push_str(pkgv);
    if let Some(pkgr) = set("PKGR").or_else(|| set("PR")) {
        version.push('-');
        version.push_str(pkgr);
    }
    Some(version)
}

/// What an image manifest line says of a package besides its name.
struct Listed {
    architecture: String,
    version: Option<String>,
}

/// The `runtime/<pkg>` files of the packages an image manifest names, through `runtime-reverse/<name>`, each with
/// what its manifest line says.
fn installed_from_manifest(dir: &Path, manifest: &Path) -> Result<Vec<(std::path::PathBuf, Option<Listed>)>, Error> {
    let shown = manifest.display().to_string();
    let text = std::fs::read_to_string(manifest).map_err(|e| Error::BadInput {
        input: shown.clone(),
        problem: match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".into(),
            _ => format!("cannot read the package manifest: {e}"),
        },
    })?;
    let mut files = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(architecture) = words.next().filter(|_| !name.contains('/')) else {
            return Err(Error::BadInput {
                input: shown,
                problem: format!("line {}: not an image manifest line `NAME ARCH VERSION`", number + 1),
            });
        };
        let version = words.next().map(str::to_string);
        let reverse = dir.join("runtime-reverse").join(name);
        let file = std::fs::canonicalize(&reverse).map_err(|_| Error::BadInput {
            input: shown.clone(),
            problem: format!(
                "names package `{name}`, which pkgdata `{}` does not know (no runtime-reverse/{name})",
                dir.display()
            ),
        })?;
        files.push((file, Some(Listed { architecture: architecture.to_string(), version })));
    }
    if files.is_empty() {
        return Err(Error::BadInput { input: shown, problem: "the package manifest names no package".into() });
    }
    Ok(files)
}

/// `VAR: value` lines, values unescaped (packagedata.py `read_pkgdatafile`: the key is everything before the
/// first `:` followed by whitespace).
pub fn parse_pkgdata_file(text: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8 ({e})"))?;
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let split = line.char_indices().find(|&(i, c)| c == ':' && i > 0 && line[i + 1..].starts_with([' ', '\t']));
        if let Some((i, _)) = split {
            vars.insert(line[..i].to_string(), unicode_unescape(line[i + 1..].trim_start())?);
        }
    }
    Ok(vars)
}

/// Undoes Python's `unicode_escape` encoding, which emit_pkgdata applies to every value.
fn unicode_unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next().ok_or("a value ends in a lone backslash")?;
        let hex = |chars: &mut std::str::Chars, n: usize| -> Result<char, String> {
            let digits: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| digits.len() == n)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad escape `\\{escaped}{}`", digits.escape_debug()))
        };
        out.push(match escaped {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            other => return Err(format!("unknown escape `\\{}`", other.escape_debug())),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_files_unescape_values_as_python_wrote_them() {
        let text = br#"PN: glibc
PKG:glibc: libc6
RDEPENDS:glibc: update-alternatives-opkg (>= 1) glibc-binary-localedata
PKGSIZE:glibc: 1234
FILES_INFO:glibc: {"/lib/libc.so.6": 1000, "/usr/share/caf\\u00e9": 3}
"#;
        let vars = parse_pkgdata_file(text).unwrap();
        assert_eq!(vars["PKG:glibc"], "libc6");
        assert_eq!(vars["PN"], "glibc");
        let files: serde_json::Value = serde_json::from_str(&vars["FILES_INFO:glibc"]).unwrap();
        assert!(files.get("/usr/share/caf\u{e9}").is_some(), "{files}");
        assert_eq!(unicode_unescape(r"a\tb\x41\\").unwrap(), "a\tbA\\");
        assert!(unicode_unescape(r"bad\q").is_err());
    }

    #[test]
    fn a_directory_without_runtime_is_not_pkgdata() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("not a Yocto pkgdata directory: it has no runtime/"), "{err}");
    }

    #[test]
    fn manifests_resolve_renamed_packages_and_refuse_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("runtime")).unwrap();
        std::fs::create_dir_all(root.join("runtime-reverse")).unwrap();
        std::fs::write(
            root.join("runtime/glibc"),
            "PN: glibc\nPE: 1\nPV: 2.39+git\nPR: r0\nPKGE: 1\nPKGV: 2.39+git0+abc\nPKGR: r0\n\
             LICENSE:glibc: GPL-2.0-only & LGPL-2.1-or-later\n\
             PKG:glibc: libc6\nPKGSIZE:glibc: 4096\nFILES_INFO:glibc: {\"/lib/libc.so.6\": 4096}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("runtime/hello"),
            "RDEPENDS:hello: glibc\nFILES_INFO:hello: {\"/usr/bin/hello\": 10}\n",
        )
        .unwrap();
        std::fs::write(root.join("runtime/unused"), "FILES_INFO:unused: {\"/usr/bin/unused\": 10}\n").unwrap();
        std::os::unix::fs::symlink("../runtime/glibc", root.join("runtime-reverse/libc6")).unwrap();
        std::os::unix::fs::symlink("../runtime/hello", root.join("runtime-reverse/hello")).unwrap();
        let manifest = root.join("image.manifest");
        std::fs::write(&manifest, "hello core2-64 1.0\nlibc6 core2-64 2.39\n").unwrap();

        let ownership = load(root, Some(&manifest)).unwrap();
        let names: Vec<_> = ownership.packages().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hello", "libc6"]);
        let hello = ownership.owner(b"usr/bin/hello").unwrap();
        assert_eq!(ownership.package(hello).depends, ["libc6"]);
        assert_eq!(ownership.owner(b"usr/bin/unused"), None);
        let libc = ownership.package(ownership.owner(b"lib/libc.so.6").unwrap());
        assert_eq!(libc.size, 4096);
        assert_eq!(libc.version.as_deref(), Some("1:2.39+git0+abc-r0"));
        assert_eq!(libc.architecture.as_deref(), Some("core2-64"), "PACKAGE_ARCH from the manifest");
        assert_eq!(libc.license.as_deref(), Some("GPL-2.0-only & LGPL-2.1-or-later"));
        assert_eq!(libc.recipe, Some(Recipe { name: "glibc".into(), version: "2.39+git".into() }));
        let hello = ownership.package(hello);
        assert_eq!((hello.version.as_deref(), hello.recipe.as_ref()), (Some("1.0"), None), "the manifest's version");

        std::fs::write(&manifest, "hello core2-64 1.0\nmissing core2-64 1\n").unwrap();
        let err = load(root, Some(&manifest)).unwrap_err().to_string();
        assert!(err.contains("names package `missing`, which pkgdata"), "{err}");
        assert!(err.starts_with(&format!("`{}`", manifest.display())), "{err}");
    }
}
