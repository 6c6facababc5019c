#!/usr/bin/env bash
# Cost per sample of `eunomia flamegraph --unwind fp` against `--unwind dwarf`,
# measured in one run, alternating the two modes (the order swaps every
# repetition), several repetitions (run as root):
#
#   kernel  ns the profiler program runs per run (run_time_ns / run_cnt with
#           kernel.bpf_stats_enabled): what the profiled machine pays. dwarf
#           copies up to 16 KiB of user stack per sample. Runs on a CPU where
#           another process runs end at the filter and cost little in both
#           modes, so the ratio is a lower bound of the ratio per sample
#           taken (also printed per run, but that one grows with the load).
#   unwind  median ns user space spends unwinding one copied stack (dwarf
#           only; eunomia's own CPU, not the profiled program's); the mean,
#           with the first samples' one-off parsing of each binary's tables,
#           is printed per run.
#
# The workload is tests/fixtures/nofp.c at -O2 without frame pointers (a
# deep enough C stack: main -> outer -> middle -> hot_inner), sampled at
# FREQ Hz for SECS seconds per run. Prints each run, then per mode the median
# and spread (min..max) and the ratio dwarf / fp of the kernel medians.
# Environment: REPS (default 5), SECS (default 3), FREQ (default 199),
# EUNOMIA (the binary; default: target/release/eunomia, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REPS=${REPS:-5}
SECS=${SECS:-3}
FREQ=${FREQ:-199}
TARGET=${CARGO_TARGET_DIR:-target}

if [ "$(id -u)" != 0 ]; then
    echo "bench-flamegraph-unwind: needs root (loads BPF programs)" >&2
    exit 1
fi
if [ -z "${EUNOMIA:-}" ]; then
    cargo build --release -q -p eunomia --bin eunomia
    EUNOMIA=$TARGET/release/eunomia
fi
WORK=$(mktemp -d)
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
    kill "$WORKLOAD" 2>/dev/null || true
    sysctl -q -w kernel.bpf_stats_enabled="$OLD_STATS" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
sysctl -q -w kernel.bpf_stats_enabled=1

cc -O2 -g -fomit-frame-pointer -o "$WORK/nofp" tests/fixtures/nofp.c
TOTAL=$(( REPS * 2 * (SECS + 2) + 10 ))
"$WORK/nofp" "$TOTAL" >"$WORK/pid" &
WORKLOAD=$!
sleep 0.5

run() { # mode -> "mode kernel_ns unwind_median_ns unwind_mean_ns stack_bytes samples"
    local out
    out=$("$EUNOMIA" flamegraph --pid "$WORKLOAD" --for "${SECS}s" --freq "$FREQ" \
        --folded --user-only --cost --unwind "$1" -o "$WORK/$1.folded")
    echo "$out" | sed -n 's/^cost: unwind=\([a-z]*\) kernel_ns_per_sample=[0-9n/a]* kernel_ns_per_run=\([0-9n/a]*\) .* unwind_ns_per_sample=\([0-9n/a]*\) unwind_median_ns=\([0-9n/a]*\) stack_bytes_per_sample=\([0-9]*\) samples=\([0-9]*\).*/\1 \2 \4 \3 \5 \6/p'
}

echo "rep mode kernel_ns_per_run unwind_median_ns unwind_mean_ns stack_bytes_per_sample samples"
for rep in $(seq 1 "$REPS"); do
    if (( rep % 2 )); then order="fp dwarf"; else order="dwarf fp"; fi
    for mode in $order; do
        echo "$rep $(run "$mode")"
    done
done | tee "$WORK/runs"

python3 - "$WORK/runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l[0].isdigit()]
def col(mode, i):
    return [float(r[i]) for r in rows if r[1] == mode and r[i] != "n/a"]
med = {}
for mode in ("fp", "dwarf"):
    k, u = col(mode, 2), col(mode, 3)
    med[mode] = statistics.median(k)
    line = f"{mode:5} kernel {statistics.median(k):7.0f} ns/run ({min(k):.0f}..{max(k):.0f})"
    if u:
        line += f"  unwind {statistics.median(u):7.0f} ns/sample, median of run medians ({min(u):.0f}..{max(u):.0f})"
    print(line)
ratios = []
reps = sorted({r[0] for r in rows})
for rep in reps:
    f = [float(r[2]) for r in rows if r[0] == rep and r[1] == "fp"]
    d = [float(r[2]) for r in rows if r[0] == rep and r[1] == "dwarf"]
    if f and d and f[0] > 0:
        ratios.append(d[0] / f[0])
print(f"kernel cost per run dwarf / fp: {statistics.median(ratios):.2f}x "
      f"(per repetition {min(ratios):.2f}..{max(ratios):.2f}, {len(ratios)} reps)")
EOF
