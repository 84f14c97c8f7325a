"""step_run.py: the training-step benchmark (issue 22, point 2): chalk eager, chalk captured (one CUDA
Graph per step) and PyTorch eager on the MLP (784-512-256-10, batch 1024, SGD+momentum) and the char
GPT (2 layers, 4 heads, dim 64, context 32, batch 32, Adam), alternating fresh processes in one run.

  python3 bench/gpu/step_run.py --chalk build/chalk [--rounds 5] [--out bench/results] [--budget S]

Each process prints its median step time (step_chalk.lua / step_torch.py) and its launches per step;
the table gives the median over rounds of each contender, and the ratios to PyTorch eager against
the targets (captured <= 0.6, eager <= 0.9). Writes step-<GPU>-<date>.md into --out."""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout, log):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log.append("$ %s\n(timed out after %d s)" % (" ".join(cmd), timeout))
        return None, None, "timed out"
    log.append("$ %s\n%s%s(exit %d, %.1f s)" % (" ".join(cmd), p.stdout, p.stderr, p.returncode, time.time() - t0))
    res = launches = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = float(line.split()[2])
        elif line.startswith("LAUNCHES "):
            launches = line[len("LAUNCHES "):]
    err = None if p.returncode == 0 else (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:300]
    return res, launches, err


def gpu_name():
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                           timeout=30)
        return p.stdout.strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else "no-GPU"
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "no-GPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chalk", default="build/chalk")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="mlp,gpt")
    ap.add_argument("--budget", type=float, default=0, help="seconds after which no new process starts")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    start = time.time()
    contenders = [("chalk eager", lambda m: [args.chalk, os.path.join(HERE, "step_chalk.lua"), m, "eager", args.device]),
                  ("chalk captured", lambda m: [args.chalk, os.path.join(HERE, "step_chalk.lua"), m, "captured",
                                                args.device]),
                  ("torch eager", lambda m: [args.python, os.path.join(HERE, "step_torch.py"), m, args.device])]
    models = args.models.split(",")
    res = {(m, c): [] for m in models for c, _ in contenders}
    launches, errors, log = {}, {}, []
    for r in range(args.rounds):
        for m in models:
            for c, mk in contenders:
                if args.budget and time.time() - start > args.budget:
                    errors.setdefault((m, c), "budget ran out after round %d" % r)
                    continue
                v, ln, err = run(mk(m), 120, log)
                if v is not None:
                    res[(m, c)].append(v)
                if ln:
                    launches[(m, c)] = ln
                if err:
                    errors[(m, c)] = err
    gpu = gpu_name()
    rows = ["| model | contender | step (median of process medians) | per-process medians (ms) | vs torch eager | target |"
            " launches per step |", "|---|---|---|---|---|---|---|"]
    summary = []
    for m in models:
        t = statistics.median(res[(m, "torch eager")]) if res[(m, "torch eager")] else None
        for c, _ in contenders:
            vs = res[(m, c)]
            med = statistics.median(vs) if vs else None
            ratio = med / t if med and t else None
            target = {"chalk eager": 0.9, "chalk captured": 0.6}.get(c)
            met = "" if target is None or ratio is None else (" (met)" if ratio <= target else " (not met)")
            rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                m, c, "%.4f ms" % (med * 1e3) if med else "failed: %s" % errors.get((m, c), "?"),
                ", ".join("%.4f" % (v * 1e3) for v in vs) or "-", "%.2f" % ratio if ratio else "-",
                "<= %.1f%s" % (target, met) if target else "-", launches.get((m, c), "-").replace("|", "/")))
            if ratio:
                summary.append("%s %s: %.2f x torch eager" % (m, c, ratio))
    date = datetime.date.today().isoformat()
    text = "\n".join(["# Training step: chalk eager / captured vs PyTorch eager, %s, %s" % (gpu, date), "",
                      "- command: python3 bench/gpu/step_run.py --rounds %d (alternating processes: for each round, each "
                      "model, chalk eager, chalk captured, torch eager); each process warms up 10 steps, then 9 samples "
                      "of 20 steps, median sample / 20" % args.rounds,
                      "- harness time: %.0f s" % (time.time() - start)] + (["- " + args.note] if args.note else []) +
                     [""] + rows + ["", "## Errors", ""] + ["- %s %s: %s" % (k[0], k[1], v) for k, v in errors.items()] +
                     ["", "## Log", "", "```"] + log + ["```", ""])
    os.makedirs(args.out, exist_ok=True)
    safe = "".join(ch if ch.isalnum() else "-" for ch in gpu).strip("-")
    path = os.path.join(args.out, "step-%s-%s.md" % (safe, date))
    with open(path, "w") as f:
        f.write(text)
    print("\n".join(rows))
    print("\n".join(summary))
    for k, v in errors.items():
        print("ERROR %s %s: %s" % (k[0], k[1], v))
    print("written:", path)


if __name__ == "__main__":
    main()
