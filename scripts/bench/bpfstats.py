"""The kernel's own accounting of BPF programs (`bpftool prog show --json`;
run_time_ns and run_cnt are filled while kernel.bpf_stats_enabled is 1).

  bpfstats.py snap PID OUT           run time and count of the programs that
                                     process PID and its descendants hold (the
                                     ones a mode loaded), as JSON
                                     {id: [name, ns, runs]}
  bpfstats.py diff A B CALLS         per program: runs and ns per call of the
                                     workload between snapshots A and B, as
                                     JSON [[name, runs_per_call, ns_per_call]]
"""
import json
import os
import subprocess
import sys


def progs():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def tree(pid):
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def held(pid):
    """Ids of the BPF programs pid and its descendants hold."""
    ids = set()
    for p in tree(pid):
        try:
            fds = os.listdir(f"/proc/{p}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{p}/fdinfo/{fd}") as f:
                    for line in f:
                        if line.startswith("prog_id:"):
                            ids.add(int(line.split()[1]))
            except OSError:
                pass
    return ids


def main():
    cmd = sys.argv[1]
    if cmd == "snap":
        mine = held(int(sys.argv[2]))
        snap = {p["id"]: [p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0)]
                for p in progs() if p["id"] in mine}
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
