#!/usr/bin/env python3
"""tools/check_layers.py: core's file-level call graph from `nm`, its loops and its upward calls.

Reads the objects of core's sub-folders (BUILD/core/<layer>/**/*.o), links each undefined symbol
to the object that defines it, and prints the strongly connected components (files that call
each other in a loop) and every call from a lower layer to a higher one. The layer order is
LAYERS below (lowest first). Fails when the biggest loop has more files than the budget in
tools/house_allow.txt ("layers-max-cycle N  reason"): the budget only goes down as loops break.
  usage: check_layers.py [BUILD_DIR] [--src SOURCE_ROOT] [--allow FILE] [--quiet]
"""
import os, subprocess, sys

LAYERS = ["obs", "tensor", "cpu", "ops", "graph", "io"]  # lowest first; graph/passes is graph


def layer_of(rel):
    return rel.split("/")[0]


def objects(build, src="."):
    root = os.path.join(build, "core")
    out = []
    for layer in LAYERS:
        for d, _, files in os.walk(os.path.join(root, layer)):
            for f in sorted(files):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)[:-2]
                # only objects whose source still exists (a moved file leaves a stale .o)
                if f.endswith(".o") and os.path.exists(os.path.join(src, "core", rel + ".c")):
                    out.append((rel, p))
    return out


def symbols(path):
    text = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defs, uses = set(), set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            uses.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVW" and parts[1].isupper():
            defs.add(parts[2])
    return defs, uses


def graph(objs):
    owner, uses = {}, {}
    for name, path in objs:
        d, u = symbols(path)
        for s in d:
            owner.setdefault(s, name)
        uses[name] = u
    edges = {n: set() for n in uses}
    for n, u in uses.items():
        for s in u:
            o = owner.get(s)
            if o and o != n:
                edges[n].add(o)
    return edges


def sccs(edges):
    index, low, stack, on, out, i = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def budget(allow):
    try:
        for line in open(allow):
            f = line.split()
            if len(f) >= 2 and f[0] == "layers-max-cycle":
                return int(f[1])
    except FileNotFoundError:
        pass
    return 1


def main(argv):
    build, src, allow, quiet = "build", ".", os.path.join(os.path.dirname(__file__), "house_allow.txt"), False
    rest = []
    it = iter(argv)
    for a in it:
        if a == "--allow":
            allow = next(it)
        elif a == "--src":
            src = next(it)
        elif a == "--quiet":
            quiet = True
        else:
            rest.append(a)
    if rest:
        build = rest[0]
    objs = objects(build, src)
    if not objs:
        print(f"check_layers: no objects under {build}/core/<layer>/ (build first)")
        return 1
    edges = graph(objs)
    loops = sorted(sccs(edges), key=len, reverse=True)
    up = sorted((a, b) for a, bs in edges.items() for b in bs
                if LAYERS.index(layer_of(a)) < LAYERS.index(layer_of(b)))
    biggest = len(loops[0]) if loops else 1
    if not quiet:
        print(f"check_layers: {len(edges)} files, {len(loops)} loop(s), biggest {biggest} files")
        for c in loops:
            print(f"  loop of {len(c)}: " + " ".join(c))
        print(f"  {len(up)} upward call(s) (lower layer -> higher):")
        for a, b in up:
            print(f"    {a} -> {b}")
    limit = budget(allow)
    if biggest > limit:
        print(f"check_layers: FAILED: biggest loop has {biggest} files, budget {limit} ({allow})")
        return 1
    print(f"check_layers: ok (biggest loop {biggest} <= budget {limit})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
