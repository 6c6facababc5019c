#!/usr/bin/env bash
# Overhead of eunomia's hot path, measured in one run, alternating the
# configurations, several repetitions, median (run as root):
#
#   syscalls: a tight loop of N getppid() calls (default 10 million), timed by
#     the loop itself (ns per call), with
#       none      nothing attached
#       floor     an empty raw tracepoint program on sys_enter (the
#                 unavoidable cost of any syscall probe; bench-floor)
#       eunomia   `eunomia run` with only its syscall probe
#       syscount  /usr/sbin/syscount (libbpf-tools)
#     and reports the added ns per syscall of each against `none`.
#     Targets: eunomia <= 1.5 x floor, and <= 0.5 x syscount.
#   tcp: connections per second on loopback (tests' tcp-churn: connect,
#     100 bytes each way, close) without and with eunomia's TCP probe.
#     Target: under 5% fewer connections per second.
#
# Prints a table and writes JSON to target/bench-overhead.json.
# Environment: REPS (default 5), CALLS (default 10000000), TCP_SECS (default 3),
# CPU (pin the workload to this CPU, default 1), OUT (JSON path).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REPS=${REPS:-5}
CALLS=${CALLS:-10000000}
TCP_SECS=${TCP_SECS:-3}
CPU=${CPU:-1}
OUT=${OUT:-target/bench-overhead.json}
TARGET=${CARGO_TARGET_DIR:-target}

if [ "$(id -u)" != 0 ]; then
    echo "bench-overhead: needs root (loads BPF programs)" >&2
    exit 1
fi
cargo build --release -q -p eunomia -p eunomia-tests --bins
BIN=$TARGET/release
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat >"$WORK/syscalls.toml" <<'EOF'
[hotpath]
syscalls = true
tcp = false
pids = false
[tools]
enabled = []
[rules]
enabled = false
[enrich]
container_stats = false
EOF
cat >"$WORK/tcp.toml" <<'EOF'
[hotpath]
syscalls = false
tcp = true
pids = false
[tools]
enabled = []
[rules]
enabled = false
[enrich]
container_stats = false
EOF

pin() {
    if command -v taskset >/dev/null; then taskset -c "$CPU" "$@"; else "$@"; fi
}

# wait_for FILE TEXT: until FILE contains TEXT (at most 30 s)
wait_for() {
    for _ in $(seq 300); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench-overhead: timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    exit 1
}

# start MODE: attaches MODE's programs in the background; sets PID
start() {
    PID=
    case $1 in
    none) ;;
    floor | exit-floor)
        # stdin from a fifo kept open, so bench-floor waits until it closes
        prog=bench_floor
        [ "$1" = exit-floor ] && prog=bench_exit_floor
        "$BIN/bench-floor" "$prog" <"$WORK/fifo" >"$WORK/floor.log" 2>&1 &
        PID=$!
        exec 3>"$WORK/fifo"
        wait_for "$WORK/floor.log" attached
        ;;
    eunomia)
        "$BIN/eunomia" run --config "$WORK/syscalls.toml" --interval 10s >/dev/null 2>"$WORK/agent.log" &
        PID=$!
        wait_for "$WORK/agent.log" "hot path attached"
        ;;
    eunomia-tcp)
        "$BIN/eunomia" run --config "$WORK/tcp.toml" --interval 10s >/dev/null 2>"$WORK/agent.log" &
        PID=$!
        wait_for "$WORK/agent.log" "hot path attached"
        ;;
    syscount)
        # line-buffered, so its "Tracing syscalls" banner shows when attached
        stdbuf -oL /usr/sbin/syscount -i 3600 >"$WORK/syscount.log" 2>&1 &
        PID=$!
        wait_for "$WORK/syscount.log" "Tracing syscalls"
        ;;
    esac
    sleep 0.3
}

stop() {
    # closing the fifo ends bench-floor (background jobs ignore SIGINT)
    exec 3>&-
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    PID=
}

median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

mkfifo "$WORK/fifo"
# MODES can add exit-floor (an empty program on sys_exit, where eunomia's
# probe runs) to the comparison.
read -r -a MODES <<<"${MODES:-none floor eunomia syscount}"
TCP=${TCP:-1}
for rep in $(seq "$REPS"); do
    for mode in "${MODES[@]}"; do
        start "$mode"
        ns=$(pin "$BIN/bench-getppid" "$CALLS")
        stop
        echo "$ns" >>"$WORK/sys.$mode"
        printf '  rep %d %-9s %8.2f ns/call\n' "$rep" "$mode" "$ns" >&2
    done
    [ "$TCP" = 1 ] || continue
    for mode in none eunomia-tcp; do
        start "$mode"
        cps=$(pin "$BIN/tcp-churn" --secs "$TCP_SECS" --bytes 100 | sed 's/.*"per_sec":\([0-9.]*\).*/\1/')
        stop
        echo "$cps" >>"$WORK/tcp.$mode"
        printf '  rep %d %-11s %8.0f conn/s\n' "$rep" "$mode" "$cps" >&2
    done
done

base=$(median <"$WORK/sys.none")
declare -A MED ADD
for mode in "${MODES[@]}"; do
    MED[$mode]=$(median <"$WORK/sys.$mode")
    ADD[$mode]=$(awk -v a="${MED[$mode]}" -v b="$base" 'BEGIN {printf "%.2f", a-b}')
done
tcp_none=null tcp_on=null tcp_drop=null
if [ "$TCP" = 1 ]; then
    tcp_none=$(median <"$WORK/tcp.none")
    tcp_on=$(median <"$WORK/tcp.eunomia-tcp")
    tcp_drop=$(awk -v a="$tcp_on" -v b="$tcp_none" 'BEGIN {printf "%.2f", (b-a)*100/b}')
fi
ratio() { awk -v c="${ADD[eunomia]:-0}" -v b="${ADD[$1]:-0}" 'BEGIN {if (b>0) printf "%.2f", c/b; else printf "null"}'; }
ratio_floor=$(ratio floor)
ratio_syscount=$(ratio syscount)
echo
echo "getppid x $CALLS, median of $REPS, workload pinned to CPU $CPU"
printf '%-10s %12s %14s\n' mode "ns/call" "added ns/call"
for mode in "${MODES[@]}"; do
    printf '%-10s %12s %14s\n' "$mode" "${MED[$mode]}" "${ADD[$mode]}"
done
echo "eunomia / floor    = $ratio_floor (target <= 1.5)"
echo "eunomia / syscount = $ratio_syscount (target <= 0.5)"
if [ "$TCP" = 1 ]; then
    echo
    echo "tcp loopback connections/s, median of $REPS x ${TCP_SECS}s"
    printf '%-10s %12s\n' none "$tcp_none" eunomia "$tcp_on"
    echo "fewer connections/s with the TCP probe: ${tcp_drop}% (target < 5%)"
fi

json_modes() {
    local sep=
    for mode in "${MODES[@]}"; do
        printf '%s"%s": %s' "$sep" "$mode" "$(eval echo "\${$1[$mode]}")"
        sep=", "
    done
}
cat >"$OUT" <<EOF
{
  "calls": $CALLS,
  "reps": $REPS,
  "syscall_ns_per_call": {$(json_modes MED)},
  "syscall_added_ns": {$(json_modes ADD)},
  "eunomia_over_floor": $ratio_floor,
  "eunomia_over_syscount": $ratio_syscount,
  "tcp_connections_per_s": {"none": $tcp_none, "eunomia": $tcp_on},
  "tcp_drop_percent": $tcp_drop
}
EOF
echo "wrote $OUT"
