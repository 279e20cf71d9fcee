//! A small tar writer of the tests' own (POSIX ustar headers, PAX records for what ustar cannot hold), so that test
//! inputs are made independently of the crate's tar code: a bug there cannot hide by shaping its own input.

/// What an entry is.
#[derive(Clone, Debug)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// A hardlink to an earlier entry's path.
    Hardlink(String),
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
}

/// One tar entry, with the attributes a rootfs carries.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Extended attributes, written as `SCHILY.xattr.NAME` PAX records (GNU tar's and bsdtar's spelling).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn new(path: &str, kind: Kind) -> Entry {
        let mode = match kind {
            Kind::Dir => 0o755,
            Kind::Symlink(_) => 0o777,
            _ => 0o644,
        };
        Entry { path: path.to_string(), kind, mode, uid: 0, gid: 0, mtime: 1_700_000_000, xattrs: Vec::new() }
    }

    pub fn file(path: &str, bytes: &[u8]) -> Entry {
        Entry::new(path, Kind::File(bytes.to_vec()))
    }

    pub fn dir(path: &str) -> Entry {
        Entry::new(path, Kind::Dir)
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, Kind::Symlink(target.to_string()))
    }

    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = mode;
        self
    }

    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn mtime(mut self, mtime: u64) -> Entry {
        self.mtime = mtime;
        self
    }

    pub fn xattr(mut self, name: &str, value: &[u8]) -> Entry {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }
}

/// The bytes of a tar archive of `entries`, in the order given, ended by two zero blocks.
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        append(&mut out, entry);
    }
    out.extend([0u8; 1024]);
    out
}

fn append(out: &mut Vec<u8>, entry: &Entry) {
    let (typeflag, link, data): (u8, &str, &[u8]) = match &entry.kind {
        Kind::File(bytes) => (b'0', "", bytes),
        Kind::Dir => (b'5', "", &[]),
        Kind::Symlink(target) => (b'2', target, &[]),
        Kind::Hardlink(target) => (b'1', target, &[]),
        Kind::Fifo => (b'6', "", &[]),
        Kind::Char(..) => (b'3', "", &[]),
        Kind::Block(..) => (b'4', "", &[]),
    };
    let name = if matches!(entry.kind, Kind::Dir) { format!("{}/", entry.path) } else { entry.path.clone() };
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if name.len() > 100 {
        pax.push(("path".into(), name.as_bytes().to_vec()));
    }
    if link.len() > 100 {
        pax.push(("linkpath".into(), link.as_bytes().to_vec()));
    }
    for (key, value) in &entry.xattrs {
        pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
    }
    if !pax.is_empty() {
        let mut body = Vec::new();
        for (key, value) in &pax {
            body.extend(pax_record(key, value));
        }
        let short: String = format!("PaxHeaders/{}", entry.path.rsplit('/').next().unwrap_or(""));
        out.extend(header(&short, b'x', "", body.len() as u64, 0o644, 0, 0, entry.mtime, (0, 0)));
        pad(out, &body);
    }
    let devices = match entry.kind {
        Kind::Char(major, minor) | Kind::Block(major, minor) => (major, minor),
        _ => (0, 0),
    };
    let short_name = if name.len() > 100 { &name[name.len() - 100..] } else { &name[..] };
    let short_link = if link.len() > 100 { &link[..100] } else { link };
    out.extend(header(
        short_name,
        typeflag,
        short_link,
        data.len() as u64,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.mtime,
        devices,
    ));
    pad(out, data);
}

/// `LEN key=value\n`, where LEN counts the whole record, its own digits included.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend(value);
    record.push(b'\n');
    record
}

#[allow(clippy::too_many_arguments)]
fn header(
    name: &str,
    typeflag: u8,
    link: &str,
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    devices: (u32, u32),
) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    let octal = |h: &mut [u8; 512], at: usize, width: usize, value: u64| {
        let text = format!("{value:0w$o}", w = width - 1);
        assert!(text.len() < width, "{value} does not fit a {width}-byte ustar field");
        h[at..at + text.len()].copy_from_slice(text.as_bytes());
    };
    put(&mut h, 0, name.as_bytes());
    octal(&mut h, 100, 8, mode as u64);
    octal(&mut h, 108, 8, uid);
    octal(&mut h, 116, 8, gid);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, mtime);
    h[156] = typeflag;
    put(&mut h, 157, link.as_bytes());
    put(&mut h, 257, b"ustar\x0000");
    octal(&mut h, 329, 8, devices.0 as u64);
    octal(&mut h, 337, 8, devices.1 as u64);
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

fn pad(out: &mut Vec<u8>, data: &[u8]) {
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}
