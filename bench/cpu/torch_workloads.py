"""torch_workloads.py: PyTorch's side of the CPU benchmarks (same workloads as the .lua files).

Usage: torch_workloads.py NAME THREADS -> prints "RESULT name seconds" (median per call)."""
import sys
import time

import torch


def median_time(fn, inner, reps, warmup=3):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    samples.sort()
    return samples[(reps - 1) // 2]


def dispatch():
    a, b = torch.randn(16), torch.randn(16)

    def loop():
        for _ in range(100000):
            a + b
    return median_time(loop, 1, 5, 1) / 100000


def matmul():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return median_time(lambda: torch.mm(a, b), 3, 7, 2)


def train_step(model, x, y, inner):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return median_time(step, inner, 7, 5)


def mlp():
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return train_step(model, torch.randn(128, 784), torch.randint(0, 10, (128,)), 10)


def conv():
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    return train_step(model, torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)), 3)


if __name__ == "__main__":
    name, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fn = {"dispatch_add16": dispatch, "matmul1024": matmul, "mlp_step": mlp, "conv_step": conv}[name]
    print("RESULT %s %.9f" % (name, fn()))
