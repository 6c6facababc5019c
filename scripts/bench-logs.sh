#!/usr/bin/env bash
# Container logs: the cost per line and the memory with many busy containers
# (issue 24). As root; about 3 minutes on 2 cores.
#
# 1. Lines per CPU-second on one real log file (Docker json-file written by
#    this script: plain, JSON with levels and trace ids, logfmt, klog lines,
#    some longer than Docker's 16 KiB split): the agent's whole per-line path
#    (target/release/bench-logs: tail, parse, join, level/trace/pattern,
#    pattern count, event with workload, OTLP encoding) against the floor
#    `tail -n +1 -F FILE | wc -l` (stopped 2 s after it has read the file),
#    in alternating repetitions; medians, min-max spread, and the ratio.
# 2. RSS of `eunomia run` (hot path and tools off: only the log source,
#    rules, aggregation and the JSON-lines sink) following 100 busy
#    containers' logs. The containers are simulated: a script appends Docker
#    json-file lines to 100 `<root>/<id>/<id>-json.log` files (50 lines/s
#    each, 5000 lines/s in all) — not 100 real containers. RSS is sampled
#    every 2 s for RUN_S seconds; the bound printed is what [logs] allows to
#    be held: max_files x (read_bytes + max_line_bytes).
#
# Env: REPS (5), LINES (400000), RUN_S (30). Prints JSON lines and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
REPS=${REPS:-5}
LINES=${LINES:-400000}
RUN_S=${RUN_S:-30}
WORK=$(mktemp -d /tmp/eunomia-bench-logs.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "bench-logs: building (release, no BPF objects needed)" >&2
AYA_BUILD_SKIP=1 cargo build --release -q -p eunomia-tests --bin bench-logs -p eunomia --bin eunomia

echo "bench-logs: writing $LINES lines" >&2
python3 - "$WORK/bench-json.log" "$LINES" <<'PY'
import json, random, sys
path, n = sys.argv[1], int(sys.argv[2])
random.seed(24)
trace = "4bf92f3577b34da6a3ce929d0e0e4736"
with open(path, "w") as f:
    for i in range(n):
        k = i % 10
        if k < 4:
            msg = f"GET /api/v1/items/{random.randint(1, 99999)} 200 {random.randint(1, 900)}ms from 10.0.{i % 256}.{k}"
        elif k < 6:
            msg = json.dumps({"level": random.choice(["info", "warn", "error"]), "msg": f"request {i} done",
                              "trace_id": trace, "span_id": f"{i:016x}", "user": random.randint(1, 500)})
        elif k < 8:
            msg = f"ts=2024-05-01T10:00:00Z level=info msg=\"cache refresh\" keys={i} took={k}ms"
        elif k == 8:
            msg = f"E0501 10:00:00.{i % 1000000:06d}   {i} reconcile.go:42] failed to sync pod {i}"
        else:
            msg = f"WARN worker {i % 16} queue depth {random.randint(1, 1000)}"
        stream = "stderr" if k in (8, 9) else "stdout"
        if i % 5000 == 0:  # over Docker's 16 KiB: two partial records
            long = msg + " " + "x" * 20000
            f.write(json.dumps({"log": long[:16384], "stream": stream, "time": "2024-05-01T10:00:00.000000001Z"}) + "\n")
            msg = long[16384:]
        f.write(json.dumps({"log": msg + "\n", "stream": stream, "time": "2024-05-01T10:00:00.000000001Z"}) + "\n")
PY
FILE="$WORK/bench-json.log"

floor() {
  local t out
  TIMEFORMAT='%U %S'
  out=$( { time ( timeout -s TERM 2 tail -n +1 -F "$FILE" 2>/dev/null | wc -l > "$WORK/wc" || true ) ; } 2>&1 )
  python3 -c "import sys; u,s=map(float,'$out'.split()); n=int(open('$WORK/wc').read()); print('{\"lines\": %d, \"cpu_s\": %.4f, \"lines_per_cpu_s\": %.0f}' % (n, u+s, n/max(u+s,1e-9)))"
}

echo "bench-logs: $REPS alternating repetitions" >&2
: > "$WORK/agent.jsonl"; : > "$WORK/floor.jsonl"
for r in $(seq "$REPS"); do
  target/release/bench-logs "$FILE" docker | tee -a "$WORK/agent.jsonl"
  floor | tee -a "$WORK/floor.jsonl"
done

echo "bench-logs: RSS with 100 busy log files for ${RUN_S}s" >&2
ROOT="$WORK/docker"
mkdir -p "$ROOT"
cat > "$WORK/eunomia.toml" <<TOML
[hotpath]
syscalls = false
tcp = false
pids = false
[tools]
enabled = []
[enrich]
docker_root = "$ROOT"
podman_root = ""
pod_logs_root = ""
container_logs_root = ""
containerd_state = ""
container_stats = false
[logs]
checkpoint_file = "$WORK/state/logs.json"
read_bytes = 65536
max_line_bytes = 16384
max_files = 200
[rules]
watch_interval = "0s"
[sinks.jsonl]
path = "$WORK/out.jsonl"
TOML
chmod 600 "$WORK/eunomia.toml"
python3 - "$ROOT" "$RUN_S" <<'PY' &
import json, os, sys, time
root, run_s = sys.argv[1], int(sys.argv[2]) + 10
files = []
for c in range(100):
    cid = f"{c:064x}"
    os.makedirs(f"{root}/{cid}", exist_ok=True)
    files.append(open(f"{root}/{cid}/{cid}-json.log", "a", buffering=1))
end = time.time() + run_s
i = 0
while time.time() < end:
    for n, f in enumerate(files):
        msg = f"container {n} request {i} took {i % 97}ms status=200"
        f.write(json.dumps({"log": msg + "\n", "stream": "stdout", "time": "2024-05-01T10:00:00Z"}) + "\n")
    i += 1
    time.sleep(0.02)
PY
sleep 1
target/release/eunomia run --insecure-files --config "$WORK/eunomia.toml" --for "${RUN_S}s" \
  --socket "$WORK/eunomia.sock" > "$WORK/agent.out" 2> "$WORK/agent.err" &
AGENT=$!
: > "$WORK/rss"
while kill -0 "$AGENT" 2>/dev/null; do
  awk '/VmRSS/ {print $2}' "/proc/$AGENT/status" 2>/dev/null >> "$WORK/rss" || true
  sleep 2
done
wait "$AGENT" || true
LOGLINES=$(grep -c '"kind":"log"' "$WORK/out.jsonl" || true)

python3 - "$WORK" "$LOGLINES" <<'PY'
import json, statistics, sys
work, loglines = sys.argv[1], int(sys.argv[2])
agent = [json.loads(l) for l in open(f"{work}/agent.jsonl")]
floor = [json.loads(l) for l in open(f"{work}/floor.jsonl")]
a = [r["lines_per_cpu_s"] for r in agent]
f = [r["lines_per_cpu_s"] for r in floor]
rss = [int(x) for x in open(f"{work}/rss").read().split()]
bound_kib = 200 * (65536 + 16384) // 1024
summary = {
    "lines": agent[0]["lines"],
    "agent_lines_per_cpu_s_median": round(statistics.median(a)),
    "agent_spread": [round(min(a)), round(max(a))],
    "floor_lines_per_cpu_s_median": round(statistics.median(f)),
    "floor_spread": [round(min(f)), round(max(f))],
    "floor_over_agent": round(statistics.median(f) / statistics.median(a), 2),
    "target_200k_met": statistics.median(a) >= 200_000,
    "rss_kib_samples": rss,
    "rss_kib_max": max(rss) if rss else None,
    "rss_kib_growth_after_10s": (max(rss[5:]) - rss[5]) if len(rss) > 6 else None,
    "log_events_exported": loglines,
    "logs_buffer_bound_kib": bound_kib,
}
print(json.dumps(summary))
PY
