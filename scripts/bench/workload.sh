#!/usr/bin/env bash
# Workload overhead: nginx serving a small static file on loopback, loaded by
# wrk, (a) with nothing else running, (b) with `eunomia run` in its default
# configuration, (c) with the hot path alone, (d) with the floor: an empty
# BPF program on the raw `sys_enter` tracepoint (tests' bench-floor), what
# any agent that counts syscalls with a tracepoint costs at the least, so
# its ratio to `none` bounds what (b) and (c) can reach. Alternating runs, REPS
# repetitions, medians; the ratios to `none` are taken within each
# repetition and reported as median, min and max. Prints one JSON object on
# stdout.
#
# Then a fixed-rate run: the same modes at RATE requests/s (default 40% of
# none's median saturated rate), held by tests' rate-load (latency from the
# time each request was due), reporting p50/p99 and machine CPU per request,
# with the per-rep ratios to none.
#
# Env: REPS (default 5), RATE, BIN (dir of tests' binaries, default
# target/release), DURATION seconds per run (default 10), EUNOMIA
# (binary, default target/release/eunomia), DEFAULT_CONFIG (config file for
# mode b, default deploy/eunomia.toml), HOTPATH_CONFIG (mode c).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh

REPS=${REPS:-5}
DURATION=${DURATION:-10}
EUNOMIA=${EUNOMIA:-target/release/eunomia}
DEFAULT_CONFIG=${DEFAULT_CONFIG:-deploy/eunomia.toml}
HOTPATH_CONFIG=${HOTPATH_CONFIG:-scripts/bench/hotpath-only.toml}
PORT=18080
WORK=$(mktemp -d /tmp/eunomia-bench.XXXXXX)

bench_ensure_packages nginx-light wrk

start_nginx() {
  mkdir -p "$WORK/www" "$WORK/nginx"
  head -c 1024 /dev/urandom | base64 > "$WORK/www/index.html"
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$PORT;
    root $WORK/www;
  }
}
CONF
  nginx -c "$WORK/nginx/nginx.conf"
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/index.html" >/dev/null 2>&1 && return; sleep 0.1; done
}

stop_all() {
  [ -f "$WORK/nginx/nginx.pid" ] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
  [ -n "${AGENT:-}" ] && kill -INT "$AGENT" 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop_all EXIT

# Starts eunomia with CONFIG in a fresh cgroup; sets AGENT and CG.
start_agent() {
  CG=$(bench_cgroup agent)
  ( echo $BASHPID > "$CG/cgroup.procs"; exec env EUNOMIA_SOCKET="$WORK/agent.sock" "$EUNOMIA" run --config "$1" >/dev/null 2>"$WORK/agent.log" ) &
  AGENT=$!
  sleep 2 # probes attached, tools started
  kill -0 "$AGENT" 2>/dev/null || { cat "$WORK/agent.log" >&2; exit 1; }
}

# Attaches the floor program (held until stop_floor); sets FLOOR. Like the
# agent, it is started inside run_mode's subshell: if that dies, the fifo's
# writer closes and bench-floor exits on its own.
start_floor() {
  rm -f "$WORK/fifo"; mkfifo "$WORK/fifo"
  "${BIN:-target/release}/bench-floor" bench_floor <"$WORK/fifo" >"$WORK/floor.log" 2>&1 &
  FLOOR=$!
  exec 3>"$WORK/fifo"
  for _ in $(seq 100); do grep -q attached "$WORK/floor.log" 2>/dev/null && return; sleep 0.1; done
  cat "$WORK/floor.log" >&2; exit 1
}

stop_floor() {
  exec 3>&-; wait "$FLOOR" || true; FLOOR=""
}

stop_agent() {
  kill -INT "$AGENT"; wait "$AGENT" || true; AGENT=""
  bench_cgroup_remove "$CG"
}

# One wrk run; prints "rps p99_ms".
load() {
  wrk -t1 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/index.html" | awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } p99 = v }
    END { print rps, p99 }'
}

# One fixed-rate run at $RATE; prints "p50_ms p99_ms requests".
load_fixed() {
  "${BIN:-target/release}/rate-load" "$PORT" /index.html "$RATE" "$DURATION" 16 | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["p50_ms"], r["p99_ms"], r["requests"])'
}

# The agent's live overhead per component so far, into FILE.
components_snap() {
  EUNOMIA_SOCKET="$WORK/agent.sock" "$EUNOMIA" status --json 2>/dev/null | python3 scripts/bench/components.py snap "$1" || echo '{}' > "$1"
}

# One measured run of MODE (none, default, hotpath); prints
# "rps p99_ms eunomia_cpu_s machine_busy_s". eunomia's own CPU (its cgroup,
# tools included) misses the cost of its BPF programs, which run in the
# context of the traced processes; the machine's busy time catches both.
run_mode() {
  local cpu0=0 cpu1=0 busy0 busy1 result
  case $1 in
    default|hotpath)
      start_agent "$([ "$1" = default ] && echo "$DEFAULT_CONFIG" || echo "$HOTPATH_CONFIG")"
      cpu0=$(bench_cgroup_cpu_us "$CG")
      components_snap "$WORK/comp0.json" ;;
    floor) start_floor ;;
  esac
  busy0=$(bench_machine_busy_s)
  result=$(${LOAD:-load})
  busy1=$(bench_machine_busy_s)
  [ "$1" = floor ] && stop_floor
  if [ "$1" != none ] && [ "$1" != floor ] && [ -z "${LOAD:-}" ]; then
    # the agent's own measurement of each component during the run (its
    # statistics windows are a tenth of each 10 s interval: an estimate)
    components_snap "$WORK/comp1.json"
    python3 scripts/bench/components.py diff "$WORK/comp0.json" "$WORK/comp1.json" \
      "$(awk -v r="${result%% *}" -v d="$DURATION" 'BEGIN { print r * d / 1e6 }')" >> "$WORK/components.$1"
  fi
  case $1 in default|hotpath) cpu1=$(bench_cgroup_cpu_us "$CG"); stop_agent ;; esac
  echo "$result $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.4f", (b - a) / 1e6 }') \
$(awk -v a="$busy0" -v b="$busy1" 'BEGIN { printf "%.2f", b - a }')"
}

start_nginx
load >/dev/null # warm-up: the first run of a cold nginx and page cache is slow
declare -A RPS P99 CPU BUSY RATIO
for rep in $(seq "$REPS"); do
  declare -A REP=()
  # Alternate the order so drift in the machine does not favour one mode.
  if [ $((rep % 2)) -eq 1 ]; then order="none floor hotpath default"; else order="default hotpath floor none"; fi
  for mode in $order; do
    read -r rps p99 cpu busy < <(run_mode "$mode")
    echo "bench: rep $rep $mode: $rps req/s, p99 $p99 ms, eunomia cpu ${cpu}s, machine busy ${busy}s" >&2
    RPS[$mode]+="$rps "; P99[$mode]+="$p99 "; CPU[$mode]+="$cpu "; REP[$mode]=$rps
    BUSY[$mode]+="$(awk -v b="$busy" -v r="$rps" -v d="$DURATION" 'BEGIN { printf "%.4f", b / (r * d / 1e6) }') "
  done
  for mode in default hotpath floor; do
    RATIO[$mode]+="$(awk -v a="${REP[$mode]}" -v b="${REP[none]}" 'BEGIN { printf "%.4f", a / b }') "
  done
done

# "median, min, max" of the numbers given
spread() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%s, %s, %s", m, a[1], a[NR] }'; }

json_mode() {
  local m=$1 rps p99 cpu cpu_per_m busy_per_m
  rps=$(bench_median ${RPS[$m]}); p99=$(bench_median ${P99[$m]}); cpu=$(bench_median ${CPU[$m]})
  cpu_per_m=$(awk -v c="$cpu" -v r="$rps" -v d="$DURATION" 'BEGIN { printf "%.4f", c / (r * d / 1e6) }')
  busy_per_m=$(bench_median ${BUSY[$m]})
  printf '"%s": {"rps": %s, "p99_ms": %s, "eunomia_cpu_s": %s, "eunomia_cpu_s_per_million_requests": %s, "machine_cpu_s_per_million_requests": %s}' \
    "$m" "$rps" "$p99" "$cpu" "$cpu_per_m" "$busy_per_m"
}
base=$(bench_median ${RPS[none]})
def=$(bench_median ${RPS[default]})
hot=$(bench_median ${RPS[hotpath]})
# The last run's per-component figures of each mode (live overhead metrics).
comp() { [ -s "$WORK/components.$1" ] && tail -1 "$WORK/components.$1" || echo '{}'; }
printf '{"components_cpu_s_per_million_requests": {"default": %s, "hotpath": %s}, ' "$(comp default)" "$(comp hotpath)"
printf '"reps": %s, "duration_s": %s, %s, %s, %s, %s, "rps_ratio_default": %s, "rps_ratio_hotpath": %s, "rps_ratio_floor": %s, "rps_ratio_default_per_rep": [%s], "rps_ratio_hotpath_per_rep": [%s], "rps_ratio_floor_per_rep": [%s]}\n' \
  "$REPS" "$DURATION" "$(json_mode none)" "$(json_mode default)" "$(json_mode hotpath)" "$(json_mode floor)" \
  "$(bench_median ${RATIO[default]})" "$(bench_median ${RATIO[hotpath]})" "$(bench_median ${RATIO[floor]})" \
  "$(spread ${RATIO[default]})" "$(spread ${RATIO[hotpath]})" "$(spread ${RATIO[floor]})"

# The fixed-rate part: its own JSON object on a second line.
RATE=${RATE:-$(awk -v b="$base" 'BEGIN { printf "%d", b * 0.4 }')}
declare -A FP50 FP99 FCPU FR99 FRCPU
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then order="none floor hotpath default"; else order="default hotpath floor none"; fi
  declare -A R99=() RCPU=()
  for mode in $order; do
    read -r p50 p99 n _ busy < <(LOAD=load_fixed run_mode "$mode")
    cpu_per_m=$(awk -v b="$busy" -v n="$n" 'BEGIN { printf "%.4f", b / (n / 1e6) }')
    echo "bench: fixed rate $RATE/s rep $rep $mode: p50 $p50 ms, p99 $p99 ms, $n requests, machine CPU ${cpu_per_m} s per M requests" >&2
    FP50[$mode]+="$p50 "; FP99[$mode]+="$p99 "; FCPU[$mode]+="$cpu_per_m "
    R99[$mode]=$p99; RCPU[$mode]=$cpu_per_m
  done
  for mode in default hotpath floor; do
    FR99[$mode]+="$(awk -v a="${R99[$mode]}" -v b="${R99[none]}" 'BEGIN { printf "%.4f", a / b }') "
    FRCPU[$mode]+="$(awk -v a="${RCPU[$mode]}" -v b="${RCPU[none]}" 'BEGIN { printf "%.4f", a / b }') "
  done
done
fixed_mode() {
  printf '"%s": {"p50_ms": %s, "p99_ms": %s, "machine_cpu_s_per_million_requests": %s}' "$1" \
    "$(bench_median ${FP50[$1]})" "$(bench_median ${FP99[$1]})" "$(bench_median ${FCPU[$1]})"
}
printf '{"fixed_rate": %s, "reps": %s, %s, %s, %s, %s, "p99_ratio_default": [%s], "p99_ratio_hotpath": [%s], "p99_ratio_floor": [%s], "cpu_ratio_default": [%s], "cpu_ratio_hotpath": [%s], "cpu_ratio_floor": [%s]}\n' \
  "$RATE" "$REPS" "$(fixed_mode none)" "$(fixed_mode default)" "$(fixed_mode hotpath)" "$(fixed_mode floor)" \
  "$(spread ${FR99[default]})" "$(spread ${FR99[hotpath]})" "$(spread ${FR99[floor]})" \
  "$(spread ${FRCPU[default]})" "$(spread ${FRCPU[hotpath]})" "$(spread ${FRCPU[floor]})"
