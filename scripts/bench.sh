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
#
# The rootfs (debootstrap of bookworm, ~800 MB installed) is built once and tarred the way Yocto's IMAGE_CMD:tar does,
# then compressed like Yocto's default IMAGE_FSTYPES (tar.zst). Every step is skipped when its output exists.
#
# Each row runs under `/usr/bin/time` for the peak RSS of the largest single process in the row (for a pipeline that is
# the hungriest stage, not the sum); wall seconds come from bash's clock around it, to the millisecond, because a warm
# push takes a few hundredths of a second. The page cache is never dropped; the input is read once before the first
# row so that every row starts warm. Outputs are deleted and flushed to disk between rows.
#
# The push rows push one image of the same rootfs (an OCI layout with a gzip layer, written once by rootfs2image and
# kept in the cache) to a docker-registry the script starts on a free loopback port and stops at exit, once with
# `rootfs2image push` and once with `skopeo copy`: cold (the registry's storage wiped and the registry restarted before
# every run, untimed) and warm (the same image pushed again, untimed, right before the timed push, so every blob is
# already there). Their wall time includes nothing but the client's run; the registry hashes and stores in parallel on
# the same cores. They are compared with skopeo instead of umoci.
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

# Targets from the issue: wall time relative to the umoci pipeline, and peak memory (MB = 10^6 bytes).
TARGET_GZIP_RATIO=0.5
TARGET_ZSTD_RATIO=0.2
TARGET_PEAK_BYTES=100000000

RUNS=1
ROWS=(rootfs2image-gzip rootfs2image-zstd umoci podman-import floor push-cold push-warm skopeo-cold skopeo-warm)

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

ROW_NAME=() ROW_STATUS=() ROW_WALL=() ROW_RSS_KIB=() ROW_SIZE=() ROW_NOTE=() ROW_WALLS=() ROW_SENT=()

record() { # NAME STATUS WALL RSS_KIB SIZE NOTE [WALL_OF_EVERY_RUN...]
	ROW_NAME+=("$1") ROW_STATUS+=("$2") ROW_WALL+=("$3") ROW_RSS_KIB+=("$4") ROW_SIZE+=("$5") ROW_NOTE+=("$6")
	shift 6
	ROW_WALLS+=("$*") ROW_SENT+=(-)
}

# annotate_last_row NOTE [BYTES_SENT]: what the row just recorded did, for the table and the JSON.
annotate_last_row() {
	local i=$((${#ROW_NAME[@]} - 1))
	ROW_NOTE[i]=$1
	ROW_SENT[i]=${2:--}
}

reset_out_dir() {
	rm -rf "$OUT_DIR"
	mkdir -p "$OUT_DIR"
}

# bench_row NAME OUTPUT [--setup FUNCTION] [--cleanup FUNCTION] -- COMMAND...
#   Run COMMAND $RUNS times, each in an empty $OUT_DIR followed by the cleanup FUNCTION, and record the median wall
#   time, the highest peak RSS and the size of OUTPUT ("-" for none). The setup FUNCTION runs, untimed, right before
#   each run; the cleanup FUNCTION before the setup and after each run.
bench_row() {
	local name=$1 output=$2 setup=: cleanup=:
	shift 2
	while [[ ${1:-} == --setup || ${1:-} == --cleanup ]]; do
		case $1 in
		--setup) setup=$2 ;;
		--cleanup) cleanup=$2 ;;
		esac
		shift 2
	done
	[[ ${1:-} == -- ]] || die "bench_row $name: expected -- before the command"
	shift
	local timing=$BENCH_DIR/time.$name log=$BENCH_DIR/row.$name.log status=ok size=- run start end wall rss walls=() peak=0
	for ((run = 1; run <= RUNS; run++)); do
		reset_out_dir
		"$cleanup"
		"$setup"
		sync
		say "row $name, run $run/$RUNS: $*"
		start=${EPOCHREALTIME/,/.}
		if ! /usr/bin/time -f '%M' -o "$timing" "$@" >"$log" 2>&1; then
			status=failed
			say "row $name failed; its output is in $log"
		fi
		end=${EPOCHREALTIME/,/.}
		rss=$(tail -n 1 "$timing")
		walls+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')")
		((rss > peak)) && peak=$rss
		if [[ $status == ok && $output != - ]]; then
			if [[ -f $output ]]; then
				size=$(stat -c %s "$output")
			else
				status=failed
				say "row $name exited 0 but wrote no \`$output\`"
			fi
		fi
		reset_out_dir
		"$cleanup"
		sync
		[[ $status == ok ]] || break
	done
	wall=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{ w[NR] = $1 } END { print w[int((NR + 1) / 2)] }')
	record "$name" "$status" "$wall" "$peak" "$size" "" "${walls[@]}"
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
}

rootfs2image_row() { # NAME COMPRESSION
	if [[ -z $ROOTFS2IMAGE_BIN ]]; then
		skip_row "$1" "$ROOTFS2IMAGE_WHY"
		return 0
	fi
	bench_row "$1" "$OUT_DIR/image.tar" -- \
		"$ROOTFS2IMAGE_BIN" "$TARBALL" --arch "$ARCH" --compression "$2" -o "oci-archive:$OUT_DIR/image.tar" --quiet
}

row_rootfs2image-gzip() { rootfs2image_row rootfs2image-gzip gzip; }
row_rootfs2image-zstd() { rootfs2image_row rootfs2image-zstd zstd; }

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
	say "writing the image to push (untimed, once): $ROOTFS2IMAGE_BIN $TARBALL --arch $ARCH --compression gzip -q -o oci:$PUSH_LAYOUT:latest"
	"$ROOTFS2IMAGE_BIN" "$TARBALL" --arch "$ARCH" --compression gzip -q -o "oci:$PUSH_LAYOUT.partial:latest" >&2 ||
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

# The issue's targets for a row, or nothing when it has none. Sets TARGET_RATIO and TARGET_TEXT.
row_target() {
	TARGET_RATIO='' TARGET_TEXT=''
	case $1 in
	rootfs2image-gzip) TARGET_RATIO=$TARGET_GZIP_RATIO ;;
	rootfs2image-zstd) TARGET_RATIO=$TARGET_ZSTD_RATIO ;;
	*) return 0 ;;
	esac
	TARGET_TEXT="<= ${TARGET_RATIO}x umoci, peak < $((TARGET_PEAK_BYTES / 1000000)) MB"
}

# Prints the verdict for row I: met, missed or "?" when a figure is missing.
row_verdict() {
	local i=$1 umoci_wall=$2
	row_target "${ROW_NAME[$i]}"
	[[ -n $TARGET_RATIO ]] || return 0
	if [[ ${ROW_STATUS[$i]} != ok || -z $umoci_wall ]]; then
		echo "?"
		return 0
	fi
	awk -v w="${ROW_WALL[$i]}" -v u="$umoci_wall" -v r="$TARGET_RATIO" -v k="${ROW_RSS_KIB[$i]}" -v m="$TARGET_PEAK_BYTES" \
		'BEGIN { print (w <= r * u && k * 1024 < m) ? "met" : "missed" }'
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
	local umoci i wall rss ratio size verdict
	umoci=$(umoci_wall)
	printf '\nInput: %s (%s, %s tar entries); tar %s\n' "$TARBALL" "$(human "$(stat -c %s "$TARBALL")")" \
		"$FILE_COUNT" "$(human "$(stat -c %s "$ROOTFS_TAR")")"
	printf 'Machine: %s cores; load average before the first row %s (other work skews the figures)\n' \
		"$(nproc)" "$LOAD_BEFORE"
	printf 'Runs per row: %s (wall: median; peak: highest)\n\n' "$RUNS"
	printf '%-20s %9s %10s %9s %12s  %-32s %s\n' row 'wall s' 'peak MiB' 'x umoci' 'output' target 'verdict or note'
	for i in "${!ROW_NAME[@]}"; do
		row_target "${ROW_NAME[$i]}"
		verdict=$(row_verdict "$i" "$umoci")
		if [[ ${ROW_STATUS[$i]} == n/a ]]; then
			printf '%-20s %9s %10s %9s %12s  %-32s %s\n' "${ROW_NAME[$i]}" n/a n/a n/a n/a "$TARGET_TEXT" "${ROW_NOTE[$i]}"
			continue
		fi
		wall=${ROW_WALL[$i]}
		rss=$(awk -v k="${ROW_RSS_KIB[$i]}" 'BEGIN { printf "%.1f", k / 1024 }')
		ratio=-
		if [[ -n $umoci ]] && ! is_push_row "${ROW_NAME[$i]}"; then
			ratio=$(ratio "$wall" "$umoci")
		fi
		size=-
		[[ ${ROW_SIZE[$i]} != - ]] && size=$(human "${ROW_SIZE[$i]}")
		if [[ ${ROW_STATUS[$i]} == failed ]]; then
			wall=- rss=- ratio=- verdict="failed, see $BENCH_DIR/row.${ROW_NAME[$i]}.log"
		fi
		printf '%-20s %9s %10s %9s %12s  %-32s %s\n' "${ROW_NAME[$i]}" "$wall" "$rss" "$ratio" "$size" "$TARGET_TEXT" \
			"${verdict:-${ROW_NOTE[$i]}}"
	done
	printf '\npeak MiB: largest single process of the row; output: the oci-archive the row wrote\n'
	printf 'floor: zstd -dc | pigz -p%s | sha256sum, decompress + gzip + hash with stock tools and the system zlib\n' "$(nproc)"
	print_push_table
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
			--arg wall "${ROW_WALL[$i]}" --arg walls "${ROW_WALLS[$i]}" --arg rss "${ROW_RSS_KIB[$i]}" --arg size "${ROW_SIZE[$i]}" \
			--arg umoci "$(is_push_row "${ROW_NAME[$i]}" || echo "$umoci")" \
			--arg skopeo "$(ok_wall "$(skopeo_counterpart "${ROW_NAME[$i]}")")" --arg sent "${ROW_SENT[$i]}" \
			--arg ratio "$TARGET_RATIO" --arg verdict "$(row_verdict "$i" "$umoci")" \
			--argjson peak "$TARGET_PEAK_BYTES" '
			def num: if . == "-" or . == "" then null else tonumber end;
			{name: $name, status: $status,
			 wall_seconds: ($wall | num), wall_seconds_of_each_run: ($walls | split(" ") | map(select(. != "") | tonumber)),
			 peak_rss_kib: ($rss | num), output_bytes: ($size | num),
			 ratio_to_umoci: (if ($wall | num) != null and ($umoci | num) != null then ($wall | num) / ($umoci | num) else null end),
			 ratio_to_skopeo: (if ($wall | num) != null and ($skopeo | num) != null and ($skopeo | num) > 0
				then ($wall | num) / ($skopeo | num) else null end),
			 bytes_sent: ($sent | num),
			 target: (if $ratio == "" then null else {max_ratio_to_umoci: ($ratio | num), max_peak_bytes: $peak, verdict: $verdict} end),
			 note: (if $note == "" then null else $note end)}')")
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
	if [[ " ${selected[*]} " == *" rootfs2image-"* ]] || $push; then
		resolve_rootfs2image
	fi
	if $push; then
		prepare_push
	fi

	say "warming the page cache with $TARBALL"
	cat "$TARBALL" >/dev/null
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
