#!/usr/bin/env bash
# Where the cost of the default agent goes, per syscall, in one run (root):
# a loop of CALLS getppid() (tests' bench-getppid, pinned to CPU) with each
# component alone and with the whole default agent, alternating the order of
# the modes between REPS repetitions; each figure is the added ns per
# syscall against that repetition's `none`, reported as the median with the
# min and max over repetitions, and as a multiple of the floor (an empty
# program on raw `sys_enter`).
#
# A second pass (one rep, kernel.bpf_stats_enabled=1 for its duration only)
# takes the kernel's own accounting of the BPF programs each mode's
# processes hold: runs and run time per syscall of the loop. The statistics
# themselves add two clock reads to every run (tens of ns in a VM), so the
# run time of the empty floor program per run is taken off every program's
# runs ("BPF net ns"); the added ns not spent in BPF programs is the
# kernel's dispatch (the syscall slow path and tracepoint callbacks).
#
# Modes (MODES to choose): none, floor, floor-exit (an empty program of the
# hot path's own kind on its own hook: tp_btf `sys_exit`), floor-exit-raw (an
# empty raw tracepoint on `sys_exit`), syscalls (the hot path's syscall
# probe), pids (the hot path's pid map), hotpath (syscalls + tcp + pids),
# sampled (the hot path with `syscalls = "sampled"`), execsnoop, killsnoop, sigsnoop,
# mountsnoop, exitsnoop, tcpstates (the libbpf-tool alone, with the
# manifest's arguments), default (`eunomia run` with the default
# configuration), default-TOOL (the default configuration without TOOL),
# default+TOOL (with TOOL too), legacy (execsnoop, exitsnoop, tcpstates,
# killsnoop, mountsnoop: the default tool set until 2026-12-06), cheap
# (exitsnoop, tcpstates, sigsnoop: no syscall tracepoint, execs and mounts
# from the hot path; the default tool set since).
#
# Env: REPS (default 5), CALLS (default 5000000), CPU (default 1), STATS=0
# to skip the bpf_stats pass, OUT (JSON, default target/bench/cost.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "cost: run as root (BPF)" >&2; exit 1; }

REPS=${REPS:-5}
CALLS=${CALLS:-5000000}
CPU=${CPU:-1}
STATS=${STATS:-1}
OUT=${OUT:-target/bench/cost.json}
BIN=${BIN:-target/release}
read -r -a MODES <<<"${MODES:-none floor syscalls pids hotpath sampled exitsnoop tcpstates sigsnoop default cheap}"
mkdir -p "$(dirname "$OUT")"
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release -q -p eunomia -p eunomia-tests --bin eunomia --bin bench-floor --bin bench-getppid
fi
WORK=$(mktemp -d /tmp/eunomia-cost.XXXXXX)
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  stop 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
  rm -rf "$WORK"
}
trap cleanup EXIT

agent_config() {
  case $1 in
  syscalls) printf '[hotpath]\nsyscalls = true\ntcp = false\npids = false\n' ;;
  pids) printf '[hotpath]\nsyscalls = false\ntcp = false\npids = true\n' ;;
  hotpath) printf '[hotpath]\nsyscalls = true\ntcp = true\npids = true\n' ;;
  sampled) printf '[hotpath]\nsyscalls = "sampled"\ntcp = true\npids = true\n' ;;
  default) return 0 ;;
  default-*)
    local drop=${1#default-} tools
    tools=$(default_tools)
    tools=$(sed -E "s/\"$drop\"(, )?//; s/, \]/]/" <<<"$tools")
    printf '[tools]\n%s\n' "$tools"
    return 0
    ;;
  default+*)
    default_tools | sed -E "s/\]\$/, \"${1#default+}\"]/; s/^/[tools]\n/"
    return 0
    ;;
  legacy)
    printf '[tools]\nenabled = ["execsnoop", "exitsnoop", "tcpstates", "killsnoop", "mountsnoop"]\n'
    return 0
    ;;
  cheap)
    printf '[tools]\nenabled = ["exitsnoop", "tcpstates", "sigsnoop"]\n'
    return 0
    ;;
  esac
  printf '[tools]\nenabled = []\n[rules]\nenabled = false\n[enrich]\ncontainer_stats = false\n'
}

# the default configuration's `[tools] enabled = [...]` line
default_tools() {
  "$BIN/eunomia" config default | awk '/^\[tools\]/ {t = 1} t && /^enabled =/ {print; exit}'
}

tool_args() {
  case $1 in
  execsnoop) echo "-T -U -x -q" ;;
  exitsnoop | mountsnoop) echo "-t" ;;
  tcpstates) echo "-T -w" ;;
  *) echo "" ;;
  esac
}

# wait_for FILE TEXT: until FILE contains TEXT (at most 30 s)
wait_for() {
  for _ in $(seq 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cost: timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

# start MODE: attaches MODE's programs in the background; sets PID
start() {
  PID=
  case $1 in
  none) ;;
  floor | floor-exit | floor-exit-raw)
    mkfifo "$WORK/fifo"
    local prog=bench_floor
    [ "$1" = floor-exit ] && prog=bench_exit_floor
    [ "$1" = floor-exit-raw ] && prog=bench_exit_raw_floor
    "$BIN/bench-floor" "$prog" <"$WORK/fifo" >"$WORK/floor.log" 2>&1 &
    PID=$!
    exec 3>"$WORK/fifo"
    wait_for "$WORK/floor.log" attached
    ;;
  syscalls | pids | hotpath | sampled | default | default-* | default+* | legacy | cheap)
    agent_config "$1" >"$WORK/agent.toml"
    EUNOMIA_SOCKET="$WORK/agent.sock" "$BIN/eunomia" run --config "$WORK/agent.toml" --interval 10s >/dev/null 2>"$WORK/agent.log" &
    PID=$!
    wait_for "$WORK/agent.log" "hot path attached"
    case $1 in default* | legacy | cheap) sleep 2 ;; esac # the tools attach after the hot path
    ;;
  *)
    # shellcheck disable=SC2046
    stdbuf -oL "/usr/sbin/$1" $(tool_args "$1") >"$WORK/tool.log" 2>&1 &
    PID=$!
    wait_for "$WORK/tool.log" .
    ;;
  esac
  sleep 0.3
}

stop() {
  if [ -e "$WORK/fifo" ]; then exec 3>&-; rm -f "$WORK/fifo"; fi
  if [ -n "${PID:-}" ]; then
    kill -INT "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=
}

# CPU time of the loop's thread (not wall time): on a shared machine the time
# other processes hold the CPU is left out; the syscall path is all counted.
loop() { taskset -c "$CPU" "$BIN/bench-getppid" "$CALLS" --cpu; }

# Programs of others on the syscall hooks (another agent, a tool, a test):
# while any is attached the syscall slow path is taken anyway, and the
# figures below measure only what each mode adds on top of it.
foreign_hooks() {
  { bpftool perf list 2>/dev/null | grep -oE "sys_(enter|exit)[a-z0-9_]*" || true
    bpftool link list 2>/dev/null | grep -oE "'sys_(enter|exit)'" || true; } | sort | uniq -c | tr -s ' ' | paste -sd, -
}
FOREIGN=$(foreign_hooks)
if [ -n "$FOREIGN" ]; then
  echo "cost: WARNING: other programs are attached to syscall hooks ($FOREIGN): the figures are not the cost on a machine without them" >&2
fi

reverse() { local i; for ((i = $#; i > 0; i--)); do printf '%s ' "${!i}"; done; }
sysctl -qw kernel.bpf_stats_enabled=0
for rep in $(seq "$REPS"); do
  order=("${MODES[@]}")
  [ $((rep % 2)) = 0 ] && read -r -a order <<<"$(reverse "${MODES[@]}")"
  declare -A NS=()
  for mode in "${order[@]}"; do
    start "$mode"
    NS[$mode]=$(loop)
    stop
    printf '  rep %d %-10s %8.2f ns/call\n' "$rep" "$mode" "${NS[$mode]}" >&2
  done
  for mode in "${MODES[@]}"; do
    awk -v a="${NS[$mode]}" -v b="${NS[none]}" 'BEGIN {printf "%.2f\n", a-b}' >>"$WORK/add.$mode"
  done
done

if [ "$STATS" = 1 ]; then
  sysctl -qw kernel.bpf_stats_enabled=1
  for mode in "${MODES[@]}"; do
    [ "$mode" = none ] && continue
    start "$mode"
    python3 scripts/bench/bpfstats.py snap "$PID" "$WORK/a.json"
    loop >/dev/null
    python3 scripts/bench/bpfstats.py snap "$PID" "$WORK/b.json"
    stop
    python3 scripts/bench/bpfstats.py diff "$WORK/a.json" "$WORK/b.json" "$CALLS" >"$WORK/bpf.$mode"
  done
  sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
fi

FOREIGN_END=$(foreign_hooks)
python3 - "$WORK" "$OUT" "$CALLS" "$REPS" "$CPU" "$FOREIGN,$FOREIGN_END" "${MODES[@]}" <<'PY'
import json, statistics, sys
from pathlib import Path
work, out, calls, reps, cpu, foreign, modes = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6].strip(","), sys.argv[7:]
res = {"calls": int(calls), "reps": int(reps), "foreign_syscall_hooks": foreign, "modes": {}}
if foreign:
    print(f"WARNING: other programs were on syscall hooks during the run ({foreign}): figures are on top of them")
for m in modes:
    add = [float(x) for x in (work / f"add.{m}").read_text().split()]
    bpf = json.loads((work / f"bpf.{m}").read_text()) if (work / f"bpf.{m}").exists() else []
    res["modes"][m] = {"added_ns": add, "median": statistics.median(add), "min": min(add), "max": max(add),
                       "bpf": [{"program": n, "runs_per_call": r, "ns_per_call": ns} for n, r, ns in bpf]}
floor = res["modes"].get("floor", {}).get("median")
fb = res["modes"].get("floor", {}).get("bpf", [])
stats_per_run = (fb[0]["ns_per_call"] / fb[0]["runs_per_call"]) if fb and fb[0]["runs_per_call"] else 0.0
res["stats_ns_per_run"] = stats_per_run
print(f"getppid x {calls}, {reps} reps alternating, pinned to CPU {cpu}: added ns (thread CPU time) per syscall against none")
print(f"{'mode':<11} {'added ns (median)':>17} {'[min .. max]':>18} {'x floor':>8} {'BPF net ns':>10} {'BPF runs':>9} {'dispatch ns':>12}")
for m, r in res["modes"].items():
    runs = sum(p["runs_per_call"] for p in r["bpf"])
    bpf_ns = max(0.0, sum(p["ns_per_call"] for p in r["bpf"]) - runs * stats_per_run)
    xf = f"{r['median'] / floor:.2f}" if floor else "-"
    r["x_floor"] = None if not floor else r["median"] / floor
    r["bpf_ns"], r["dispatch_ns"] = bpf_ns, r["median"] - bpf_ns
    rng = f"[{r['min']:.1f} .. {r['max']:.1f}]"
    print(f"{m:<11} {r['median']:>17.1f} {rng:>18} {xf:>8} {bpf_ns:>10.1f} {runs:>9.2f} {r['median'] - bpf_ns:>12.1f}")
print(f"\nBPF programs per syscall of the loop (bpf_stats pass; run time includes the statistics' own {stats_per_run:.1f} ns per run), per mode:")
for m, r in res["modes"].items():
    for p in r["bpf"]:
        if p["runs_per_call"] > 0.001 or p["ns_per_call"] > 0.05:
            print(f"  {m:<11} {p['program']:<18} {p['runs_per_call']:>6.2f} runs  {p['ns_per_call']:>7.2f} ns")
Path(out).write_text(json.dumps(res, indent=2) + "\n")
print(f"wrote {out}")
PY
