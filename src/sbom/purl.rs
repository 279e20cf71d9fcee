//! Package URLs (purl-spec) for the packages of a generated SBOM, by the kind of package data they came from:
//!
//! - dpkg: `pkg:deb/debian/NAME@VERSION?arch=ARCH`, purl-spec's `deb` type as Syft and Trivy write it. The vendor
//!   is `debian`: the database does not say which Debian derivative built the package.
//! - Yocto pkgdata: `pkg:yocto/RECIPE@PV`, purl-spec's `yocto` type as OE-core writes it (`oe.purl.get_base_purl`:
//!   the recipe name lowercased and `PV`, every part percent-encoded; the layer namespace is left out, as OE-core
//!   does when it does not know the layer, since pkgdata does not record it). Every binary package of a recipe
//!   shares its URL, which is what CVE databases and OE-core's own SBOMs key on.
//! - opkg, and pkgdata without a recipe: `pkg:generic/NAME@VERSION?arch=ARCH`. purl-spec has no type for opkg
//!   packages, and `yocto` names recipes, which opkg's database does not record (its `status` keeps no `Source`).
//!
//! Components are percent-encoded outside purl-spec's unreserved characters (`A-Z a-z 0-9 . - _ ~`), as OE-core's
//! `urllib.parse.quote(s, safe="")` does: `1:2.36-9+deb12u4` is `1%3A2.36-9%2Bdeb12u4`.

use crate::layering::packages::{Package, PackageData};

/// The package URL of `package`, read from `data`.
pub fn purl(package: &Package, data: Option<PackageData>) -> String {
    let arch = package.architecture.as_deref();
    match (data, &package.recipe) {
        (Some(PackageData::Dpkg), _) => build("deb", Some("debian"), &package.name, package.version.as_deref(), arch),
        (Some(PackageData::Pkgdata), Some(recipe)) => {
            build("yocto", None, &recipe.name.to_lowercase(), Some(&recipe.version), None)
        }
        _ => build("generic", None, &package.name, package.version.as_deref(), arch),
    }
}

fn build(kind: &str, namespace: Option<&str>, name: &str, version: Option<&str>, arch: Option<&str>) -> String {
    let mut purl = format!("pkg:{kind}/");
    if let Some(namespace) = namespace {
        purl.push_str(&quote(namespace));
        purl.push('/');
    }
    purl.push_str(&quote(name));
    if let Some(version) = version {
        purl.push('@');
        purl.push_str(&quote(version));
    }
    if let Some(arch) = arch {
        purl.push_str("?arch=");
        purl.push_str(&quote(arch));
    }
    purl
}

/// Percent-encodes every byte outside purl-spec's unreserved characters.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layering::packages::Recipe;

    fn package(name: &str, version: &str, arch: &str) -> Package {
        Package {
            name: name.into(),
            version: Some(version.into()),
            architecture: Some(arch.into()),
            ..Package::default()
        }
    }

    #[test]
    fn dpkg_packages_get_deb_urls_with_their_architecture() {
        let libc = package("libc6", "1:2.36-9+deb12u4", "amd64");
        assert_eq!(purl(&libc, Some(PackageData::Dpkg)), "pkg:deb/debian/libc6@1%3A2.36-9%2Bdeb12u4?arch=amd64");
        let bare = Package { name: "hello".into(), ..Package::default() };
        assert_eq!(purl(&bare, Some(PackageData::Dpkg)), "pkg:deb/debian/hello");
    }

    #[test]
    fn pkgdata_packages_get_their_recipe_url_as_oe_core_writes_it() {
        let mut libc = package("libc6", "2.39+git0+abc-r0", "core2-64");
        libc.recipe = Some(Recipe { name: "glibc".into(), version: "2.39+git".into() });
        assert_eq!(purl(&libc, Some(PackageData::Pkgdata)), "pkg:yocto/glibc@2.39%2Bgit");
        libc.recipe = None;
        assert_eq!(purl(&libc, Some(PackageData::Pkgdata)), "pkg:generic/libc6@2.39%2Bgit0%2Babc-r0?arch=core2-64");
    }

    #[test]
    fn opkg_packages_get_generic_urls() {
        let busybox = package("busybox", "1.36.1-r0", "cortexa57");
        assert_eq!(purl(&busybox, Some(PackageData::Opkg)), "pkg:generic/busybox@1.36.1-r0?arch=cortexa57");
    }
}
