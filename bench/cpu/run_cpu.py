"""run_cpu.py: chalk against PyTorch (and raw OpenBLAS) on the CPU, side by side in one run.

Each workload runs as a fresh process for each contender, alternating chalk / torch (/ raw C)
for several rounds; the table shows the median over rounds of each process's median, and the
ratio chalk/reference (lower is better for chalk). Same thread count for everyone."""
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "bench", "cpu")
CHALK = os.path.join(ROOT, "build", "chalk")
RAW = os.path.join(ROOT, "build", "bench", "sgemm_raw")

WORKLOADS = [  # name, chalk script, references, target text
    ("dispatch_add16", "dispatch.lua", ["torch"], "chalk <= 1/3 of torch"),
    ("matmul1024", "matmul.lua", ["raw", "torch"], ">= 95% of raw OpenBLAS"),
    ("mlp_step", "mlp.lua", ["torch"], "no slower than torch"),
    ("conv_step", "conv.lua", ["torch"], "no slower than torch"),
]


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return float(line.split()[2])
    raise RuntimeError("no RESULT from %s:\n%s\n%s" % (" ".join(cmd), out.stdout, out.stderr))


def cold_start(env, rounds):
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([CHALK, "-e", ""], env=env, check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def fmt(sec):
    if sec < 1e-3:
        return "%.2f us" % (sec * 1e6)
    if sec < 1:
        return "%.2f ms" % (sec * 1e3)
    return "%.2f s" % sec


def main():
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    threads = int(os.environ.get("BENCH_THREADS", str(os.cpu_count())))
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), CHALK_OUT="/tmp/chalk-bench")
    # chalk picks OpenBLAS's kernel family from the CPU's features (repl/blas_env.c); give the
    # raw C program and torch (which uses the same OpenBLAS on Debian) the same choice.
    env.setdefault("OPENBLAS_CORETYPE", blas_core())
    res = {}
    for name, script, refs, _ in WORKLOADS:
        for _ in range(rounds):
            res.setdefault((name, "chalk"), []).append(run([CHALK, os.path.join(HERE, script), HERE], env))
            for ref in refs:
                cmd = [RAW] if ref == "raw" else ["/usr/bin/python3", os.path.join(HERE, "torch_workloads.py"), name, str(threads)]
                res.setdefault((name, ref), []).append(run(cmd, env))
    cold = cold_start(env, 10)
    render = statistics.median(run([CHALK, os.path.join(HERE, "render.lua"), HERE], env) for _ in range(rounds))

    lines = ["| workload | chalk | reference | ratio chalk/ref | target |", "|---|---|---|---|---|"]
    for name, _, refs, target in WORKLOADS:
        c = statistics.median(res[(name, "chalk")])
        for ref in refs:
            r = statistics.median(res[(name, ref)])
            label = "raw cblas_sgemm" if ref == "raw" else "torch " + ref_version()
            lines.append("| %s | %s | %s: %s | %.2f | %s |" % (name, fmt(c), label, fmt(r), c / r, target))
    lines.append("| repl_cold_start | %s | - | - | < 50 ms |" % fmt(cold))
    lines.append("| render_500_node_backward_png | %s | - | - | < 1 s |" % fmt(render))
    head = [
        "# chalk CPU benchmark",
        "",
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- machine: %s, %d cores (%s)" % (platform.node(), os.cpu_count(), cpu_model()),
        "- OpenBLAS core: %s (OPENBLAS_CORETYPE, same for all)" % env["OPENBLAS_CORETYPE"],
        "- threads: %d for chalk (OPENBLAS_NUM_THREADS) and torch (torch.set_num_threads)" % threads,
        "- rounds: %d alternating processes per contender; each process reports its median" % rounds,
        "- command: make bench   (python3 bench/cpu/run_cpu.py)",
        "",
    ]
    text = "\n".join(head + lines) + "\n"
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "cpu-%s.md" % datetime.date.today().isoformat())
    with open(path, "w") as f:
        f.write(text)
    print("written:", os.path.relpath(path, ROOT))


def blas_core():
    flags = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return ""


def ref_version():
    try:
        import torch  # noqa: F401
        return torch.__version__
    except Exception:
        return ""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
