"""The kernel's own accounting of BPF programs (`bpftool prog show --json`;
run_time_ns and run_cnt are filled while kernel.bpf_stats_enabled is 1).

  bpfstats.py ids                    ids of every loaded program, one a line
  bpfstats.py snap IDFILE OUT        run time and count of the programs whose
                                     ids are NOT in IDFILE (the ones a mode
                                     loaded), as JSON {id: [name, ns, runs]}
  bpfstats.py diff A B CALLS         per program: runs and ns per call of the
                                     workload between snapshots A and B, as
                                     JSON [[name, runs_per_call, ns_per_call]]
"""
import json
import subprocess
import sys


def progs():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def main():
    cmd = sys.argv[1]
    if cmd == "ids":
        print("\n".join(str(p["id"]) for p in progs()))
    elif cmd == "snap":
        with open(sys.argv[2]) as f:
            old = {int(line) for line in f if line.strip()}
        snap = {p["id"]: [p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0)]
                for p in progs() if p["id"] not in old}
        with open(sys.argv[3], "w") as f:
            json.dump(snap, f)
    elif cmd == "diff":
        a, b = (json.load(open(p)) for p in sys.argv[2:4])
        calls = float(sys.argv[4])
        rows = {}
        for pid, (name, ns, runs) in b.items():
            _, ns0, runs0 = a.get(pid, [name, 0, 0])
            r = rows.setdefault(name, [0, 0])
            r[0] += runs - runs0
            r[1] += ns - ns0
        print(json.dumps(sorted(([n, r / calls, ns / calls] for n, (r, ns) in rows.items()),
                                key=lambda x: -x[2])))
    else:
        sys.exit(f"bpfstats.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
