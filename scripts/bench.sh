#!/usr/bin/env bash
# Benchmark rootfs2image against the tools a Yocto build would otherwise use, on a large real rootfs.
#
# Usage: scripts/bench.sh [--json] [--runs N] [ROW...]
#
#   ROW        run only these rows (default: all); see `--help` for the names
#   --json     print the results as JSON on stdout (progress still goes to stderr)
#   --runs N   run each row N times and report the median wall time and the highest peak RSS (default 1)
#
# Environment:
#   IMGCRAFT_BENCH_DIR       cache and scratch directory (default /var/tmp/imgcraft-bench)
#   IMGCRAFT_BENCH_MIRROR    Debian mirror for debootstrap (default: the `URIs:` of the host's apt sources)
#   IMGCRAFT_BENCH_PACKAGES  packages debootstrap adds to minbase (default below; a change rebuilds the cached input)
#   ROOTFS2IMAGE             binary to measure (default target/release/rootfs2image, built when missing or stale)
#   IMGCRAFT_BENCH_CHANGED_PACKAGE  the package whose file layers-previous changes (default vim-runtime)
#
# The rootfs (debootstrap of bookworm, ~800 MB installed) is built once and tarred the way Yocto's IMAGE_CMD:tar does,
# then compressed like Yocto's default IMAGE_FSTYPES (tar.zst). Every step is skipped when its output exists.
#
# Each row runs under `/usr/bin/time` for the peak RSS of the largest single process in the row (for a pipeline that is
# the hungriest stage, not the sum) and the CPU seconds of all its processes (steadier than the wall time when other
# work shares the cores); wall seconds come from bash's clock around it, to the millisecond, because a warm push takes
# a few hundredths of a second. The page cache is never dropped; the input is read once before the first row so that
# every row starts warm. Outputs are deleted and flushed to disk between rows.
#
# The push rows push one image of the same rootfs (an OCI layout with a gzip layer, written once by rootfs2image and
# kept in the cache) to a docker-registry the script starts on a free loopback port and stops at exit, once with
# `rootfs2image push` and once with `skopeo copy`: cold (the registry's storage wiped and the registry restarted before
# every run, untimed) and warm (the same image pushed again, untimed, right before the timed push, so every blob is
# already there). Their wall time includes nothing but the client's run; the registry hashes and stores in parallel on
# the same cores. They are compared with skopeo instead of umoci.
#
# The rootfs2image rows write one layer (`--layers single`: the bench rootfs has a dpkg database, so the default would
# split it). The layers rows split it by package ownership (`--layers packages`, read from that database in a first
# pass that only decodes the tarball) and are compared with the single-layer row of the same compression (target: at
# most 1.3x its wall time). packages-scan times that first pass alone: rootfs2image itself, run under strace, which
# fails the second open of the input so the process ends as soon as the pass is over. layers-previous times the
# rebuild after one package changed (`--previous` of an image of the unchanged rootfs, written once, untimed, and
# cached with a stamp): what a device must download (target: under 5% of the image's layer bytes), checked against
# `rootfs2image diff` of the two images.
#
# To add a row: write a `row_NAME` function that calls `bench_row` (or `skip_row`) and append NAME to ROWS.
set -euo pipefail

BENCH_DIR=${IMGCRAFT_BENCH_DIR:-/var/tmp/imgcraft-bench}
PACKAGES=${IMGCRAFT_BENCH_PACKAGES:-python3,gcc,systemd,g++,perl,libpython3.11-dev,git,cmake,vim,python3-numpy}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCH=$(dpkg --print-architecture)
SUITE=bookworm

ROOTFS_DIR=$BENCH_DIR/rootfs
ROOTFS_TAR=$BENCH_DIR/rootfs.tar
TARBALL=$BENCH_DIR/rootfs.tar.zst
OUT_DIR=$BENCH_DIR/out
PODMAN_REF=localhost/imgcraft-bench:latest
PUSH_LAYOUT=$BENCH_DIR/push-layout
REGISTRY_DIR=$BENCH_DIR/registry
PUSH_REPO=bench/app
PUSH_TAG=1
CHANGED_PACKAGE=${IMGCRAFT_BENCH_CHANGED_PACKAGE:-vim-runtime}
CHANGED_TAR=$BENCH_DIR/rootfs-changed.tar
CHANGED_TARBALL=$BENCH_DIR/rootfs-changed.tar.zst
PREVIOUS_IMAGE=$BENCH_DIR/layers-v1.oci.tar

# Targets from the issue: wall time relative to the umoci pipeline, and peak memory (MB = 10^6 bytes).
TARGET_GZIP_RATIO=0.5
TARGET_ZSTD_RATIO=0.2
TARGET_PEAK_BYTES=100000000
# Targets of issue 6: layering by package against one layer, and what a device downloads after one package changed.
TARGET_LAYERS_RATIO=1.3
TARGET_DOWNLOAD_PERCENT=5

RUNS=1
ROWS=(rootfs2image-gzip rootfs2image-zstd layers-packages layers-packages-zstd packages-scan layers-previous
	umoci podman-import floor push-cold push-warm skopeo-cold skopeo-warm)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	printf 'Rows: %s\n' "${ROWS[*]}"
}

# ---------------------------------------------------------------------------------------------------------------------
# Tools

# need_tool COMMAND PACKAGE: install PACKAGE from the distribution when COMMAND is missing.
need_tool() {
	local cmd=$1 pkg=$2
	if command -v "$cmd" >/dev/null 2>&1; then
		return 0
	fi
	[[ $EUID -eq 0 ]] || die "\`$cmd\` is missing; install the Debian package \`$pkg\`"
	say "installing $pkg (for \`$cmd\`)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >&2
}

# podman in a container needs cgroupfs, runc and no default ulimits; scripts/setup-test-env.sh writes the same file.
ensure_containers_conf() {
	local conf=/etc/containers/containers.conf
	[[ -e $conf ]] && return 0
	say "writing $conf (cgroupfs, runc, no default ulimits)"
	mkdir -p /etc/containers
	cat >"$conf" <<-'EOF'
		[containers]
		default_ulimits = []

		[engine]
		cgroup_manager = "cgroupfs"
		runtime = "runc"
	EOF
}

# The mirror apt already uses, so the rootfs comes from wherever this machine is allowed to reach.
debian_mirror() {
	if [[ -n ${IMGCRAFT_BENCH_MIRROR:-} ]]; then
		echo "$IMGCRAFT_BENCH_MIRROR"
	elif [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
		awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources
	else
		echo http://deb.debian.org/debian
	fi
}

# ---------------------------------------------------------------------------------------------------------------------
# Input: build once, keep forever

# A half-built debootstrap target may still have /proc or /sys mounted inside it; never recurse into those.
remove_partial_dir() {
	local dir=$1
	[[ -e $dir ]] || return 0
	say "removing leftover $dir"
	local mnt
	for mnt in $(findmnt -rn -o TARGET | grep -F "$dir/" | sort -r || true); do
		say "unmounting $mnt"
		umount -l "$mnt"
	done
	rm -rf --one-file-system "$dir"
}

# What the cached input was built from; a different recipe throws the whole cache away.
ROOTFS_RECIPE="debootstrap --variant=minbase --arch=$ARCH --include=$PACKAGES $SUITE"

build_rootfs() {
	local stamp=$BENCH_DIR/rootfs.recipe
	if [[ -d $ROOTFS_DIR && $(cat "$stamp" 2>/dev/null) != "$ROOTFS_RECIPE" ]]; then
		say "cached rootfs was built by another recipe ($(cat "$stamp" 2>/dev/null || echo unknown)); rebuilding"
		mv "$ROOTFS_DIR" "$ROOTFS_DIR.partial"
		rm -f "$ROOTFS_TAR" "$TARBALL" "$BENCH_DIR/file-count"
	fi
	if [[ -d $ROOTFS_DIR ]]; then
		say "rootfs exists: $ROOTFS_DIR"
		return 0
	fi
	[[ $EUID -eq 0 ]] || die "debootstrap needs root; run as root or point IMGCRAFT_BENCH_DIR at a ready cache"
	local mirror
	mirror=$(debian_mirror)
	remove_partial_dir "$ROOTFS_DIR.partial"
	say "debootstrap --variant=minbase --include=$PACKAGES $SUITE ($ARCH) from $mirror (a few minutes)"
	debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" \
		"$SUITE" "$ROOTFS_DIR.partial" "$mirror" >"$BENCH_DIR/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $BENCH_DIR/debootstrap.log"
	# The apt cache is not part of an image a Yocto build would produce.
	rm -f "$ROOTFS_DIR.partial"/var/cache/apt/archives/*.deb
	echo "$ROOTFS_RECIPE" >"$stamp"
	mv "$ROOTFS_DIR.partial" "$ROOTFS_DIR"
}

# Flags of Yocto's IMAGE_CMD:tar (meta/classes-recipe/image_types.bbclass) with the xattr feature on.
build_tarball() {
	if [[ ! -f $ROOTFS_TAR ]]; then
		say "tarring $ROOTFS_DIR to $ROOTFS_TAR (Yocto IMAGE_CMD:tar flags)"
		tar --xattrs --xattrs-include='*' --sort=name --format=posix \
			--pax-option=delete=atime,delete=ctime --numeric-owner \
			-C "$ROOTFS_DIR" -cf "$ROOTFS_TAR.partial" .
		mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
	fi
	if [[ ! -f $TARBALL ]]; then
		say "compressing to $TARBALL (zstd -3, Yocto's default tar.zst)"
		zstd -q -T0 -3 -f "$ROOTFS_TAR" -o "$TARBALL.partial"
		mv "$TARBALL.partial" "$TARBALL"
	fi
}

# ---------------------------------------------------------------------------------------------------------------------
# Measurement

ROW_NAME=() ROW_STATUS=() ROW_WALL=() ROW_RSS_KIB=() ROW_SIZE=() ROW_NOTE=() ROW_WALLS=() ROW_SENT=() ROW_EXTRA=()
ROW_CPU=() ROW_CPUS=()

record() { # NAME STATUS WALL RSS_KIB SIZE NOTE [WALL_OF_EVERY_RUN...]
	ROW_NAME+=("$1") ROW_STATUS+=("$2") ROW_WALL+=("$3") ROW_RSS_KIB+=("$4") ROW_SIZE+=("$5") ROW_NOTE+=("$6")
	shift 6
	ROW_WALLS+=("$*") ROW_SENT+=(-) ROW_EXTRA+=('{}') ROW_CPU+=(-) ROW_CPUS+=('')
}

median() { printf '%s\n' "$@" | sort -g | awk '{ w[NR] = $1 } END { print w[int((NR + 1) / 2)] }'; }

# annotate_last_row NOTE [BYTES_SENT]: what the row just recorded did, for the table and the JSON.
annotate_last_row() {
	local i=$((${#ROW_NAME[@]} - 1))
	ROW_NOTE[i]=$1
	ROW_SENT[i]=${2:--}
}

# extend_last_row JSON_OBJECT: more fields for the row just recorded, in the JSON output (and for its verdict).
extend_last_row() {
	local i=$((${#ROW_NAME[@]} - 1))
	ROW_EXTRA[i]=$(jq -cn --argjson a "${ROW_EXTRA[i]}" --argjson b "$1" '$a + $b')
}

# row_extra I FIELD: a field that extend_last_row gave row I, or nothing.
row_extra() { jq -r --arg f "$2" '.[$f] // empty' <<<"${ROW_EXTRA[$1]}"; }

reset_out_dir() {
	rm -rf "$OUT_DIR"
	mkdir -p "$OUT_DIR"
}

# bench_row NAME OUTPUT [--setup FUNCTION] [--cleanup FUNCTION] [--after FUNCTION] -- COMMAND...
#   Run COMMAND $RUNS times, each in an empty $OUT_DIR followed by the cleanup FUNCTION, and record the median wall
#   time, the median CPU time (user + system of every process of the command: on a loaded machine it moves less than
#   the wall time), the highest peak RSS and the size of OUTPUT ("-" for none). The setup FUNCTION runs, untimed,
#   right before each run; the cleanup FUNCTION before the setup and after each run; the after FUNCTION, untimed,
#   after each run that succeeded, while its output is still there (the row fails when it fails: it checks what the
#   run wrote).
bench_row() {
	local name=$1 output=$2 setup=: cleanup=: after=:
	shift 2
	while [[ ${1:-} == --setup || ${1:-} == --cleanup || ${1:-} == --after ]]; do
		case $1 in
		--setup) setup=$2 ;;
		--cleanup) cleanup=$2 ;;
		--after) after=$2 ;;
		esac
		shift 2
	done
	[[ ${1:-} == -- ]] || die "bench_row $name: expected -- before the command"
	shift
	local timing=$BENCH_DIR/time.$name log=$BENCH_DIR/row.$name.log status=ok size=- run start end wall rss walls=() peak=0
	local user sys cpus=()
	for ((run = 1; run <= RUNS; run++)); do
		reset_out_dir
		"$cleanup"
		"$setup"
		sync
		say "row $name, run $run/$RUNS: $*"
		start=${EPOCHREALTIME/,/.}
		if ! /usr/bin/time -f '%M %U %S' -o "$timing" "$@" >"$log" 2>&1; then
			status=failed
			say "row $name failed; its output is in $log"
		fi
		end=${EPOCHREALTIME/,/.}
		read -r rss user sys < <(tail -n 1 "$timing")
		walls+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')")
		cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')")
		((rss > peak)) && peak=$rss
		if [[ $status == ok && $output != - ]]; then
			if [[ -f $output ]]; then
				size=$(stat -c %s "$output")
			else
				status=failed
				say "row $name exited 0 but wrote no \`$output\`"
			fi
		fi
		if [[ $status == ok ]] && ! "$after"; then
			status=failed
			say "row $name: the check after run $run failed"
		fi
		reset_out_dir
		"$cleanup"
		sync
		[[ $status == ok ]] || break
	done
	wall=$(median "${walls[@]}")
	record "$name" "$status" "$wall" "$peak" "$size" "" "${walls[@]}"
	ROW_CPU[-1]=$(median "${cpus[@]}") ROW_CPUS[-1]="${cpus[*]}"
}

# skip_row NAME REASON: show the row as n/a instead of leaving it out.
skip_row() {
	say "row $1: skipped ($2)"
	record "$1" n/a - - - "$2"
}

# The binary under test, built when missing or older than its sources. Sets ROOTFS2IMAGE_BIN, or ROOTFS2IMAGE_WHY when
# there is none worth measuring.
ROOTFS2IMAGE_BIN=
ROOTFS2IMAGE_WHY=
LAYERS_WHY=
SINGLE_LAYER=()
resolve_rootfs2image() {
	local bin=${ROOTFS2IMAGE:-$REPO_ROOT/target/release/rootfs2image}
	if [[ -z ${ROOTFS2IMAGE:-} ]] && { [[ ! -x $bin ]] || [[ -n $(find "$REPO_ROOT/src" "$REPO_ROOT/Cargo.toml" "$REPO_ROOT/Cargo.lock" -newer "$bin" -print -quit 2>/dev/null) ]]; }; then
		say "cargo build --release --bin rootfs2image"
		if ! (cd "$REPO_ROOT" && cargo build --release --bin rootfs2image >&2); then
			say "build failed; measuring the previous binary, if any, which may be stale"
		fi
	fi
	if [[ ! -x $bin ]]; then
		ROOTFS2IMAGE_WHY="no binary at \`$bin\`"
	elif [[ $("$bin" --help 2>/dev/null || true) != *--compression* ]]; then
		# The CLI is still being written; a stub would "succeed" in no time and spoil the table.
		ROOTFS2IMAGE_WHY="\`$bin --help\` has no --compression yet"
	else
		ROOTFS2IMAGE_BIN=$bin
	fi
	LAYERS_WHY=$ROOTFS2IMAGE_WHY
	if [[ -n $ROOTFS2IMAGE_BIN ]]; then
		if [[ $("$bin" --help 2>/dev/null || true) == *--layers* ]]; then
			# Without it a rootfs with a package database is split by package.
			SINGLE_LAYER=(--layers single)
		else
			LAYERS_WHY="\`$bin --help\` has no --layers yet"
		fi
	fi
}

# The layers in the --json report of a rootfs2image row's last run (its log), for the note and the JSON.
note_layer_count() {
	local i=$((${#ROW_NAME[@]} - 1)) count
	[[ ${ROW_STATUS[i]} == ok ]] || return 0
	count=$(jq -er '.layers | length' "$BENCH_DIR/row.$1.log" 2>/dev/null) || {
		annotate_last_row "no --json report in $BENCH_DIR/row.$1.log"
		return 0
	}
	annotate_last_row "$count layer$( ((count == 1)) || echo s)"
	extend_last_row "{\"layers\": $count}"
}

rootfs2image_row() { # NAME COMPRESSION LAYERING_OPTION...
	local name=$1 compression=$2
	shift 2
	if [[ -z $ROOTFS2IMAGE_BIN ]]; then
		skip_row "$name" "$ROOTFS2IMAGE_WHY"
		return 0
	fi
	bench_row "$name" "$OUT_DIR/image.tar" -- "$ROOTFS2IMAGE_BIN" "$TARBALL" --arch "$ARCH" --compression "$compression" \
		"$@" -o "oci-archive:$OUT_DIR/image.tar" --json
	note_layer_count "$name"
}

row_rootfs2image-gzip() { rootfs2image_row rootfs2image-gzip gzip "${SINGLE_LAYER[@]}"; }
row_rootfs2image-zstd() { rootfs2image_row rootfs2image-zstd zstd "${SINGLE_LAYER[@]}"; }

# What meta-virtualization's IMAGE_CMD:oci (classes/image-oci-umoci.inc) runs with its defaults: a fresh layout, an
# unpacked empty bundle, the rootfs copied in, repack, config, then a tar of the layout (OCI_IMAGE_TAR_OUTPUT = "true").
# Differences, each in umoci's favour or neutral: the rootfs is extracted from the tarball instead of `cp -r` from
# IMAGE_ROOTFS; `unpack` runs without `--rootless` because we are real root here, not under pseudo, so ownership
# survives; the second, redundant `-dir.tar` copy of the layout is not made; the final `rm -rf` of the bundle is left
# to the untimed cleanup, because its cost depends on the filesystem (on ext4 mounted with `discard` it alone can take
# as long as the repack) and a slow baseline would flatter the ratios.
umoci_pipeline() {
	set -euo pipefail
	local tarball=$1 out=$2 arch=$3 layout=$2/layout bundle=$2/bundle
	umoci init --layout "$layout"
	umoci new --image "$layout:latest"
	umoci unpack --image "$layout:latest" "$bundle"
	tar --xattrs --xattrs-include='*' --numeric-owner -xpf "$tarball" -C "$bundle/rootfs"
	umoci repack --image "$layout:latest" "$bundle"
	umoci config --image "$layout:latest" --architecture "$arch"
	umoci config --image "$layout:latest" --config.entrypoint sh
	(cd "$layout" && tar -cf "$out/image.tar" .)
}
export -f umoci_pipeline

row_umoci() {
	bench_row umoci "$OUT_DIR/image.tar" -- bash -c 'umoci_pipeline "$@"' umoci "$TARBALL" "$OUT_DIR" "$ARCH"
}

# podman decompresses zstd itself; its output is an image in containers-storage, removed around every run.
remove_podman_image() { podman rmi --force "$PODMAN_REF" >/dev/null 2>&1 || true; }

row_podman-import() {
	bench_row podman-import - --cleanup remove_podman_image -- podman import --quiet "$TARBALL" "$PODMAN_REF"
}

# The floor: decompress, recompress with every core, hash, with stock tools. A reference rather than a hard bound: pigz
# uses the system zlib, and a faster deflate (zlib-rs, as rootfs2image links) can beat it.
row_floor() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	bench_row floor - -- bash -c 'set -o pipefail; zstd -dc "$1" | pigz -p"$(nproc)" | sha256sum' floor "$TARBALL"
}

# ---------------------------------------------------------------------------------------------------------------------
# Layers: by package ownership, the first pass that finds it, and the rebuild after one package changed

layers_row() { # NAME COMPRESSION
	if [[ -n $LAYERS_WHY ]]; then
		skip_row "$1" "$LAYERS_WHY"
		return 0
	fi
	rootfs2image_row "$1" "$2" --layers packages
}

row_layers-packages() { layers_row layers-packages gzip; }
row_layers-packages-zstd() { layers_row layers-packages-zstd zstd; }

# rootfs2image's own first pass, and nothing else: strace (stopping the process only at its openat calls of the input,
# through seccomp) fails the second open of the input with EIO, which is where the conversion proper would begin, so
# the run is the pass that reads the package database (plus the start-up) and ends with that error. The run fails
# unless it ended there.
first_pass_only() {
	local bin=$1 tarball=$2 arch=$3 out=$4
	if strace --seccomp-bpf -f -qq -ttt -o "$out/strace" -e trace=openat -P "$tarball" \
		-e inject=openat:error=EIO:when=2 \
		"$bin" "$tarball" --arch "$arch" --layers packages -o "oci-archive:$out/image.tar" --quiet 2>"$out/stderr"; then
		echo "rootfs2image opened \`$tarball\` once only: no first pass to stop after"
		return 1
	fi
	cat "$out/strace" "$out/stderr"
	if ! grep -q INJECTED "$out/strace" || ! grep -q 'Input/output error' "$out/stderr"; then
		echo "rootfs2image failed before its second open of \`$tarball\`"
		return 1
	fi
}
export -f first_pass_only

# The same pass with stock tools (decode, read every tar header, skip the data), timed after each run for the note.
STOCK_SCAN_WALLS=()
time_stock_scan() {
	local start end
	start=${EPOCHREALTIME/,/.}
	zstd -dc "$TARBALL" | tar -tf - >/dev/null || return 1
	end=${EPOCHREALTIME/,/.}
	STOCK_SCAN_WALLS+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')")
}

row_packages-scan() {
	if [[ -n $LAYERS_WHY ]]; then
		skip_row packages-scan "$LAYERS_WHY"
		return 0
	fi
	STOCK_SCAN_WALLS=()
	# shellcheck disable=SC2016 # expanded by the inner shell
	bench_row packages-scan - --after time_stock_scan -- \
		bash -c 'first_pass_only "$@"' packages-scan "$ROOTFS2IMAGE_BIN" "$TARBALL" "$ARCH" "$OUT_DIR"
	local i=$((${#ROW_NAME[@]} - 1)) stock
	[[ ${ROW_STATUS[i]} == ok ]] || return 0
	stock=$(median "${STOCK_SCAN_WALLS[@]}")
	annotate_last_row "rootfs2image's own pass; zstd -dc | tar -tf -: ${stock} s"
	extend_last_row "{\"stock_scan_wall_seconds\": $stock}"
}

# The changed rootfs: the cached tar with bytes appended to one file of $CHANGED_PACKAGE (the first regular file its
# dpkg .list names that has no other hardlink and is reached through no symlink), everything else byte for byte as it
# was: the member's header gets the new size and checksum, its data the bytes; its mtime and pax records stay, so no
# other entry changes. A python3 rewrite of the stream, not a copy of the rootfs tree re-tarred: one sequential copy.
# What was changed goes to rootfs-changed.path.
build_changed_tarball() {
	local recipe stamp=$BENCH_DIR/rootfs-changed.recipe
	recipe="$CHANGED_PACKAGE $(stat -c '%s %Y' "$ROOTFS_TAR") v1"
	if [[ -f $CHANGED_TARBALL && $(cat "$stamp" 2>/dev/null) == "$recipe" ]]; then
		say "changed rootfs exists: $CHANGED_TARBALL ($(cat "$BENCH_DIR/rootfs-changed.path"))"
		return 0
	fi
	rm -f "$CHANGED_TARBALL" "$stamp"
	say "writing $CHANGED_TAR: $ROOTFS_TAR with one file of $CHANGED_PACKAGE changed"
	python3 - "$ROOTFS_TAR" "$CHANGED_TAR.partial" "$ROOTFS_DIR" "$CHANGED_PACKAGE" \
		>"$BENCH_DIR/rootfs-changed.path" <<-'PY'
		import glob, os, shutil, sys, tarfile

		src, dst, root, package = sys.argv[1:5]
		APPENDED = b"\n# changed by scripts/bench.sh (row layers-previous)\n"
		root = os.path.realpath(root)
		info = f"{root}/var/lib/dpkg/info"
		lists = sorted(glob.glob(f"{info}/{package}.list") + glob.glob(f"{info}/{package}:*.list"))
		if not lists:
		    sys.exit(f"{package}: no dpkg .list in {info}")
		chosen = None
		for line in open(lists[0], encoding="utf-8", errors="surrogateescape"):
		    path = root + line.rstrip("\n")
		    if os.path.realpath(path) == path and os.path.isfile(path):
		        st = os.lstat(path)
		        if st.st_nlink == 1 and st.st_size > 0:
		            chosen = line.rstrip("\n")
		            break
		if chosen is None:
		    sys.exit(f"{package}: no regular file in {lists[0]}")
		names = ("." + chosen, chosen.lstrip("/"))

		def find(tarball):
		    with tarfile.open(tarball, "r:") as tar:
		        for member in tar:
		            if member.name in names:
		                return member
		    return None

		member = find(src)
		# A size in a pax record (files over 8 GiB) would need rewriting that record too.
		if member is None or not member.isreg() or "size" in member.pax_headers:
		    sys.exit(f"{chosen}: not a plain regular file in {src}")
		size = member.size + len(APPENDED)
		with open(src, "rb") as inp, open(dst, "wb") as out:
		    # The member's own ustar header is the block right before its data (pax records, if any, come before it).
		    remaining = member.offset_data - 512
		    while remaining:
		        chunk = inp.read(min(remaining, 1 << 20))
		        out.write(chunk)
		        remaining -= len(chunk)
		    header = bytearray(inp.read(512))
		    header[124:136] = b"%011o\0" % size
		    # POSIX ustar: the checksum is summed with its own field as spaces; GNU tar writes six digits, NUL, space.
		    header[148:156] = b" " * 8
		    header[148:156] = b"%06o\0 " % sum(header)
		    out.write(header)
		    data = inp.read(member.size) + APPENDED
		    out.write(data + b"\0" * (-len(data) % 512))
		    inp.seek(member.offset_data + member.size + (-member.size % 512))
		    shutil.copyfileobj(inp, out, 1 << 20)
		check = find(dst)
		if check is None or check.size != size:
		    sys.exit(f"{dst}: the rewritten {chosen} does not read back")
		print(f"{package}: {chosen} (+{len(APPENDED)} bytes)")
	PY
	say "compressing to $CHANGED_TARBALL (zstd -3, as the unchanged one)"
	zstd -q -T0 -3 -f "$CHANGED_TAR.partial" -o "$CHANGED_TARBALL.partial"
	rm -f "$CHANGED_TAR.partial"
	mv "$CHANGED_TARBALL.partial" "$CHANGED_TARBALL"
	echo "$recipe" >"$stamp"
}

# The image a device already runs: the unchanged rootfs by package, written once by the binary under test (a stamp holds
# the binary's digest and the tarball's size and mtime; either changing rewrites it).
build_previous_image() {
	local recipe stamp=$PREVIOUS_IMAGE.recipe
	recipe="$(sha256sum <"$ROOTFS2IMAGE_BIN" | cut -d ' ' -f 1) $(stat -c '%s %Y' "$TARBALL") gzip packages"
	if [[ -f $PREVIOUS_IMAGE && $(cat "$stamp" 2>/dev/null) == "$recipe" ]]; then
		say "previous image exists: $PREVIOUS_IMAGE"
		return 0
	fi
	rm -f "$PREVIOUS_IMAGE" "$stamp"
	local command=("$ROOTFS2IMAGE_BIN" "$TARBALL" --arch "$ARCH" --compression gzip --layers packages --quiet)
	say "writing the previous image (untimed, once): ${command[*]} -o oci-archive:$PREVIOUS_IMAGE"
	"${command[@]}" -o "oci-archive:$PREVIOUS_IMAGE.partial" >&2 || die "rootfs2image could not write $PREVIOUS_IMAGE"
	mv "$PREVIOUS_IMAGE.partial" "$PREVIOUS_IMAGE"
	echo "$recipe" >"$stamp"
}

PREVIOUS_WHY=
prepare_previous() {
	if [[ -n $LAYERS_WHY ]]; then
		PREVIOUS_WHY=$LAYERS_WHY
		return 0
	fi
	if ! "$ROOTFS2IMAGE_BIN" diff --help >/dev/null 2>&1; then
		PREVIOUS_WHY="\`$ROOTFS2IMAGE_BIN\` has no diff subcommand yet"
		return 0
	fi
	build_changed_tarball
	build_previous_image
}

# After each run of layers-previous: its --json report and `rootfs2image diff` of the two images must agree. Sets
# PREVIOUS_FIGURES (a JSON object) for the note.
PREVIOUS_FIGURES=
check_previous_rebuild() {
	local log=$BENCH_DIR/row.layers-previous.log diff=$BENCH_DIR/diff.layers-previous.json ours theirs
	if ! ours=$(jq -ce '{layers: (.layers | length), reused_layers, new_layers, download_bytes,
		image_layer_bytes: ([.layers[].size] | add)} | select(.reused_layers != null)' "$log" 2>/dev/null); then
		say "layers-previous: no --json report with reused_layers in $log"
		return 1
	fi
	say "checking with: rootfs2image diff oci-archive:$PREVIOUS_IMAGE oci-archive:$OUT_DIR/image.tar --json"
	if ! "$ROOTFS2IMAGE_BIN" diff "oci-archive:$PREVIOUS_IMAGE" "oci-archive:$OUT_DIR/image.tar" --json \
		>"$diff" 2>>"$log" ||
		! theirs=$(jq -ce '{layers: (.shared_layers + .new_layers | length), reused_layers: (.shared_layers | length),
			new_layers: (.new_layers | length), download_bytes, image_layer_bytes: .total_bytes}' "$diff"); then
		say "layers-previous: rootfs2image diff failed; see $diff and $log"
		return 1
	fi
	if [[ $ours != "$theirs" ]]; then
		say "layers-previous: the --json report says $ours, rootfs2image diff says $theirs"
		echo "mismatch: --json report $ours, rootfs2image diff $theirs" >>"$log"
		return 1
	fi
	PREVIOUS_FIGURES=$ours
}

row_layers-previous() {
	if [[ -n $PREVIOUS_WHY ]]; then
		skip_row layers-previous "$PREVIOUS_WHY"
		return 0
	fi
	bench_row layers-previous "$OUT_DIR/image.tar" --after check_previous_rebuild -- \
		"$ROOTFS2IMAGE_BIN" "$CHANGED_TARBALL" --arch "$ARCH" --compression gzip --layers packages \
		--previous "oci-archive:$PREVIOUS_IMAGE" -o "oci-archive:$OUT_DIR/image.tar" --json
	local i=$((${#ROW_NAME[@]} - 1)) figures percent reused new layers download total note
	[[ ${ROW_STATUS[i]} == ok ]] || return 0
	figures=$(jq -c --arg changed "$(cat "$BENCH_DIR/rootfs-changed.path")" \
		'. + {download_percent: (.download_bytes * 10000 / .image_layer_bytes | round / 100), diff_agrees: true,
		changed: $changed}' <<<"$PREVIOUS_FIGURES")
	read -r reused new layers download total percent < <(jq -r \
		'[.reused_layers, .new_layers, .layers, .download_bytes, .image_layer_bytes, .download_percent] | join(" ")' \
		<<<"$figures")
	note="reused $reused, new $new of $layers layers; download $(human "$download") = ${percent}% of $(human "$total")"
	annotate_last_row "$note; diff agrees"
	extend_last_row "$figures"
}

# ---------------------------------------------------------------------------------------------------------------------
# Registry push: one image, a private docker-registry, this tool against `skopeo copy`

PUSH_SOURCE=oci:$PUSH_LAYOUT:latest
PUSH_WHY=
REGISTRY_ADDR=
REGISTRY_PID=

is_push_row() { [[ $1 == push-* || $1 == skopeo-* ]]; }

# The image both tools push: the large rootfs with one gzip layer, written once and kept while the tarball is unchanged.
build_push_layout() {
	if [[ -f $PUSH_LAYOUT/index.json && ! $TARBALL -nt $PUSH_LAYOUT/index.json ]]; then
		say "push layout exists: $PUSH_LAYOUT"
		return 0
	fi
	rm -rf "$PUSH_LAYOUT" "$PUSH_LAYOUT.partial"
	say "writing the image to push (untimed, once): $ROOTFS2IMAGE_BIN $TARBALL --arch $ARCH --compression gzip ${SINGLE_LAYER[*]} -q -o oci:$PUSH_LAYOUT:latest"
	"$ROOTFS2IMAGE_BIN" "$TARBALL" --arch "$ARCH" --compression gzip "${SINGLE_LAYER[@]}" -q \
		-o "oci:$PUSH_LAYOUT.partial:latest" >&2 ||
		die "rootfs2image could not write $PUSH_LAYOUT"
	mv "$PUSH_LAYOUT.partial" "$PUSH_LAYOUT"
}

# The layout's manifest, as the registry will serve it.
layout_manifest() {
	local digest
	digest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' \
		"$PUSH_LAYOUT/index.json")
	cat "$PUSH_LAYOUT/blobs/${digest/://}"
}

# The layout's blob files (config and layers), read once before every push so that both tools read from the page cache.
read_layout_blobs() {
	layout_manifest | jq -r '.config.digest, .layers[].digest' | sed "s|:|/|; s|^|$PUSH_LAYOUT/blobs/|" | xargs cat >/dev/null
}

# A loopback port nothing listens on, picked at random in 5100-5899 so that two benches side by side rarely collide.
free_port() {
	local used port tries
	used=" $(ss -Htln | awk '{ n = split($4, a, ":"); printf "%s ", a[n] }')"
	for ((tries = 0; tries < 100; tries++)); do
		port=$((5100 + RANDOM % 800))
		[[ $used == *" $port "* ]] || { echo "$port"; return 0; }
	done
	die "found no free loopback port in 5100-5899"
}

registry_answers() { curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

# Starts docker-registry on $REGISTRY_ADDR (picked on the first start, kept across restarts so the rows' destination
# stays the same) with its storage in $REGISTRY_DIR/storage.
start_registry() {
	[[ -n $REGISTRY_ADDR ]] || REGISTRY_ADDR=127.0.0.1:$(free_port)
	mkdir -p "$REGISTRY_DIR/storage"
	# Our own config: Debian's default asks for htpasswd auth and listens on every address.
	cat >"$REGISTRY_DIR/config.yml" <<-CONFIG
		version: 0.1
		storage:
		  filesystem:
		    rootdirectory: $REGISTRY_DIR/storage
		http:
		  addr: $REGISTRY_ADDR
	CONFIG
	say "starting docker-registry on $REGISTRY_ADDR (storage $REGISTRY_DIR/storage, log $REGISTRY_DIR/registry.log)"
	docker-registry serve "$REGISTRY_DIR/config.yml" </dev/null >>"$REGISTRY_DIR/registry.log" 2>&1 &
	REGISTRY_PID=$!
	local i
	for ((i = 0; i < 50; i++)); do
		# Alive and answering: a registry that lost the port to someone else exits at once.
		if registry_answers && kill -0 "$REGISTRY_PID" 2>/dev/null; then
			return 0
		fi
		kill -0 "$REGISTRY_PID" 2>/dev/null || break
		sleep 0.2
	done
	tail -n 20 "$REGISTRY_DIR/registry.log" >&2
	stop_registry
	die "docker-registry did not answer on $REGISTRY_ADDR; its log is $REGISTRY_DIR/registry.log"
}

stop_registry() {
	[[ -n $REGISTRY_PID ]] || return 0
	kill "$REGISTRY_PID" 2>/dev/null || true
	wait "$REGISTRY_PID" 2>/dev/null || true
	REGISTRY_PID=
}

# At exit, however the script ends: the registry stops and its storage (a copy of the image) goes.
stop_registry_at_exit() {
	[[ -n $REGISTRY_PID ]] || return 0
	say "stopping docker-registry on $REGISTRY_ADDR and removing $REGISTRY_DIR/storage"
	stop_registry
	rm -rf "$REGISTRY_DIR/storage"
}

# Everything the push rows need, or PUSH_WHY when they cannot run.
prepare_push() {
	if [[ -z $ROOTFS2IMAGE_BIN ]]; then
		PUSH_WHY="no image to push: $ROOTFS2IMAGE_WHY"
		return 0
	fi
	if ! "$ROOTFS2IMAGE_BIN" push --help >/dev/null 2>&1; then
		PUSH_WHY="\`$ROOTFS2IMAGE_BIN\` has no push subcommand yet"
		return 0
	fi
	build_push_layout
	mkdir -p "$REGISTRY_DIR"
	rm -rf "$REGISTRY_DIR/storage"
	: >"$REGISTRY_DIR/registry.log"
	trap stop_registry_at_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	start_registry
}

push_destination() { echo "docker://$REGISTRY_ADDR/$PUSH_REPO:$PUSH_TAG"; }

# Setup of a cold row: no blob of any repository left (blobs are global in docker-registry) and a new process, so no
# cache remembers one.
empty_registry() {
	say "emptying the registry: stop, remove $REGISTRY_DIR/storage, start"
	stop_registry
	rm -rf "$REGISTRY_DIR/storage"
	start_registry
	read_layout_blobs
	mark_registry_log
}

# Setups of the warm rows: the same tool pushes the same image once, untimed, so the timed push is a second push.
first_push_rootfs2image() {
	say "untimed first push: rootfs2image push $PUSH_SOURCE $(push_destination)"
	"$ROOTFS2IMAGE_BIN" push "$PUSH_SOURCE" "$(push_destination)" >"$REGISTRY_DIR/first-push.log" 2>&1 ||
		die "the untimed first push failed; see $REGISTRY_DIR/first-push.log"
	read_layout_blobs
	mark_registry_log
}

first_push_skopeo() {
	say "untimed first push: skopeo copy --dest-tls-verify=false $PUSH_SOURCE $(push_destination)"
	skopeo copy --dest-tls-verify=false "$PUSH_SOURCE" "$(push_destination)" >"$REGISTRY_DIR/first-push.log" 2>&1 ||
		die "the untimed first push failed; see $REGISTRY_DIR/first-push.log"
	read_layout_blobs
	mark_registry_log
}

# The registry's access log from the start of the last timed run: what the client asked for, summed up the same way for
# both tools (skopeo prints no "skipped: already exists" without a terminal, so its own output says little).
REGISTRY_LOG_MARK=0
mark_registry_log() { REGISTRY_LOG_MARK=$(wc -l <"$REGISTRY_DIR/registry.log"); }

registry_requests() {
	# The access log line is written once the response is out; give the last one a moment to land.
	sleep 0.2
	tail -n +"$((REGISTRY_LOG_MARK + 1))" "$REGISTRY_DIR/registry.log" | awk '
		$1 == "127.0.0.1" && $2 == "-" {
			method = substr($6, 2); path = $7; code = $9
			if (method == "HEAD" && path ~ /\/blobs\/sha256:/) { heads++; if (code == 200) found++ }
			else if (method == "POST" && path ~ /\/blobs\/uploads\//) uploads++
			else if (method == "PATCH") patches++
			else if (method == "PUT" && path ~ /\/manifests\//) manifests++
		}
		END {
			printf "registry saw: HEAD blob %d (%d found), POST upload %d, PATCH %d, PUT manifest %d",
				heads, found, uploads, patches, manifests
		}'
}

# What the last run of a rootfs2image push row did: bytes sent from its --json report, requests from the registry.
note_rootfs2image_push() {
	local log=$BENCH_DIR/row.$1.log i=$((${#ROW_NAME[@]} - 1)) sent
	[[ ${ROW_STATUS[i]} == ok ]] || return 0
	if ! sent=$(jq -er '.bytes_sent' "$log" 2>/dev/null); then
		annotate_last_row "no --json report in $log; $(registry_requests)"
		return 0
	fi
	annotate_last_row "sent $(human "$sent"); $(registry_requests)" "$sent"
}

# What the last run of a skopeo row did: requests from the registry, and whether the registry now holds the layout's
# layers as they are or recompressed ones.
note_skopeo_push() {
	local i=$((${#ROW_NAME[@]} - 1)) pushed layers
	[[ ${ROW_STATUS[i]} == ok ]] || return 0
	pushed=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REGISTRY_ADDR/v2/$PUSH_REPO/manifests/$PUSH_TAG" | jq -c '[.layers[].digest]') || pushed=unknown
	if [[ $pushed == "$(layout_manifest | jq -c '[.layers[].digest]')" ]]; then
		layers="layers pushed as they are in the layout"
	elif [[ $pushed == unknown ]]; then
		layers="the pushed manifest could not be read back"
	else
		layers="layers recompressed (digests differ from the layout's)"
	fi
	annotate_last_row "$(registry_requests); $layers"
}

push_row() { # NAME SETUP
	if [[ -n $PUSH_WHY ]]; then
		skip_row "$1" "$PUSH_WHY"
		return 0
	fi
	bench_row "$1" - --setup "$2" -- "$ROOTFS2IMAGE_BIN" push --json "$PUSH_SOURCE" "$(push_destination)"
	note_rootfs2image_push "$1"
}

skopeo_row() { # NAME SETUP
	if [[ -n $PUSH_WHY ]]; then
		skip_row "$1" "$PUSH_WHY"
		return 0
	fi
	bench_row "$1" - --setup "$2" -- skopeo copy --dest-tls-verify=false "$PUSH_SOURCE" "$(push_destination)"
	note_skopeo_push "$1"
}

row_push-cold() { push_row push-cold empty_registry; }
row_push-warm() { push_row push-warm first_push_rootfs2image; }
row_skopeo-cold() { skopeo_row skopeo-cold empty_registry; }
row_skopeo-warm() { skopeo_row skopeo-warm first_push_skopeo; }

# ---------------------------------------------------------------------------------------------------------------------
# Report

row_index() {
	local i
	for i in "${!ROW_NAME[@]}"; do
		[[ ${ROW_NAME[$i]} == "$1" ]] && { echo "$i"; return 0; }
	done
	return 1
}

# The issue's targets for a row, or nothing when it has none. Sets TARGET_KIND (umoci: wall against umoci's and peak
# memory; single: wall against TARGET_BASELINE, the single-layer row of the same compression; download: the bytes
# layers-previous downloads against the image's), TARGET_RATIO, TARGET_BASELINE and TARGET_TEXT.
row_target() {
	TARGET_KIND='' TARGET_RATIO='' TARGET_BASELINE='' TARGET_TEXT=''
	case $1 in
	rootfs2image-gzip) TARGET_KIND=umoci TARGET_RATIO=$TARGET_GZIP_RATIO ;;
	rootfs2image-zstd) TARGET_KIND=umoci TARGET_RATIO=$TARGET_ZSTD_RATIO ;;
	layers-packages) TARGET_KIND=single TARGET_RATIO=$TARGET_LAYERS_RATIO TARGET_BASELINE=rootfs2image-gzip ;;
	layers-packages-zstd) TARGET_KIND=single TARGET_RATIO=$TARGET_LAYERS_RATIO TARGET_BASELINE=rootfs2image-zstd ;;
	layers-previous) TARGET_KIND=download ;;
	esac
	case $TARGET_KIND in
	umoci) TARGET_TEXT="<= ${TARGET_RATIO}x umoci, peak < $((TARGET_PEAK_BYTES / 1000000)) MB" ;;
	single) TARGET_TEXT="<= ${TARGET_RATIO}x $TARGET_BASELINE" ;;
	download) TARGET_TEXT="download < ${TARGET_DOWNLOAD_PERCENT}% of the image" ;;
	esac
}

# Prints the verdict for row I: met, missed or "?" when a figure is missing.
row_verdict() {
	local i=$1 umoci_wall=$2 baseline percent
	row_target "${ROW_NAME[$i]}"
	[[ -n $TARGET_KIND ]] || return 0
	[[ ${ROW_STATUS[$i]} == ok ]] || { echo "?"; return 0; }
	case $TARGET_KIND in
	umoci)
		[[ -n $umoci_wall ]] || { echo "?"; return 0; }
		awk -v w="${ROW_WALL[$i]}" -v u="$umoci_wall" -v r="$TARGET_RATIO" -v k="${ROW_RSS_KIB[$i]}" \
			-v m="$TARGET_PEAK_BYTES" 'BEGIN { print (w <= r * u && k * 1024 < m) ? "met" : "missed" }'
		;;
	single)
		baseline=$(ok_wall "$TARGET_BASELINE")
		[[ -n $baseline ]] || { echo "?"; return 0; }
		awk -v w="${ROW_WALL[$i]}" -v b="$baseline" -v r="$TARGET_RATIO" 'BEGIN { print (w <= r * b) ? "met" : "missed" }'
		;;
	download)
		percent=$(row_extra "$i" download_percent)
		[[ -n $percent ]] || { echo "?"; return 0; }
		awk -v p="$percent" -v t="$TARGET_DOWNLOAD_PERCENT" 'BEGIN { print (p < t) ? "met" : "missed" }'
		;;
	esac
}

# single_layer_ratio I [cpu]: row I's wall (or CPU) time over its single-layer row's, when it has one and both ran.
single_layer_ratio() {
	local baseline i
	row_target "${ROW_NAME[$1]}"
	[[ -n $TARGET_BASELINE && ${ROW_STATUS[$1]} == ok ]] || return 0
	if [[ ${2:-} == cpu ]]; then
		i=$(row_index "$TARGET_BASELINE") && [[ ${ROW_STATUS[$i]} == ok ]] || return 0
		ratio "${ROW_CPU[$1]}" "${ROW_CPU[$i]}"
	else
		baseline=$(ok_wall "$TARGET_BASELINE")
		[[ -z $baseline ]] || ratio "${ROW_WALL[$1]}" "$baseline"
	fi
}

# ok_wall NAME: the row's median wall time, or nothing when it did not run or failed.
ok_wall() {
	local i
	i=$(row_index "$1") || return 0
	[[ ${ROW_STATUS[$i]} == ok ]] && echo "${ROW_WALL[$i]}"
	return 0
}

umoci_wall() { ok_wall umoci; }

# The row a push row is compared with: the same push done by skopeo.
skopeo_counterpart() {
	case $1 in
	push-cold) echo skopeo-cold ;;
	push-warm) echo skopeo-warm ;;
	esac
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }

print_table() {
	local umoci i wall cpu rss ratio size verdict single
	umoci=$(umoci_wall)
	printf '\nInput: %s (%s, %s tar entries); tar %s\n' "$TARBALL" "$(human "$(stat -c %s "$TARBALL")")" \
		"$FILE_COUNT" "$(human "$(stat -c %s "$ROOTFS_TAR")")"
	printf 'Machine: %s cores; load average before the first row %s (other work skews the figures)\n' \
		"$(nproc)" "$LOAD_BEFORE"
	printf 'Runs per row: %s (wall, cpu: median; peak: highest)\n\n' "$RUNS"
	printf '%-20s %9s %8s %10s %9s %12s  %-32s %s\n' row 'wall s' 'cpu s' 'peak MiB' 'x umoci' 'output' target \
		'verdict or note'
	for i in "${!ROW_NAME[@]}"; do
		row_target "${ROW_NAME[$i]}"
		verdict=$(row_verdict "$i" "$umoci")
		single=$(single_layer_ratio "$i")
		[[ -z $single ]] || verdict+=", ${single}x $TARGET_BASELINE (cpu $(single_layer_ratio "$i" cpu)x)"
		[[ -z ${ROW_NOTE[$i]} ]] || verdict+="${verdict:+; }${ROW_NOTE[$i]}"
		if [[ ${ROW_STATUS[$i]} == n/a ]]; then
			printf '%-20s %9s %8s %10s %9s %12s  %-32s %s\n' "${ROW_NAME[$i]}" n/a n/a n/a n/a n/a "$TARGET_TEXT" \
				"${ROW_NOTE[$i]}"
			continue
		fi
		wall=${ROW_WALL[$i]} cpu=${ROW_CPU[$i]}
		rss=$(awk -v k="${ROW_RSS_KIB[$i]}" 'BEGIN { printf "%.1f", k / 1024 }')
		ratio=-
		if [[ -n $umoci ]] && ! is_push_row "${ROW_NAME[$i]}"; then
			ratio=$(ratio "$wall" "$umoci")
		fi
		size=-
		[[ ${ROW_SIZE[$i]} != - ]] && size=$(human "${ROW_SIZE[$i]}")
		if [[ ${ROW_STATUS[$i]} == failed ]]; then
			wall=- cpu=- rss=- ratio=- verdict="failed, see $BENCH_DIR/row.${ROW_NAME[$i]}.log"
		fi
		printf '%-20s %9s %8s %10s %9s %12s  %-32s %s\n' "${ROW_NAME[$i]}" "$wall" "$cpu" "$rss" "$ratio" "$size" \
			"$TARGET_TEXT" "$verdict"
	done
	printf '\ncpu s: user + system of all the row'"'"'s processes; peak MiB: largest single process of the row;\n'
	printf 'output: the oci-archive the row wrote\n'
	printf 'floor: zstd -dc | pigz -p%s | sha256sum, decompress + gzip + hash with stock tools and the system zlib\n' "$(nproc)"
	print_layers_legend
	print_push_table
}

# What the layers rows measure, for those that ran.
print_layers_legend() {
	local ran=" ${ROW_NAME[*]} "
	if [[ $ran == *" layers-packages"* ]]; then
		printf 'layers-packages*: --layers packages (dpkg database read in a first pass); rootfs2image-*: --layers single;\n'
		printf '  "Nx rootfs2image-*": wall (and cpu) over the single-layer row of the same compression\n'
	fi
	if [[ $ran == *" packages-scan "* ]]; then
		printf 'packages-scan: that first pass alone, rootfs2image stopped by strace at its second open of the input\n'
	fi
	if [[ $ran == *" layers-previous "* ]]; then
		printf 'layers-previous: %s with one file of %s changed, --previous %s;\n' "$(basename "$CHANGED_TARBALL")" \
			"$CHANGED_PACKAGE" "$(basename "$PREVIOUS_IMAGE")"
		printf '  download: bytes of the layers the previous image lacks over all layer bytes, as rootfs2image diff says\n'
	fi
}

# The push rows side by side with skopeo's, when any ran.
print_push_table() {
	local kind ours theirs i sent=- any=false blobs bytes
	for i in "${!ROW_NAME[@]}"; do
		is_push_row "${ROW_NAME[$i]}" && [[ ${ROW_STATUS[$i]} != n/a ]] && any=true
	done
	$any || return 0
	read -r blobs bytes < <(layout_manifest | jq -r '"\(.layers | length + 1) \([.config.size, .layers[].size] | add)"')
	printf '\nPush of %s (%s blobs, %s) to docker-registry on %s (plain HTTP)\n\n' "$PUSH_SOURCE" "$blobs" \
		"$(human "$bytes")" "$REGISTRY_ADDR"
	printf '%-6s %16s %10s %9s %18s\n' push 'rootfs2image s' 'skopeo s' 'x skopeo' 'rootfs2image sent'
	for kind in cold warm; do
		ours=$(ok_wall "push-$kind") theirs=$(ok_wall "skopeo-$kind") sent=-
		if i=$(row_index "push-$kind") && [[ ${ROW_SENT[$i]} != - ]]; then
			sent=$(human "${ROW_SENT[$i]}")
		fi
		printf '%-6s %16s %10s %9s %18s\n' "$kind" "${ours:--}" "${theirs:--}" \
			"$(if [[ -n $ours && -n $theirs ]]; then ratio "$ours" "$theirs"; else echo -; fi)" "$sent"
	done
	printf '\ncold: the registry emptied and restarted before every run; warm: the same tool pushed the same image just\n'
	printf 'before, untimed, so every blob is already there. Wall time is the client'"'"'s; the registry runs on the same cores.\n'
}

print_json() {
	local umoci i rows=()
	umoci=$(umoci_wall)
	for i in "${!ROW_NAME[@]}"; do
		row_target "${ROW_NAME[$i]}"
		rows+=("$(jq -cn \
			--arg name "${ROW_NAME[$i]}" --arg status "${ROW_STATUS[$i]}" --arg note "${ROW_NOTE[$i]}" \
			--arg wall "${ROW_WALL[$i]}" --arg walls "${ROW_WALLS[$i]}" \
			--arg cpu "${ROW_CPU[$i]}" --arg cpus "${ROW_CPUS[$i]}" --arg rss "${ROW_RSS_KIB[$i]}" --arg size "${ROW_SIZE[$i]}" \
			--arg umoci "$(is_push_row "${ROW_NAME[$i]}" || echo "$umoci")" \
			--arg skopeo "$(ok_wall "$(skopeo_counterpart "${ROW_NAME[$i]}")")" --arg sent "${ROW_SENT[$i]}" \
			--arg kind "$TARGET_KIND" --arg ratio "$TARGET_RATIO" --arg verdict "$(row_verdict "$i" "$umoci")" \
			--arg baseline "$TARGET_BASELINE" --arg single "$(single_layer_ratio "$i")" \
			--arg single_cpu "$(single_layer_ratio "$i" cpu)" \
			--argjson download "$TARGET_DOWNLOAD_PERCENT" --argjson extra "${ROW_EXTRA[$i]}" \
			--argjson peak "$TARGET_PEAK_BYTES" '
			def num: if . == "-" or . == "" then null else tonumber end;
			{name: $name, status: $status,
			 wall_seconds: ($wall | num), wall_seconds_of_each_run: ($walls | split(" ") | map(select(. != "") | tonumber)),
			 cpu_seconds: ($cpu | num), cpu_seconds_of_each_run: ($cpus | split(" ") | map(select(. != "") | tonumber)),
			 peak_rss_kib: ($rss | num), output_bytes: ($size | num),
			 ratio_to_umoci: (if ($wall | num) != null and ($umoci | num) != null then ($wall | num) / ($umoci | num) else null end),
			 ratio_to_skopeo: (if ($wall | num) != null and ($skopeo | num) != null and ($skopeo | num) > 0
				then ($wall | num) / ($skopeo | num) else null end),
			 ratio_to_single_layer: (if $single == "" then null else {row: $baseline, ratio: ($single | num),
				cpu_ratio: ($single_cpu | num)} end),
			 bytes_sent: ($sent | num),
			 target: (if $kind == "umoci" then {max_ratio_to_umoci: ($ratio | num), max_peak_bytes: $peak, verdict: $verdict}
				elif $kind == "single" then {max_ratio_to_single_layer: ($ratio | num), single_layer_row: $baseline,
					verdict: $verdict}
				elif $kind == "download" then {max_download_percent: $download, verdict: $verdict}
				else null end),
			 note: (if $note == "" then null else $note end)} + $extra')")
	done
	printf '%s\n' "${rows[@]}" | jq -s \
		--arg input "$TARBALL" --argjson input_bytes "$(stat -c %s "$TARBALL")" \
		--argjson tar_bytes "$(stat -c %s "$ROOTFS_TAR")" --argjson files "$FILE_COUNT" \
		--argjson cores "$(nproc)" --argjson load "$LOAD_BEFORE" \
		--argjson runs "$RUNS" --arg registry "$REGISTRY_ADDR" --arg push_source "$PUSH_SOURCE" \
		'{input: {path: $input, bytes: $input_bytes, tar_bytes: $tar_bytes, tar_entries: $files},
		  machine: {cores: $cores, load_average_1m: $load}, runs_per_row: $runs,
		  push: (if $registry == "" then null else {source: $push_source, registry: $registry} end), rows: .}'
}

human() { numfmt --to=iec-i --suffix=B --format='%.1f' "$1"; }

# ---------------------------------------------------------------------------------------------------------------------

main() {
	local json=false selected=() row
	while (($#)); do
		case $1 in
		--json) json=true ;;
		--runs)
			[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive count"
			RUNS=$2
			shift
			;;
		-h | --help) usage; return 0 ;;
		-*) die "unknown option \`$1\`; see --help" ;;
		*)
			[[ " ${ROWS[*]} " == *" $1 "* ]] || die "unknown row \`$1\`; rows: ${ROWS[*]}"
			selected+=("$1")
			;;
		esac
		shift
	done
	((${#selected[@]})) || selected=("${ROWS[@]}")

	need_tool /usr/bin/time time
	need_tool debootstrap debootstrap
	need_tool zstd zstd
	need_tool pigz pigz
	need_tool umoci umoci
	need_tool podman podman
	need_tool jq jq
	ensure_containers_conf

	mkdir -p "$BENCH_DIR"
	build_rootfs
	build_tarball
	if [[ ! -f $BENCH_DIR/file-count ]]; then
		tar -tf "$ROOTFS_TAR" | wc -l >"$BENCH_DIR/file-count"
	fi
	FILE_COUNT=$(<"$BENCH_DIR/file-count")
	local push=false
	for row in "${selected[@]}"; do
		is_push_row "$row" && push=true
	done
	if $push; then
		need_tool skopeo skopeo
		need_tool docker-registry docker-registry
		need_tool curl curl
		need_tool ss iproute2
	fi
	[[ " ${selected[*]} " != *" packages-scan "* ]] || need_tool strace strace
	[[ " ${selected[*]} " != *" layers-previous "* ]] || need_tool python3 python3
	if [[ " ${selected[*]} " == *" rootfs2image-"* || " ${selected[*]} " == *" layers-"* ||
		" ${selected[*]} " == *" packages-scan "* ]] || $push; then
		resolve_rootfs2image
	fi
	if $push; then
		prepare_push
	fi
	local warm=("$TARBALL")
	if [[ " ${selected[*]} " == *" layers-previous "* ]]; then
		prepare_previous
		[[ -n $PREVIOUS_WHY ]] || warm+=("$CHANGED_TARBALL" "$PREVIOUS_IMAGE")
	fi

	say "warming the page cache with ${warm[*]}"
	cat "${warm[@]}" >/dev/null
	LOAD_BEFORE=$(cut -d ' ' -f 1 /proc/loadavg)

	for row in "${selected[@]}"; do
		"row_$row"
	done

	if $json; then print_json; else print_table; fi
	local status
	for status in "${ROW_STATUS[@]}"; do
		[[ $status != failed ]] || return 1
	done
}

main "$@"
