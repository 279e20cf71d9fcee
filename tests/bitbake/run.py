#!/usr/bin/env python3
"""Build an image with meta-imgcraft and a real BitBake, without OE-core.

BitBake comes from the PyPI package bitbake-setup, which ships BitBake's `bb` library but not its programs: this
script installs it into a virtualenv if the running Python lacks it, lays the library out in each build directory the
way BitBake's own tree is (lib/bb beside bin/bitbake, bin/bitbake-server and bin/bitbake-worker, which the library
starts from there; ours are in tests/bitbake/bin), writes conf/bblayers.conf (tests/bitbake as the core layer, then
meta-imgcraft) and conf/local.conf, and runs `bitbake imgcraft-test-image` for each machine. The image recipe's
do_rootfs unpacks a prepared rootfs tarball under pseudo (Debian's `pseudo` package, as OE-core runs its own), which
records owners, modes, device nodes and xattrs in its database; do_image_imgcraft then streams that tree, again under
pseudo, into rootfs2image from PATH.

    python3 tests/bitbake/run.py                      # every machine, from the fixtures of scripts/make-fixtures.sh
    python3 tests/bitbake/run.py --machine qemuarm64 --rootfs my-rootfs.tar --conf 'IMGCRAFT_CMD = "/bin/sh"'

prints where the outputs went (a JSON list of builds with --json) and exits non-zero, with the end of BitBake's
output, if a build fails. Environment: IMGCRAFT_BITBAKE_VENV, the virtualenv it creates when needed (default
<repo>/target/bitbake-venv); IMGCRAFT_FIXTURES, where the default rootfs tarballs are (default <repo>/target/fixtures).
"""

import argparse
import fcntl
import json
import locale
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# The BitBake release whose runqueue and server protocol bin/bitbake-worker and bin/bitbake-server speak.
BITBAKE_SETUP = "bitbake-setup==2.19.0"
BITBAKE_SERIES = "2.19."
RECIPE = "imgcraft-test-image"
# Each machine's default rootfs: the fixtures of scripts/make-fixtures.sh. There is no riscv64 fixture, so qemuriscv64
# gets the amd64 one, which rootfs2image labels riscv64 only with --no-arch-check.
MACHINES = {
    "qemuarm64": ("rootfs-arm64.tar", []),
    "qemuarm": ("rootfs-armhf.tar", []),
    "qemuriscv64": ("rootfs-amd64.tar", ['IMGCRAFT_EXTRA_ARGS = "--no-arch-check"']),
    "qemux86-64": ("rootfs-amd64.tar", []),
}


def say(message):
    print("==> %s" % message, file=sys.stderr, flush=True)


def bb_library():
    """The directory of an importable `bb` of the expected release, or None."""
    try:
        import bb
    except ImportError:
        return None
    return os.path.dirname(bb.__file__) if bb.__version__.startswith(BITBAKE_SERIES) else None


def reexec_in_venv():
    """Installs bitbake-setup into a virtualenv (once) and runs this script again with its Python."""
    venv = os.path.abspath(os.environ.get("IMGCRAFT_BITBAKE_VENV") or os.path.join(REPO, "target", "bitbake-venv"))
    python = os.path.join(venv, "bin", "python3")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        sys.exit("error: %s has no bb library %s*: reinstall with `%s -m pip install %s`"
                 % (venv, BITBAKE_SERIES, python, BITBAKE_SETUP))
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    # Tests run this script in parallel: one of them installs, the others wait for it.
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(python):
            say("creating %s with %s" % (venv, BITBAKE_SETUP))
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        check = subprocess.run([python, "-c", "import bb, sys; sys.exit(not bb.__version__.startswith(%r))"
                                % BITBAKE_SERIES], stderr=subprocess.DEVNULL)
        if check.returncode != 0:
            say("installing %s into %s" % (BITBAKE_SETUP, venv))
            subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", BITBAKE_SETUP],
                           check=True)
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


def bitbake_tree(library, root):
    """BitBake's tree layout under root: the runqueue starts lib/bb/../../bin/bitbake-worker and the server
    lib/bb/server/../../../bin/bitbake-server (paths resolved with realpath, so the library is copied, not linked)."""
    shutil.copytree(library, os.path.join(root, "lib", "bb"), ignore=shutil.ignore_patterns("tests"))
    # hashserv and prserv, which bitbake-setup lacks and bb imports.
    shutil.copytree(os.path.join(HERE, "lib"), os.path.join(root, "lib"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(os.path.join(root, "bin"))
    for program in ("bitbake", "bitbake-server", "bitbake-worker"):
        shutil.copy2(os.path.join(HERE, "bin", program), os.path.join(root, "bin", program))
    return os.path.join(root, "bin", "bitbake")


def conf_value(value):
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def write_conf(builddir, args, machine, rootfs, conf):
    confdir = os.path.join(builddir, "conf")
    os.makedirs(confdir)
    layers = [HERE, os.path.abspath(args.layer)]
    with open(os.path.join(confdir, "bblayers.conf"), "w") as f:
        f.write('BBPATH = "${TOPDIR}"\nBBFILES ?= ""\nBBLAYERS = %s\n' % conf_value(" ".join(layers)))
        if args.series:
            f.write("LAYERSERIES_CORENAMES = %s\n" % conf_value(args.series))
    lines = [
        "MACHINE = %s" % conf_value(machine),
        "IMGCRAFT_TEST_ROOTFS = %s" % conf_value(os.path.abspath(rootfs)),
        # rootfs2image comes from here, not from an imgcraft-native sysroot.
        'PATH:prepend = "%s:"' % os.path.abspath(args.tools),
        # The layer's own imgcraft recipe is built with cargo.bbclass, which this configuration lacks;
        # recipes/imgcraft-native_0.1.0.bb stands in for it.
        'BBMASK += "%s/recipes-devtools/"' % os.path.abspath(args.layer),
        # ... which leaves the layer without recipes: no warning for that.
        'BBFILE_PATTERN_IGNORE_EMPTY_imgcraft = "1"',
    ]
    if args.multiconfig:
        multiconfigs = [spec.split("=", 1) for spec in args.multiconfig]
        os.makedirs(os.path.join(confdir, "multiconfig"))
        for name, mc_machine in multiconfigs:
            with open(os.path.join(confdir, "multiconfig", name + ".conf"), "w") as f:
                f.write("MACHINE = %s\n" % conf_value(mc_machine))
        lines.append("BBMULTICONFIG = %s" % conf_value(" ".join(name for name, _ in multiconfigs)))
    if args.pkgdata:
        lines.append("IMGCRAFT_TEST_PKGDATA = %s" % conf_value(os.path.abspath(args.pkgdata)))
    else:
        # No package data: one layer, unless the rootfs keeps a package database.
        lines.append('IMGCRAFT_LAYERS ?= "auto"')
    if args.package_manifest:
        lines.append("IMGCRAFT_TEST_MANIFEST = %s" % conf_value(os.path.abspath(args.package_manifest)))
    lines += conf + args.conf
    with open(os.path.join(confdir, "local.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")


def bitbake_env():
    """The environment bitbake runs in: this one with a UTF-8 locale (en_US.UTF-8 when the system has it, as
    BitBake prefers, else C.UTF-8) and nothing that would point it at another build directory."""
    env = dict(os.environ)
    try:
        locale.setlocale(locale.LC_CTYPE, ("en_US", "UTF-8"))
        env["LC_ALL"] = "en_US.UTF-8"
    except locale.Error:
        env["LC_ALL"] = "C.UTF-8"
    for name in ("BBPATH", "BUILDDIR", "BBSERVER"):
        env.pop(name, None)
    return env


def bitbake(program, builddir, argv, log):
    """Runs bitbake in builddir, its output into log; returns its exit status."""
    with open(log, "ab") as out:
        return subprocess.run([sys.executable, program] + argv, cwd=builddir, env=bitbake_env(), stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode


def variables(program, builddir, log, names, recipe):
    """The values `bitbake -e RECIPE` gives names."""
    out = os.path.join(builddir, "bitbake-e.txt")
    with open(out, "wb") as f:
        status = subprocess.run([sys.executable, program, "-e", recipe], cwd=builddir, env=bitbake_env(), stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if status != 0:
        with open(out, "rb") as f, open(log, "ab") as l:
            l.write(f.read())
        return None
    found = {}
    with open(out, encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, value = line.rstrip("\n").partition("=")
            if sep and name in names and value.startswith('"'):
                found[name] = value[1:-1]
    return found


def deployed(directory):
    """Every entry of a deploy directory: name -> symlink target, or None for a file or directory."""
    if not os.path.isdir(directory):
        return {}
    return {name: os.readlink(os.path.join(directory, name)) if os.path.islink(os.path.join(directory, name))
            else None for name in sorted(os.listdir(directory))}


def tail(path, lines):
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def build(library, args, machine, rootfs, conf):
    builddir = os.path.join(args.workdir, machine) if args.workdir else tempfile.mkdtemp(prefix="bitbake-%s-" % machine)
    if args.workdir:
        if os.path.exists(builddir):
            shutil.rmtree(builddir)
        os.makedirs(builddir)
    program = bitbake_tree(library, os.path.join(builddir, "bitbake"))
    write_conf(builddir, args, machine, rootfs, conf)
    log = os.path.join(builddir, "bitbake.log")
    argv = ["--parse-only"] if args.parse_only else [args.recipe] + (["-c", args.task] if args.task else [])
    say("%s: bitbake %s in %s" % (machine, " ".join(argv), builddir))
    started = time.monotonic()
    status = bitbake(program, builddir, argv, log)
    seconds = round(time.monotonic() - started, 1)
    result = {"machine": machine, "builddir": builddir, "log": log, "status": status, "seconds": seconds}
    if status != 0:
        say("%s: bitbake failed (exit %d) after %.1fs; the end of %s:" % (machine, status, seconds, log))
        sys.stderr.write(tail(log, args.tail_lines))
        return result
    if args.parse_only:
        say("%s: parsed in %.1fs" % (machine, seconds))
        return result
    names = ["DEPLOY_DIR_IMAGE", "IMGDEPLOYDIR", "IMAGE_LINK_NAME", "IMAGE_BASENAME", "PV", "IMGCRAFT_ARCH",
             "IMGCRAFT_VARIANT", "IMGCRAFT_TAG", "IMGCRAFT_OUTPUTS", "TARGET_ARCH", "IMAGE_ROOTFS",
             "IMAGE_OUTPUT_MANIFEST", "PSEUDO_LOCALSTATEDIR", "IMGCRAFT_LAYERS", "IMGCRAFT_PREVIOUS"]
    values = variables(program, builddir, log, names, args.recipe)
    if values is None:
        result["status"] = 1
        say("%s: bitbake -e failed; the end of %s:" % (machine, log))
        sys.stderr.write(tail(log, args.tail_lines))
        return result
    result.update({name.lower(): values.get(name, "") for name in names})
    if args.rebuild_conf:
        # The same build directory with lines added to local.conf: which tasks run again shows what is in their
        # signatures.
        with open(os.path.join(builddir, "conf", "local.conf"), "a") as f:
            f.write("\n".join(args.rebuild_conf) + "\n")
        relog = os.path.join(builddir, "bitbake-rebuild.log")
        status = bitbake(program, builddir, argv, relog)
        if status != 0:
            result["status"] = status
            say("%s: the rebuild failed (exit %d); the end of %s:" % (machine, status, relog))
            sys.stderr.write(tail(relog, args.tail_lines))
            return result
        with open(relog, encoding="utf-8", errors="replace") as f:
            result["rebuilt_tasks"] = sorted({line.split(": task ")[1].split(":")[0] for line in f
                                              if line.startswith("NOTE: recipe ") and line.rstrip().endswith(": Started")
                                              and ": task " in line})
    result["deployed"] = deployed(values.get("DEPLOY_DIR_IMAGE", ""))
    say("%s: built in %.1fs; %s holds %s" % (machine, seconds, result["deploy_dir_image"],
                                            ", ".join(result["deployed"]) or "nothing"))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", action="append", choices=MACHINES,
                        help="machine to build for (repeatable; default: every one)")
    parser.add_argument("--rootfs", action="append", default=[], metavar="[MACHINE=]TARBALL",
                        help="the rootfs tarball do_rootfs unpacks, for every machine or one (repeatable; default: "
                             "the machine's fixture)")
    parser.add_argument("--conf", action="append", default=[], metavar="LINE",
                        help="a line to add to conf/local.conf, e.g. 'IMGCRAFT_OUTPUTS = \"archive layout\"'")
    parser.add_argument("--pkgdata", help="a PKGDATA_DIR that do_rootfs puts in place, as do_packagedata would; "
                                          "without it IMGCRAFT_LAYERS defaults to auto")
    parser.add_argument("--package-manifest", help="the image manifest do_rootfs writes as IMAGE_MANIFEST")
    parser.add_argument("--recipe", default=RECIPE, help="the recipe to build (default %(default)s)")
    parser.add_argument("--multiconfig", action="append", default=[], metavar="NAME=MACHINE",
                        help="a multiconfig building for MACHINE (repeatable): conf/multiconfig/NAME.conf and "
                             "BBMULTICONFIG")
    parser.add_argument("--task", help="run this task instead of do_build (e.g. image_imgcraft, imgcraft_push)")
    parser.add_argument("--workdir", help="build in WORKDIR/MACHINE, emptied first (default: a new temporary "
                                          "directory per machine, kept)")
    parser.add_argument("--layer", default=os.path.join(REPO, "meta-imgcraft"), help="the meta-imgcraft to test")
    parser.add_argument("--tools", default=os.path.join(REPO, "target", "release"),
                        help="directory holding rootfs2image, put first on the tasks' PATH")
    parser.add_argument("--rebuild-conf", action="append", default=[], metavar="LINE",
                        help="after the build, add LINE to local.conf and build again in the same directory; "
                             "rebuilt_tasks lists the tasks that ran again (repeatable)")
    parser.add_argument("--parse-only", action="store_true", help="only parse the configuration and the recipes")
    parser.add_argument("--series", help="the core layer's LAYERSERIES_CORENAMES (default blacksail)")
    parser.add_argument("--tail-lines", type=int, default=60, help="lines of output shown when a build fails")
    parser.add_argument("--json", action="store_true", help="print a JSON list of the builds on standard output")
    args = parser.parse_args()

    library = bb_library()
    if library is None:
        reexec_in_venv()
    if args.workdir:
        args.workdir = os.path.abspath(args.workdir)
    rootfs = {}
    for spec in args.rootfs:
        machine, sep, path = spec.partition("=")
        if sep and machine in MACHINES:
            rootfs[machine] = path
        else:
            rootfs["*"] = spec
    fixtures = os.environ.get("IMGCRAFT_FIXTURES") or os.path.join(REPO, "target", "fixtures")
    results = []
    for machine in args.machine or MACHINES:
        fixture, conf = MACHINES[machine]
        tarball = rootfs.get(machine) or rootfs.get("*")
        if tarball:
            conf = []
        else:
            tarball = os.path.join(fixtures, fixture)
            if not os.path.isfile(tarball) and not args.parse_only:
                parser.error("%s is missing: run scripts/make-fixtures.sh, or give --rootfs" % tarball)
        results.append(build(library, args, machine, tarball, conf))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        for r in results:
            where = r.get("deploy_dir_image") or ("parsed" if r["status"] == 0 else "FAILED, see %s" % r["log"])
            print("%s: %s" % (r["machine"], where))
    sys.exit(0 if all(r["status"] == 0 for r in results) else 1)


if __name__ == "__main__":
    main()
