"""torch_sdpa.py: times PyTorch's scaled_dot_product_attention for bench/attention/run.sh.

    python3 bench/attention/torch_sdpa.py OUT.json [N,N,...] [REPS]

Same shapes as attn_bench.c: [B=2, H=8, N, d=64], causal (is_causal=True), fresh random
inputs. For each N and dtype (f32, bf16): PyTorch's default SDPA (it picks FlashAttention-2 for
bf16 and the memory-efficient kernel for f32) and the math backend (the naive composite), forward
alone and forward + backward. A time is the median over REPS runs (default 30, after 3 warm-ups) of
CUDA-event timings around the call, as attn_bench.c times chalk. Records which backend the default picked where PyTorch can say.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

B, H, D = 2, 8, 64
REPS = 30


def median_ms(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    times.sort()
    return times[(REPS - 1) // 2]


def default_backend(q, k, v):
    """The first fused backend that accepts these inputs, in PyTorch's own order of preference."""
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return name
        except RuntimeError:
            continue
    return "math"


def main():
    out_path = sys.argv[1]
    global REPS
    sizes = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "512,1024,2048,4096,8192").split(",")]
    if len(sys.argv) > 3:
        REPS = int(sys.argv[3])
    records = []
    for n in sizes:
        for dtype_name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            q, k, v = (torch.randn(B, H, n, D, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
            g = torch.randn(B, H, n, D, device="cuda", dtype=dtype)
            picked = default_backend(q.detach(), k.detach(), v.detach())
            for label, backends in (("torch sdpa", None), ("torch math", [SDPBackend.MATH])):
                def fwd():
                    with torch.no_grad():
                        if backends:
                            with sdpa_kernel(backends):
                                F.scaled_dot_product_attention(q, k, v, is_causal=True)
                        else:
                            F.scaled_dot_product_attention(q, k, v, is_causal=True)

                def fwd_bwd():
                    q.grad = k.grad = v.grad = None
                    if backends:
                        with sdpa_kernel(backends):
                            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    else:
                        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    o.backward(g)

                for pass_name, fn in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
                    try:
                        ms = median_ms(fn)
                    except torch.OutOfMemoryError:
                        ms = None
                    torch.cuda.empty_cache()
                    rec = {"impl": label, "dtype": dtype_name, "N": n, "pass": pass_name, "ms": ms,
                           "backend": picked if backends is None else "math"}
                    records.append(rec)
                    print(f"{label:11s} {dtype_name:4s} N={n:5d} {pass_name:7s} "
                          f"{'OOM' if ms is None else f'{ms:9.3f} ms'} ({rec['backend']})", flush=True)
            del q, k, v, g
            torch.cuda.empty_cache()
    with open(out_path, "w") as f:
        json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
