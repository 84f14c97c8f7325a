"""run_gpu.py: chalk against PyTorch and cuBLAS on one GPU, side by side in one run (issue 7, 6-8).

Workloads:
  6. the matmul ladder against cuBLAS f32 at 1024 and 4096 (build/bench/gpu/gpu_bench, CUDA events);
  7. one training step (forward, backward, SGD with momentum) of a 784-512-256-10 MLP at batch 1024:
     chalk (mlp_gpu.lua) against PyTorch eager (torch_gpu.py) on the same GPU, each a fresh process,
     alternating chalk / torch for several rounds;
  8. large elementwise ops against a device-to-device copy (gpu_bench, 2^28 f32 elements).
The table shows, for 7, the median over rounds of each process's median step time and the time
ratio chalk/torch (lower is better for chalk); for 6 and 8 chalk's throughput as a fraction of the
reference's (higher is better). When chalk's step is slower than PyTorch's, both are profiled in
the same run (chalk.profile, torch.profiler) and the profiles go into the results file. A workload
that fails is reported as failed with its error; the others still run.

  python3 bench/gpu/run_gpu.py [--chalk build/chalk] [--gpu-bench build/bench/gpu/gpu_bench]
      [--out bench/results] [--rounds 5] [--profile auto|always|never] [--log FILE]
      [--device cuda|cpu] [--batch 1024]
(--device cpu --batch 128 checks the MLP scripts and this harness on a machine without a GPU.)"""
import argparse
import datetime
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from host_info import cpu_model, fmt_seconds  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "gpu")


class Log:
    """Everything the subprocesses print, kept for the log file and the results' appendix."""

    def __init__(self, path):
        self.f = open(path, "w") if path else None

    def write(self, text):
        sys.stderr.write(text)
        if self.f:
            self.f.write(text)
            self.f.flush()


DEADLINE = [None]  # time.time() after which nothing new starts (--budget)


def run(cmd, env, timeout, log):
    """Runs cmd; returns (stdout, stderr, error or None). Never raises."""
    t0 = time.time()
    if DEADLINE[0] is not None:
        left = DEADLINE[0] - t0
        if left < 10:
            log.write("(skipped, %.0f s of --budget left: %s)\n" % (left, " ".join(cmd)))
            return "", "", "skipped: the --budget ran out"
        timeout = int(min(timeout, left))
    log.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        log.write(out + err + "(timed out after %d s)\n" % timeout)
        return out, err, "timed out after %d s" % timeout
    except OSError as e:
        log.write("(could not start: %s)\n" % e)
        return "", "", "could not start: %s" % e
    log.write(p.stdout + p.stderr + "(exit %d, %.1f s)\n" % (p.returncode, time.time() - t0))
    if p.returncode != 0:
        lines = [l.strip() for l in (p.stderr.strip() or p.stdout.strip()).splitlines() if l.strip()]
        first = next((l for l in lines if "error" in l.lower() or "chalk:" in l), lines[0] if lines else "")
        return p.stdout, p.stderr, "exit %d: %s" % (p.returncode, first[:300])
    return p.stdout, p.stderr, None


def shown_path(path):
    """path relative to the repository when it lies inside it, else as given."""
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return path if rel.startswith("..") else rel


def result_of(out):
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return float(line.split()[2])
    return None


def fmt(sec):
    return fmt_seconds(sec, us_digits=1, ms_digits=3)


# ---- workloads 6 and 8: the C benchmark ----------------------------------------------------------

def parse_gpu_bench(md):
    """Rows of gpu_bench's two markdown tables: ladder {impl: {size: gflops}}, bandwidth [(op, GB/s)]."""
    ladder, sizes, bw = {}, [], []
    section = None
    for line in md.splitlines():
        if line.startswith("## Matmul ladder"):
            section = "mm"
        elif line.startswith("## Elementwise"):
            section = "ew"
        elif line.startswith("## "):
            section = None
        elif section == "mm" and line.startswith("| impl |"):
            sizes = [int(c) for c in re.findall(r"\|\s*(\d+)\s*\|", line.replace("| ", "|  "))]
        elif section == "mm" and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            vals = cells[1::2]
            ladder[cells[0]] = {s: (float(v) if re.match(r"^[\d.]+$", v) else None) for s, v in zip(sizes, vals)}
        elif section == "ew" and line.startswith("| ") and not line.startswith("| op |") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            bw.append((cells[0], float(cells[2])))
    return ladder, sizes, bw


def gpu_bench_rows(args, env, log, notes):
    """Runs gpu_bench; returns (table rows, its markdown or None)."""
    rows = []
    if not os.path.exists(args.gpu_bench):
        msg = "%s not built (make builds it when nvcc is found)" % args.gpu_bench
        return [("6 matmul ladder vs cuBLAS", "failed: " + msg, "-", "-", ">= 0.70 at 4096", "-"),
                ("8 elementwise vs D2D copy", "failed: " + msg, "-", "-", ">= 0.80", "-")], None
    with tempfile.TemporaryDirectory() as tmp:
        out, err, fail = run([args.gpu_bench, "--out", tmp], env, args.timeout_bench, log)
        md = None
        for name in os.listdir(tmp):
            if name.endswith(".md"):
                with open(os.path.join(tmp, name)) as f:
                    md = f.read()
    if "SKIPPED" in out:
        skip = out.strip().splitlines()[-1]
        return [("6 matmul ladder vs cuBLAS", skip, "-", "-", ">= 0.70 at 4096", "-"),
                ("8 elementwise vs D2D copy", skip, "-", "-", ">= 0.80", "-")], None
    if fail or not md:
        msg = "failed: " + (fail or "no results file")
        return [("6 matmul ladder vs cuBLAS", msg, "-", "-", ">= 0.70 at 4096", "-"),
                ("8 elementwise vs D2D copy", msg, "-", "-", ">= 0.80", "-")], md
    ladder, sizes, bw = parse_gpu_bench(md)
    ref = ladder.get("cublas", {})
    # hand-written f32 rungs: everything but cuBLAS and the reduced-precision (tf32, bf16) ones
    mine = [k for k in ladder if not k.startswith("cublas") and "tf32" not in k and "bf16" not in k]
    for s in sizes:
        cand = [(ladder[k][s], k) for k in mine if ladder[k].get(s)]
        if not cand or not ref.get(s):
            rows.append(("6 matmul %d f32" % s, "failed: no numbers", "-", "-", "-", "-"))
            continue
        g, k = max(cand)
        frac = g / ref[s]
        target = ">= 0.70" if s == 4096 else "(4096 is the bar)"
        met = ("yes" if frac >= 0.70 else "no") if s == 4096 else "-"
        rows.append(("6 matmul %dx%dx%d f32, best hand-written rung (%s)" % (s, s, s, k),
                     "%.1f TFLOP/s (%.3f ms)" % (g / 1e3, 2.0 * s ** 3 / (g * 1e9) * 1e3),
                     "cuBLAS f32: %.1f TFLOP/s (%.3f ms)" % (ref[s] / 1e3, 2.0 * s ** 3 / (ref[s] * 1e9) * 1e3),
                     "%.2f of cuBLAS throughput" % frac, target, met))
    copy = next((v for op, v in bw if op.startswith("device-to-device")), None)
    ops = [(op, v) for op, v in bw if not op.startswith("device-to-device") and not op.startswith("clone")]
    if not copy or not ops:
        rows.append(("8 elementwise vs D2D copy", "failed: no numbers", "-", "-", ">= 0.80", "-"))
    for op, v in ops:
        frac = v / copy
        rows.append(("8 elementwise %s, 2^28 f32" % op, "%.0f GB/s" % v, "D2D copy: %.0f GB/s" % copy,
                     "%.2f of copy bandwidth" % frac, ">= 0.80", "yes" if frac >= 0.80 else "no"))
    notes.append("Workloads 6 and 8 come from `%s` (its full tables are below); bytes count each operand "
                 "read once and the result written once; the copy counts bytes read plus bytes written."
                 % shown_path(args.gpu_bench))
    return rows, md


# ---- workload 7: the MLP step --------------------------------------------------------------------

def mlp_rows(args, env, log, notes, profiles):
    chalk_cmd = [args.chalk, os.path.join(HERE, "mlp_gpu.lua"), args.device, "time", str(args.batch)]
    torch_cmd = [args.python, os.path.join(HERE, "torch_gpu.py"), args.device, "time", str(args.batch)]
    res = {"chalk": [], "torch": []}
    errors = {"chalk": [], "torch": []}
    for r in range(args.rounds):
        for who, cmd in (("chalk", chalk_cmd), ("torch", torch_cmd)):
            if len(errors[who]) >= 2 and not res[who]:
                continue  # failed twice with nothing measured: stop spending time on it
            out, _, fail = run(cmd, env, args.timeout_mlp, log)
            v = result_of(out)
            if v is None:
                errors[who].append(fail or "no RESULT line")
            else:
                res[who].append(v)
    notes.append("Workload 7 raw per-process medians (ms): chalk %s; torch %s."
                 % (", ".join("%.4f" % (v * 1e3) for v in res["chalk"]) or "-",
                    ", ".join("%.4f" % (v * 1e3) for v in res["torch"]) or "-"))
    for who in ("chalk", "torch"):
        for e in errors[who]:
            notes.append("Workload 7 %s run failed: %s" % (who, e))
    label = "7 MLP 784-512-256-10 train step, batch %d (%s)" % (args.batch, args.device)
    tv = torch_version()
    if not res["chalk"] or not res["torch"]:
        c = fmt(statistics.median(res["chalk"])) if res["chalk"] else "failed: " + (errors["chalk"] or ["?"])[0]
        t = fmt(statistics.median(res["torch"])) if res["torch"] else "failed: " + (errors["torch"] or ["?"])[0]
        return [(label, c, "torch %s eager: %s" % (tv, t), "-", "<= 1.00", "-")], None
    c, t = statistics.median(res["chalk"]), statistics.median(res["torch"])
    ratio = c / t
    if args.profile == "always" or (args.profile == "auto" and ratio > 1.0):
        for who, cmd in (("chalk", chalk_cmd), ("torch", torch_cmd)):
            cmd = cmd[:3] + ["profile"] + cmd[4:]
            out, _, fail = run(cmd, env, args.timeout_mlp, log)
            text = "\n".join(l for l in out.splitlines() if not l.startswith("RESULT "))
            profiles.append((who, text + ("\n(profile run failed: %s)" % fail if fail else "")))
    return [(label, fmt(c), "torch %s eager: %s" % (tv, fmt(t)), "%.2f (time)" % ratio, "<= 1.00",
             "yes" if ratio <= 1.0 else "no")], ratio


# ---- facts about the machine ---------------------------------------------------------------------

def torch_version():
    try:
        from importlib.metadata import version
        return version("torch")
    except Exception:  # noqa: BLE001
        return "?"


def gpu_facts():
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "no GPU visible (nvidia-smi absent or failed)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chalk", default=os.path.join(ROOT, "build", "chalk"))
    ap.add_argument("--gpu-bench", default=os.path.join(ROOT, "build", "bench", "gpu", "gpu_bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    ap.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--skip", default="", help="comma-separated: kernels,mlp")
    ap.add_argument("--log", default="")
    ap.add_argument("--budget", type=float, default=0, help="seconds after which nothing new starts (0: none)")
    ap.add_argument("--timeout-bench", type=int, default=240)
    ap.add_argument("--timeout-mlp", type=int, default=120)
    ap.add_argument("--command", default="", help="the command line to record (default: this one)")
    ap.add_argument("--build-note", default="", help="where the chalk binary came from (recorded)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    log = Log(args.log)
    env = dict(os.environ, CHALK_OUT=os.environ.get("CHALK_OUT", "/tmp/chalk-bench"))
    gpu = gpu_facts()
    notes, profiles, rows = [], [], []
    started = time.time()
    if args.budget > 0:
        DEADLINE[0] = started + args.budget

    chalk_version, _, _ = run([args.chalk, "--version"], env, 30, log)
    md = None
    if "mlp" not in skip:
        rows += mlp_rows(args, env, log, notes, profiles)[0]
    if "kernels" not in skip:
        krows, md = gpu_bench_rows(args, env, log, notes)
        rows += krows
    rows.sort(key=lambda r: int(r[0].split()[0]))  # 6, 7, 8 in order (7 runs first)

    gpu_name = gpu.split(",")[0].strip() if "," in gpu else "no-GPU"
    date = datetime.date.today().isoformat()
    command = args.command or "python3 " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    head = [
        "# chalk GPU benchmark: %s, %s" % (gpu_name, date),
        "",
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- GPU: %s (name, driver, memory, max SM clock)" % gpu,
        "- machine: %s, %d cores (%s), %s" % (platform.node(), os.cpu_count(), cpu_model(), platform.platform()),
        "- chalk: %s; PyTorch %s (eager, `%s`)" % (chalk_version.strip() or "?", torch_version(), args.python),
        "- command: %s" % command,
    ] + (["- build: %s" % args.build_note] if args.build_note else []) + [
        "- rounds: %d alternating processes per contender for 7 (chalk, torch, chalk, ...); each process warms up "
        "10 steps, then times 9 samples of 20 steps (chalk: chalk.cuda.synchronize() around each sample; torch: "
        "CUDA events on the current stream) and reports the median sample / 20" % args.rounds,
        "- harness time: %.0f s" % (time.time() - started),
        "",
    ]
    table = ["| workload | chalk | reference | ratio | target | met |", "|---|---|---|---|---|---|"]
    table += ["| %s |" % " | ".join(c.replace("|", "/").replace("\t", " ") for c in r) for r in rows]
    body = list(head) + table + [""]
    if notes:
        body += ["## Notes", ""] + ["- " + n for n in notes] + [""]
    summaries = []
    if profiles:
        body += ["## Profiles of workload 7 (chalk slower than PyTorch, or --profile always)", ""]
        for who, text in profiles:
            body += ["### %s" % who, "", "```", text.rstrip(), "```", ""]
            summaries += [l for l in text.splitlines() if l.startswith("PROFILE") and ("summary" in l or "host" in l)]
    if md:
        body += ["## gpu_bench output (workloads 6 and 8)", ""] + ["#" + l if l.startswith("#") else l
                                                                  for l in md.strip().splitlines()] + [""]
    text = "\n".join(body) + "\n"
    os.makedirs(args.out, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-")
    path = os.path.join(args.out, "gpu-bench-%s-%s.md" % (safe, date))
    with open(path, "w") as f:
        f.write(text)
    # the table last, so that the end of the output holds it
    print("\n".join(head + table))
    for s in summaries:
        print(s)
    print("written:", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
