# Inherited by every recipe (BitBake requires it): do_build, and the shell logging functions of OE-core's
# logging.bbclass, which send messages through BitBake's log FIFO so that they reach the console and the task log.

LOGFIFO = "${T}/fifo.${@os.getpid()}"

bbplain() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbplain $*" > ${LOGFIFO}; else echo "$*"; fi
}

bbnote() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbnote $*" > ${LOGFIFO}; else echo "NOTE: $*"; fi
}

bbwarn() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbwarn $*" > ${LOGFIFO}; else echo "WARNING: $*"; fi
}

bberror() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bberror $*" > ${LOGFIFO}; else echo "ERROR: $*"; fi
}

# Like OE-core's: log the message, then fail the task.
bbfatal() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbfatal $*" > ${LOGFIFO}; else echo "ERROR: $*"; fi
    exit 1
}

bbdebug() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbdebug $*" > ${LOGFIFO}; else echo "DEBUG: $*"; fi
}

die() {
    bbfatal "$*"
}

# OE-core's staging.bbclass installs the recipe's native dependencies here before a task that names it as a prefunc;
# the tools these tests use come from PATH.
python extend_recipe_sysroot() {
    pass
}

# Fakeroot tasks fail obscurely when pseudo is missing: say so before any task runs.
addhandler check_fakeroot
check_fakeroot[eventmask] = "bb.event.BuildStarted"
python check_fakeroot () {
    for path in (d.getVar('FAKEROOTCMD').split()[0], os.path.join(d.getVar('PSEUDO_LIBDIR'), 'libpseudo.so')):
        if not os.path.exists(path):
            bb.fatal("%s is missing: install Debian's pseudo package (scripts/setup-test-env.sh does), or set "
                     "PSEUDO_BINDIR and PSEUDO_LIBDIR in local.conf" % path)
}

addtask build
do_build[noexec] = "1"
do_build[nostamp] = "1"
