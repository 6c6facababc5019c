"""Per-component cost from a running agent's live overhead metrics
(`eunomia status --json`, the eunomia_overhead_* self-metrics).

  components.py snap OUT         CPU seconds so far per component (process
                                 CPU + BPF run time), from status JSON on stdin
  components.py diff A B MREQ    per component: CPU s per million requests
                                 between snapshots A and B (MREQ: requests
                                 served meanwhile, in millions), as JSON
"""
import json
import sys


def snap(status):
    out = {}
    for m in status.get("self_metrics", []):
        if m["name"] in ("eunomia_overhead_process_cpu_seconds_total",
                         "eunomia_overhead_bpf_run_seconds_total"):
            c = m["labels"].get("component", "?")
            part = "process" if "process" in m["name"] else "bpf"
            out.setdefault(c, {"process": 0.0, "bpf": 0.0})[part] += m["value"]
    return out


def main():
    if sys.argv[1] == "snap":
        try:
            status = json.load(sys.stdin)
        except json.JSONDecodeError:
            status = {}
        json.dump(snap(status), open(sys.argv[2], "w"))
    else:
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        mreq = float(sys.argv[4])
        res = {}
        for c, v in b.items():
            v0 = a.get(c, {"process": 0.0, "bpf": 0.0})
            res[c] = {k: round((v[k] - v0[k]) / mreq, 4) for k in ("process", "bpf")}
        print(json.dumps(res))


if __name__ == "__main__":
    main()
