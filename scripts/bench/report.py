"""Assembles the parts of scripts/bench.sh into one table and bench.json."""
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.exists() and p.read_text().strip() else {}


def thrpt(text, name):
    """Criterion's middle throughput estimate for bench `name`, in elements/s."""
    m = re.search(re.escape(name) + r".*?thrpt:\s+\[\S+ \S+ (\S+) (\S+)", text, re.S)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}.get(unit, 1)
    return value * scale


def parsers_summary(text):
    rows = {}
    for line in text.splitlines():
        m = re.match(r"(\S+)\s+([\d.]+)M \(.*?\)\s+([\d.]+)M \(.*?\)\s+([\d.]+)$", line)
        if m:
            rows[m.group(1)] = {"memchr_lines_per_cpu_s": float(m.group(2)) * 1e6,
                                "parse_lines_per_cpu_s": float(m.group(3)) * 1e6,
                                "ratio": float(m.group(4))}
    return rows


result = {
    "workload": load("workload.json"),
    "syscalls": load("overhead.json"),
    "events": load("events.json"),
    "footprint": load("footprint.json"),
    "parsers": parsers_summary((out / "parsers.txt").read_text() if (out / "parsers.txt").exists() else ""),
}
rules = (out / "rules.txt").read_text() if (out / "rules.txt").exists() else ""
pipeline = (out / "pipeline.txt").read_text() if (out / "pipeline.txt").exists() else ""
result["rules_events_per_s"] = {
    "evaluate": thrpt(rules, "evaluate_default_rules"),
    "engine": thrpt(rules, "engine_default_rules"),
}
result["pipeline_events_per_s"] = {m.group(1): thrpt(pipeline, m.group(1))
                                   for m in re.finditer(r"^(\S+/\S+)\s*\n?\s+time:", pipeline, re.M)}
(out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")

rows = []
w = result["workload"]
if w:
    rows += [
        ("workload: req/s none / default / hot path",
         f"{w['none']['rps']:.0f} / {w['default']['rps']:.0f} / {w['hotpath']['rps']:.0f}", ""),
        ("workload: req/s ratio default / none", f"{w['rps_ratio_default']:.3f}", "target >= 0.98"),
        ("workload: req/s ratio hot path / none", f"{w['rps_ratio_hotpath']:.3f}", "target >= 0.99"),
        ("workload: p99 ms none / default / hot path",
         f"{w['none']['p99_ms']} / {w['default']['p99_ms']} / {w['hotpath']['p99_ms']}", ""),
        ("workload: machine CPU s per M requests none / default / hot path",
         f"{w['none']['machine_cpu_s_per_million_requests']} / {w['default']['machine_cpu_s_per_million_requests']}"
         f" / {w['hotpath']['machine_cpu_s_per_million_requests']}", ""),
        ("workload: eunomia CPU s per M requests default / hot path",
         f"{w['default']['eunomia_cpu_s_per_million_requests']} / {w['hotpath']['eunomia_cpu_s_per_million_requests']}", ""),
    ]
def tcp_drop(run, series="per_wall_s"):
    """The median drop of one bench-tcp run, or n/a."""
    return run[series]["drop_percent"] if run else "n/a"


s = result["syscalls"]
if s:
    added = s.get("syscall_added_ns", {})
    rows += [
        ("syscall: added ns floor / eunomia / syscount",
         " / ".join(f"{added.get(m, float('nan')):.1f}" for m in ("floor", "eunomia", "syscount")), ""),
        ("syscall: eunomia / floor", f"{s.get('eunomia_over_floor')}", "target <= 1.5"),
        ("syscall: eunomia / syscount", f"{s.get('eunomia_over_syscount')}", "target <= 0.5"),
        ("tcp: fewer connections/s, hook floor / TCP probe %",
         f"{tcp_drop(s.get('tcp_floor'))} / {tcp_drop(s.get('tcp_probe'))}", "probe < 5"),
        ("tcp: same, per CPU-second of the workload %",
         f"{tcp_drop(s.get('tcp_floor'), 'per_cpu_s')} / {tcp_drop(s.get('tcp_probe'), 'per_cpu_s')}", ""),
    ]
e = result["events"]
if e:
    rows += [
        ("events: processes started / events received",
         f"{e['processes_started']} / {e['events_received']} ({e['exec_rate_per_s']}/s)", "none lost, or counted"),
        ("events: tool-reported lost / pipeline dropped",
         f"{e['tool_reported_lost']} / {e['pipeline_dropped']}", ""),
        ("events: eunomia CPU s per 10k events", f"{e['cpu_s_per_10k_events']}", ""),
    ]
f = result["footprint"]
if f:
    rows += [
        (f"footprint: agent RSS MB after {f['agent_rss_mb_after_s']} s (tools)",
         f"{f['agent_rss_mb']} ({f['tools_rss_mb']})", "target < 30"),
        ("footprint: stripped binary MB", f"{f['stripped_binary_mb']}", "target < 15"),
        ("footprint: first metrics s (poll 1 s)", f"{f['first_metrics_s']}", "target < 2"),
    ]
for name, r in result["parsers"].items():
    rows.append((f"parsers: {name} M lines per CPU-s (ratio to memchr split)",
                 f"{r['parse_lines_per_cpu_s'] / 1e6:.2f} ({r['ratio']:.3f})", "execsnoop >= 5"))
for name, v in result["rules_events_per_s"].items():
    if v:
        rows.append((f"rules: {name} M events/s", f"{v / 1e6:.2f}", ">= 2"))
for name, v in result["pipeline_events_per_s"].items():
    if v:
        rows.append((f"pipeline: {name} M events/s", f"{v / 1e6:.2f}", ">= 1"))

width = max(len(r[0]) for r in rows) if rows else 10
print(f"{'measure':<{width}}  {'value':<32} target")
for name, value, target in rows:
    print(f"{name:<{width}}  {value:<32} {target}")
print(f"\nJSON: {out / 'bench.json'}")
