#!/usr/bin/env python3
"""Build the package-ownership fixtures of issue 6 from real Debian bookworm .debs.

scripts/make-package-fixtures.sh downloads the .debs and calls this; its header describes the layout.
Usage: package_fixtures.py --packages            (the .debs it needs, one a line)
       package_fixtures.py --debs DIR --out DIR  (as root)
Python 3 standard library only; shells out to dpkg-deb, ldconfig, tar, zstd and chroot.
"""
import argparse
import codecs
import filecmp
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

T1 = 1700000000  # every path of a first build
T2 = 1700086400  # a later build: what it added or rewrote, and the directories whose entries changed

V1 = ["busybox-static", "gcc-12-base", "gzip", "hello", "libc6", "libgcc-s1", "netbase", "tzdata"]
ADDED = "zlib1g"
REMOVED = "hello"
NEVER_INSTALLED = "bzip2"  # in pkgdata only: a package Yocto built that no image installs
VARIANTS = {
    "v1": V1,
    "changed": V1,
    "added": sorted(V1 + [ADDED]),
    "removed": [p for p in V1 if p != REMOVED],
}
CHANGED_PATH = "etc/protocols"  # netbase's, a conffile: the admin's edit that dpkg does not record
CHANGED_LINE = b"imgcraft\t253\tIMGCRAFT\t# fixture: a local edit (RFC 3692 experimental number)\n"
BASE_PACKAGES = ["busybox-static", "libc6"]
APPLETS = ["sh", "cat", "echo", "env", "id", "ls", "mkdir", "rm", "sleep", "stat", "uname"]
TAR_FLAGS = ["--xattrs", "--xattrs-include=*", "--sort=name", "--format=posix",
             "--pax-option=delete=atime,delete=ctime", "--numeric-owner"]


def say(msg):
    print(f"==> {msg}", flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, **kw).stdout


# --- Debian packages -----------------------------------------------------------


def parse_stanza(text):
    """deb822 fields in order, a continued value keeping its newlines and leading spaces."""
    fields = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            fields[-1][1] += "\n" + line
        elif line:
            key, _, value = line.partition(":")
            fields.append([key, value.strip()])
    return fields


def format_field(key, value):
    return f"{key}:{value}\n" if value.startswith("\n") else f"{key}: {value}\n"


class Deb:
    """One .deb: its control fields and files, its data members in archive order, a pristine unpack."""

    def __init__(self, path, work):
        self.path = path
        self.fields = parse_stanza(run("dpkg-deb", "-f", str(path)).decode())
        self.name = self.field("Package")
        self.control = work / "control" / self.name
        self.root = work / "data" / self.name
        self.control.parent.mkdir(parents=True, exist_ok=True)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        run("dpkg-deb", "-e", str(path), str(self.control))
        run("dpkg-deb", "-x", str(path), str(self.root))
        # Archive order matters: dpkg's .list and opkg's file hash follow it.
        data = run("dpkg-deb", "--fsys-tarfile", str(path))
        self.members = []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                name = m.name[2:] if m.name.startswith("./") else m.name
                self.members.append("" if name in (".", "") else name.rstrip("/"))

    def field(self, key, default=None):
        return next((v for k, v in self.fields if k == key), default)

    @property
    def info_name(self):
        # dpkg names the files of a Multi-Arch: same package with its architecture.
        return f"{self.name}:{self.field('Architecture')}" if self.field("Multi-Arch") == "same" else self.name

    def control_members(self):
        return sorted(p.name for p in self.control.iterdir())

    def conffiles(self):
        f = self.control / "conffiles"
        return [line.strip() for line in f.read_text().splitlines() if line.strip()] if f.exists() else []

    def conffile_md5s(self):
        return [(c, hashlib.md5((self.root / c.lstrip("/")).read_bytes()).hexdigest()) for c in self.conffiles()]

    def file_members(self, tree):
        """The members that are not directories in TREE (a symlink to a directory is a file here)."""
        return [m for m in self.members if m and (os.path.islink(tree / m) or not os.path.isdir(tree / m))]

    def relations(self, key):
        """[[(name, op, version), ...alternatives], ...] of a relation field."""
        out = []
        for group in filter(None, (g.strip() for g in (self.field(key) or "").split(","))):
            alts = []
            for alt in group.split("|"):
                alt = alt.strip()
                name, op, ver = alt, "", ""
                if "(" in alt:
                    name, rest = alt.split("(", 1)
                    rest = rest.rstrip(")").strip()
                    op = next(o for o in ("<<", "<=", ">=", ">>", "=", "<", ">") if rest.startswith(o))
                    ver = rest[len(op):].strip()
                alts.append((name.strip(), op, ver))
            out.append(alts)
        return out

    def depends_on(self):
        return [alt[0][0] for key in ("Pre-Depends", "Depends") for alt in self.relations(key)]


def install_order(pkgs, debs):
    """Dependencies first (Pre-Depends, Depends), then by name; a cycle is broken where it is met."""
    order, seen = [], set()

    def visit(p):
        if p in seen or p not in pkgs:
            return
        seen.add(p)
        for dep in debs[p].depends_on():
            visit(dep)
        order.append(p)

    for p in sorted(pkgs):
        visit(p)
    return order


# --- trees ---------------------------------------------------------------------


def put(tree, rel, content, mode=0o644, owner=(0, 0)):
    path = tree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chown(path, *owner)
    os.chmod(path, mode)


def mkdir(tree, rel, mode=0o755, owner=(0, 0)):
    path = tree / rel
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, *owner)
    os.chmod(path, mode)


def symlink(tree, rel, target):
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, tree / rel)


def add_unowned(tree, hostname):
    """What no package owns: the files an image build makes after unpacking packages."""
    for d in ["dev", "proc", "sys", "run", "opt", "usr/bin", "var/lib", "var/log", "home"]:
        mkdir(tree, d)
    mkdir(tree, "tmp", 0o1777)
    mkdir(tree, "var/tmp", 0o1777)
    mkdir(tree, "root", 0o700)
    mkdir(tree, "home/user", 0o755, (1000, 1000))
    # busybox-static ships no applet links: the image build makes them.
    for applet in APPLETS:
        symlink(tree, f"bin/{applet}", "busybox")
    put(tree, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n")
    put(tree, "etc/group", b"root:x:0:\nuser:x:1000:\n")
    put(tree, "etc/hostname", hostname.encode() + b"\n")
    # libc-bin would own ld.so.conf; ld.so.cache is what its trigger makes.
    put(tree, "etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
    run("ldconfig", "-X", "-r", str(tree))
    os.chmod(tree / "etc/ld.so.cache", 0o644)
    if (tree / "usr/share/zoneinfo/Etc/UTC").exists():
        # tzdata's postinst writes these.
        symlink(tree, "etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
        put(tree, "etc/timezone", b"Etc/UTC\n")


def unpack(tree, pkgs, debs, hostname):
    tree.mkdir(parents=True)
    for p in install_order(pkgs, debs):
        # The dpkg-deb -x unpack of each package, merged as unpacking them all into one tree would.
        run("cp", "-a", "--", f"{debs[p].root}/.", str(tree))
    os.chmod(tree, 0o755)
    add_unowned(tree, hostname)


def copy_tree(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    run("cp", "-a", "--", str(src), str(dst))


def walk(tree):
    """Every path under TREE relative to it, the root as "", sorted; symlinks are not followed."""
    out = [""]

    def rec(rel):
        for entry in sorted(os.scandir(tree / rel if rel else tree), key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            out.append(child)
            if entry.is_dir(follow_symlinks=False):
                rec(child)

    rec("")
    return out


def rewritten(tree, ref, rel):
    """Whether a build that turned REF into TREE wrote REL anew (what moves an mtime)."""
    a, b = tree / rel, ref / rel
    if not os.path.lexists(b):
        return True
    sa, sb = os.lstat(a), os.lstat(b)
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        return True
    if stat.S_ISDIR(sa.st_mode):
        return sorted(os.listdir(a)) != sorted(os.listdir(b))
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) != os.readlink(b)
    return not filecmp.cmp(a, b, shallow=False)


def stamp_times(tree, ref=None, overrides=None):
    """T1 everywhere, T2 where a later build (from REF) wrote; returns the paths given T2."""
    overrides = overrides or {}
    later = []
    for rel in walk(tree):
        t = overrides.get(rel)
        if t is None:
            t = T2 if ref is not None and rewritten(tree, ref, rel) else T1
        if t != T1:
            later.append(rel)
        os.utime(tree / rel if rel else tree, ns=(t * 10**9, t * 10**9), follow_symlinks=False)
    return later


def pack(tree, out):
    run("tar", *TAR_FLAGS, "-C", str(tree), "-cf", str(out), ".")


def write_owners(tree, owners, out, complete=True):
    """Ground truth for the tests: every non-directory path a package owns, as in the tar.

    COMPLETE: every owned path must be in the tree (false where files were removed on purpose).
    """
    present = [p for p in owners if os.path.lexists(tree / p)]
    if complete and len(present) != len(owners):
        sys.exit(f"error: {tree} lacks owned paths: {sorted(set(owners) - set(present))[:5]}")
    lines = sorted(f"{p}\t{owners[p]}\n".encode() for p in present if not stat.S_ISDIR(os.lstat(tree / p).st_mode))
    out.write_bytes(b"".join(lines))


def member_owners(tree, pkgs, debs):
    owners = {}
    for p in pkgs:
        for m in debs[p].file_members(tree):
            if owners.setdefault(m, p) != p:
                sys.exit(f"error: {m} is owned by both {owners[m]} and {p}")
    return owners


# --- dpkg ----------------------------------------------------------------------

# lib/dpkg/parse.c's fieldinfos: the order dpkg writes known fields; others follow as they came.
DPKG_FIELDS = ["Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size", "Origin",
               "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version", "Config-Version",
               "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends", "Suggests", "Breaks", "Conflicts",
               "Enhances", "Conffiles", "Filename", "Size", "MD5sum", "MSDOS-Filename", "Description",
               "Triggers-Pending", "Triggers-Awaited"]


def dpkg_stanza(deb):
    given = dict(deb.fields)
    given["Status"] = "install ok installed"
    if deb.conffiles():
        given["Conffiles"] = "".join(f"\n {c} {md5}" for c, md5 in deb.conffile_md5s())
    out = [format_field(k, given[k]) for k in DPKG_FIELDS if k in given]
    out += [format_field(k, v) for k, v in deb.fields if k not in DPKG_FIELDS]
    return "".join(out) + "\n"


def write_dpkg_db(tree, pkgs, debs):
    mkdir(tree, "var/lib/dpkg/info")
    mkdir(tree, "var/lib/dpkg/updates")
    mkdir(tree, "var/lib/dpkg/triggers")
    put(tree, "var/lib/dpkg/status", "".join(dpkg_stanza(debs[p]) for p in sorted(pkgs)).encode())
    put(tree, "var/lib/dpkg/info/format", b"1\n")
    put(tree, "var/lib/dpkg/lock", b"", 0o640)
    put(tree, "var/lib/dpkg/lock-frontend", b"", 0o640)
    put(tree, "var/lib/dpkg/triggers/Lock", b"", 0o600)
    put(tree, "var/lib/dpkg/triggers/Unincorp", b"")
    for p in pkgs:
        deb = debs[p]
        paths = ["/." if m == "" else "/" + m for m in deb.members]
        put(tree, f"var/lib/dpkg/info/{deb.info_name}.list", "".join(f"{x}\n" for x in paths).encode())
        for member in deb.control_members():
            if member != "control":
                src = deb.control / member
                put(tree, f"var/lib/dpkg/info/{deb.info_name}.{member}", src.read_bytes(), src.stat().st_mode & 0o7777)


# --- opkg ----------------------------------------------------------------------

OPKG_HASH_LEN = 1024  # libopkg/opkg_conf.h OPKG_CONF_DEFAULT_HASH_LEN: the buckets of its file and package hashes


def djb2_bucket(key):
    # libopkg/hash_table.c: djb2, then % n_buckets; opkg writes .list files and status in bucket order.
    h = 5381
    for c in key.encode():
        h = (h * 33 + c) & 0xFFFFFFFFFFFFFFFF
    return h % OPKG_HASH_LEN


def opkg_relation(alts):
    # libopkg/pkg_depends.c pkg_depend_str: "name (op version)" joined by " | ".
    return " | ".join(f"{n} ({op} {v})" if op else n for n, op, v in alts)


def opkg_stanza(deb, user, installed_time):
    """libopkg/pkg.c pkg_print_status without verbose_status_file, as Yocto's opkg.conf leaves it."""
    out = [f"Package: {deb.name}", f"Version: {deb.field('Version')}"]
    for key in ("Depends", "Pre-Depends", "Recommends", "Suggests"):
        if deb.field(key):
            out.append(f"{key}: " + ", ".join(opkg_relation(a) for a in deb.relations(key)))
    if deb.field("Provides"):
        out.append("Provides: " + ", ".join(a[0][0] for a in deb.relations("Provides")))
    for key in ("Replaces", "Conflicts"):  # only the first alternative of each, as opkg keeps them
        if deb.field(key):
            out.append(f"{key}: " + ", ".join(opkg_relation(a[:1]) for a in deb.relations(key)))
    out.append(f"Status: install {'user' if user else 'ok'} installed")
    if deb.field("Essential") == "yes":
        out.append("Essential: yes")
    out.append(f"Architecture: {deb.field('Architecture')}")
    if deb.conffiles():
        out.append("Conffiles:")
        out += [f" {c} {md5}" for c, md5 in deb.conffile_md5s()]
    out.append(f"Installed-Size: {deb.field('Installed-Size')}")
    out.append(f"Installed-Time: {installed_time}")
    if not user:
        out.append("Auto-Installed: yes")
    return "".join(f"{line}\n" for line in out) + "\n"


def opkg_list_line(tree, path):
    # libopkg/pkg.c pkg_write_filelist_helper: "%s\t%#03o[\t%s]", the full st_mode and a symlink's target.
    st = os.lstat(tree / path.lstrip("/"))
    line = f"{path}\t0{st.st_mode:o}"
    if stat.S_ISLNK(st.st_mode):
        line += "\t" + os.readlink(tree / path.lstrip("/"))
    return line + "\n"


def write_opkg_db(tree, pkgs, debs, where, installed_times):
    """opkg 0.9's database: status and info/<pkg>.{list,control,...} under WHERE (var/lib/opkg or usr/lib/opkg)."""
    mkdir(tree, f"{where}/info")
    order = install_order(pkgs, debs)
    # A package named on the command line is "user"; what came in as a dependency is Auto-Installed.
    needed = {d for p in pkgs for d in debs[p].depends_on()}
    user = {p for p in pkgs if p not in needed}
    status = sorted(pkgs, key=lambda p: (djb2_bucket(p), p))
    put(tree, f"{where}/status", "".join(opkg_stanza(debs[p], p in user, installed_times[p]) for p in status).encode())
    # The file hash keeps the first insertion's place in a bucket's chain; packages go in install order.
    seq = {}
    for p in order:
        for m in debs[p].members:
            if m:
                seq.setdefault("/" + m, len(seq))
    for p in pkgs:
        deb = debs[p]
        # opkg-build leaves the root "." out of data.tar; a Debian package's "./" is skipped the same way.
        paths = sorted({"/" + m for m in deb.members if m}, key=lambda x: (djb2_bucket(x), seq[x]))
        put(tree, f"{where}/info/{p}.list", "".join(opkg_list_line(tree, x) for x in paths).encode())
        # opkg copies every control member to info/<pkg>.<member>, control included.
        for member in deb.control_members():
            src = deb.control / member
            put(tree, f"{where}/info/{p}.{member}", src.read_bytes(), src.stat().st_mode & 0o7777)


# --- Yocto pkgdata -------------------------------------------------------------

# Recipe (PN) -> its packages as pkgdata names them -> the Debian package whose files it holds.
# glibc, libgcc and zlib are renamed the way debian.bbclass renames them, so runtime-reverse matters.
RECIPES = {
    "busybox": {"busybox-static": "busybox-static"},
    "gcc-12": {"gcc-12-base": "gcc-12-base", "libgcc": "libgcc-s1"},
    "glibc": {"glibc": "libc6"},
    "gzip": {"gzip": "gzip"},
    "hello": {"hello": "hello"},
    "netbase": {"netbase": "netbase"},
    "tzdata": {"tzdata": "tzdata"},
    "zlib": {"zlib": "zlib1g"},
    "bzip2": {"bzip2": "bzip2"},
}
FINAL_NAMES = {deb for pkgs in RECIPES.values() for deb in pkgs.values()}
YOCTO_ARCH = {"amd64": "core2-64", "all": "all"}  # a qemux86-64 build's package architectures


def bb_encode(value):
    # meta/lib/oe/packagedata.py emit_pkgdata write_if_exists.
    return codecs.getencoder("unicode_escape")(value)[0].decode("latin1")


def split_version(version):
    epoch, _, rest = version.rpartition(":") if ":" in version else ("", "", version)
    return epoch, rest.rsplit("-", 1)[0]


def in_package_isdir(root, rel):
    """os.path.isdir inside a package's own tree: absolute symlinks resolve against that tree, not the host."""
    path = rel
    for _ in range(40):
        full = root / path
        if not os.path.islink(full):
            return os.path.isdir(full)
        target = os.readlink(full)
        path = os.path.normpath(target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(path), target))
        if path.startswith(".."):
            return False
    return False


def files_info(deb):
    """package.bbclass: pkgfiles are the non-directories of cpath.walk (a symlink to a directory counts as one)."""
    files = []
    for walkroot, dirs, names in os.walk(deb.root):
        rel_root = os.path.relpath(walkroot, deb.root)
        for name in dirs + names:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if not in_package_isdir(deb.root, rel):
                files.append(rel)
    return sorted(files)


def runtime_data(pn, pkg, final, deb, files, total, per, pr):
    """The lines of runtime/<pkg>, in PKGDATA_VARS order (package.bbclass), then PKGSIZE."""
    epoch, pv = split_version(deb.field("Version"))
    short, _, long = deb.field("Description").partition("\n")
    lines = [("PN", pn), ("PE", epoch), ("PV", pv), ("PR", pr), ("PKGE", epoch), ("PKGV", pv), ("PKGR", pr),
             ("LICENSE", "CLOSED"),
             ("DESCRIPTION" + per, " ".join(x.strip() for x in long.splitlines() if x.strip() != ".")),
             ("SUMMARY" + per, short)]
    if files:
        # RDEPENDS after runtime_mapping_rename: final names; only what this pkgdata knows.
        lines += [(f"RDEPENDS:{pkg}", " ".join(opkg_relation(a[:1]) for a in deb.relations("Pre-Depends")
                                               + deb.relations("Depends") if a[0][0] in FINAL_NAMES)),
                  (f"RPROVIDES:{pkg}", " ".join(a[0][0] for a in deb.relations("Provides"))),
                  (f"RREPLACES:{pkg}", " ".join(opkg_relation(a[:1]) for a in deb.relations("Replaces"))),
                  (f"RCONFLICTS:{pkg}", " ".join(opkg_relation(a[:1]) for a in deb.relations("Conflicts")))]
    lines += [("SECTION" + per, deb.field("Section")), (f"PKG:{pkg}", final), (f"FILES:{pkg}", " ".join(files))]
    if files:
        lines.append((f"CONFFILES:{pkg}", " ".join(deb.conffiles())))
    lines.append((f"FILES_INFO:{pkg}", json.dumps(files, sort_keys=True)))
    for script in ("preinst", "postinst", "prerm", "postrm") if files else ():
        if (deb.control / script).exists():
            body = (deb.control / script).read_text().split("\n")
            # emit_pkgdata add_set_e_to_scriptlets
            body = [body[0], "set -e", *body[1:]] if body[0].startswith("#!") else ["set -e", *body]
            lines.append((f"pkg_{script}:{pkg}", "\n".join(body)))
    text = "".join(f"{k}: {bb_encode(v)}\n" for k, v in lines if v)
    return text + f"PKGSIZE:{pkg}: {total}\n"


def write_pkgdata(out, tree, installed, debs, rebuilt):
    """PKGDATA_DIR as OE-core's emit_pkgdata writes it, for every package of RECIPES, installed or not.

    Each recipe also has an empty <pn>-dbg package: a runtime file but no .packaged marker nor
    runtime-reverse link, as emit_pkgdata leaves empty packages. Packages in REBUILT get PR r1.
    Returns the image manifest (IMAGE_MANIFEST: name arch version, sorted) of the INSTALLED ones.
    """
    for sub in ("runtime", "runtime-reverse", "runtime-rprovides", "extended"):
        (out / sub).mkdir(parents=True)
    manifest = []
    for pn, pkgs in sorted(RECIPES.items()):
        dbg = f"{pn}-dbg"
        (out / pn).write_text(f"PACKAGES: {dbg} {' '.join(pkgs)}\n")
        for pkg, debname in [(dbg, None), *pkgs.items()]:
            deb = debs[debname or next(iter(pkgs.values()))]
            final = debname or ("libc6-dbg" if pn == "glibc" else dbg)
            pr = "r1" if debname in rebuilt else "r0"
            files, total, seen = {}, 0, set()
            # Sizes from the rootfs where the package is installed: a rebuilt package's files changed.
            root = tree if debname in installed else deb.root
            for rel in files_info(deb) if debname else []:
                st = os.lstat(root / rel)
                files["/" + rel] = st.st_size
                if st.st_ino not in seen:  # emit_pkgdata counts a hardlinked inode once
                    seen.add(st.st_ino)
                    total += st.st_size
            per = f":{pkg}" if len(pkgs) > 1 or not debname else ""
            (out / "runtime" / pkg).write_text(runtime_data(pn, pkg, final, deb, files, total, per, pr))
            extended = {"files_info": {k: {"size": v} for k, v in files.items()}}
            data = json.dumps(extended, sort_keys=True, separators=(",", ":")).encode()
            (out / "extended" / f"{pkg}.json.zstd").write_bytes(run("zstd", "-q", "-c", "-T1", "-3", input=data))
            if not files:
                continue
            for prov in [a[0][0] for a in deb.relations("Provides")]:
                (out / "runtime-rprovides" / prov).mkdir(exist_ok=True)
                os.symlink(f"../../runtime/{pkg}", out / "runtime-rprovides" / prov / pkg)
            os.symlink(f"../runtime/{pkg}", out / "runtime-reverse" / final)
            (out / "runtime" / f"{pkg}.packaged").write_bytes(b"")
            if debname in installed:
                epoch, pv = split_version(deb.field("Version"))
                version = (f"{epoch}:" if epoch else "") + f"{pv}-{pr}"
                manifest.append(f"{final} {YOCTO_ARCH[deb.field('Architecture')]} {version}\n")
    return "".join(sorted(manifest))


def read_pkgdatafile(path):
    # meta/lib/oe/packagedata.py read_pkgdatafile
    decode = codecs.getdecoder("unicode_escape")
    return {k: decode(v)[0] for k, _, v in (line.partition(": ") for line in path.read_text().splitlines())}


def yocto_owners(pkgdata, installed):
    owners = {}
    for link in (pkgdata / "runtime-reverse").iterdir():
        if link.name in installed:
            pkg = os.path.basename(os.readlink(link))
            for f in json.loads(read_pkgdatafile(link)[f"FILES_INFO:{pkg}"]):
                owners[f.lstrip("/")] = link.name
    return owners


# --- base / derived ------------------------------------------------------------


def make_derived(base, derived):
    """Apply each change --base must see; returns CHANGES.txt's rows and the mtime overrides."""
    copy_tree(base, derived)
    rows, overrides = [], {}

    def gone(rel):  # every path under REL, REL itself left out
        return walk(base / rel)[1:]

    rows.append(("removed", "etc/issue", ""))
    os.unlink(derived / "etc/issue")
    examples = "usr/share/doc/busybox-static/examples"
    rows.append(("removed-dir", examples, ""))
    rows += [("removed-under-dir", f"{examples}/{p}", "") for p in gone(examples)]
    shutil.rmtree(derived / examples)
    opaque = "usr/share/doc/libc6"
    rows.append(("opaque-dir", opaque, "every child replaced"))
    rows += [("opaque-removed", f"{opaque}/{p}", "") for p in gone(opaque)]
    for p in os.listdir(derived / opaque):
        os.unlink(derived / opaque / p)
    for name in ("NEWS.derived", "README.derived"):
        put(derived, f"{opaque}/{name}", f"{name} of the derived image\n".encode())
        rows.append(("opaque-added", f"{opaque}/{name}", ""))
    with open(derived / "etc/passwd", "ab") as f:
        f.write(b"app:x:1001:1001:app:/opt/app:/bin/sh\n")
    rows.append(("content", "etc/passwd", "a line appended"))
    put(derived, "etc/hostname", b"imgcraft-app1\n")
    overrides["etc/hostname"] = T1
    rows.append(("content-same-size-and-mtime", "etc/hostname", "imgcraft-base -> imgcraft-app1"))
    os.chmod(derived / "etc/ld.so.conf.d/x86_64-linux-gnu.conf", 0o600)
    rows.append(("mode", "etc/ld.so.conf.d/x86_64-linux-gnu.conf", "0644 -> 0600"))
    overrides["usr/share/man/man1/busybox.1.gz"] = T2
    rows.append(("mtime", "usr/share/man/man1/busybox.1.gz", f"{T1} -> {T2}"))
    os.chown(derived / "srv/data/owned.txt", 1000, 1000)
    rows.append(("owner", "srv/data/owned.txt", "0:0 -> 1000:1000"))
    put(derived, "opt/app/bin/app.sh", b"#!/bin/sh\necho app\n", 0o755)
    put(derived, "opt/app/etc/app.conf", b"greeting=hello\n")
    rows += [("added-dir", "opt/app", ""), ("added-dir", "opt/app/bin", ""), ("added", "opt/app/bin/app.sh", ""),
             ("added-dir", "opt/app/etc", ""), ("added", "opt/app/etc/app.conf", "")]
    put(derived, "etc/app-release", b"app 1.0\n")
    rows.append(("added", "etc/app-release", ""))
    symlink(derived, "usr/bin/app", "../../opt/app/bin/app.sh")
    rows.append(("added-symlink", "usr/bin/app", "-> ../../opt/app/bin/app.sh"))
    rows += [("whiteout", "etc/.wh.issue", ""), ("whiteout", "usr/share/doc/busybox-static/.wh.examples", ""),
             ("whiteout", f"{opaque}/.wh..wh..opq", "")]
    return rows, overrides


def write_changes(path, rows, later_dirs):
    head = ("# base/derived: every difference, path by path (paths as in the tar, no leading /)\n"
            "# kind\tpath\tdetail; whiteout rows are what the layer on top of base needs (image-spec layer.md)\n")
    rows = rows + [("dir-mtime", d or ".", f"{T1} -> {T2}") for d in later_dirs]
    path.write_text(head + "".join("\t".join(r).rstrip("\t") + "\n" for r in rows))


# --- checks --------------------------------------------------------------------


def check_runs(tree, argv, expect):
    try:
        got = subprocess.run(["chroot", str(tree), *argv], capture_output=True, timeout=30)
    except OSError as e:
        say(f"skipped running {argv[0]} in {tree.name}: {e}")
        return
    if got.returncode != 0 and b"Operation not permitted" in got.stderr:
        say(f"skipped running {argv[0]} in {tree.name}: chroot not permitted")
        return
    if expect.encode() not in got.stdout:
        sys.exit(f"error: chroot {tree} {' '.join(argv)} printed {got.stdout!r} {got.stderr!r}, expected {expect!r}")
    say(f"verified: chroot {tree.parent.name}/{tree.name} {' '.join(argv)} says {expect!r}")


# --- main ----------------------------------------------------------------------


def build(debdir, out):
    work = out / ".work"
    shutil.rmtree(work, ignore_errors=True)
    debs = {}
    for name in sorted(set(V1 + [ADDED, NEVER_INSTALLED])):
        found = sorted(debdir.glob(f"{name}_*.deb"))
        if len(found) != 1:
            sys.exit(f"error: expected one {name}_*.deb in {debdir}, found {len(found)}")
        debs[name] = Deb(found[0], work)
    say("debs: " + ", ".join(f"{n} {d.field('Version')}" for n, d in debs.items()))

    content = {}
    for variant, pkgs in VARIANTS.items():
        content[variant] = work / "content" / variant
        if variant == "changed":
            copy_tree(content["v1"], content[variant])
            with open(content[variant] / CHANGED_PATH, "ab") as f:
                f.write(CHANGED_LINE)
        else:
            unpack(content[variant], pkgs, debs, "imgcraft-packages")
    times = {v: {p: T1 if p in VARIANTS["v1"] else T2 for p in pkgs} for v, pkgs in VARIANTS.items()}

    for kind in ("dpkg", "opkg"):
        for variant, pkgs in VARIANTS.items():
            tree = out / kind / variant
            say(f"building {tree.relative_to(out)}")
            copy_tree(content[variant], tree)
            if kind == "dpkg":
                write_dpkg_db(tree, pkgs, debs)
            else:
                write_opkg_db(tree, pkgs, debs, "var/lib/opkg", times[variant])
            stamp_times(tree, None if variant == "v1" else out / kind / "v1")
            write_owners(tree, member_owners(tree, pkgs, debs), out / kind / f"{variant}.owners.tsv")
    tree = out / "opkg/usr-lib-v1"
    say(f"building {tree.relative_to(out)}")
    copy_tree(content["v1"], tree)
    write_opkg_db(tree, V1, debs, "usr/lib/opkg", times["v1"])
    stamp_times(tree)
    write_owners(tree, member_owners(tree, V1, debs), out / "opkg/usr-lib-v1.owners.tsv")

    for variant, pkgs in VARIANTS.items():
        top = out / "yocto" / variant
        say(f"building {top.relative_to(out)}")
        top.mkdir(parents=True)
        copy_tree(content[variant], top / "rootfs")
        stamp_times(top / "rootfs", None if variant == "v1" else out / "yocto/v1/rootfs")
        installed = set(pkgs)
        manifest = write_pkgdata(top / "pkgdata", top / "rootfs", installed, debs,
                                 {"netbase"} if variant == "changed" else set())
        (top / "image.manifest").write_text(manifest)
        write_owners(top / "rootfs", yocto_owners(top / "pkgdata", installed), top / "rootfs.owners.tsv")

    say("building base/rootfs and base/derived")
    base = out / "base/rootfs"
    unpack(base, BASE_PACKAGES, debs, "imgcraft-base")
    put(base, "etc/issue", b"imgcraft base 1.0\n")
    put(base, "srv/data/owned.txt", b"owned by root in the base\n")
    stamp_times(base)
    rows, overrides = make_derived(base, out / "base/derived")
    later = stamp_times(out / "base/derived", base, overrides)
    later_dirs = [p for p in later if os.path.isdir(out / "base/derived" / p)
                  and not os.path.islink(out / "base/derived" / p) and os.path.lexists(base / p)]
    write_changes(out / "base/CHANGES.txt", rows, later_dirs)
    for name in ("rootfs", "derived"):
        write_owners(out / "base" / name, member_owners(out / "base" / name, BASE_PACKAGES, debs),
                     out / "base" / f"{name}.owners.tsv", complete=name == "rootfs")

    trees = [out / k / v for k in ("dpkg", "opkg") for v in VARIANTS] + [out / "opkg/usr-lib-v1"]
    trees += [out / "yocto" / v / "rootfs" for v in VARIANTS] + [out / "base/rootfs", out / "base/derived"]
    for tree in trees:
        pack(tree, tree.parent / f"{tree.name}.tar")
    say(f"packed {len(trees)} tarballs")

    check_runs(out / "dpkg/v1", ["/usr/bin/hello"], "Hello, world!")
    check_runs(out / "dpkg/v1", ["/bin/sh", "-c", "echo shell works"], "shell works")
    check_runs(out / "base/derived", ["/opt/app/bin/app.sh"], "app")
    shutil.rmtree(work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packages", action="store_true", help="print the Debian packages needed and exit")
    ap.add_argument("--debs", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.packages:
        print("\n".join(sorted(set(V1 + [ADDED, NEVER_INSTALLED]))))
        return
    if not args.debs or not args.out:
        ap.error("--debs and --out are needed")
    os.umask(0o022)
    try:
        build(args.debs.resolve(), args.out.resolve())
    except subprocess.CalledProcessError as e:
        sys.exit(f"error: `{' '.join(map(str, e.cmd))}` failed with exit status {e.returncode}")


if __name__ == "__main__":
    main()
