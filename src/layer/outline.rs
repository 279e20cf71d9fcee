//! A layer's outline: its tar with the data of each file of [`MIN_SIZE`] bytes or more replaced by the data's
//! sha256. The rule is fixed, so the header declaring a file's size says whether its data or its digest follows: two
//! layers with the same outline are the same tar, and the outline is learnt without reading the data again when the
//! rootfs's first read recorded its files' digests (see [`crate::tar::file_digests`]).
//!
//! With `--previous`, a layer is first written as its outline, a recipe: the outline in a spool, and where each
//! file's data lies in the decoded rootfs. A layer whose outline this machine has seen before (see
//! [`crate::layer::known`]) has the diff_id recorded with it, and takes the previous image's blob of that diff_id
//! without its tar ever being hashed or spooled; any other layer's tar is put together from the recipe, to be hashed
//! and compressed. A cold build records the outline of each layer it writes beside its diff_id, so that the next
//! rebuild knows it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::tar::entry::{Entry, EntryKind};
use crate::tar::file_digests::{KnownData, MIN_SIZE};

/// Where the digest of a file's data stands in the outline, and where the data lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DataRef {
    /// Offset of the 32-byte digest in the outline.
    at: u64,
    /// Where the data lies in the rootfs file, and its size.
    offset: u64,
    size: u64,
}

/// Follows a layer's tar as the tar writer writes it, telling the outline's bytes from the data it leaves out.
#[derive(Default)]
pub struct OutlineTracker {
    /// The next entry's data, as the rootfs's read knows it.
    next: Option<KnownData>,
    /// Bytes of left-out data still to come.
    left_out: u64,
    /// False once a file the rule leaves out came with no recorded digest: this layer has no outline.
    whole: bool,
    /// Bytes of outline so far.
    position: u64,
    refs: Vec<DataRef>,
    file: Option<Arc<File>>,
}

impl OutlineTracker {
    pub fn new() -> OutlineTracker {
        OutlineTracker { whole: true, ..OutlineTracker::default() }
    }

    /// The data of the entry appended next, if known.
    pub fn expect(&mut self, known: Option<KnownData>) {
        self.next = known;
    }

    /// The header of `entry` was written: the 32 bytes that stand for its data in the outline, when the rule leaves
    /// the data out and its digest is known. What follows is then left out of the outline.
    pub fn data_follows(&mut self, entry: &Entry) -> Option<[u8; 32]> {
        let next = self.next.take();
        let EntryKind::File { size } = entry.kind else { return None };
        if size < MIN_SIZE {
            return None;
        }
        let Some(known) = next.filter(|known| known.size == size) else {
            // Left in whole: the tar is still right, but two different layers could now share an outline.
            self.whole = false;
            return None;
        };
        self.refs.push(DataRef { at: self.position, offset: known.offset, size });
        self.position += 32;
        self.file.get_or_insert(known.file);
        self.left_out = size;
        Some(known.digest)
    }

    /// Takes the data left out of the outline as written when none of it was: the writer writes the padding next.
    pub fn skip_left_out(&mut self) -> bool {
        std::mem::take(&mut self.left_out) > 0
    }

    /// Of `len` bytes about to be written, how many at their start are left-out data.
    pub fn left_out(&mut self, len: usize) -> usize {
        let n = len.min(self.left_out.min(usize::MAX as u64) as usize);
        self.left_out -= n as u64;
        n
    }

    /// `n` bytes of the outline were written.
    pub fn advance(&mut self, n: usize) {
        self.position += n as u64;
    }

    /// Whether the outline stands for the tar (see `whole`).
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// The size of the tar the outline stands for.
    pub fn tar_size(&self) -> u64 {
        self.position - 32 * self.refs.len() as u64 + self.refs.iter().map(|r| r.size).sum::<u64>()
    }

    /// The recipe of a layer whose outline (with the digests in it) is in `outline`.
    pub fn into_recipe(self, outline: File) -> Recipe {
        Recipe { outline, refs: self.refs, data: self.file }
    }
}

/// A layer's tar as its outline and where the left-out data lies: read whole again as often as needed.
pub struct Recipe {
    outline: File,
    refs: Vec<DataRef>,
    data: Option<Arc<File>>,
}

impl Recipe {
    /// A tar spooled whole: its own recipe.
    pub fn plain(tar: File) -> Recipe {
        Recipe { outline: tar, refs: Vec::new(), data: None }
    }

    /// The tar, from its start.
    pub fn tar(&self) -> impl Read + '_ {
        TarFromRecipe {
            outline: BufReader::with_capacity(128 << 10, PositionedRead { file: &self.outline, position: 0 }),
            position: 0,
            refs: &self.refs,
            next: 0,
            data: self.data.as_deref(),
            in_data: None,
        }
    }
}

struct PositionedRead<'a> {
    file: &'a File,
    position: u64,
}

impl Read for PositionedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

struct TarFromRecipe<'a> {
    outline: BufReader<PositionedRead<'a>>,
    /// Bytes of outline read.
    position: u64,
    refs: &'a [DataRef],
    next: usize,
    data: Option<&'a File>,
    /// Within a file's data: where the rest lies, and how much is left.
    in_data: Option<(u64, u64)>,
}

impl Read for TarFromRecipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((offset, left)) = self.in_data {
                if left == 0 {
                    self.in_data = None;
                    continue;
                }
                let want = buf.len().min(left.min(usize::MAX as u64) as usize);
                let data = self.data.ok_or_else(|| io::Error::other("a layer recipe lost its data file"))?;
                let n = data.read_at(&mut buf[..want], offset)?;
                if n == 0 && want > 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the decoded rootfs ended early"));
                }
                self.in_data = Some((offset + n as u64, left - n as u64));
                return Ok(n);
            }
            let until = self.refs.get(self.next).map_or(u64::MAX, |r| r.at);
            if self.position == until {
                let r = self.refs[self.next];
                let mut digest = [0u8; 32];
                self.outline.read_exact(&mut digest)?;
                self.position += 32;
                self.next += 1;
                self.in_data = Some((r.offset, r.size));
                continue;
            }
            let available = self.outline.fill_buf()?;
            let n = available.len().min(buf.len()).min((until - self.position).min(usize::MAX as u64) as usize);
            buf[..n].copy_from_slice(&available[..n]);
            self.outline.consume(n);
            self.position += n as u64;
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::digest::{Digest, DigestWriter, Hasher};
    use crate::tar::writer::{TarOutput, TarWriter};

    /// A tar's bytes, and its outline as the layer writer writes it with `--previous`.
    struct Split {
        tracker: OutlineTracker,
        outline: DigestWriter<File>,
    }

    impl Write for Split {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let left_out = self.tracker.left_out(buf.len());
            if left_out > 0 {
                return Ok(left_out);
            }
            let n = self.outline.write(buf)?;
            self.tracker.advance(n);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl TarOutput for Split {
        fn data_follows(&mut self, entry: &Entry, _: &[u8]) -> io::Result<()> {
            if let Some(digest) = self.tracker.data_follows(entry) {
                self.outline.write_all(&digest)?;
            }
            Ok(())
        }
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        let mut hasher = Hasher::new();
        hasher.update(data);
        hasher.finish()
    }

    /// Writes `files` as a tar, and as a recipe whose data is read back from a file holding every file's data
    /// (its digest known unless `unknown` names the file): the tar, the outline's digest, the recipe.
    fn write(files: &[(&str, Vec<u8>)], unknown: Option<&str>) -> (Vec<u8>, Digest, Recipe, bool) {
        let mut rootfs = tempfile::tempfile().unwrap();
        let mut offsets = Vec::new();
        let mut at = 0u64;
        for (_, data) in files {
            rootfs.write_all(data).unwrap();
            offsets.push(at);
            at += data.len() as u64;
        }
        let rootfs = Arc::new(rootfs);
        let mut whole = TarWriter::new(Vec::new());
        let outline = DigestWriter::new(tempfile::tempfile().unwrap());
        let mut split = TarWriter::new(Split { tracker: OutlineTracker::new(), outline });
        for ((name, data), offset) in files.iter().zip(offsets) {
            let entry = Entry {
                path: name.as_bytes().to_vec(),
                kind: EntryKind::File { size: data.len() as u64 },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 1,
                xattrs: Default::default(),
            };
            whole.append(&entry, &mut data.as_slice()).unwrap();
            let known = KnownData { digest: sha(data), offset, size: data.len() as u64, file: Arc::clone(&rootfs) };
            split.output_mut().tracker.expect((unknown != Some(*name)).then_some(known));
            split.append(&entry, &mut data.as_slice()).unwrap();
        }
        let whole = whole.finish().unwrap();
        let split = split.finish().unwrap();
        assert_eq!(split.tracker.tar_size(), whole.len() as u64);
        let is_whole = split.tracker.is_whole();
        let (file, outline, _) = split.outline.finish();
        (whole, outline, split.tracker.into_recipe(file), is_whole)
    }

    fn files(changed: u8) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("small", b"tiny".to_vec()),
            ("big", vec![changed; MIN_SIZE as usize + 100]),
            ("exact", vec![3u8; MIN_SIZE as usize]),
            ("empty", Vec::new()),
        ]
    }

    #[test]
    fn a_recipe_gives_back_the_tar_byte_for_byte_as_often_as_read() {
        let (tar, _, recipe, whole) = write(&files(1), None);
        assert!(whole);
        for _ in 0..2 {
            let mut back = Vec::new();
            recipe.tar().read_to_end(&mut back).unwrap();
            assert!(back == tar, "{} bytes back for {}", back.len(), tar.len());
        }
        // Read in small pieces too, across the ends of data and outline.
        let mut back = Vec::new();
        let mut reader = recipe.tar();
        let mut piece = [0u8; 333];
        loop {
            let n = reader.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&piece[..n]);
        }
        assert!(back == tar);
    }

    #[test]
    fn outlines_are_equal_exactly_when_the_tars_are() {
        let (_, one, _, _) = write(&files(1), None);
        let (_, again, _, _) = write(&files(1), None);
        let (_, other, _, _) = write(&files(2), None);
        assert_eq!(one, again);
        assert_ne!(one, other, "a changed byte in left-out data changes the outline");
        let mut renamed = files(1);
        renamed[1].0 = "bigger";
        assert_ne!(write(&renamed, None).1, one);
    }

    #[test]
    fn a_large_file_without_a_recorded_digest_leaves_no_outline_but_a_right_tar() {
        let (tar, _, recipe, whole) = write(&files(1), Some("big"));
        assert!(!whole);
        let mut back = Vec::new();
        recipe.tar().read_to_end(&mut back).unwrap();
        assert!(back == tar);
    }

    #[test]
    fn a_recipe_whose_data_file_shrank_fails_to_read() {
        let (_, _, recipe, _) = write(&files(1), None);
        recipe.data.as_ref().unwrap().set_len(10).unwrap();
        let error = recipe.tar().read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
