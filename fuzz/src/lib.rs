//! Fuzz harnesses: one function per parser that reads what other people made, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and by the replay of checked-in findings (`tests/fuzz_regressions.rs`, which includes this
//! file by path). Each harness drives the parser the way the tool does, with a bound on everything it reads, and
//! panics only when a promise of the tool is broken: a parser panic, a refused input whose error is more than one
//! escaped line, or a normalised entry that could not safely go into a layer. Time and memory are bounded by the
//! runner (libFuzzer's `-timeout` and `-rss_limit_mb`, see `scripts/fuzz.sh`).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use imgcraft::error::Error;
use imgcraft::oci::config::ImageConfig;
use imgcraft::oci::index::Index;
use imgcraft::oci::manifest::Manifest;
use imgcraft::oci::reference::{ImageName, ImageRef, RegistryRef};
use imgcraft::registry::auth::{Challenge, TokenReply};
use imgcraft::rootfs::decode::{InputCompression, SNIFF_LEN};
use imgcraft::rootfs::normalize::Normalizer;
use imgcraft::tar::entry::{Entry, EntryKind};
use imgcraft::tar::reader::TarReader;
use imgcraft::tar::writer::TarWriter;

/// The most decoded bytes one input may yield: far more than any seed decodes to, small enough for a quick run.
const MAX_DECODED: u64 = 64 << 20;
/// The mtime of the files the harnesses write (2024-01-01).
const EPOCH: i64 = 1_704_067_200;

/// An error the tool prints must be one line of printable text: whatever came from outside is escaped.
pub fn check_message(err: &Error) {
    let text = err.to_string();
    assert!(
        !text.chars().any(|c| c.is_control()),
        "an error message holds a control character (newline, escape, ...): {text:?}"
    );
}

/// A normalised entry must be safe to write into a layer as is: a relative path of plain components (no `.`, `..`
/// or empty one, no NUL, which every tar reader takes as the end of the name), a hardlink target of the same form,
/// and no `trusted.overlay.*` xattr (an overlay-backed engine would obey it, as it obeys a whiteout).
pub fn check_normal(entry: &Entry) {
    check_normal_path(&entry.path, "path");
    if let EntryKind::Hardlink { target } = &entry.kind {
        check_normal_path(target, "hardlink target");
    }
    if let EntryKind::Symlink { target } = &entry.kind {
        assert!(!target.contains(&0), "a symlink target holds a NUL byte: {:?}", String::from_utf8_lossy(target));
    }
    for name in entry.xattrs.keys() {
        assert!(!name.starts_with("trusted.overlay."), "the xattr {name:?} passed normalisation");
        assert!(!name.contains('\0'), "an xattr name holds a NUL byte: {name:?}");
    }
}

fn check_normal_path(path: &[u8], what: &str) {
    let shown = String::from_utf8_lossy(path);
    assert!(!path.is_empty(), "an empty {what} passed normalisation");
    assert!(!path.contains(&0), "a {what} holding a NUL byte passed normalisation: {shown:?}");
    for component in path.split(|&b| b == b'/') {
        assert!(!matches!(component, b"" | b"." | b".."), "the {what} {shown:?} is not in normal form");
    }
}

/// Reads every entry of a tar stream and all its data, normalising each entry and writing it into a layer as the
/// converter does (without SOURCE_DATE_EPOCH, its default). A rootfs the tool accepts must give a layer its own
/// reader reads back to the same entries, and a `created` time that is RFC 3339.
fn tar_entries(stream: impl Read, name: &str) {
    let mut reader = TarReader::new(stream, name, "uncompressed");
    let mut normalizer = Normalizer::new(name, None);
    let mut layer = TarWriter::new(Vec::new());
    let mut written = Vec::new();
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(err) => return check_message(&err),
        };
        let entry = match normalizer.normalize(entry) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(err) => return check_message(&err),
        };
        check_normal(&entry);
        if layer.append(&entry, &mut reader.data()).is_err() {
            return;
        }
        written.push(entry);
    }
    if let Some(newest) = normalizer.newest_mtime() {
        check_rfc3339(&imgcraft::oci::config::rfc3339(newest));
    }
    let layer = layer.finish().unwrap();
    let mut reread = TarReader::new(layer.as_slice(), "layer", "uncompressed");
    let mut again = Normalizer::new("layer", None);
    for (i, expected) in written.iter().enumerate() {
        let entry = match reread.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => panic!("the layer ends after {i} of {} entries", written.len()),
            Err(err) => panic!("the tool's reader refuses the layer it wrote: {err}"),
        };
        let entry = again.normalize(entry).unwrap_or_else(|err| panic!("a layer entry does not normalise: {err}"));
        assert_eq!(entry.as_ref(), Some(expected), "a layer entry reads back differently");
    }
    assert!(matches!(reread.next_entry(), Ok(None)), "the layer holds more entries than were written");
}

/// config.md: `created` is an RFC 3339 date-time, whose year has four digits.
fn check_rfc3339(text: &str) {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() == 20
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && [b[4], b[7], b[10], b[13], b[16], b[19]] == *b"--T::Z";
    assert!(shape, "the image's `created` time {text:?} is not RFC 3339");
}

/// The tar reader and the normaliser on an uncompressed tar.
pub fn tar_normalize(data: &[u8]) {
    tar_entries(data, "fuzz.tar");
}

/// The compression sniffer and every decoder, decoding to the end (bounded), then the tar reader on the result.
pub fn decompress(data: &[u8]) {
    let Ok(compression) = InputCompression::sniff(&data[..data.len().min(SNIFF_LEN)]) else { return };
    let decoded = compression.decoder(data).take(MAX_DECODED);
    tar_entries(decoded, "fuzz.tar.x");
}

/// A pkgdata `runtime/<pkg>` file, read by `pkgdata::load` from a directory in `work`.
pub fn pkgdata(data: &[u8], work: &Path) {
    let dir = fresh_dir(work, "pkgdata");
    let runtime = dir.join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::write(runtime.join("fuzz-pkg"), data).unwrap();
    if let Err(err) = imgcraft::layering::packages::pkgdata::load(&dir, None) {
        check_message(&err);
    }
}

/// A dpkg or opkg database in one file, as `head` prints several files: the `status` file, then for each list
/// file a line `==> NAME.list <==` and its content.
pub fn packages(data: &[u8]) {
    let mut sections = split(data, b"\n==> ");
    let status = sections.next().unwrap_or_default();
    let mut lists = BTreeMap::new();
    for section in sections {
        let Some(end) = section.windows(5).position(|w| w == b" <==\n") else { continue };
        lists.insert(String::from_utf8_lossy(&section[..end]).into_owned(), section[end + 5..].to_vec());
    }
    for parse in [imgcraft::layering::packages::dpkg::parse, imgcraft::layering::packages::opkg::parse] {
        // Owned paths are only looked up by the normalised paths of layer entries: whatever a list holds can
        // reach no layer, so only the parse itself is checked.
        if let Err(err) = parse("var/lib/dpkg/status", status, &lists) {
            check_message(&err);
        }
    }
}

fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.windows(separator.len()).position(|w| w == separator) {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Image references as given on the command line. One that parses prints as text that parses to the same.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    fn stable<T: std::str::FromStr + std::fmt::Display>(text: &str, what: &str) {
        let Ok(parsed) = text.parse::<T>() else { return };
        let shown = parsed.to_string();
        let again = shown
            .parse::<T>()
            .unwrap_or_else(|_| panic!("the {what} {text:?} prints as {shown:?}, which does not parse"));
        assert_eq!(again.to_string(), shown, "the {what} {text:?} does not print the same twice");
    }
    stable::<ImageRef>(text, "image reference");
    stable::<RegistryRef>(text, "registry reference");
    stable::<ImageName>(text, "image name");
}

/// OCI documents (manifest, index, config): a document that parses serialises to bytes that parse to the same.
pub fn oci_documents(data: &[u8]) {
    fn stable<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8], what: &str) {
        let Ok(parsed) = serde_json::from_slice::<T>(data) else { return };
        let bytes = serde_json::to_vec(&parsed).unwrap();
        let again: T =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("a {what} does not parse once written: {e}"));
        assert_eq!(serde_json::to_vec(&again).unwrap(), bytes, "a {what} does not serialise the same twice");
    }
    stable::<Manifest>(data, "manifest");
    stable::<Index>(data, "index");
    stable::<ImageConfig>(data, "image config");
}

/// `WWW-Authenticate` values and token-endpoint answers.
pub fn registry_auth(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(Challenge::Bearer { realm, .. }) = Challenge::parse(text) {
            assert!(text.len() >= realm.len(), "a realm longer than its header");
        }
    }
    if let Ok(reply) = serde_json::from_slice::<TokenReply>(data) {
        let _ = reply.into_token();
    }
}

/// `inspect` on the input as an `oci-archive:` and as a `docker-archive:` file.
pub fn inspect_archive(data: &[u8], work: &Path) {
    let dir = fresh_dir(work, "archive");
    let file = dir.join("image.tar");
    std::fs::write(&file, data).unwrap();
    inspect(ImageRef::OciArchive { file: file.clone(), reference: None });
    inspect(ImageRef::DockerArchive { file, reference: None });
}

/// `inspect` on a `docker save` archive whose `manifest.json` is the input, beside a valid config and layer.
pub fn docker_manifest_json(data: &[u8], work: &Path) {
    let dir = fresh_dir(work, "docker");
    let layer = tar_of(&[("etc/hostname", b"fuzz\n".as_slice())]);
    let diff_id = imgcraft::digest::Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    let archive = tar_of(&[("manifest.json", data), ("config.json", config.as_bytes()), ("layer.tar", &layer)]);
    let file = dir.join("image.tar");
    std::fs::write(&file, archive).unwrap();
    inspect(ImageRef::DockerArchive { file, reference: None });
}

/// `inspect` on an OCI layout directory unpacked from the input (a tar): regular files and directories only, at
/// normalised paths, so nothing lands outside the directory.
pub fn inspect_layout(data: &[u8], work: &Path) {
    let dir = fresh_dir(work, "layout");
    let mut reader = TarReader::new(data, "layout.tar", "uncompressed");
    while let Ok(Some(entry)) = reader.next_entry() {
        let Some(path) = imgcraft::rootfs::normalize::normal_form(&entry.path) else { continue };
        if path.is_empty() || path.contains(&0) {
            continue;
        }
        let target = dir.join(std::ffi::OsStr::from_bytes(&path));
        match entry.kind {
            EntryKind::Directory => {
                let _ = std::fs::create_dir_all(&target);
            }
            EntryKind::File { .. } => {
                let mut bytes = Vec::new();
                if reader.data().read_to_end(&mut bytes).is_err() {
                    break;
                }
                if let Some(parent) = target.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::write(&target, bytes);
            }
            _ => {}
        }
    }
    inspect(ImageRef::Layout { dir, tag: None });
}

fn inspect(reference: ImageRef) {
    match imgcraft::commands::inspect::inspect(&reference) {
        Ok(report) => {
            let _ = report.to_text();
        }
        Err(err) => check_message(&err),
    }
}

/// A tar of regular files, as `tar` would write it.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = TarWriter::new(Vec::new());
    for (path, data) in files {
        let entry = Entry {
            path: path.as_bytes().to_vec(),
            kind: EntryKind::File { size: data.len() as u64 },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: EPOCH,
            xattrs: BTreeMap::new(),
        };
        writer.append(&entry, &mut &data[..]).unwrap();
    }
    writer.finish().unwrap()
}

/// An empty directory `name` inside `work`, emptied of what the previous input left.
fn fresh_dir(work: &Path, name: &str) -> PathBuf {
    let dir = work.join(name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The scratch directory of this fuzzing process (under `TMPDIR`, which `scripts/fuzz.sh` points at a directory
/// it removes at the end).
pub fn work_dir() -> &'static Path {
    static WORK: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WORK.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("imgcraft-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}
