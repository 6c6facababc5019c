#!/usr/bin/env bash
# Overhead of eunomia's hot path, measured in one run, alternating the
# configurations, several repetitions, each figure computed within its
# repetition against its own baseline, median over repetitions (run as root):
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
#   tcp: connections per second on loopback (connect, 100 bytes each way,
#     close; client and server pinned to one CPU) without and with eunomia's
#     TCP probe, by tests' bench-tcp: it loads the probe once and toggles it
#     in alternating 250 ms windows, one drop figure per neighbouring pair,
#     median over TCP_PAIRS pairs. The same with an empty program on the
#     same hook gives the hook's floor. Target: under 5% fewer connections
#     per second.
#
# Prints a table and writes JSON to target/bench-overhead.json.
# Environment: REPS (default 5), CALLS (default 10000000), TCP_PAIRS (default
# 120), CPU (pin the workload to this CPU, default 1), OUT (JSON path),
# TCP=0 to skip the TCP part.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REPS=${REPS:-5}
CALLS=${CALLS:-10000000}
TCP_PAIRS=${TCP_PAIRS:-120}
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

# Each rep measures every mode once, in an order that alternates between
# reps (forward, then backward), and each figure is computed within its rep
# (added ns against that rep's `none`); the reported figure is the median
# over reps. On a shared VM whose speed drifts by tens of percent over a
# minute, comparing neighbours cancels the drift that comparing medians of
# separate runs would not.
mkfifo "$WORK/fifo"
# MODES can add exit-floor (an empty program on sys_exit, where eunomia's
# probe runs) to the comparison.
read -r -a MODES <<<"${MODES:-none floor eunomia syscount}"
TCP=${TCP:-1}
reverse() { local i; for ((i = $# ; i > 0; i--)); do printf '%s ' "${!i}"; done; }
for rep in $(seq "$REPS"); do
    order=("${MODES[@]}")
    [ $((rep % 2)) = 0 ] && read -r -a order <<<"$(reverse "${MODES[@]}")"
    declare -A NS=()
    for mode in "${order[@]}"; do
        start "$mode"
        NS[$mode]=$(pin "$BIN/bench-getppid" "$CALLS")
        stop
        echo "${NS[$mode]}" >>"$WORK/sys.$mode"
        printf '  rep %d %-9s %8.2f ns/call\n' "$rep" "$mode" "${NS[$mode]}" >&2
    done
    for mode in "${MODES[@]}"; do
        awk -v a="${NS[$mode]}" -v b="${NS[none]}" 'BEGIN {printf "%.2f\n", a-b}' >>"$WORK/add.$mode"
    done
done

declare -A MED ADD
for mode in "${MODES[@]}"; do
    MED[$mode]=$(median <"$WORK/sys.$mode")
    ADD[$mode]=$(median <"$WORK/add.$mode")
done
tcp_floor=null tcp_probe=null
if [ "$TCP" = 1 ]; then
    echo "  tcp: empty program on the hook, $TCP_PAIRS pairs" >&2
    tcp_floor=$("$BIN/bench-tcp" --floor --pairs "$TCP_PAIRS" --cpu "$CPU")
    echo "  tcp: eunomia's TCP probe, $TCP_PAIRS pairs" >&2
    tcp_probe=$("$BIN/bench-tcp" --pairs "$TCP_PAIRS" --cpu "$CPU")
fi
# tcp_fig JSON SERIES FIELD: one figure of bench-tcp's output
tcp_fig() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$@"; }
ratio() { awk -v c="${ADD[eunomia]:-0}" -v b="${ADD[$1]:-0}" 'BEGIN {if (b>0) printf "%.2f", c/b; else printf "null"}'; }
ratio_floor=$(ratio floor)
ratio_syscount=$(ratio syscount)
echo
echo "getppid x $CALLS, $REPS reps (order alternating), workload pinned to CPU $CPU"
printf '%-10s %12s %28s\n' mode "ns/call" "added ns/call (median of reps)"
for mode in "${MODES[@]}"; do
    printf '%-10s %12s %28s\n' "$mode" "${MED[$mode]}" "${ADD[$mode]}"
done
echo "eunomia / floor    = $ratio_floor (target <= 1.5)"
echo "eunomia / syscount = $ratio_syscount (target <= 0.5)"
if [ "$TCP" = 1 ]; then
    echo
    echo "tcp loopback connections/s, $TCP_PAIRS pairs of 250 ms windows, probe toggled (median of pair drops)"
    printf '%-22s %10s %10s %14s %26s\n' "" off on "drop %" "drop % per CPU-second"
    for row in "hook floor (empty):tcp_floor" "eunomia TCP probe:tcp_probe"; do
        var=${row#*:}
        j=${!var}
        printf '%-22s %10s %10s %14s %26s\n' "${row%:*}" "$(tcp_fig "$j" per_wall_s off)" \
            "$(tcp_fig "$j" per_wall_s on)" "$(tcp_fig "$j" per_wall_s drop_percent)" \
            "$(tcp_fig "$j" per_cpu_s drop_percent)"
    done
    echo "fewer connections/s with the TCP probe: $(tcp_fig "$tcp_probe" per_wall_s drop_percent)% (target < 5%)"
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
  "tcp_floor": $tcp_floor,
  "tcp_probe": $tcp_probe,
  "tcp_drop_percent": $( [ "$TCP" = 1 ] && tcp_fig "$tcp_probe" per_wall_s drop_percent || echo null)
}
EOF
echo "wrote $OUT"
