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
    "cost": load("cost.json"),
    "fixed_rate": load("fixed_rate.json"),
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
m = re.search(r"^otlp_logs_encode per CPU-s: ([\d.]+)M \[([\d.]+), ([\d.]+)\] messages path "
              r"([\d.]+)M \[([\d.]+), ([\d.]+)\] ratio ([\d.]+) \[([\d.]+), ([\d.]+)\]", pipeline, re.M)
if m:
    v = [float(x) for x in m.groups()]
    result["otlp_logs_per_cpu_s"] = {"median": v[0] * 1e6, "min": v[1] * 1e6, "max": v[2] * 1e6,
                                     "messages_path_median": v[3] * 1e6, "ratio": v[6],
                                     "ratio_min": v[7], "ratio_max": v[8]}
(out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")

def spread(w, mode):
    """The per-rep ratio of `mode` to none: median [min, max]."""
    r = w.get(f"rps_ratio_{mode}_per_rep")
    if not r:
        return f"{w[f'rps_ratio_{mode}']:.3f}"
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"


rows = []
c = result["cost"]
if c:
    m = c["modes"]
    def added(name):
        r = m.get(name)
        return f"{r['median']:.1f} [{r['min']:.1f}, {r['max']:.1f}]" if r else "n/a"
    def xf(name):
        r = m.get(name)
        return f"{r['x_floor']:.2f}" if r and r.get("x_floor") is not None else "n/a"
    for name in [k for k in m if k != "none"]:
        rows.append((f"cost: {name} added ns/syscall, median [min, max] (x floor)",
                     f"{added(name)} ({xf(name)})",
                     {"default": "x floor <= 1.2", "sampled": "x floor <= 0.2"}.get(name, "")))
w = result["workload"]
if w:
    rows += [
        ("workload: req/s none / default / hot path",
         f"{w['none']['rps']:.0f} / {w['default']['rps']:.0f} / {w['hotpath']['rps']:.0f}", ""),
        ("workload: req/s ratio default / none, median [min, max] of reps",
         spread(w, "default"), "target >= 0.97"),
        ("workload: req/s ratio hot path / none, median [min, max] of reps",
         spread(w, "hotpath"), "target >= 0.98"),
        ("workload: req/s ratio floor / none (an empty program: the VM's resolution)",
         spread(w, "floor") if "rps_ratio_floor" in w else "n/a", ""),
        ("workload: p99 ms none / default / hot path",
         f"{w['none']['p99_ms']} / {w['default']['p99_ms']} / {w['hotpath']['p99_ms']}", ""),
        ("workload: machine CPU s per M requests none / default / hot path",
         f"{w['none']['machine_cpu_s_per_million_requests']} / {w['default']['machine_cpu_s_per_million_requests']}"
         f" / {w['hotpath']['machine_cpu_s_per_million_requests']}", ""),
        ("workload: eunomia CPU s per M requests default / hot path",
         f"{w['default']['eunomia_cpu_s_per_million_requests']} / {w['hotpath']['eunomia_cpu_s_per_million_requests']}", ""),
    ]
for mode, comps in (w.get("components_cpu_s_per_million_requests") or {}).items() if w else []:
    for name, v in sorted(comps.items()):
        rows.append((f"workload {mode}: {name} CPU s per M requests, process / BPF (live metrics)",
                     f"{v['process']:.4f} / {v['bpf']:.4f}", ""))
fr = result["fixed_rate"]
if fr:
    def med(r):
        return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"
    rows += [
        (f"fixed rate {fr['fixed_rate']}/s: p50 / p99 ms none / default / hot path",
         " / ".join(f"{fr[m]['p50_ms']:.2f}/{fr[m]['p99_ms']:.2f}" for m in ("none", "default", "hotpath")), ""),
        ("fixed rate: p99 ratio default / none, median [min, max]", med(fr["p99_ratio_default"]), "target <= 1.05"),
        ("fixed rate: p99 ratio hot path / none", med(fr["p99_ratio_hotpath"]), ""),
        ("fixed rate: machine CPU per request default / none", med(fr["cpu_ratio_default"]), "target <= 1.03"),
        ("fixed rate: machine CPU per request hot path / none", med(fr["cpu_ratio_hotpath"]), ""),
        ("fixed rate: p99 / machine CPU per request, floor / none",
         f'{med(fr["p99_ratio_floor"])} / {med(fr["cpu_ratio_floor"])}' if "cpu_ratio_floor" in fr else "n/a", ""),
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
        target = "(earlier path, for the ratio)" if name.endswith("_messages") else ">= 1"
        rows.append((f"pipeline: {name} M events/s", f"{v / 1e6:.2f}", target))
if "otlp_logs_per_cpu_s" in result:
    o = result["otlp_logs_per_cpu_s"]
    rows.append(("pipeline: otlp_logs_encode M events per CPU-s [min, max] (x old)",
                 f"{o['median'] / 1e6:.2f} [{o['min'] / 1e6:.2f}, {o['max'] / 1e6:.2f}] ({o['ratio']:.1f}x)",
                 ">= 1"))

width = max(len(r[0]) for r in rows) if rows else 10
print(f"{'measure':<{width}}  {'value':<32} target")
for name, value, target in rows:
    print(f"{name:<{width}}  {value:<32} {target}")
print(f"\nJSON: {out / 'bench.json'}")
