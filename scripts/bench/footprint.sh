#!/usr/bin/env bash
# Footprint: resident memory of the agent after RUN_S seconds of the default
# configuration (agent alone, and with its tool processes), the stripped
# release binary's size, and the time from start to the first exported
# metrics (Prometheus endpoint, poll interval 1s). Prints one JSON object.
#
# Env: RUN_S (default 60), EUNOMIA.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh

RUN_S=${RUN_S:-60}
EUNOMIA=${EUNOMIA:-target/release/eunomia}
WORK=$(mktemp -d /tmp/eunomia-footprint.XXXXXX)
PORT=19465
cleanup() { [ -n "${AGENT:-}" ] && kill -INT "$AGENT" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

strip -o "$WORK/eunomia.stripped" "$EUNOMIA"
size=$(stat -c %s "$WORK/eunomia.stripped")

cat > "$WORK/eunomia.toml" <<CONF
[agent]
poll_interval = "1s"
[sinks.prometheus]
enabled = true
listen = "127.0.0.1:$PORT"
CONF
start=$(date +%s.%N)
"$EUNOMIA" run --config "$WORK/eunomia.toml" >/dev/null 2>"$WORK/agent.log" &
AGENT=$!
first=""
for _ in $(seq 400); do
  if curl -sf "http://127.0.0.1:$PORT/metrics" 2>/dev/null | grep -q '^eunomia_syscalls_total{'; then
    first=$(date +%s.%N); break
  fi
  sleep 0.025
done
[ -n "$first" ] || { cat "$WORK/agent.log" >&2; echo "footprint: no metrics within 10s" >&2; exit 1; }
sleep "$RUN_S"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
agent_kb=$(rss_kb "$AGENT")
tools_kb=0
for c in $(pgrep -P "$AGENT" || true); do tools_kb=$((tools_kb + $(rss_kb "$c"))); done
kill -INT "$AGENT"; wait "$AGENT" || true; AGENT=""
awk -v s="$size" -v a="$agent_kb" -v t="$tools_kb" -v t0="$start" -v t1="$first" -v run="$RUN_S" 'BEGIN {
  printf "{\"stripped_binary_mb\": %.2f, \"agent_rss_mb_after_s\": %d, \"agent_rss_mb\": %.1f, \"tools_rss_mb\": %.1f, \"first_metrics_s\": %.3f, \"poll_interval_s\": 1}\n",
    s / 1048576, run, a / 1024, t / 1024, t1 - t0
}'
