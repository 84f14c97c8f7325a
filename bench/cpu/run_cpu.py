"""run_cpu.py: chalk against PyTorch (and raw OpenBLAS) on the CPU, side by side in one run.

Each workload runs as a fresh process for each contender, alternating chalk / torch (/ raw C)
for several rounds; the table shows the median over rounds of each process's median, and the
ratio chalk/reference (lower is better for chalk). Same thread count for everyone in a row: every
workload runs at each thread count of BENCH_THREADS (default "1,<cores>"), one row per count.
Cold start is timed two ways: `chalk -e ''` to exit, and the REPL on a pseudo-terminal to its
first prompt."""
import datetime
import os
import platform
import pty
import select
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from host_info import cpu_model, fmt_seconds  # noqa: E402

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


def first_prompt(env, rounds):
    """Seconds from starting the REPL on a pseudo-terminal to its first prompt ("> ")."""
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(CHALK, [CHALK], dict(env, TERM="xterm"))
        buf = b""
        while b"> " not in buf:
            ready, _, _ = select.select([fd], [], [], 10)
            if not ready:
                break
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
        t = time.perf_counter() - t0
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        if b"> " not in buf:
            raise RuntimeError("the REPL printed no prompt: %r" % buf[-200:])
        samples.append(t)
    return statistics.median(samples)


def fmt(sec):
    return fmt_seconds(sec)


def thread_counts():
    spec = os.environ.get("BENCH_THREADS")
    if spec:
        return [int(t) for t in spec.split(",") if t.strip()]
    return sorted({1, os.cpu_count() or 1})


def main():
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    counts = thread_counts()
    base_env = dict(os.environ, CHALK_OUT="/tmp/chalk-bench")
    # chalk picks OpenBLAS's kernel family from the CPU's features (repl/blas_env.c); give the
    # raw C program and torch (which uses the same OpenBLAS on Debian) the same choice.
    base_env.setdefault("OPENBLAS_CORETYPE", blas_core())
    res = {}
    for threads in counts:
        env = dict(base_env, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        # torch runs OpenMP threads beside OpenBLAS's own pool; OpenMP's default spin-waiting lets the
        # two fight over the cores (measured on a 2-vCPU VM: an MLP step 10-96 ms instead of 4-7 ms),
        # so torch gets passive waiting: its best configuration, not a handicap.
        torch_env = dict(env)
        torch_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        for name, script, refs, _ in WORKLOADS:
            for _ in range(rounds):
                res.setdefault((threads, name, "chalk"), []).append(run([CHALK, os.path.join(HERE, script), HERE], env))
                for ref in refs:
                    cmd = [RAW] if ref == "raw" else ["/usr/bin/python3", os.path.join(HERE, "torch_workloads.py"), name, str(threads)]
                    res.setdefault((threads, name, ref), []).append(run(cmd, torch_env if ref == "torch" else env))
    env = dict(base_env, OPENBLAS_NUM_THREADS=str(counts[-1]), OMP_NUM_THREADS=str(counts[-1]))
    # Cold start as a user gets it: without the OPENBLAS_CORETYPE set above for fairness (unless the
    # caller set it), chalk picks the core itself, which costs one re-exec (repl/blas_env.c).
    user_env = dict(env)
    if "OPENBLAS_CORETYPE" not in os.environ:
        user_env.pop("OPENBLAS_CORETYPE", None)
    cold = cold_start(user_env, 15)
    prompt = first_prompt(user_env, 15)
    render = statistics.median(run([CHALK, os.path.join(HERE, "render.lua"), HERE], env) for _ in range(rounds))

    lines = ["| workload | threads | chalk | reference | ratio chalk/ref | target | met |", "|---|---|---|---|---|---|---|"]
    for name, _, refs, target in WORKLOADS:
        for threads in counts:
            c = statistics.median(res[(threads, name, "chalk")])
            for ref in refs:
                r = statistics.median(res[(threads, name, ref)])
                label = "raw cblas_sgemm" if ref == "raw" else "torch " + ref_version()
                lines.append("| %s | %d | %s | %s: %s | %.2f | %s | %s |" % (name, threads, fmt(c), label, fmt(r), c / r,
                                                                            target, met(name, ref, c / r)))
    lines.append("| repl_cold_start (`chalk -e ''`) | - | %s | - | - | < 50 ms | %s |" % (fmt(cold), "yes" if cold < 0.05 else "no"))
    lines.append("| repl_first_prompt (pty) | - | %s | - | - | < 50 ms | %s |" % (fmt(prompt), "yes" if prompt < 0.05 else "no"))
    lines.append("| render_500_node_backward_png | - | %s | - | - | < 1 s | %s |" % (fmt(render), "yes" if render < 1 else "no"))
    head = [
        "# chalk CPU benchmark",
        "",
        "- date: %s" % datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "- machine: %s, %d cores (%s)" % (platform.node(), os.cpu_count(), cpu_model()),
        "- OpenBLAS core: %s (OPENBLAS_CORETYPE, same for all)" % base_env["OPENBLAS_CORETYPE"],
        "- threads: per row, the same for chalk (OPENBLAS_NUM_THREADS) and torch (torch.set_num_threads, OMP_NUM_THREADS;"
        " OMP_WAIT_POLICY=%s for torch)" % os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "- rounds: %d alternating processes per contender; each process reports its median" % rounds,
        "- cold start: median of 15 processes (at %d threads, OPENBLAS_CORETYPE %s), render: median of %d"
        % (counts[-1], "as set by the caller" if "OPENBLAS_CORETYPE" in os.environ else "unset: chalk's own choice, one re-exec", rounds),
        "- command: make bench   (python3 bench/cpu/run_cpu.py; BENCH_THREADS=%s BENCH_ROUNDS=%d)"
        % (",".join(str(t) for t in counts), rounds),
        "",
    ]
    text = "\n".join(head + lines) + "\n"
    print(text)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "cpu-%s.md" % datetime.date.today().isoformat())
    with open(path, "w") as f:
        f.write(text)
    print("written:", os.path.relpath(path, ROOT))


def met(name, ref, ratio):
    """Whether a row meets its target: dispatch <= 1/3 of torch, matmul >= 95% of raw OpenBLAS
    (time ratio <= 1/0.95), the training steps no slower than torch."""
    if name == "dispatch_add16":
        return "yes" if ratio <= 1 / 3 else "no"
    if name == "matmul1024":
        return ("yes" if ratio <= 1 / 0.95 else "no") if ref == "raw" else "-"
    return "yes" if ratio <= 1 else "no"


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


if __name__ == "__main__":
    sys.exit(main())
