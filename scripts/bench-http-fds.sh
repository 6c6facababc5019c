#!/usr/bin/env bash
# What the HTTP capture costs a read or write that is no HTTP (files,
# pipes, /dev/null: the common case on a host), in one run, alternating
# `hotpath` ([http] enabled = false) and `http` (enabled = true), REPS
# times: `dd bs=1` makes 2 syscalls per byte on non-socket fds, and the
# run time of the agent's sys_exit program (bpf_stats) per syscall is
# reported for each mode, with the difference per repetition.
#
# Environment: REPS (default 3), COUNT (bytes, default 1000000), PROFILE
# (debug or release, default debug).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
COUNT=${COUNT:-1000000}
PROFILE=${PROFILE:-debug}
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
[ "$(id -u)" = 0 ] || { echo "bench-http-fds: needs root" >&2; exit 1; }
WORK=$(mktemp -d)
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
sysctl -qw kernel.bpf_stats_enabled=1
for mode in hotpath http; do
    cat >"$WORK/$mode.toml" <<EOC
[agent]
control_socket = "$WORK/$mode.sock"
[http]
enabled = $([ $mode = http ] && echo true || echo false)
[tools]
enabled = []
[rules]
enabled = false
[logs]
enabled = false
EOC
done
prog_stats() {
    for fd in /proc/"$1"/fdinfo/*; do
        if grep -q '^prog_type' "$fd" 2>/dev/null; then
            id=$(awk '/^prog_id/{print $2}' "$fd")
            if bpftool prog show id "$id" 2>/dev/null | grep -q count_sys_exit; then
                awk '/^run_time_ns/{t=$2} /^run_cnt/{c=$2} END{print t+0, c+0}' "$fd"
                return
            fi
        fi
    done
    echo "0 0"
}
uptime
for rep in $(seq "$REPS"); do
    for mode in hotpath http; do
        "$BIN/eunomia" run --config "$WORK/$mode.toml" >"$WORK/agent.log" 2>&1 &
        agent=$!
        for _ in $(seq 150); do grep -q "hot path attached" "$WORK/agent.log" && break; sleep 0.2; done
        read -r t0 c0 <<<"$(prog_stats $agent)"
        dd if=/dev/zero of=/dev/null bs=1 count="$COUNT" 2>/dev/null
        read -r t1 c1 <<<"$(prog_stats $agent)"
        kill -TERM $agent; wait $agent || true
        ns=$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN{printf "%.1f", t / (c > 0 ? c : 1)}')
        echo "$rep $mode $ns" >>"$WORK/res"
        echo "  rep $rep $mode: $ns ns per sys_exit run ($((c1 - c0)) runs)"
    done
done
awk '{v[$1" "$2]=$3} END{for (r=1; r<='"$REPS"'; r++) printf "  rep %d: http adds %.1f ns per syscall\n", r, v[r" http"]-v[r" hotpath"]}' "$WORK/res"
uptime
