//! Target platforms: parsing the names users give (OCI, GNU and Yocto spellings), and detecting the architecture
//! from the ELF binaries of a rootfs while it streams past.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, display_bytes};

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

/// ELF `e_machine` values (ELF gABI, and the psABIs for the newer ones).
const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// The bytes of a file's head that [`ElfCensus::observe`] needs.
pub const ELF_HEAD: usize = 20;

/// What an ELF header says about a file's machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfIdent {
    pub machine: u16,
    pub is_64: bool,
    pub little_endian: bool,
}

impl ElfIdent {
    /// Parses an executable's or shared object's ELF header; other files (and relocatable objects, core files)
    /// say nothing about the rootfs's platform.
    pub fn parse(head: &[u8]) -> Option<ElfIdent> {
        if head.len() < ELF_HEAD || &head[..4] != b"\x7fELF" {
            return None;
        }
        let little_endian = match head[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let half = |at: usize| {
            let b = [head[at], head[at + 1]];
            if little_endian { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }
        };
        let e_type = half(16);
        if e_type != 2 && e_type != 3 {
            return None;
        }
        Some(ElfIdent { machine: half(18), is_64: head[4] == 2, little_endian })
    }

    /// The OCI architecture this machine runs as, if engines know it.
    pub fn architecture(self) -> Option<&'static str> {
        Some(match (self.machine, self.is_64, self.little_endian) {
            (EM_386, false, true) => "386",
            (EM_X86_64, true, true) => "amd64",
            (EM_AARCH64, true, true) => "arm64",
            (EM_ARM, false, true) => "arm",
            (EM_RISCV, true, true) => "riscv64",
            (EM_PPC64, true, true) => "ppc64le",
            (EM_PPC64, true, false) => "ppc64",
            (EM_S390, true, false) => "s390x",
            (EM_MIPS, false, false) => "mips",
            (EM_MIPS, false, true) => "mipsle",
            (EM_MIPS, true, false) => "mips64",
            (EM_MIPS, true, true) => "mips64le",
            (EM_LOONGARCH, true, true) => "loong64",
            _ => return None,
        })
    }
}

/// Counts the machines of the rootfs's executables and shared objects as they stream past. The majority decides:
/// a rootfs may hold a few foreign ELF files (firmware, bootloaders) that say nothing about where it runs.
#[derive(Default)]
pub struct ElfCensus {
    /// architecture -> (count, first file seen)
    seen: BTreeMap<&'static str, (u64, Vec<u8>)>,
    arm_variant: Option<String>,
}

/// ARM ELF files are read whole (up to this size) to find `.ARM.attributes`, which sits near the end.
pub const ARM_ATTRIBUTES_LIMIT: usize = 16 << 20;

impl ElfCensus {
    /// Whether 32-bit ARM files should still be captured whole for [`ElfCensus::observe_arm_file`].
    pub fn wants_arm_attributes(&self) -> bool {
        self.arm_variant.is_none()
    }

    pub fn observe(&mut self, path: &[u8], head: &[u8]) {
        if let Some(arch) = ElfIdent::parse(head).and_then(ElfIdent::architecture) {
            let slot = self.seen.entry(arch).or_insert_with(|| (0, path.to_vec()));
            slot.0 += 1;
        }
    }

    /// Reads the ARM architecture level from a whole 32-bit ARM ELF file.
    pub fn observe_arm_file(&mut self, file: &[u8]) {
        if self.arm_variant.is_none() {
            self.arm_variant = arm_variant(file);
        }
    }

    /// The detected platform and a file that shows it, or `None` when the rootfs holds no known ELF binaries.
    pub fn platform(&self) -> Option<(Platform, String)> {
        let (arch, (_, path)) =
            self.seen.iter().max_by_key(|(arch, (count, _))| (*count, std::cmp::Reverse(**arch)))?;
        let variant = if *arch == "arm" { self.arm_variant.clone() } else { None };
        Some((Platform { architecture: arch.to_string(), variant }, display_bytes(path)))
    }
}

/// `Tag_CPU_arch` of the `aeabi` attributes (ARM IHI 0045, "Addenda to the ARM ELF ABI") as an OCI variant.
fn arm_variant(file: &[u8]) -> Option<String> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(file.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(file.get(at..at + 4)?.try_into().ok()?));
    let shoff = u32_at(32)? as usize;
    let shentsize = u16_at(46)? as usize;
    let shnum = u16_at(48)? as usize;
    const SHT_ARM_ATTRIBUTES: u32 = 0x7000_0003;
    let section = (0..shnum).map(|i| shoff + i * shentsize).find(|&at| u32_at(at + 4) == Some(SHT_ARM_ATTRIBUTES))?;
    let offset = u32_at(section + 16)? as usize;
    let size = u32_at(section + 20)? as usize;
    let data = file.get(offset..offset.checked_add(size)?)?;
    if data.first() != Some(&b'A') {
        return None;
    }
    let mut rest = &data[1..];
    while rest.len() >= 4 {
        let length = u32::from_le_bytes(rest[..4].try_into().ok()?) as usize;
        let sub = rest.get(4..length)?;
        rest = &rest[length..];
        let nul = sub.iter().position(|&b| b == 0)?;
        if &sub[..nul] != b"aeabi" {
            continue;
        }
        let mut attrs = &sub[nul + 1..];
        // One Tag_File (1) sub-subsection: tag, u32 size, then attributes.
        if attrs.first() != Some(&1) || attrs.len() < 5 {
            return None;
        }
        let end = (u32::from_le_bytes(attrs[1..5].try_into().ok()?) as usize).min(attrs.len());
        attrs = &attrs[5..end];
        while !attrs.is_empty() {
            let (tag, n) = uleb128(attrs)?;
            attrs = &attrs[n..];
            match tag {
                // Tag_CPU_raw_name, Tag_CPU_name: NUL-terminated strings.
                4 | 5 => attrs = &attrs[attrs.iter().position(|&b| b == 0)? + 1..],
                6 => {
                    let (arch, _) = uleb128(attrs)?;
                    return Some(
                        match arch {
                            0..=5 => "v5",
                            6..=9 | 11 | 12 => "v6",
                            10 | 13 => "v7",
                            _ => "v8",
                        }
                        .to_string(),
                    );
                }
                _ => return None,
            }
        }
    }
    None
}

fn uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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

    fn elf_head(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', class, data, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (t, m) = if data == 1 {
            (2u16.to_le_bytes(), machine.to_le_bytes())
        } else {
            (2u16.to_be_bytes(), machine.to_be_bytes())
        };
        h.extend(t);
        h.extend(m);
        h
    }

    #[test]
    fn the_majority_of_elf_binaries_decides_the_architecture() {
        let mut census = ElfCensus::default();
        census.observe(b"lib/firmware/x.elf", &elf_head(1, 1, EM_ARM));
        census.observe(b"bin/busybox", &elf_head(2, 1, EM_AARCH64));
        census.observe(b"lib/ld.so", &elf_head(2, 1, EM_AARCH64));
        census.observe(b"etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n");
        let (platform, file) = census.platform().unwrap();
        assert_eq!((platform.to_string(), file.as_str()), ("arm64".into(), "bin/busybox"));
    }

    #[test]
    fn elf_endianness_and_class_pick_the_architecture() {
        let arch = |c, d, m| ElfIdent::parse(&elf_head(c, d, m)).and_then(ElfIdent::architecture);
        assert_eq!(arch(2, 1, EM_PPC64), Some("ppc64le"));
        assert_eq!(arch(2, 2, EM_PPC64), Some("ppc64"));
        assert_eq!(arch(1, 2, EM_MIPS), Some("mips"));
        assert_eq!(arch(2, 1, EM_MIPS), Some("mips64le"));
        assert_eq!(arch(2, 1, EM_RISCV), Some("riscv64"));
        assert_eq!(arch(2, 2, EM_S390), Some("s390x"));
    }

    #[test]
    fn arm_attributes_give_the_variant() {
        // A minimal ELF32 with one section of type SHT_ARM_ATTRIBUTES holding Tag_CPU_name "7-A", Tag_CPU_arch 10.
        let mut attrs = vec![b'A'];
        let body: Vec<u8> = [&[1u8][..], &[0; 4], &[5], b"7-A\0", &[6, 10]].concat();
        let mut file_sub = body.clone();
        file_sub[1..5].copy_from_slice(&(body.len() as u32).to_le_bytes());
        let sub: Vec<u8> = [&b"aeabi\0"[..], &file_sub].concat();
        attrs.extend(((sub.len() + 4) as u32).to_le_bytes());
        attrs.extend(sub);
        let mut file = elf_head(1, 1, EM_ARM);
        file.resize(52, 0);
        let attrs_at = file.len();
        file.extend(&attrs);
        let shoff = file.len();
        file[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
        file[46..48].copy_from_slice(&40u16.to_le_bytes());
        file[48..50].copy_from_slice(&1u16.to_le_bytes());
        let mut sh = vec![0u8; 40];
        sh[4..8].copy_from_slice(&0x7000_0003u32.to_le_bytes());
        sh[16..20].copy_from_slice(&(attrs_at as u32).to_le_bytes());
        sh[20..24].copy_from_slice(&(attrs.len() as u32).to_le_bytes());
        file.extend(sh);
        assert_eq!(arm_variant(&file).as_deref(), Some("v7"));
    }
}
