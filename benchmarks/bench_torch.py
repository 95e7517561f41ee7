"""PyTorch's CPU training of the notebooks' small networks: what a user might pick instead (issue 33).

Runs in its own virtualenv, never a dependency of the project (like ../shared/reference for Neural
Tangents). Side by side with the package's rows in one run:

    python3 -m venv ~/.cache/nbk-torch-bench
    ~/.cache/nbk-torch-bench/bin/pip install torch numpy --index-url https://download.pytorch.org/whl/cpu
    .venv/bin/python benchmarks/bench_train.py ensembles CNN LCN        # the package, with its matmul rate
    ~/.cache/nbk-torch-bench/bin/python benchmarks/bench_torch.py       # the same networks in PyTorch

The same shapes as ``bench_train.ensemble_rows``: 8x8x3 images, batch 100, conv(3x3, SAME) -> ReLU ->
conv(3x3) -> ReLU -> readout (flatten + dense 10, or global average pool + dense 10), MSE loss, SGD with
momentum 0.9, float32, one member. The LCN (no weight sharing) is written as a PyTorch user would:
``unfold`` to patches, then a batched matrix product over positions. FLOPs count the matrix products
only, 3x the forward pass, as bench_train does; the share is against PyTorch's own float32 matmul rate
(4096^2, measured here) and the package's, printed by bench_train in the same run.
"""
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LocalConv(nn.Module):
    def __init__(self, c_in, c_out, hw):
        super().__init__()
        self.hw, self.c_out = hw, c_out
        self.W = nn.Parameter(torch.randn(hw * hw, c_in * 9, c_out) / (c_in * 9) ** 0.5)
        self.b = nn.Parameter(torch.zeros(c_out, hw, hw))

    def forward(self, x):
        n = x.shape[0]
        p = F.unfold(x, 3, padding=1).permute(2, 0, 1)           # (positions, n, c*9)
        y = torch.bmm(p, self.W).permute(1, 2, 0)                 # (n, c_out, positions)
        return y.reshape(n, self.c_out, self.hw, self.hw) + self.b


def net(kind, width, hw=8):
    conv = (lambda a, b: LocalConv(a, b, hw)) if kind == "lcn" else (lambda a, b: nn.Conv2d(a, b, 3, padding=1))
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)] if kind == "gap" else \
           [nn.Flatten(), nn.Linear(width * hw * hw, 10)]
    return nn.Sequential(conv(3, width), nn.ReLU(), conv(width, width), nn.ReLU(), *head)


def flops_per_example(kind, width, hw=8):
    conv = 2 * hw * hw * 9 * (3 * width + width * width)
    dense = 2 * (width if kind == "gap" else width * hw * hw) * 10
    return 3 * (conv + dense)


def matmul_gflops(n=4096, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


CASES = [  # (name, kind, width, image side, batch): bench_train.PATH_CASES, the same networks and shapes
    ("CNN-VEC depth 2, width 32", "vec", 32, 8, 100), ("CNN-VEC depth 2, width 64", "vec", 64, 8, 100),
    ("CNN-GAP depth 2, width 64", "gap", 64, 8, 100), ("CNN-VEC depth 2, width 64", "vec", 64, 16, 100),
    ("CNN-GAP depth 2, width 64", "gap", 64, 16, 100), ("CNN-VEC depth 2, width 64", "vec", 64, 32, 64),
    ("CNN-GAP depth 2, width 64", "gap", 64, 32, 64), ("LCN depth 2, width 16", "lcn", 16, 8, 100),
    ("LCN depth 2, width 64", "lcn", 64, 8, 100), ("LCN depth 2, width 16", "lcn", 16, 16, 100),
]


def main():
    torch.manual_seed(0)
    rate = matmul_gflops()
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, float32 matmul {rate:.1f} GFLOP/s\n")
    print("| case | image | batch | framework | steps/s | examples/s | GFLOP/s | share |")
    print("|---|---|---|---|---|---|---|---|")
    for name, kind, width, hw, batch in CASES:
        x, y = torch.randn(batch, 3, hw, hw), torch.randn(batch, 10)
        model = net(kind, width, hw)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        for _ in range(3):
            step()
        t = time.perf_counter()
        step()
        n = max(3, int(1.0 / (time.perf_counter() - t)))  # about a second per timing, as bench_train's
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(n):
                step()
            best = max(best, n / (time.perf_counter() - t))
        gf = best * batch * flops_per_example(kind, width, hw) / 1e9
        print(f"| {name} | {hw}x{hw} | {batch} | PyTorch eager | {best:.1f} | {best * batch:,.0f} | {gf:.1f} | "
              f"{100 * gf / rate:.0f}% |", flush=True)
    print(f"float32 matmul {matmul_gflops():.1f} GFLOP/s after")


if __name__ == "__main__":
    main()
