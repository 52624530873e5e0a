#!/usr/bin/env python3
"""The C core's layering, checked from its #include "..." lines.

Every file under src/meshcore/ belongs to the layer named by its directory
(src/meshcore/route/rbac.c -> "route", src/meshcore/include/meshcore/x.h ->
"include/meshcore"). An #include "..." is an edge from the including file's
layer to the included file's layer. The rules:

  (a) no include cycle between layers;
  (b) every edge points down: to a lower tier of TIERS, or is one of the
      same-tier edges listed in SIDEWAYS;
  (c) no include cycle between files (within a layer or across layers).

Edges listed in ALLOWED_VIOLATIONS are known debts: they are left out of
(a) and (b) and printed as such. A listed edge that no longer exists is an
error too, so the list stays exactly what the tree still owes.

    python3 scripts/check_layers.py            # check; exit 1 with the offending edges
    python3 scripts/check_layers.py --graph    # also print layers and their edges
    python3 scripts/check_layers.py --root DIR # another tree (DIR holds the layer dirs)
"""
import argparse
import os
import re
import sys

# ---- the rules: edit here ----------------------------------------------------

# Bottom -> top. A layer may include its own files and those of any lower
# tier; a layer not listed here is an error (add it where it belongs).
TIERS = [
    ["include/meshcore"],       # public types and API: the only headers ext/ includes
    ["core"],                   # loop, timers, pools, hashing, matchers
    ["net", "http", "stats"],   # sockets and TLS; HTTP codecs; counters, logs
    ["route"],                  # router, RBAC, retry, clusters and balancers
    ["worker"],                 # threads, loop, per-worker contexts, snapshot
    ["proxy"],                  # listener layer, TCP and HTTP proxies
    ["engine", "introspect", "primitives"],  # the engine; test hooks; the primitives for embedders
]

# Same-tier edges that are allowed (from layer, to layer). None today: net,
# http and stats do not include one another.
SIDEWAYS = set()

# Known violations, as (including file, included file) relative to the root.
# Each one is a debt to pay, not a rule: remove an entry when its edge goes.
ALLOWED_VIOLATIONS = []

# ------------------------------------------------------------------------------

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "meshcore")
INCLUDE_DIRS = ["include", "."]  # -I src/meshcore/include -I src/meshcore, after the file's own dir
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of a file path relative to the root."""
    d = os.path.dirname(rel).replace(os.sep, "/")
    return d or "."


def scan(root):
    """{file: [included file, ...]} over every .c/.h under root (relative
    paths), and a list of problems (includes that resolve to nothing)."""
    files = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            if n.endswith((".c", ".h")):
                files[os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/")] = None
    problems = []
    for rel in sorted(files):
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        deps = []
        for inc in INCLUDE_RE.findall(text):
            for base in [os.path.dirname(rel)] + INCLUDE_DIRS:
                cand = os.path.normpath(os.path.join(base, inc)).replace(os.sep, "/")
                if cand in files:
                    deps.append(cand)
                    break
            else:
                problems.append(f'{rel}: #include "{inc}" is not a file under the root')
        files[rel] = deps
    return files, problems


def sccs(graph):
    """Strongly connected components with more than one node (or a self
    loop), each as a sorted list; Tarjan's algorithm, iterative."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph.get(v, ()):
                    out.append(sorted(comp))
    return out


def check(root, tiers=None, sideways=None, allowed=None):
    """Returns (problems, notes, layer edges {(from, to): [(file, included)]})."""
    tiers = TIERS if tiers is None else tiers
    sideways = SIDEWAYS if sideways is None else sideways
    allowed = ALLOWED_VIOLATIONS if allowed is None else allowed
    tier = {layer: i for i, names in enumerate(tiers) for layer in names}
    files, problems = scan(root)
    notes = []
    allowed_set = set(allowed)
    present = {(f, d) for f, deps in files.items() for d in deps}
    for edge in allowed:
        if edge not in present:
            problems.append(f"ALLOWED_VIOLATIONS lists {edge[0]} -> {edge[1]}, which is gone: remove it")

    edges = {}  # (from layer, to layer) -> [(file, included)], allowed violations left out
    for f, deps in files.items():
        for d in deps:
            a, b = layer_of(f), layer_of(d)
            if a == b:
                continue
            if (f, d) in allowed_set:
                notes.append(f"allowed violation: {f} -> {d} ({a} -> {b})")
                continue
            edges.setdefault((a, b), []).append((f, d))

    for layer in sorted({layer_of(f) for f in files}):
        if layer not in tier:
            problems.append(f"layer {layer!r} is not in TIERS ({', '.join(sorted(files_in(files, layer)))})")

    # (a) no cycle between layers
    lgraph = {}
    for a, b in edges:
        lgraph.setdefault(a, set()).add(b)
    for comp in sccs(lgraph):
        inner = sorted((a, b) for (a, b) in edges if a in comp and b in comp)
        detail = "; ".join(f"{a} -> {b} ({_files(edges[(a, b)])})" for a, b in inner)
        problems.append(f"include cycle between layers {', '.join(comp)}: {detail}")

    # (b) edges point down
    for (a, b), fs in sorted(edges.items()):
        if a not in tier or b not in tier:
            continue
        if tier[b] < tier[a] or (tier[b] == tier[a] and (a, b) in sideways):
            continue
        how = "up" if tier[b] > tier[a] else "sideways"
        problems.append(f"{a} -> {b} points {how}: {_files(fs)}")

    # (c) no cycle between files
    for comp in sccs({f: set(deps) for f, deps in files.items()}):
        inner = sorted((f, d) for f in comp for d in files[f] if d in comp)
        problems.append("include cycle between files: " + "; ".join(f"{f} -> {d}" for f, d in inner))
    return problems, notes, edges, files


def files_in(files, layer):
    return [f for f in files if layer_of(f) == layer]


def _files(pairs):
    return ", ".join(f"{f} -> {d}" for f, d in sorted(pairs))


def print_graph(edges, files, tiers=None):
    tiers = TIERS if tiers is None else tiers
    print("layers, bottom to top (a layer may include lower tiers):")
    for i, names in enumerate(tiers):
        for layer in names:
            n = len(files_in(files, layer))
            print(f"  tier {i}  {layer:<18} {n:3d} file(s)" + ("" if n else "  (not present)"))
    print("edges (layer -> layer: file edges):")
    for (a, b), fs in sorted(edges.items()):
        print(f"  {a} -> {b}: {len(fs)}")
        for f, d in sorted(fs):
            print(f"      {f} -> {d}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--graph", action="store_true", help="print the layers and their edges")
    ap.add_argument("--root", default=ROOT, help="the tree to check (default: src/meshcore)")
    args = ap.parse_args(argv)
    problems, notes, edges, files = check(args.root)
    if args.graph:
        print_graph(edges, files)
    for n in notes:
        print(n)
    for p in problems:
        print("LAYERING:", p)
    if problems:
        print(f"{len(problems)} layering problem(s)", file=sys.stderr)
        return 1
    print(f"layers ok: {len(files)} files, {len(edges)} layer edges, {len(notes)} allowed violation(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
