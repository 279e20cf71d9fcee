//! Target platforms (image-spec image-index.md `platform`): parsing the names users give (OCI, GNU and Yocto
//! spellings) into OCI architecture and variant.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// An OCI platform's CPU part (image-spec image-index.md): `architecture` and optional `variant`; the OS is linux.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub architecture: String,
    pub variant: Option<String>,
}

const KNOWN: &str = "amd64, arm64, arm/v7, arm/v6, arm/v5, 386, riscv64, ppc64le, ppc64, s390x, mips, mipsle, mips64, \
                     mips64le, loong64 (or aarch64, armv7a, x86_64, i686, powerpc64le, mipsel, ...)";

impl Platform {
    pub fn new(architecture: &str, variant: Option<&str>) -> Platform {
        Platform { architecture: architecture.to_string(), variant: variant.map(str::to_string) }
    }

    /// The variant engines assume when none is given (containerd's platforms normalisation): arm64 is v8; 32-bit
    /// arm is v7 unless the binaries say otherwise.
    pub fn with_default_variant(mut self) -> Platform {
        if self.variant.is_none() {
            self.variant = match self.architecture.as_str() {
                "arm64" => Some("v8".into()),
                "arm" => Some("v7".into()),
                _ => None,
            };
        }
        self
    }

    /// A short form for file names: `arm64`, `arm-v7`.
    pub fn file_stem(&self) -> String {
        match (&self.architecture, &self.variant) {
            (a, Some(v)) if a == "arm" => format!("{a}-{v}"),
            (a, _) => a.clone(),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}/{v}", self.architecture),
            None => f.write_str(&self.architecture),
        }
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(text: &str) -> Result<Platform, Error> {
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower.strip_prefix("linux/").unwrap_or(&lower);
        let (name, variant) = match lower.split_once('/') {
            Some((name, variant)) => (name, Some(variant)),
            None => (lower, None),
        };
        let unknown = || Error::Invalid(format!("unknown architecture `{text}`: use one of {KNOWN}"));
        let (architecture, implied) = match name {
            "amd64" | "x86_64" | "x86-64" | "x64" => ("amd64", None),
            "386" | "i386" | "i486" | "i586" | "i686" | "x86" => ("386", None),
            "arm64" | "aarch64" => ("arm64", None),
            "armhf" => ("arm", Some("v7")),
            "armel" => ("arm", Some("v5")),
            "arm" => ("arm", None),
            "riscv64" => ("riscv64", None),
            "ppc64le" | "powerpc64le" | "ppc64el" => ("ppc64le", None),
            "ppc64" | "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "mips" => ("mips", None),
            "mipsle" | "mipsel" => ("mipsle", None),
            "mips64" => ("mips64", None),
            "mips64le" | "mips64el" => ("mips64le", None),
            "loong64" | "loongarch64" => ("loong64", None),
            // Yocto's and GNU's ARM spellings carry the level: armv7a, armv7ahf, armv7vet2hf-neon, armv6, armv5te...
            other => match other.strip_prefix("armv").and_then(|rest| rest.chars().next()) {
                Some(level @ '5'..='8') => ("arm", Some(["v5", "v6", "v7", "v8"][level as usize - '5' as usize])),
                _ => return Err(unknown()),
            },
        };
        let variant = match (variant, implied) {
            (Some(given), _) => Some(given),
            (None, implied) => implied,
        };
        let allowed: &[&str] = match architecture {
            "arm" => &["v5", "v6", "v7", "v8"],
            "arm64" => &["v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9"],
            "amd64" => &["v1", "v2", "v3", "v4"],
            _ => &[],
        };
        if let Some(v) = variant.filter(|v| !allowed.contains(v)) {
            return Err(Error::Invalid(format!(
                "unknown variant `{v}` for {architecture} in `{text}`{}",
                if allowed.is_empty() {
                    String::from(": it has no variants")
                } else {
                    format!(": use {}", allowed.join(", "))
                }
            )));
        }
        Ok(Platform::new(architecture, variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> String {
        s.parse::<Platform>().map(|p| p.to_string()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn oci_gnu_and_yocto_spellings_map_to_oci_platforms() {
        for (given, expected) in [
            ("arm64", "arm64"),
            ("aarch64", "arm64"),
            ("arm64/v8", "arm64/v8"),
            ("linux/amd64", "amd64"),
            ("x86_64", "amd64"),
            ("i686", "386"),
            ("arm/v7", "arm/v7"),
            ("armv7a", "arm/v7"),
            ("armv7ahf", "arm/v7"),
            ("armv7vet2hf-neon", "arm/v7"),
            ("armv6", "arm/v6"),
            ("armv5te", "arm/v5"),
            ("armhf", "arm/v7"),
            ("powerpc64le", "ppc64le"),
            ("mipsel", "mipsle"),
            ("mips64el", "mips64le"),
            ("loongarch64", "loong64"),
            ("riscv64", "riscv64"),
            ("s390x", "s390x"),
        ] {
            assert_eq!(parse(given), expected, "{given}");
        }
    }

    #[test]
    fn unknown_architectures_and_variants_are_refused_with_the_choices() {
        assert!(parse("sparc64").starts_with("error: unknown architecture `sparc64`: use one of amd64"));
        assert!(parse("arm/v9").contains("use v5, v6, v7, v8"));
        assert!(parse("riscv64/v1").contains("has no variants"));
    }
}
