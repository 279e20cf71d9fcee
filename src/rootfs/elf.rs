//! Detecting a rootfs's architecture from its ELF binaries while it streams past: each executable's and shared
//! object's header gives its machine, the majority wins, and 32-bit ARM files are read whole for the architecture
//! level in their `.ARM.attributes` section.

use std::collections::BTreeMap;
use std::io::Read;

use crate::error::{Error, Remedy, Result, display_bytes};
use crate::oci::platform::Platform;

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

/// The platform the user asked for, if any.
#[derive(Clone, Debug)]
pub struct PlatformOptions {
    /// The target platform; detected from the rootfs's ELF binaries when `None`.
    pub requested: Option<Platform>,
    /// Refuse a requested platform that the rootfs's binaries contradict.
    pub check: bool,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        PlatformOptions { requested: None, check: true }
    }
}

impl ElfCensus {
    /// The platform to build for and how it was decided: the one requested (checked against the binaries when the
    /// options say so), else the one the binaries show, else `fallback` (a base image's, with where it came from).
    pub fn resolve(
        &self,
        options: &PlatformOptions,
        fallback: Option<(Platform, String)>,
        input: &str,
    ) -> Result<(Platform, String)> {
        let (requested, check) = (options.requested.as_ref(), options.check);
        let detected = self.platform();
        if let (None, None, Some(fallback)) = (requested, &detected, fallback) {
            return Ok(fallback);
        }
        match (requested, detected) {
            (Some(requested), Some((found, file))) => {
                if check && requested.architecture != found.architecture {
                    let remedy = Remedy::MatchPlatform { found: found.to_string(), requested: requested.to_string() };
                    return Err(Error::ArchMismatch {
                        input: input.to_string(),
                        requested: requested.to_string(),
                        found: found.to_string(),
                        file,
                    }
                    .with_remedy(remedy));
                }
                let mut platform = requested.clone();
                if platform.variant.is_none() && platform.architecture == found.architecture {
                    platform.variant = found.variant;
                }
                Ok((platform.with_default_variant(), "option".into()))
            }
            (Some(requested), None) => Ok((requested.clone().with_default_variant(), "option".into())),
            (None, Some((found, file))) => Ok((found.with_default_variant(), format!("detected from `{file}`"))),
            (None, None) => Err(Error::BadInput {
                input: input.to_string(),
                problem: "no ELF executables found to detect the architecture from".into(),
            }
            .with_remedy(Remedy::NamePlatform)),
        }
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

/// Passes a file's data through while keeping its head for the [`ElfCensus`], and the whole file where the census
/// needs it (32-bit ARM binaries, whose architecture level sits in a section near the end).
pub struct ElfSniffer<R> {
    inner: R,
    head: Vec<u8>,
    whole: Option<Vec<u8>>,
}

impl<R: Read> ElfSniffer<R> {
    pub fn new(inner: R, census: &ElfCensus, size: Option<u64>) -> Self {
        let capture = census.wants_arm_attributes() && size.is_some_and(|s| s <= ARM_ATTRIBUTES_LIMIT as u64);
        ElfSniffer { inner, head: Vec::new(), whole: capture.then(Vec::new) }
    }

    fn is_arm32(&self) -> bool {
        ElfIdent::parse(&self.head).is_some_and(|e| e.architecture() == Some("arm"))
    }

    /// Reads what the census needs that the consumer did not read (it may leave a file's data unread): the head,
    /// and a 32-bit ARM binary whole.
    pub fn read_rest_needed(&mut self) -> std::io::Result<()> {
        let mut scratch = [0u8; 64 << 10];
        while self.head.len() < ELF_HEAD || self.whole.is_some() {
            let want = match self.whole.is_some() {
                true => scratch.len(),
                false => ELF_HEAD - self.head.len(),
            };
            if self.read(&mut scratch[..want])? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The head of the file, and the whole file when it is a 32-bit ARM binary the census still needs.
    pub fn into_captured(self) -> (Vec<u8>, Option<Vec<u8>>) {
        let whole = if self.is_arm32() { self.whole } else { None };
        (self.head, whole)
    }
}

impl<R: Read> Read for ElfSniffer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let had = self.head.len();
        if had < ELF_HEAD {
            self.head.extend_from_slice(&buf[..n.min(ELF_HEAD - had)]);
        }
        if let Some(whole) = &mut self.whole {
            whole.extend_from_slice(&buf[..n]);
        }
        // Stop capturing as soon as the head shows this is not a 32-bit ARM binary.
        if had < ELF_HEAD && self.head.len() >= ELF_HEAD && !self.is_arm32() {
            self.whole = None;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
