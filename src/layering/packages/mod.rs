//! Package ownership: which installed package owns which path of the rootfs, with each package's size and
//! dependencies. It decides the layer of every entry in `--layers packages` (see [`crate::layering::plan`]).
//!
//! Three sources: a Yocto build's pkgdata ([`pkgdata`]), and the rootfs's own opkg ([`opkg`]) or dpkg ([`dpkg`])
//! database, found by [`database`] in a pass before the conversion.

pub mod database;
pub mod dpkg;
pub mod opkg;
pub mod pkgdata;

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;

/// One installed package. Only `name`, `size` and `depends` decide layers; the rest describes the package in an SBOM
/// (see [`crate::sbom`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    /// The name it is installed under (after any renaming).
    pub name: String,
    /// Installed size in bytes (0 when the source does not say).
    pub size: u64,
    /// Names of the packages it depends on (runtime dependencies), alternatives included.
    pub depends: Vec<String>,
    /// The version as the package manager spells it (`1:2.36-9+deb12u4`, `1.36.1-r0`).
    pub version: Option<String>,
    /// The package's architecture as its source names it (`amd64`, `all`, `cortexa57`, `core2-64`).
    pub architecture: Option<String>,
    /// The licence as the source writes it: a Yocto `LICENSE` (`GPL-2.0-only & MIT`) or an opkg `License` field.
    pub license: Option<String>,
    /// The Yocto recipe the package was built from, when the source knows it (pkgdata's `PN` and `PV`).
    pub recipe: Option<Recipe>,
}

/// A Yocto recipe: its name (`PN`) and version (`PV`), what OE-core's package URLs (`pkg:yocto/...`) name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipe {
    pub name: String,
    pub version: String,
}

impl Package {
    /// What keeping this package costs in memory, counted against [`MAX_OWNERSHIP_BYTES`].
    fn held(&self) -> u64 {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() as u64);
        PATH_OVERHEAD
            + self.name.len() as u64
            + self.depends.iter().map(|d| d.len() as u64 + PATH_OVERHEAD).sum::<u64>()
            + text(&self.version)
            + text(&self.architecture)
            + text(&self.license)
            + self.recipe.as_ref().map_or(0, |r| (r.name.len() + r.version.len()) as u64)
    }
}

/// The most bytes the owned paths of all packages may take in memory, each path counted with
/// [`PATH_OVERHEAD`]: the ownership is kept for the whole conversion. A large Debian (2,000 packages) lists about
/// 250,000 paths in 20 MiB.
pub const MAX_OWNERSHIP_BYTES: u64 = 48 << 20;

/// What keeping one owned path costs beyond its bytes: the map slot, the allocation's header and rounding.
const PATH_OVERHEAD: u64 = 64;

/// Which kind of package data an ownership was read from: it decides how an SBOM identifies the packages (their
/// package URLs, see [`crate::sbom`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageData {
    Dpkg,
    Opkg,
    /// A Yocto build's pkgdata.
    Pkgdata,
}

/// Installed packages and the paths each owns.
#[derive(Clone, Debug, Default)]
pub struct Ownership {
    /// Where the ownership came from, for messages and the summary (`pkgdata tmp/pkgdata/qemuarm64`).
    pub source: String,
    /// What kind of package data that was (`None`: made up, as tests do).
    pub data: Option<PackageData>,
    packages: Vec<Package>,
    /// Rootfs path (normal form: no leading `/`) -> index into `packages`.
    owners: HashMap<Vec<u8>, u32>,
    /// Bytes of `owners` and `packages`, counted against [`MAX_OWNERSHIP_BYTES`].
    held: u64,
}

impl Ownership {
    pub fn new(source: impl Into<String>) -> Ownership {
        Ownership { source: source.into(), ..Ownership::default() }
    }

    /// Adds a package and returns its index; a name added twice keeps the first.
    pub fn add_package(&mut self, package: Package) -> u32 {
        if let Some(i) = self.packages.iter().position(|p| p.name == package.name) {
            return i as u32;
        }
        self.held += package.held();
        self.packages.push(package);
        (self.packages.len() - 1) as u32
    }

    /// Records that `package` owns `path` (as listed: with or without a leading `/` or `./`). A path listed by two
    /// packages stays with the first (the sources add packages sorted by name, so the choice is stable).
    pub fn add_path(&mut self, path: &[u8], package: u32) {
        let path = crate::tar::path::listed_form(path);
        if path.is_empty() {
            return;
        }
        if !self.owners.contains_key(path) {
            self.held += path.len() as u64 + PATH_OVERHEAD;
            self.owners.insert(path.to_vec(), package);
        }
    }

    /// Whether the packages and paths added so far take more than [`MAX_OWNERSHIP_BYTES`]; sources check it
    /// after each package and refuse the database.
    pub fn over_limit(&self) -> bool {
        self.held > MAX_OWNERSHIP_BYTES
    }

    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    pub fn package(&self, index: u32) -> &Package {
        &self.packages[index as usize]
    }

    /// The package that owns `path` (normal form).
    pub fn owner(&self, path: &[u8]) -> Option<u32> {
        self.owners.get(path).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// Paths owned per package, for tests and reports.
    pub fn paths_by_package(&self) -> BTreeMap<&str, Vec<&[u8]>> {
        let mut by = BTreeMap::<&str, Vec<&[u8]>>::new();
        for (path, &i) in &self.owners {
            by.entry(&self.packages[i as usize].name).or_default().push(path);
        }
        for paths in by.values_mut() {
            paths.sort();
        }
        by
    }
}

/// Reads a package-data file whole, refusing one larger than `limit` bytes rather than holding it.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::BadInput {
            input: path.display().to_string(),
            problem: format!("larger than the {} MiB accepted for a package database file", limit >> 20),
        });
    }
    Ok(bytes)
}

/// Package names from a Debian-style dependency field (`libc6 (>= 2.36), libfoo | libbar, python3:any`): every
/// alternative, without versions or architecture qualifiers.
pub fn dependency_names(field: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = field;
    // Version constraints are in parentheses, which may hold commas in no format we know, but strip them first.
    let mut cleaned = String::with_capacity(field.len());
    let mut depth = 0;
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    rest = &cleaned;
    for word in rest.split([',', '|', ' ', '\t', '\n']) {
        let name = word.split(':').next().unwrap_or("").trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Splits an RFC 822-style control file (dpkg's and opkg's `status`) into stanzas of (field, value) pairs.
/// Continuation lines (starting with a space or tab) extend the previous field. Returns the line number of a line
/// that is neither a field nor a continuation.
pub fn control_stanzas(text: &str) -> Result<Vec<Vec<(String, String)>>, usize> {
    let mut stanzas = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            match current.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                None => return Err(number + 1),
            }
        } else {
            let Some((field, value)) = line.split_once(':') else {
                return Err(number + 1);
            };
            if field.is_empty() || field.contains(' ') {
                return Err(number + 1);
            }
            current.push((field.to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    Ok(stanzas)
}

/// One stanza of a control file: (field, value) pairs.
pub type Stanza = [(String, String)];

/// How a Debian-style package database (dpkg's, opkg's) is told apart where the two differ.
pub(crate) struct StatusDatabase<'a> {
    /// `dpkg` or `opkg`, for messages and the ownership's source.
    pub tool: &'static str,
    pub data: PackageData,
    /// Whether a package in this `Status` state (its third word) has its files on disk.
    pub present: fn(&str) -> bool,
    /// Bytes per unit of `Installed-Size`.
    pub size_unit: u64,
    /// The list file of an installed package, from its stanza.
    pub list: &'a dyn Fn(&str, &Stanza) -> Option<&'a Vec<u8>>,
    /// The path of a list line.
    pub path: fn(&[u8]) -> &[u8],
}

/// Reads a `status` file (at `status_path`, for messages) and the installed packages' list files.
pub(crate) fn parse_status(status_path: &str, status: &[u8], db: &StatusDatabase) -> Result<Ownership, Error> {
    let tool = db.tool;
    let bad = |problem: String| Error::BadInput { input: status_path.to_string(), problem };
    let text = std::str::from_utf8(status).map_err(|e| bad(format!("not a {tool} status file: not UTF-8 ({e})")))?;
    let stanzas =
        control_stanzas(text).map_err(|line| bad(format!("not a {tool} status file: line {line} is not a field")))?;
    let mut installed = Vec::new();
    for stanza in &stanzas {
        let name = field(stanza, "Package")
            .ok_or_else(|| bad(format!("not a {tool} status file: a stanza has no Package field")))?;
        let state = field(stanza, "Status").and_then(|s| s.split_whitespace().nth(2)).unwrap_or("");
        if !(db.present)(state) {
            continue;
        }
        let size = field(stanza, "Installed-Size").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        let mut depends = dependency_names(field(stanza, "Pre-Depends").unwrap_or(""));
        for name in dependency_names(field(stanza, "Depends").unwrap_or("")) {
            if !depends.contains(&name) {
                depends.push(name);
            }
        }
        // Installed-Size is the package's word: a huge one saturates rather than wraps into a small package.
        let package = Package {
            name: name.to_string(),
            size: size.saturating_mul(db.size_unit),
            depends,
            version: field(stanza, "Version").map(str::to_string),
            architecture: field(stanza, "Architecture").map(str::to_string),
            license: field(stanza, "License").map(str::to_string),
            recipe: None,
        };
        installed.push((package, (db.list)(name, stanza)));
    }
    if installed.is_empty() {
        return Err(bad(format!("the {tool} database lists no installed package")));
    }
    installed.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut ownership = Ownership::new(format!("{tool} database {status_path}"));
    ownership.data = Some(db.data);
    for (package, list) in installed {
        let index = ownership.add_package(package);
        for line in list.map(|l| l.split(|&b| b == b'\n')).into_iter().flatten() {
            ownership.add_path((db.path)(line), index);
        }
        if ownership.over_limit() {
            return Err(bad(format!(
                "the {tool} database lists more paths than the {} MiB kept in memory (at package `{}`)",
                MAX_OWNERSHIP_BYTES >> 20,
                crate::tar::path::shown_name(ownership.package(index).name.as_bytes())
            )));
        }
    }
    Ok(ownership)
}

/// A field of a stanza, case-insensitively (dpkg treats field names so).
pub fn field<'a>(stanza: &'a [(String, String)], name: &str) -> Option<&'a str> {
    stanza.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_fields_give_every_alternative_without_versions() {
        assert_eq!(
            dependency_names("libc6 (>= 2.36), libfoo | libbar (<< 2), python3:any, debconf (>= 0.5) | debconf-2.0"),
            ["libc6", "libfoo", "libbar", "python3", "debconf", "debconf-2.0"]
        );
        assert_eq!(dependency_names("busybox libc6 (>= 2.39)"), ["busybox", "libc6"]);
    }

    #[test]
    fn control_files_split_into_stanzas_with_continuations() {
        let text = "Package: a\nDescription: one\n two\n\n\nPackage: b\nStatus: install ok installed\n";
        let stanzas = control_stanzas(text).unwrap();
        assert_eq!(stanzas.len(), 2);
        assert_eq!(field(&stanzas[0], "description"), Some("one\ntwo"));
        assert_eq!(field(&stanzas[1], "Status"), Some("install ok installed"));
        assert_eq!(control_stanzas("Package: a\nnot a field\n"), Err(2));
        assert_eq!(control_stanzas(" leading continuation\n"), Err(1));
    }

    #[test]
    fn what_describes_a_package_counts_against_the_memory_limit() {
        let mut ownership = Ownership::new("test");
        let license = "MIT & ".repeat(MAX_OWNERSHIP_BYTES as usize / 6 + 1);
        ownership.add_package(Package { name: "a".into(), license: Some(license), ..Package::default() });
        assert!(ownership.over_limit());
    }

    #[test]
    fn a_path_listed_twice_stays_with_its_first_owner() {
        let mut ownership = Ownership::new("test");
        let a = ownership.add_package(Package { name: "a".into(), ..Package::default() });
        let b = ownership.add_package(Package { name: "b".into(), ..Package::default() });
        ownership.add_path(b"/bin/x", a);
        ownership.add_path(b"bin/x", b);
        assert_eq!(ownership.owner(b"bin/x"), Some(a));
    }
}
