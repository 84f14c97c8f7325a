"""step_torch.py: PyTorch's side of the training-step benchmark (bench/gpu/step_run.py), eager mode.

Usage: step_torch.py MODEL [DEVICE]   MODEL "mlp" or "gpt" (the models of step_chalk.lua, term for term)
Prints "RESULT step SECONDS" (median over REPS samples of INNER steps, CUDA events around each
sample) and "LAUNCHES eager N kernels per step" (torch.profiler's GPU kernels and copies over 5 steps)."""
import math
import sys
import time

import torch

INNER, REPS, WARMUP = 20, 9, 10
nn = torch.nn
F = torch.nn.functional


class Block(nn.Module):
    """nn.TransformerBlock of lua/chalk/nn.lua: x + attn(ln1(x)), x + mlp(ln2(x)), additive causal mask."""

    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        B, T, d = x.shape
        dh = d // self.h
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.reshape(B, T, self.h, dh).transpose(1, 2) for t in (q, k, v))
        att = ((q @ k.transpose(2, 3)) * (1 / math.sqrt(dh)) + mask).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, layers=2, heads=4, dim=64, context=32, vocab=27):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.ln_f, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, idx, pos, mask):
        x = self.tok(idx) + self.pos(pos)
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln_f(x))


def time_samples(step, cuda, inner=INNER, reps=REPS):
    """(sorted seconds per step of reps samples of inner calls of step, step's last result): CUDA events
    recorded on the current stream around each sample (the end event waited for), perf_counter on the CPU."""
    out, last = [], None
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize()
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ev[0].record()
        t0 = time.perf_counter()
        for _ in range(inner):
            last = step()
        if cuda:
            ev[1].record()
            ev[1].synchronize()
            out.append(ev[0].elapsed_time(ev[1]) * 1e-3 / inner)
        else:
            out.append((time.perf_counter() - t0) / inner)
    return sorted(out), last


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "mlp"
    device = sys.argv[2] if len(sys.argv) > 2 else "cuda"
    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(1024, 784, device=device)
        y = torch.randint(0, 10, (1024,), device=device)

        def loss_of():
            return F.cross_entropy(model(x), y)
    elif name == "gpt":
        model = CharGPT().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=6e-3)
        x = torch.randint(0, 27, (32, 32), device=device)
        y = torch.randint(0, 27, (32, 32), device=device)
        mask = torch.full((32, 32), float("-inf"), device=device).triu(1)

        pos = torch.arange(32, device=device).repeat(32, 1)  # made once on the device, as step_chalk.lua does

        def loss_of():
            return F.cross_entropy(model(x, pos, mask).reshape(-1, 27), y.reshape(-1))
    else:
        raise SystemExit("step_torch: MODEL must be mlp or gpt")
    def step():
        opt.zero_grad()
        loss = loss_of()
        loss.backward()
        opt.step()
        return loss

    for _ in range(WARMUP):
        step()
    first = step().item()
    samples, last = time_samples(step, cuda)
    now = last.item()
    if not (now == now and abs(now) < 1e6):
        raise SystemExit("step_torch: loss is not finite: %r" % now)
    sys.stderr.write("step_torch %s: loss %.4f -> %.4f; samples %.4f..%.4f ms\n"
                     % (name, first, now, samples[0] * 1e3, samples[-1] * 1e3))
    print("RESULT step %.9f" % samples[(REPS - 1) // 2])
    sys.stdout.flush()
    if cuda:
        n = 5
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                                torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(n):
                step()
            torch.cuda.synchronize()
        kern = [e for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA")]
        print("LAUNCHES eager %.1f GPU kernels and copies per step (torch %s)" % (len(kern) / n, torch.__version__))


if __name__ == "__main__":
    main()
