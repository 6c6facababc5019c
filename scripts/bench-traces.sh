#!/usr/bin/env bash
# What linking and per-trace sampling cost the agent's user space per
# HTTP request: two agent binaries, BASE and NEW, alternated REPS times
# under the same wrk load against the tests crate's http-echo (keep-alive,
# CONNS connections, SECS seconds), each with the HTTP capture on at
# sample_ratio RATIO. Reported per binary: requests/s, the agent process's
# CPU (utime + stime from /proc/PID/stat) per request, and what its JSON-lines
# metrics say was dropped (pipeline_full, pipeline_busy, sampled_out); and
# the NEW/BASE ratio of the agent CPU per request, per repetition.
#
# Made for the change that sends every request through the traces stage
# (issue 19): BASE a build before it (only sampled requests became events),
# NEW one after (every request is an event, linked, then sampled per trace).
#
#   BASE=/tmp/eunomia-before NEW=target/debug/eunomia scripts/bench-traces.sh
#
# Environment: BASE (required), NEW (default target/debug/eunomia), ECHO
# (default target/debug/http-echo), REPS (3), SECS (5), CONNS (8), RATIO
# (0.1). Run as root. Both binaries should be the same profile.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${BASE:?BASE: the eunomia binary to compare against}
NEW=${NEW:-target/debug/eunomia}
ECHO=${ECHO:-target/debug/http-echo}
REPS=${REPS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-8}
RATIO=${RATIO:-0.1}

if [ "$(id -u)" != 0 ]; then
    echo "bench-traces: needs root (loads BPF programs)" >&2
    exit 1
fi
command -v wrk >/dev/null || { echo "bench-traces: wrk is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
SERVER_PID=
AGENT_PID=
cleanup() {
    [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"$ECHO" serve --port 0 >"$WORK/echo.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do grep -q port "$WORK/echo.out" && break; sleep 0.1; done
PORT=$(sed 's/.*"port":\([0-9]*\).*/\1/' "$WORK/echo.out" | head -1)

agent_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# the last value of metric $1 with reason $2 in the JSON-lines file $3
last_reason() {
    { grep "\"name\":\"$1\"" "$3" || true; } | { grep "\"reason\":\"$2\"" || true; } |
        tail -1 | sed 's/.*"value":\([0-9.]*\).*/\1/' | awk '{print $1+0} END{if (NR==0) print 0}' | head -1
}

hz=$(getconf CLK_TCK)
results="$WORK/results.txt"
: >"$results"
for rep in $(seq "$REPS"); do
    for which in BASE NEW; do
        bin=${!which}
        cat >"$WORK/agent.toml" <<EOC
[agent]
poll_interval = "1s"
control_socket = "$WORK/agent.sock"
[http]
enabled = true
sample_ratio = $RATIO
[tools]
enabled = []
[rules]
enabled = false
console = false
[enrich]
container_stats = false
[sinks.jsonl]
path = "$WORK/agent.jsonl"
events = false
interval = "1s"
EOC
        rm -f "$WORK/agent.jsonl"
        "$bin" run --config "$WORK/agent.toml" >"$WORK/agent.log" 2>&1 &
        AGENT_PID=$!
        for _ in $(seq 150); do grep -q "HTTP capture on" "$WORK/agent.log" && break; sleep 0.2; done
        wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$PORT/warm" >/dev/null
        sleep 3
        t0=$(agent_cpu_ticks "$AGENT_PID")
        wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/bench/path" >"$WORK/wrk.txt"
        # what the load left in the pipeline and the hold (2 s) is work too
        sleep 3
        t1=$(agent_cpu_ticks "$AGENT_PID")
        kill -TERM "$AGENT_PID"
        wait "$AGENT_PID" || true
        AGENT_PID=
        reqs=$(awk '/requests in/{print $1}' "$WORK/wrk.txt")
        rps=$(awk '/^Requests\/sec/{print $2}' "$WORK/wrk.txt")
        full=$(last_reason eunomia_http_dropped_total pipeline_full "$WORK/agent.jsonl")
        busy=$(last_reason eunomia_http_dropped_total pipeline_busy "$WORK/agent.jsonl")
        out=$(last_reason eunomia_http_dropped_total sampled_out "$WORK/agent.jsonl")
        echo "$rep $which $reqs $rps $((t1 - t0)) $hz $full $out $busy" >>"$results"
        echo "  rep $rep $which: $rps req/s, agent $((t1 - t0)) ticks" >&2
    done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
per = {}
for rep, which, reqs, rps, ticks, hz, full, out, busy in rows:
    per.setdefault(which, []).append({
        "rps": float(rps),
        "agent_ns_per_req": int(ticks) / int(hz) * 1e9 / max(int(reqs), 1),
        "pipeline_full": float(full),
        "pipeline_busy": float(busy),
        "sampled_out": float(out),
    })
for which in ("BASE", "NEW"):
    v = per[which]
    ns = [x["agent_ns_per_req"] for x in v]
    print(f"{which:4}  {statistics.median(x['rps'] for x in v):>8.0f} req/s"
          f"  agent CPU {statistics.median(ns):>7.0f} ns/request (runs {', '.join(f'{x:.0f}' for x in ns)})"
          f"  pipeline_full {', '.join('%.0f' % x['pipeline_full'] for x in v)}"
          f"  pipeline_busy {', '.join('%.0f' % x['pipeline_busy'] for x in v)}"
          f"  sampled_out {', '.join('%.0f' % x['sampled_out'] for x in v)}")
ratios = [n["agent_ns_per_req"] / b["agent_ns_per_req"] for n, b in zip(per["NEW"], per["BASE"]) if b["agent_ns_per_req"] > 0]
if ratios:
    print(f"NEW/BASE agent CPU per request: median {statistics.median(ratios):.2f} (runs {', '.join(f'{r:.2f}' for r in ratios)})")
PY
