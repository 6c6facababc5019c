#!/usr/bin/env bash
# Cost of the HTTP capture, measured in one run, alternating the
# configurations, several repetitions (run as root):
#
#   none      nothing attached
#   hotpath   `eunomia run` with its hot path, [http] enabled = false
#   http      `eunomia run` with its hot path and the HTTP capture as
#             configured by default (`[http] records = "sampled"`: the RED
#             histograms counted in the kernel, records only for spans)
#   http-all  the same with `records = "all"` (a record for every request)
#
# For each server (the tests crate's `http-echo`, and nginx when installed)
# wrk loads it on loopback (keep-alive, CONNS connections, SECS seconds),
# then the tests crate's `rate-load` holds RATE requests/s for SECS seconds
# (latency from when each request was due: no coordinated omission).
# Reported per configuration:
#   - requests/s under wrk (and the ratio to `none` and `hotpath`);
#   - CPU per request (ns): the CPU time of the server, wrk and the agent
#     (user and system: the BPF programs run in the server's and wrk's
#     syscalls) over wrk's requests, so other load on the machine does not
#     count; the difference `http` - `hotpath` is what the capture adds,
#     kernel and agent together (target: at most 1000 ns);
#   - of that, the agent's process alone (user and system: decoding,
#     linking, the RED histograms; the BPF programs run in the others);
#   - the machine's CPU per request (/proc/stat, everything that ran);
#   - the run time of the `sys_exit` program per request and per record
#     (bpf_stats, from the agent's program fdinfo): its difference is what
#     the capture adds in the kernel. wrk's connections are new, so both
#     sides of each request are captured: two records per request, one
#     per side;
#   - p99 latency at the fixed rate (rate-load) and under wrk;
#   - for `http`: the requests the kernel delivered and dropped
#     (eunomia_http_records_total, eunomia_http_dropped_total without the
#     requests sampled out of the spans, which the metrics still count,
#     from the agent's JSON-lines sink).
# The load average (`uptime`) is printed before and after.
#
# Environment: REPS (default 3), SECS (default 5), CONNS (default 8), RATE
# (default 5000), PROFILE (release, default, or debug: the build to use),
# SERVERS (default "echo nginx"), MODES (default "none hotpath http http-all"),
# OUT (JSON, default target/bench-http.json),
# BIN_DIR (use the eunomia, http-echo and rate-load binaries there and build
# nothing: to compare two builds, run it for each, alternating).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REPS=${REPS:-3}
SECS=${SECS:-5}
CONNS=${CONNS:-8}
RATE=${RATE:-5000}
PROFILE=${PROFILE:-release}
SERVERS=${SERVERS:-echo nginx}
OUT=${OUT:-target/bench-http.json}
MODES=${MODES:-none hotpath http http-all}
TARGET=${CARGO_TARGET_DIR:-target}

if [ "$(id -u)" != 0 ]; then
    echo "bench-http: needs root (loads BPF programs)" >&2
    exit 1
fi
command -v wrk >/dev/null || { echo "bench-http: wrk is not installed (scripts/setup.sh)" >&2; exit 1; }
if [ -n "${BIN_DIR:-}" ]; then
    :
elif [ "$PROFILE" = release ]; then
    cargo build --release -q -p eunomia -p eunomia-tests --bin eunomia --bin http-echo --bin rate-load
else
    cargo build -q -p eunomia -p eunomia-tests --bin eunomia --bin http-echo --bin rate-load
fi
BIN=${BIN_DIR:-$TARGET/$PROFILE}
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
sysctl -qw kernel.bpf_stats_enabled=1

for mode in hotpath http http-all; do
    enabled=$([ $mode = hotpath ] && echo false || echo true)
    records=$([ $mode = http-all ] && echo all || echo sampled)
    cat >"$WORK/$mode.toml" <<EOC
[agent]
poll_interval = "1s"
control_socket = "$WORK/$mode.sock"
[http]
enabled = $enabled
records = "$records"
[tools]
enabled = []
[rules]
enabled = false
[enrich]
container_stats = false
[sinks.jsonl]
enabled = true
path = "$WORK/$mode.jsonl"
interval = "1s"
EOC
done

# nginx: one worker, a fixed small answer
cat >"$WORK/nginx.conf" <<EOC
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:18481;
        location / { return 200 "ok\n"; }
    }
}
EOC

# Starts server $1 in the background: sets PORT and SERVER_PID.
start_server() {
    case $1 in
    echo)
        "$BIN/http-echo" serve --port 18480 >"$WORK/echo.out" 2>&1 &
        SERVER_PID=$!
        PORT=18480
        ;;
    nginx)
        nginx -c "$WORK/nginx.conf" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
        SERVER_PID=$!
        PORT=18481
        ;;
    esac
    sleep 0.5
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# CPU time (ticks) of the processes $@ and their children (nginx's worker)
proc_ticks() {
    local t=0 p
    for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
        t=$((t + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)))
    done
    echo $t
}

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$6+$7+$8}' /proc/stat; }

# run_time_ns and run_cnt of the agent's count_sys_exit program
prog_stats() {
    local pid=$1
    for fd in /proc/"$pid"/fdinfo/*; do
        if grep -q '^prog_type' "$fd" 2>/dev/null; then
            local id
            id=$(awk '/^prog_id/{print $2}' "$fd")
            if bpftool prog show id "$id" 2>/dev/null | grep -q count_sys_exit; then
                awk '/^run_time_ns/{t=$2} /^run_cnt/{c=$2} END{print t+0, c+0}' "$fd"
                return
            fi
        fi
    done
    echo "0 0"
}

echo "bench-http: load before: $(uptime)" >&2
results="$WORK/results.txt"
: >"$results"
hz=$(getconf CLK_TCK)
for server in $SERVERS; do
    if [ "$server" = nginx ] && ! command -v nginx >/dev/null; then
        echo "bench-http: nginx not installed, skipped" >&2
        continue
    fi
    for rep in $(seq "$REPS"); do
        for mode in $MODES; do
            start_server "$server"
            port=$PORT
            agent=
            if [ $mode != none ]; then
                "$BIN/eunomia" run --config "$WORK/$mode.toml" >"$WORK/agent.log" 2>&1 &
                agent=$!
                for _ in $(seq 100); do grep -q "hot path attached" "$WORK/agent.log" && break; sleep 0.2; done
            fi
            read -r t0 c0 <<<"$( [ -n "$agent" ] && prog_stats "$agent" || echo "0 0")"
            ticks0=$(cpu_ticks)
            pt0=$(proc_ticks "$SERVER_PID" $agent)
            at0=$([ -n "$agent" ] && proc_ticks "$agent" || echo 0)
            # wrk's own CPU (user + system ticks) from its rusage
            wrk_ticks=$(python3 -c '
import os, resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(round((r.ru_utime + r.ru_stime) * os.sysconf("SC_CLK_TCK")))
' "$WORK/wrk.txt" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$port/bench/path")
            pt1=$(proc_ticks "$SERVER_PID" $agent)
            at1=$([ -n "$agent" ] && proc_ticks "$agent" || echo 0)
            ticks1=$(cpu_ticks)
            read -r t1 c1 <<<"$( [ -n "$agent" ] && prog_stats "$agent" || echo "0 0")"
            "$BIN/rate-load" "$port" /bench/fixed "$RATE" "$SECS" "$CONNS" >"$WORK/rate.json"
            read -r fixed_p99 fixed_reqs < <(python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); print(j["p99_ms"], j["requests"])' "$WORK/rate.json")
            reqs=$(awk '/requests in/{print $1}' "$WORK/wrk.txt")
            rps=$(awk '/^Requests\/sec/{print $2}' "$WORK/wrk.txt")
            p99=$(awk '$1=="99%"{print $2}' "$WORK/wrk.txt")
            if [ -n "$agent" ]; then
                kill -TERM "$agent"
                wait "$agent" || true
            fi
            stop_server
            delivered=0
            dropped=0
            if [ $mode != none ] && [ $mode != hotpath ]; then
                delivered=$(grep '"name":"eunomia_http_records_total"' "$WORK/$mode.jsonl" | tail -1 | sed 's/.*"value":\([0-9.]*\).*/\1/')
                dropped=$(grep '"name":"eunomia_http_dropped_total"' "$WORK/$mode.jsonl" | sed 's/.*"reason":"\([a-z_]*\)".*"value":\([0-9.]*\).*/\1 \2/' | sort -u -k1,1 -k2,2nr | awk '!seen[$1]++ && $1 != "sampled_out" && $1 != "span_rate_limited" {s+=$2} END{print s+0}')
                rm -f "$WORK/$mode.jsonl"
            fi
            echo "$server $rep $mode $reqs $rps $p99 $(( (ticks1 - ticks0) )) $hz $((t1 - t0)) $((c1 - c0)) ${delivered:-0} ${dropped:-0} $((pt1 - pt0 + wrk_ticks)) $fixed_p99 $fixed_reqs $((at1 - at0))" >>"$results"
            echo "  $server rep $rep $mode: $rps req/s, p99 $p99, p99 at $RATE/s ${fixed_p99}ms" >&2
        done
    done
done

python3 - "$results" "$OUT" "$RATE" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rate = sys.argv[3]
out = {}

def added(s, per, m):
    """What configuration m adds to the hot path, paired by repetition."""
    def diff(k):
        runs = [h[k] - b[k] for h, b in zip(per[m], per["hotpath"])]
        return {"median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}
    a = s.setdefault("added", {}).setdefault(m, {})
    for k in ("cpu_ns_per_req", "agent_cpu_ns_per_req", "machine_cpu_ns_per_req", "bpf_ns_per_req"):
        a[k] = diff(k)
    ratios = [h["rps"] / b["rps"] for h, b in zip(per[m], per["hotpath"])]
    a["rps_ratio_to_hotpath"] = {"median": statistics.median(ratios), "runs": ratios}
    f = lambda x: f"{x['median']:.0f} ns (runs {', '.join(f'{y:.0f}' for y in x['runs'])})"
    print(f"  {m} adds per request (both sides): CPU {f(a['cpu_ns_per_req'])} [target <= 1000],"
          f" of which the agent's process {f(a['agent_cpu_ns_per_req'])}; sys_exit program {f(a['bpf_ns_per_req'])};"
          f" machine CPU {f(a['machine_cpu_ns_per_req'])};"
          f" req/s ratio to hotpath {a['rps_ratio_to_hotpath']['median']:.3f}"
          f" (runs {', '.join(f'{y:.3f}' for y in a['rps_ratio_to_hotpath']['runs'])})")
    # a server whose clients are elsewhere has one side captured per
    # request: what the kernel program and the agent add per side
    side = (a["bpf_ns_per_req"]["median"] + a["agent_cpu_ns_per_req"]["median"]) / 2
    a["ns_per_side"] = side
    print(f"  {m} per captured side (a request whose client is not on this host): sys_exit program"
          f" {a['bpf_ns_per_req']['median'] / 2:.0f} ns + agent {a['agent_cpu_ns_per_req']['median'] / 2:.0f} ns"
          f" = {side:.0f} ns")

keys = ("rps", "cpu_ns_per_req", "agent_cpu_ns_per_req", "machine_cpu_ns_per_req", "bpf_ns_per_req", "fixed_p99_ms",
        "requests", "expected_records", "delivered", "dropped")
for server in sorted({r[0] for r in rows}):
    per = {}
    for r in rows:
        if r[0] != server:
            continue
        (_, rep, mode, reqs, rps, p99, ticks, hz, bpf_ns, bpf_cnt, delivered, dropped,
         proc_ticks, fixed_p99, fixed_reqs, agent_ticks) = r
        reqs = int(reqs)
        per.setdefault(mode, []).append({
            "rps": float(rps),
            "p99": p99,
            "fixed_p99_ms": float(fixed_p99),
            "cpu_ns_per_req": int(proc_ticks) / int(hz) * 1e9 / max(reqs, 1),
            "agent_cpu_ns_per_req": int(agent_ticks) / int(hz) * 1e9 / max(reqs, 1),
            "machine_cpu_ns_per_req": int(ticks) / int(hz) * 1e9 / max(reqs, 1),
            "bpf_ns_per_req": int(bpf_ns) / max(reqs, 1),
            "requests": reqs,
            # both sides of every request (wrk's and rate-load's)
            "expected_records": 2 * (reqs + int(fixed_reqs)),
            "delivered": float(delivered),
            "dropped": float(dropped),
        })
    med = lambda m, k: statistics.median(x[k] for x in per[m])
    spread = lambda m, k: (min(x[k] for x in per[m]), max(x[k] for x in per[m]))
    s = {"runs": per}
    for m in per:
        s[m] = {k: med(m, k) for k in keys}
        s[m]["rps_spread"] = spread(m, "rps")
        s[m]["fixed_p99_spread"] = spread(m, "fixed_p99_ms")
        s[m]["p99"] = [x["p99"] for x in per[m]]
    if "none" in per:
        for m in ("hotpath", "http", "http-all"):
            if m in per:
                s[m]["rps_ratio_to_none"] = s[m]["rps"] / s["none"]["rps"]
    out[server] = s
    print(f"== {server}")
    for m in ("none", "hotpath", "http", "http-all"):
        if m in s:
            v = s[m]
            print(f"  {m:8} {v['rps']:>8.0f} req/s ({v['rps_spread'][0]:.0f}-{v['rps_spread'][1]:.0f})"
                  f"  cpu {v['cpu_ns_per_req']:>6.0f} ns/req (agent {v['agent_cpu_ns_per_req']:.0f}, machine {v['machine_cpu_ns_per_req']:.0f})"
                  f"  sys_exit prog {v['bpf_ns_per_req']:>5.0f} ns/req"
                  f"  p99 at {rate}/s {v['fixed_p99_ms']:.2f} ms ({v['fixed_p99_spread'][0]:.2f}-{v['fixed_p99_spread'][1]:.2f})"
                  f"  wrk p99 {','.join(v['p99'])}"
                  + (f"  records {v['delivered']:.0f} of {v['expected_records']:.0f}, dropped {v['dropped']:.0f}" if m.startswith("http") else ""))
    for m in ("http", "http-all"):
        if "hotpath" in per and m in per:
            added(s, per, m)
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
echo "bench-http: load after: $(uptime)" >&2
echo "written $OUT" >&2
