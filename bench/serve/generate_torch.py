"""generate_torch.py: PyTorch's side of bench/serve: the same CharGPT (2 layers, 4 heads, dim 64,
context 32, pre-norm GPT blocks, GELU MLP) generating greedily with a KV cache, batch B, median of R.
    python3 bench/serve/generate_torch.py B R [cpu|cuda]   -> prints "torch B tokens_per_s"
"""
import sys, time, math, torch
import torch.nn as nn

V, L, H, D, C = 27, 2, 4, 64, 32


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.mlp = nn.Sequential(nn.Linear(D, 4 * D), nn.GELU(), nn.Linear(4 * D, D))

    def forward(self, x, ck, cv, p0):
        B, T, _ = x.shape
        dh = D // H
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = [t.reshape(B, T, H, dh).transpose(1, 2) for t in (q, k, v)]
        ck[:, :, p0:p0 + T] = k
        cv[:, :, p0:p0 + T] = v
        K, Vv = ck[:, :, :p0 + T], cv[:, :, :p0 + T]
        s = q @ K.transpose(2, 3) / math.sqrt(dh)
        if T > 1:
            s = s + torch.full((T, p0 + T), float("-inf"), device=s.device).triu(p0 + 1)
        y = (s.softmax(-1) @ Vv).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(C, D)
        self.blocks = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f, self.head = nn.LayerNorm(D), nn.Linear(D, V)

    @torch.no_grad()
    def generate(self, idx, n):
        B, T = idx.shape
        dev = idx.device
        cache = [(torch.zeros(B, H, C, D // H, device=dev), torch.zeros(B, H, C, D // H, device=dev))
                 for _ in range(L)]
        p0, x_in = 0, idx
        for _ in range(n):
            T = x_in.shape[1]
            x = self.tok(x_in) + self.pos(torch.arange(p0, p0 + T, device=dev))
            for blk, (ck, cv) in zip(self.blocks, cache):
                x = blk(x, ck, cv, p0)
            p0 += T
            x_in = self.head(self.ln_f(x[:, -1:])).argmax(-1)
        return p0


def main():
    B = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    R = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    dev = sys.argv[3] if len(sys.argv) > 3 else "cpu"
    torch.manual_seed(1)
    m = CharGPT().eval().to(dev)
    idx = torch.tensor([[1, 4, 2]] * B, device=dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    def once():
        sync()
        t = time.perf_counter()
        m.generate(idx, 29)
        sync()
        return B * 29 / (time.perf_counter() - t)
    once()
    rates = sorted(once() for _ in range(R))
    print("torch %d %.1f" % (B, rates[(R - 1) // 2]))


main()
