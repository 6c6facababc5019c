#!/usr/bin/env python3
"""Checks the import rules of docs/architecture.md over supervisor/src: no
import circle between two top-level modules, and no import from a lower
layer to a higher one (sources may not import stages, stages not sinks,
...). Reads `crate::x` paths outside comments and unit-test modules.
Prints each violation and exits 1 when there is one.

Usage: scripts/check-layers.py   (from anywhere in the repository)
"""
import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent / "supervisor" / "src"

# The layers of docs/architecture.md; a module may import its own layer's
# shared parts (2) and any lower layer.
LAYERS = {
    2: "pipeline context selfmetrics host textpos sync trust BadInput schema memory systemd logging",
    3: "hotpath http cgroups logs tools",
    4: "enrich rules aggregate traces",
    5: "sinks control live",
    6: "agent overhead budget commands cli config reload preflight flamegraph top seccomp standalone",
}
LAYER = {m: n for n, ms in LAYERS.items() for m in ms.split()}
# The one import between two modules of one layer that the docs allow.
ALLOWED = {("http", "hotpath")}


def imports(text):
    """Top-level module names named through `crate::` in code."""
    text = text.split("#[cfg(test)]\nmod tests")[0]
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    names = set(re.findall(r"crate::(\w+)", code))
    for group in re.findall(r"use crate::\{([^;]*)\};", code, re.S):
        depth, part, parts = 0, "", []
        for ch in group:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                parts.append(part)
                part = ""
            else:
                part += ch
        parts.append(part)
        names |= {re.match(r"\w+", p.strip()).group(0) for p in parts if p.strip()}
    return names


def main():
    graph, where = defaultdict(set), defaultdict(set)
    for path in sorted(ROOT.rglob("*.rs")):
        top = path.relative_to(ROOT).parts[0].removesuffix(".rs")
        if top in ("lib", "main", "testing") or "test" in path.name:
            continue
        for name in imports(path.read_text()) - {top}:
            graph[top].add(name)
            where[(top, name)].add(str(path.relative_to(ROOT)))

    def reaches(a, b):
        seen, todo = set(), [a]
        while todo:
            for y in graph.get(todo.pop(), ()):
                if y == b:
                    return True
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return False

    bad = []
    for a in sorted(graph):
        for b in sorted(graph[a]):
            if a not in LAYER:
                bad.append(f"{a}: a top-level module without a layer (add it to LAYERS)")
            elif (a, b) in ALLOWED:
                continue
            elif reaches(b, a):
                bad.append(f"circle: {a} -> {b} -> ... -> {a} ({', '.join(sorted(where[(a, b)]))})")
            elif LAYER.get(b, 2) > LAYER[a] or (LAYER.get(b) == LAYER[a] and LAYER[a] in (3, 4)):
                bad.append(f"upward: {a} (layer {LAYER[a]}) imports {b} (layer {LAYER.get(b)}) "
                           f"in {', '.join(sorted(where[(a, b)]))}")
    for line in sorted(set(bad)):
        print(line)
    if bad:
        return 1
    print(f"check-layers: {len(graph)} modules, no circle, no upward import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
