#!/usr/bin/env bash
# Capture the real stdout of Debian's libbpf-tools (0.26, /usr/sbin) as test
# fixtures for the `parsers` crate: parsers/fixtures/<tool>/<variant>.txt.
#
# Each tool runs as root for a few seconds (stopped with SIGINT, as the
# supervisor stops it) while a background loop generates activity: exec of
# /bin/true, file opens and stats, a loopback TCP connection, direct block
# I/O, kill -0, getent hosts (uprobe on getaddrinfo), a tmpfs mount.
#
# Usage: sudo scripts/capture-fixtures.sh [OUT_DIR] [TOOL...]
#   DUR=4 (seconds per tool), TOOLS_DIR=/usr/sbin
# stderr of each tool (libbpf warnings) goes to OUT_DIR/<tool>/<variant>.stderr
# only when KEEP_STDERR=1; fixtures hold stdout only, which is what the parser sees.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/parsers/fixtures}
shift || true
DUR=${DUR:-4}
TOOLS_DIR=${TOOLS_DIR:-/usr/sbin}
WORK=$(mktemp -d /tmp/eunomia-capture.XXXXXX)
MAX_LINES=${MAX_LINES:-400}

if [ "$(id -u)" != 0 ]; then
	echo "capture-fixtures: must run as root (the tools load BPF programs)" >&2
	exit 2
fi
# The syscall tracepoints live in tracefs; libbpf looks them up there.
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi

cleanup() {
	[ -n "${ACT_PID:-}" ] && kill "$ACT_PID" 2>/dev/null
	[ -n "${SRV_PID:-}" ] && kill "$SRV_PID" 2>/dev/null
	mountpoint -q "$WORK/mnt" 2>/dev/null && umount "$WORK/mnt"
	rm -rf "$WORK"
}
trap cleanup EXIT

# A loopback TCP echo server on a fixed port for tcplife/tcpstates.
PORT=${PORT:-47123}
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
"$PY" - "$PORT" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    data = c.recv(4096)
    c.sendall(data * 4)
    c.close()
EOF
SRV_PID=$!
sleep 0.5
mkdir -p "$WORK/mnt"

# One round of activity; every tool sees each kind of event.
activity_round() {
	/bin/true "arg one" two
	/bin/sh -c 'exit 3'
	cat /etc/hostname >/dev/null
	stat /etc/passwd >/dev/null
	ls /nonexistent-eunomia 2>/dev/null
	kill -0 $$
	sleep 60 & kill -TERM $! 2>/dev/null; wait $! 2>/dev/null
	exec 3<>/dev/tcp/127.0.0.1/"$PORT" && { printf 'hello eunomia\n' >&3; cat <&3 >/dev/null; exec 3>&-; }
	dd if=/dev/zero of="$WORK/dd.out" bs=64k count=32 oflag=direct status=none
	dd if="$WORK/dd.out" of=/dev/null bs=4k count=64 iflag=direct status=none
	getent hosts localhost >/dev/null
	"$PY" -c 'import socket; socket.getaddrinfo("localhost", 80)'
	mount -t tmpfs -o size=1m eunomia-fixture "$WORK/mnt" && umount "$WORK/mnt"
	# a little CPU work for runqlat / cpudist / runqslower
	timeout 0.2 sh -c 'while :; do :; done' &
	timeout 0.2 sh -c 'while :; do :; done' &
	timeout 0.2 sh -c 'while :; do :; done'
	wait
}

activity() {
	local end=$((SECONDS + DUR + 2))
	while [ $SECONDS -lt $end ]; do
		activity_round
		sleep 0.2
	done
}

# trim_fixture FILE: at most MAX_LINES lines; when cut, cut after the last
# blank line so no histogram block or stack is left half-printed.
trim_fixture() {
	local n
	n=$(wc -l <"$1")
	if [ "$n" -le "$MAX_LINES" ]; then
		cat "$1"
		return
	fi
	head -n "$MAX_LINES" "$1" | awk '{ buf[NR] = $0; if ($0 == "") last = NR }
		END { if (last < 2) last = NR; for (i = 1; i <= last; i++) print buf[i] }'
}

# capture TOOL VARIANT ARGS... : run TOOL with ARGS under activity.
capture() {
	local tool=$1 variant=$2
	shift 2
	local dir="$OUT/$tool"
	mkdir -p "$dir"
	local err=/dev/null
	[ "${KEEP_STDERR:-0}" = 1 ] && err="$dir/$variant.stderr"
	timeout -s INT "$DUR" "$TOOLS_DIR/$tool" "$@" >"$WORK/$tool.$variant" 2>"$err"
	# keep fixtures small; cut on a block boundary (blank line) when possible
	trim_fixture "$WORK/$tool.$variant" >"$dir/$variant.txt"
	printf '%s %s\n' "$tool" "$*" >"$dir/$variant.args"
	echo "captured $tool/$variant ($(wc -l <"$dir/$variant.txt") lines): $tool $*"
}

# capture_all TOOL: every variant of TOOL, concurrently, under one activity loop.
capture_tool() {
	local tool=$1
	activity &
	ACT_PID=$!
	sleep 0.5
	CAPTURES=()
	case $tool in
	biolatency)
		capture biolatency canonical -D -T 1 & CAPTURES+=($!)
		capture biolatency plain & CAPTURES+=($!)
		capture biolatency flags -F -m 1 & CAPTURES+=($!)
		;;
	biopattern)
		capture biopattern canonical -T 1 & CAPTURES+=($!)
		capture biopattern plain & CAPTURES+=($!)
		;;
	bitesize)
		capture bitesize canonical -T 1 & CAPTURES+=($!)
		capture bitesize plain & CAPTURES+=($!)
		;;
	cpudist)
		capture cpudist canonical -T 1 & CAPTURES+=($!)
		capture cpudist pids -P -m 1 & CAPTURES+=($!)
		capture cpudist offcpu -O & CAPTURES+=($!)
		;;
	drsnoop)
		capture drsnoop canonical -e & CAPTURES+=($!)
		capture drsnoop plain & CAPTURES+=($!)
		;;
	execsnoop)
		capture execsnoop canonical -T -U -x & CAPTURES+=($!)
		capture execsnoop relative -t -U -q & CAPTURES+=($!)
		capture execsnoop plain & CAPTURES+=($!)
		;;
	exitsnoop)
		capture exitsnoop canonical -t & CAPTURES+=($!)
		capture exitsnoop plain & CAPTURES+=($!)
		capture exitsnoop threaded -T & CAPTURES+=($!)
		;;
	gethostlatency)
		capture gethostlatency canonical & CAPTURES+=($!)
		;;
	hardirqs)
		capture hardirqs canonical -T 1 & CAPTURES+=($!)
		capture hardirqs dist -d -T 1 & CAPTURES+=($!)
		capture hardirqs count -C & CAPTURES+=($!)
		capture hardirqs plain-dist -d -N & CAPTURES+=($!)
		;;
	killsnoop)
		capture killsnoop canonical & CAPTURES+=($!)
		capture killsnoop names -n -x & CAPTURES+=($!)
		;;
	mountsnoop)
		capture mountsnoop canonical -t & CAPTURES+=($!)
		capture mountsnoop plain & CAPTURES+=($!)
		;;
	offcputime)
		capture offcputime canonical -m 5000 & CAPTURES+=($!)
		capture offcputime user -u -m 20000 & CAPTURES+=($!)
		;;
	opensnoop)
		capture opensnoop canonical -T -U -e & CAPTURES+=($!)
		capture opensnoop plain & CAPTURES+=($!)
		capture opensnoop failed -x & CAPTURES+=($!)
		;;
	runqlat)
		capture runqlat canonical -T 1 & CAPTURES+=($!)
		capture runqlat pids -P -m 1 & CAPTURES+=($!)
		capture runqlat plain & CAPTURES+=($!)
		;;
	runqslower)
		capture runqslower canonical -P 100 & CAPTURES+=($!)
		capture runqslower plain 100 & CAPTURES+=($!)
		;;
	sigsnoop)
		capture sigsnoop canonical & CAPTURES+=($!)
		capture sigsnoop names -n & CAPTURES+=($!)
		;;
	softirqs)
		capture softirqs canonical -T 1 & CAPTURES+=($!)
		capture softirqs dist -d -T 1 & CAPTURES+=($!)
		capture softirqs plain-ns -N & CAPTURES+=($!)
		;;
	statsnoop)
		capture statsnoop canonical -t & CAPTURES+=($!)
		capture statsnoop plain & CAPTURES+=($!)
		;;
	syscount)
		capture syscount canonical -i 1 & CAPTURES+=($!)
		capture syscount latency -L -i 1 & CAPTURES+=($!)
		capture syscount process -P -L -m & CAPTURES+=($!)
		;;
	tcplife)
		capture tcplife canonical -T -w & CAPTURES+=($!)
		capture tcplife plain & CAPTURES+=($!)
		;;
	tcpstates)
		capture tcpstates canonical -T -w & CAPTURES+=($!)
		capture tcpstates plain & CAPTURES+=($!)
		;;
	wakeuptime)
		capture wakeuptime canonical -m 5000 & CAPTURES+=($!)
		;;
	*)
		echo "capture-fixtures: unknown tool $tool" >&2
		;;
	esac
	wait "${CAPTURES[@]}"
	kill "$ACT_PID" 2>/dev/null
	wait "$ACT_PID" 2>/dev/null
	ACT_PID=
}

ALL="biolatency biopattern bitesize cpudist drsnoop execsnoop exitsnoop gethostlatency
hardirqs killsnoop mountsnoop offcputime opensnoop runqlat runqslower sigsnoop softirqs
statsnoop syscount tcplife tcpstates wakeuptime"
for tool in ${*:-$ALL}; do
	capture_tool "$tool"
done
