#!/usr/bin/env bash
# Event rate: an exec storm (tests' exec-storm: /bin/true as fast as 2
# workers can, for SECONDS, or at RATE per second) while `eunomia run`
# supervises execsnoop (SOURCE=execsnoop, the default) or takes execs from
# the hot path's sched_process_exec program (SOURCE=hotpath).
# Compares exec events received with processes started, and reports the CPU
# eunomia used (its cgroup: the agent and execsnoop) per 10,000 events.
# Prints one JSON object on stdout.
#
# Env: SECONDS_STORM (default 10), RATE (default 0: as fast as possible),
# SOURCE, EUNOMIA, BIN (dir of the tests' binaries).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh

STORM=${SECONDS_STORM:-10}
RATE=${RATE:-0}
SOURCE=${SOURCE:-execsnoop}
if [ "$SOURCE" = hotpath ]; then TOOLS='[]' EXECS=true; else TOOLS='["execsnoop"]' EXECS=false; fi
EUNOMIA=${EUNOMIA:-target/release/eunomia}
BIN=${BIN:-target/release}
WORK=$(mktemp -d /tmp/eunomia-events.XXXXXX)
PORT=19464
cleanup() { [ -n "${AGENT:-}" ] && kill -INT "$AGENT" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/eunomia.toml" <<CONF
[agent]
poll_interval = "1s"
[hotpath]
syscalls = false
tcp = false
execs = $EXECS
[tools]
enabled = $TOOLS
[rules]
enabled = false
[sinks.prometheus]
enabled = true
listen = "127.0.0.1:$PORT"
CONF

CG=$(bench_cgroup events)
( echo $BASHPID > "$CG/cgroup.procs"; exec "$EUNOMIA" run --config "$WORK/eunomia.toml" >/dev/null 2>"$WORK/agent.log" ) &
AGENT=$!
for _ in $(seq 100); do grep -q "first output" "$WORK/agent.log" 2>/dev/null && break; sleep 0.1; done
metric() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 ~ "^"m"\\{" && /tool="execsnoop"/ { print $2 }' | head -1; }
# the hot path's ring buffer full (events lost in the kernel, counted)
ring_full() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^eunomia_hotpath_map_full_total\{/ && /map="exec_events"/ { n += $2 } END { print n + 0 }'; }
# Execs of /bin/true seen (other processes exec too): the per-comm counter.
trues() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^eunomia_process_execs_total\{/ && /proc_comm="true"/ { n += $2 } END { print n + 0 }'; }
records0=$(trues)
cpu0=$(bench_cgroup_cpu_us "$CG")
storm=$("$BIN/exec-storm" "$RATE" "$STORM" 2)
sleep 2 # let the last events through
cpu1=$(bench_cgroup_cpu_us "$CG")
records1=$(trues)
lost=$(metric eunomia_tool_lost_events_total)
[ "$SOURCE" = hotpath ] && lost=$(ring_full)
dropped=$(metric eunomia_tool_dropped_total)
errors=$(metric eunomia_tool_parse_errors_total)
kill -INT "$AGENT"; wait "$AGENT" || true; AGENT=""
bench_cgroup_remove "$CG"

started=$(sed -E 's/.*"started": ([0-9]+).*/\1/' <<<"$storm")
rate=$(sed -E 's/.*"rate": ([0-9.]+).*/\1/' <<<"$storm")
received=$(awk -v a="$records0" -v b="${records1:-0}" 'BEGIN { print b - a }')
awk -v s="$started" -v r="$received" -v rate="$rate" -v l="${lost:-0}" -v d="${dropped:-0}" -v e="${errors:-0}" \
    -v c0="$cpu0" -v c1="$cpu1" 'BEGIN {
  cpu = (c1 - c0) / 1e6
  printf "{\"processes_started\": %d, \"exec_rate_per_s\": %.0f, \"events_received\": %d, \"events_missing\": %d, \"tool_reported_lost\": %d, \"pipeline_dropped\": %d, \"parse_errors\": %d, \"eunomia_cpu_s\": %.3f, \"cpu_s_per_10k_events\": %.4f}\n",
    s, rate, r, s - r, l, d, e, cpu, (r > 0 ? cpu / (r / 1e4) : 0)
}'
