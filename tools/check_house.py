#!/usr/bin/env python3
"""tools/check_house.py: the house rules on the C/CUDA tree: include direction, line budget, format.

  check_house.py includes [ROOT]   fail on an upward #include (see RULES and CORE_ORDER), and on
                                   a core/**/*_internal.h included from outside core/
  check_house.py lines [ROOT]      fail on a C/CUDA file over 700 lines whose first line does not
                                   say why ("generated" or "table" in that line)
  check_house.py format [ROOT]     fail when a file listed in tools/format_files.txt differs from
                                   clang-format-14 with ROOT's .clang-format
Exceptions live in ONE file, tools/house_allow.txt (or --allow FILE): each line names the rule,
the file (and for includes the included header), then the owning task and the reason. Entries
that no longer match anything are reported, so the list only shrinks.
"""
import os, re, subprocess, sys

FOLDERS = ["core", "lua", "viz", "repl", "kernels"]
EXTS = (".c", ".h", ".cu", ".cuh", ".inc")
LUA_HEADERS = {"lua.h", "lauxlib.h", "lualib.h", "luaconf.h"}
# folder -> folders it may include (besides itself)
RULES = {"core": set(), "kernels": {"core"}, "viz": {"core"}, "lua": {"core", "kernels", "viz"},
         "repl": {"core", "kernels", "viz", "lua"}}
# core's sub-folders, lowest first: a file may include its own layer and the ones below
CORE_ORDER = ["obs", "tensor", "cpu", "ops", "graph", "io"]
LIMIT = 700
INC = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def sources(root):
    for top in FOLDERS:
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith(EXTS):
                    yield os.path.relpath(os.path.join(d, f), root)


def load_allow(path):
    allow = {}
    if os.path.exists(path):
        for n, line in enumerate(open(path), 1):
            line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
            if not line:
                continue
            f = line.split()
            if f[0] == "include" and len(f) >= 4:
                allow[("include", f[1], f[2])] = n
            elif f[0] in ("lines", "format") and len(f) >= 3:
                allow[(f[0], f[1])] = n
    return allow


def where(root, src, target, quoted):
    """The folder (and core sub-folder) an include lands in, or None for a system header."""
    if os.path.basename(target) in LUA_HEADERS or target.startswith("lua5"):
        return ("lua", None)
    if quoted:
        for base in (os.path.dirname(src), "core", "lua", "viz", "kernels", "repl", "."):
            p = os.path.normpath(os.path.join(base, target))
            if os.path.exists(os.path.join(root, p)):
                parts = p.split(os.sep)
                if parts[0] in RULES:
                    sub = parts[1] if parts[0] == "core" and len(parts) > 2 else None
                    if parts[0] == "core" and parts[-1].endswith("_internal.h"):
                        sub = (sub, "internal")
                    return (parts[0], sub)
                return None
    return None


def core_sub(src):
    parts = src.split(os.sep)
    return parts[1] if len(parts) > 2 else None


def check_includes(root, allow, used):
    bad = []
    for src in sources(root):
        top = src.split(os.sep)[0]
        for n, line in enumerate(open(os.path.join(root, src), errors="replace"), 1):
            m = INC.match(line)
            if not m:
                continue
            w = where(root, src, m.group(2), m.group(1) == '"')
            if w is None:
                continue
            dst, sub = w
            internal = isinstance(sub, tuple)
            sub = sub[0] if internal else sub
            ok = dst == top or dst in RULES[top]
            why = f"{top} may not include {dst}"
            if ok and internal and top != "core":
                ok, why = False, f"{m.group(2)} is internal to core (include its public header)"
            if ok and top == "core" and dst == "core":
                a, b = core_sub(src), sub
                if a in CORE_ORDER and b in CORE_ORDER and CORE_ORDER.index(b) > CORE_ORDER.index(a):
                    ok, why = False, f"core/{a} is below core/{b} ({' < '.join(CORE_ORDER)})"
            if not ok:
                key = ("include", src, m.group(2))
                if key in allow:
                    used.add(key)
                else:
                    bad.append(f"{src}:{n}: upward include \"{m.group(2)}\": {why}")
    return bad


def check_lines(root, allow, used):
    bad = []
    for src in sources(root):
        with open(os.path.join(root, src), errors="replace") as fh:
            lines = fh.readlines()
        if len(lines) <= LIMIT:
            continue
        first = lines[0].lower() if lines else ""
        if "generated" in first or "table" in first:
            continue
        key = ("lines", src)
        if key in allow:
            used.add(key)
        else:
            bad.append(f"{src}: {len(lines)} lines (budget {LIMIT}; a generated file or table says so in its first line)")
    return bad


def check_format(root, allow, used, listing):
    bad = []
    files = [l.split("#")[0].strip() for l in open(listing)] if os.path.exists(listing) else []
    files = [f for f in files if f]
    if not files:
        return [f"{listing}: no files to check"]
    style = f"--style=file:{os.path.join(root, '.clang-format')}"
    for f in files:
        p = os.path.join(root, f)
        if not os.path.exists(p):
            bad.append(f"{f}: listed in {listing} but missing")
            continue
        out = subprocess.run(["clang-format-14", style, p], capture_output=True, text=True, check=True).stdout
        if out != open(p).read():
            bad.append(f"{f}: not clang-format-14 clean (run: clang-format-14 -i {f})")
    return bad


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    allow_path, listing = os.path.join(here, "house_allow.txt"), os.path.join(here, "format_files.txt")
    args, it = [], iter(argv)
    for a in it:
        if a == "--allow":
            allow_path = next(it)
        elif a == "--files":
            listing = next(it)
        else:
            args.append(a)
    if not args or args[0] not in ("includes", "lines", "format"):
        print(__doc__)
        return 2
    what, root = args[0], (args[1] if len(args) > 1 else ".")
    allow, used = load_allow(allow_path), set()
    if what == "includes":
        bad = check_includes(root, allow, used)
    elif what == "lines":
        bad = check_lines(root, allow, used)
    else:
        bad = check_format(root, allow, used, listing)
    for b in bad:
        print(f"check_house {what}: {b}")
    rule = {"includes": "include"}.get(what, what)  # the allowlist names the include rule "include"
    stale = sorted(k for k in allow if k[0] == rule and k not in used)
    for k in stale:
        print(f"check_house {what}: note: allowlist entry no longer needed (delete it): {' '.join(k[1:])}")
    if bad:
        print(f"check_house {what}: FAILED ({len(bad)})")
        return 1
    print(f"check_house {what}: ok ({len(used)} allowlisted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
