#!/usr/bin/env bash
# Soak: the default agent (`eunomia run` with the built-in configuration: hot
# path, the five default tools, rules, enrichment) for DURATION under a
# steady mixed load — execs, short TCP connections on loopback, file opens,
# signals — with its resident memory (RSS of the agent and of its tools) and
# CPU time sampled every INTERVAL (run as root).
#
# Target: no RSS growth after the first 5 minutes (WARMUP). Prints one line
# per sample and a summary (RSS at the end of the warm-up and at the end,
# growth per minute after the warm-up, agent CPU %), writes the samples as
# CSV to OUT, and exits 1 when the agent died or its anonymous memory grew
# more than MAX_GROWTH_KB per minute after the warm-up.
#
# Growth is the least-squares slope over every sample after the warm-up, not
# the difference of two samples, and it is judged on the agent's anonymous
# memory (RssAnon: heap, stacks, buffers), which is where a leak shows. The
# file-backed part of RSS (the binary's own pages, faulted in the first time
# a code path runs, e.g. at the first `eunomia status`) is bounded by the
# binary's size and reclaimable; it is printed beside, not judged.
#
#   bash scripts/soak.sh                       # 30 minutes, the release binary
#   DURATION=90 WARMUP=30 INTERVAL=5 bash scripts/soak.sh   # a quick check
#
# Environment: DURATION (seconds, default 1800), WARMUP (seconds, default
# 300), INTERVAL (seconds, default 10), RATE (load rounds per second, default
# 20), BIN (default target/release/eunomia, built when missing), OUT (default
# target/soak.csv), MAX_GROWTH_KB (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DURATION=${DURATION:-1800}
WARMUP=${WARMUP:-300}
INTERVAL=${INTERVAL:-10}
RATE=${RATE:-20}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/release/eunomia}
OUT=${OUT:-$TARGET/soak.csv}
MAX_GROWTH_KB=${MAX_GROWTH_KB:-50}

if [ "$(id -u)" != 0 ]; then
    echo "soak: needs root (loads BPF programs, runs the libbpf-tools)" >&2
    exit 1
fi
if [ ! -x "$BIN" ]; then
    cargo build --release --bin eunomia
fi

WORK=$(mktemp -d /tmp/eunomia-soak.XXXXXX)
AGENT=
LOAD=
LISTENER=
cleanup() {
    for p in $LOAD $LISTENER $AGENT; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The agent: built-in defaults (an empty file), its own socket, its log kept.
: >"$WORK/eunomia.toml"
EUNOMIA_SOCKET="$WORK/eunomia.sock" "$BIN" run --config "$WORK/eunomia.toml" >/dev/null 2>"$WORK/agent.log" &
AGENT=$!
for _ in $(seq 100); do
    grep -q "control API listening" "$WORK/agent.log" 2>/dev/null && break
    kill -0 "$AGENT" 2>/dev/null || { cat "$WORK/agent.log" >&2; exit 1; }
    sleep 0.1
done

# A loopback listener that accepts and closes (python3 is on every Debian).
python3 - "$WORK/port" <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    c.close()
EOF
LISTENER=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")

# The steady mixed load: per round an exec, a TCP connection, file opens and
# a signal to a short-lived child.
(
    pause=$(awk "BEGIN { print 1 / $RATE }")
    while :; do
        /bin/true
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" && exec 3>&- 3<&- || true
        cat /etc/hostname /etc/os-release >/dev/null
        sleep 5 & kill "$!" 2>/dev/null || true
        sleep "$pause"
    done
) &
LOAD=$!

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
anon_of() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
tools_rss() {
    local sum=0 kid
    for kid in $(cat /proc/"$AGENT"/task/*/children 2>/dev/null); do
        sum=$((sum + $(rss_of "$kid" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}

echo "t_s,agent_rss_kb,agent_anon_kb,tools_rss_kb,agent_cpu_pct" >"$OUT"
printf '%8s %14s %14s %14s %10s\n' T_S AGENT_RSS_KB AGENT_ANON_KB TOOLS_RSS_KB CPU_PCT
start=$(date +%s)
last_cpu=$(cpu_of "$AGENT")
last_t=$start
warm_rss=
end_rss=
while :; do
    sleep "$INTERVAL"
    if ! kill -0 "$AGENT" 2>/dev/null; then
        echo "soak: the agent died; its log:" >&2
        tail -20 "$WORK/agent.log" >&2
        exit 1
    fi
    now=$(date +%s)
    t=$((now - start))
    cpu=$(cpu_of "$AGENT")
    pct=$(awk "BEGIN { printf \"%.2f\", 100 * ($cpu - $last_cpu) / $ticks / ($now - $last_t) }")
    last_cpu=$cpu
    last_t=$now
    rss=$(rss_of "$AGENT")
    anon=$(anon_of "$AGENT")
    trss=$(tools_rss)
    echo "$t,$rss,$anon,$trss,$pct" >>"$OUT"
    printf '%8d %14d %14d %14d %10s\n' "$t" "$rss" "$anon" "$trss" "$pct"
    if [ -z "$warm_rss" ] && [ "$t" -ge "$WARMUP" ]; then
        warm_rss=$rss
        warm_t=$t
    fi
    end_rss=$rss
    [ "$t" -ge "$DURATION" ] && break
done

total_cpu=$(awk "BEGIN { printf \"%.2f\", 100 * ($(cpu_of "$AGENT")) / $ticks / $DURATION }")
echo
echo "agent CPU: ${total_cpu}% of one core on average"
if [ -z "$warm_rss" ] || [ "$t" -le "${warm_t:-0}" ]; then
    echo "RSS: ${end_rss} kB at the end (run longer than WARMUP=${WARMUP}s for a growth figure)"
    exit 0
fi
# Least-squares slope (kB per minute) of a CSV column over the samples
# taken after the warm-up.
slope_of() {
    awk -F, -v col="$1" -v from="$WARMUP" 'NR > 1 && $1 >= from {
        n++; sx += $1; sy += $col; sxx += $1 * $1; sxy += $1 * $col
    } END {
        d = n * sxx - sx * sx
        printf "%.1f", (d > 0 ? (n * sxy - sx * sy) / d * 60 : 0)
    }' "$OUT"
}
growth=$(slope_of 3)
total_growth=$(slope_of 2)
echo "RSS: ${warm_rss} kB after the warm-up (${warm_t}s), ${end_rss} kB at ${t}s"
echo "growth after the warm-up (least-squares slope): anonymous ${growth} kB/min, whole RSS ${total_growth} kB/min"
echo "samples: $OUT"
if awk "BEGIN { exit !($growth > $MAX_GROWTH_KB) }"; then
    echo "soak: anonymous memory grows ${growth} kB/min after the warm-up (limit ${MAX_GROWTH_KB})" >&2
    exit 1
fi
