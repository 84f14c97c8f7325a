"""torch_gpu.py: PyTorch's side of GPU workload 7 (the same step as mlp_gpu.lua), eager mode.

Usage: torch_gpu.py DEVICE [MODE] [BATCH]
  DEVICE  "cuda" (the benchmark) or "cpu" (to check the script where there is no GPU)
  MODE    "time" (default): prints "RESULT mlp_step_gpu SECONDS", the median seconds per step
          "profile": also prints torch.profiler's table of the same few steps (CPU ops and kernels)

Timing: warm-up steps first, then samples of INNER steps each between two CUDA events recorded on
the current stream (the end event synchronised before reading); the median sample over INNER is
reported. On the CPU the events are replaced by perf_counter. Same constants as mlp_gpu.lua."""
import sys
import time

import torch

from step_torch import time_samples

INNER, REPS, WARMUP = 20, 9, 10


def main():
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    mode = sys.argv[2] if len(sys.argv) > 2 else "time"
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("torch_gpu: device %s asked for, but torch.cuda.is_available() is False" % device)
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    last = [None]

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        last[0] = loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(WARMUP):
        step()
    sync()
    first = last[0].item()
    samples = time_samples(step, cuda, INNER, REPS)[0]  # the timing loop of step_torch.py
    now = last[0].item()
    if not (now == now and abs(now) < 1e6):
        raise SystemExit("torch_gpu: loss is not finite: %r" % now)
    sys.stderr.write("torch_gpu: %s batch %d: loss %.4f after warm-up, %.4f after %d steps; samples %.3f..%.3f ms\n"
                     % (device, batch, first, now, WARMUP + REPS * INNER, samples[0] * 1e3, samples[-1] * 1e3))
    print("RESULT mlp_step_gpu %.9f" % samples[(REPS - 1) // 2])
    sys.stdout.flush()

    if mode == "profile":
        # host issue rate (see mlp_gpu.lua): 20 steps handed to the GPU without synchronising inside
        sync()
        t0 = time.perf_counter()
        for _ in range(INNER):
            step()
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
        print("PROFILE host torch: issuing %d steps took %.4f ms/step; finished on the device after %.4f ms/step"
              % (INNER, (t1 - t0) / INNER * 1e3, (t2 - t0) / INNER * 1e3))
        nprof = 5
        acts = [torch.profiler.ProfilerActivity.CPU]
        if cuda:
            acts.append(torch.profiler.ProfilerActivity.CUDA)
        sync()
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(nprof):
                step()
            sync()
        print("PROFILE torch %s, %d steps, device %s, batch %d" % (torch.__version__, nprof, device, batch))
        avg = prof.key_averages()
        keys = ["self_device_time_total", "self_cuda_time_total"] if cuda else []
        for key in keys + ["self_cpu_time_total"]:
            try:  # the device column's name changed across PyTorch versions
                print(avg.table(sort_by=key, row_limit=25, max_name_column_width=60))
                break
            except Exception as err:  # noqa: BLE001
                sys.stderr.write("torch_gpu: profile table by %s failed: %s\n" % (key, err))
        if cuda:
            kern = [e for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA")]
            us = sum(getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0) for e in kern)
            print("PROFILE torch summary: %d GPU kernels/copies (%.1f per step), GPU busy %.3f ms per step"
                  % (len(kern), len(kern) / nprof, us / 1e3 / nprof))


if __name__ == "__main__":
    main()
