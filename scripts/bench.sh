#!/usr/bin/env bash
# The cost of watching, in one command (as root, about 10 minutes on 2 cores):
#   workload   nginx + wrk: requests/s and p99 with nothing, with `eunomia run`
#              in its default configuration (OTLP to a local receiver), and
#              with the hot path alone; CPU per million requests
#   syscalls   added ns per syscall: empty-program floor, eunomia, syscount
#              (scripts/bench-overhead.sh)
#   cost       added ns per syscall of each component alone and of the
#              default agent, with bpf_stats attribution (scripts/bench/cost.sh)
#   events     exec storm with execsnoop supervised: events received vs
#              processes started, CPU per 10,000 events
#   footprint  RSS after 60 s, stripped binary size, time to first metrics
#   criterion  parser, rules and pipeline throughput
# Prints a table and writes target/bench/bench.json (parts in target/bench/).
#
# Env: QUICK=1 for a short smoke run (fewer and shorter repetitions).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (BPF)" >&2; exit 1; }

OUT=target/bench
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then
  export REPS=1 DURATION=3 RUN_S=5 SECONDS_STORM=3 CALLS=2000000 TCP_PAIRS=10
fi
export EUNOMIA=target/release/eunomia BIN=target/release

step() { printf '\033[1;34mbench:\033[0m %s\n' "$*" >&2; }

step "building release binaries"
cargo build --release -q -p eunomia -p eunomia-tests --bins

step "OTLP receiver for the default configuration"
"$BIN/otlp-sink" > "$OUT/otlp.endpoint" &
SINK=$!
trap 'kill $SINK 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/otlp.endpoint" ] && break; sleep 0.05; done
sed "s|@OTLP@|$(head -1 "$OUT/otlp.endpoint")|" scripts/bench/default.toml.in > "$OUT/default.toml"

step "workload overhead (nginx + wrk)"
DEFAULT_CONFIG="$OUT/default.toml" bash scripts/bench/workload.sh > "$OUT/workload.lines"
head -1 "$OUT/workload.lines" > "$OUT/workload.json"
sed -n 2p "$OUT/workload.lines" > "$OUT/fixed_rate.json"
step "syscall overhead"
REPS=${REPS:-5} OUT="$OUT/overhead.json" bash scripts/bench-overhead.sh > "$OUT/overhead.txt"
step "cost breakdown per component (getppid loop, bpf_stats)"
REPS=${REPS:-5} OUT="$OUT/cost.json" BUILD=0 MODES="${COST_MODES:-none floor syscalls pids hotpath sampled exitsnoop tcpstates sigsnoop default legacy default+mountsnoop}" \
  bash scripts/bench/cost.sh > "$OUT/cost.txt"
step "event rate (exec storm)"
bash scripts/bench/events.sh > "$OUT/events.json"
step "footprint"
bash scripts/bench/footprint.sh > "$OUT/footprint.json"
step "criterion: parsers"
cargo bench -q -p parsers --bench throughput -- summary-only > "$OUT/parsers.txt" 2>/dev/null
step "criterion: rules and pipeline"
cargo bench -q -p eunomia --bench rules > "$OUT/rules.txt" 2>/dev/null
cargo bench -q -p eunomia --bench pipeline > "$OUT/pipeline.txt" 2>/dev/null || true

python3 scripts/bench/report.py "$OUT"
