"""combine.py: one markdown table from chalk_attention.lua's and torch_sdpa.py's JSON records.

    python3 bench/attention/combine.py CHALK.json TORCH.json OUTDIR [DEVICE_NAME]

Writes OUTDIR/attention-<device>-<date>.md and prints it. Ratios are chalk's time over PyTorch's
(above 1: chalk is slower).
"""
import datetime
import json
import os
import sys


def main():
    chalk_recs = json.load(open(sys.argv[1]))
    torch_recs = json.load(open(sys.argv[2]))
    out_dir = sys.argv[3]
    device = sys.argv[4] if len(sys.argv) > 4 else "GPU"
    t = {}
    backends = {}
    for r in chalk_recs + torch_recs:
        t[(r["impl"], r["dtype"], r["N"], r["pass"])] = r["ms"]
        if r["impl"] == "torch sdpa":
            backends[(r["dtype"], r["N"])] = r.get("backend", "?")
    sizes = sorted({r["N"] for r in chalk_recs})

    def ms(v):
        return "-" if v is None else f"{v:.3f}"

    def ratio(a, b):
        return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"

    lines = [f"# Attention: chalk against PyTorch scaled_dot_product_attention, {device}, {datetime.date.today()}", "",
             "Shapes [B=2, H=8, N, d=64], causal. Times in ms, median of many runs (30 unless run.sh was given "
             "REPS), both timed the same way: CUDA events recorded on the stream just before and after the call "
             "(chalk: bench/attention/attn_bench.c; PyTorch: torch_sdpa.py). `torch sdpa` is PyTorch's default "
             "choice (backend in the last column); `torch math` is its naive composite. Command: "
             "`bench/attention/run.sh`.", ""]
    for dtype in ("f32", "bf16"):
        for pass_name in ("fwd", "fwd+bwd"):
            lines += [f"## {dtype}, {pass_name}", ""]
            if dtype == "f32":
                lines += ["| N | chalk naive | chalk flash | torch math | torch sdpa | flash / sdpa | naive / math | sdpa backend |",
                          "|---:|---:|---:|---:|---:|---:|---:|---|"]
            else:
                lines += ["| N | chalk flash | torch math | torch sdpa | flash / sdpa | sdpa backend |",
                          "|---:|---:|---:|---:|---:|---|"]
            for n in sizes:
                cn = t.get(("chalk naive", dtype, n, pass_name))
                cf = t.get(("chalk flash", dtype, n, pass_name))
                tm = t.get(("torch math", dtype, n, pass_name))
                ts = t.get(("torch sdpa", dtype, n, pass_name))
                b = backends.get((dtype, n), "?")
                if dtype == "f32":
                    lines.append(f"| {n} | {ms(cn)} | {ms(cf)} | {ms(tm)} | {ms(ts)} | {ratio(cf, ts)} | {ratio(cn, tm)} | {b} |")
                else:
                    lines.append(f"| {n} | {ms(cf)} | {ms(tm)} | {ms(ts)} | {ratio(cf, ts)} | {b} |")
            lines.append("")
    text = "\n".join(lines)
    os.makedirs(out_dir, exist_ok=True)
    name = "attention-" + device.replace(" ", "-") + f"-{datetime.date.today()}.md"
    with open(os.path.join(out_dir, name), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
