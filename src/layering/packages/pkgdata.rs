//! A Yocto build's package data (`PKGDATA_DIR`, OE-core `meta/lib/oe/packagedata.py`): `runtime/<pkg>` holds lines
//! `VAR:<pkg>: value` with the value escaped by Python's `unicode_escape`, among them `PKG` (the final, possibly
//! renamed, package name), `FILES_INFO` (a JSON object whose keys are the package's absolute paths), `RDEPENDS` and
//! `PKGSIZE`; `runtime-reverse/<final name>` links back to the `runtime/<pkg>` file. The image's manifest
//! (`IMAGE_MANIFEST`: lines `name arch version`) names what is installed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{Ownership, Package, dependency_names};
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
    let files: Vec<std::path::PathBuf> = match manifest {
        Some(manifest) => installed_from_manifest(dir, manifest)?,
        None => {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&runtime).map_err(|e| Error::io("cannot read", &runtime, e))? {
                let entry = entry.map_err(|e| Error::io("cannot read", &runtime, e))?;
                // runtime/<pkg>.packaged markers say a package was written; they are not package files.
                if !entry.path().is_file() || entry.file_name().to_string_lossy().ends_with(".packaged") {
                    continue;
                }
                files.push(entry.path());
            }
            files.sort();
            files
        }
    };

    let mut packages = Vec::new();
    let mut collected = 0u64;
    for file in &files {
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
        packages.push((pkg, Package { name, size, depends }, paths));
    }
    if packages.is_empty() {
        return Err(bad("the pkgdata directory describes no package (runtime/ is empty)".into()));
    }

    // RDEPENDS may name packages by their recipe-time names; map those to the installed names.
    let renamed: HashMap<String, String> = packages.iter().map(|(pkg, p, _)| (pkg.clone(), p.name.clone())).collect();
    packages.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let mut ownership = Ownership::new(format!("pkgdata {shown}"));
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

/// The `runtime/<pkg>` files of the packages an image manifest names, through `runtime-reverse/<name>`.
fn installed_from_manifest(dir: &Path, manifest: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
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
        if words.next().is_none() || name.contains('/') {
            return Err(Error::BadInput {
                input: shown,
                problem: format!("line {}: not an image manifest line `NAME ARCH VERSION`", number + 1),
            });
        }
        let reverse = dir.join("runtime-reverse").join(name);
        let file = std::fs::canonicalize(&reverse).map_err(|_| Error::BadInput {
            input: shown.clone(),
            problem: format!(
                "names package `{name}`, which pkgdata `{}` does not know (no runtime-reverse/{name})",
                dir.display()
            ),
        })?;
        files.push(file);
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
            "PKG:glibc: libc6\nPKGSIZE:glibc: 4096\nFILES_INFO:glibc: {\"/lib/libc.so.6\": 4096}\n",
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
        assert_eq!(ownership.package(ownership.owner(b"lib/libc.so.6").unwrap()).size, 4096);

        std::fs::write(&manifest, "hello core2-64 1.0\nmissing core2-64 1\n").unwrap();
        let err = load(root, Some(&manifest)).unwrap_err().to_string();
        assert!(err.contains("names package `missing`, which pkgdata"), "{err}");
        assert!(err.starts_with(&format!("`{}`", manifest.display())), "{err}");
    }
}
