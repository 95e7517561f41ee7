"""Kernel throughput: NNGP+NTK entries per second in float32, and the share of this machine's matmul rate.

    python benchmarks/bench_kernels.py            # prints a markdown table; --json FILE to save rows

Never asserted in tests: a table for benchmarks/README.md. Each case runs once to compile, then the
best of `--repeat` timed runs is reported.
"""
import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import nbkernels as nbk


def matmul_gflops(n=4096, repeat=5):
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


CASES = [
    # name, architecture, n, input shape, Neural Tangents 0.6.5 seconds on this machine class (issue 3)
    ("(a) FC depth 3, 2000x2000, d=3072", lambda: nbk.fcn(3, 1), 2000, (3072,), 0.36),
    ("(b) CNN-VEC depth 8, 200x200, 16x16x3", lambda: nbk.cnn(8, 1, readout="vec"), 200, (16, 16, 3), 1.5),
    ("(c) CNN-GAP depth 2, 100x100, 8x8x3", lambda: nbk.cnn(2, 1, readout="gap"), 100, (8, 8, 3), 9.1),
    ("(d) CNN-GAP depth 8, 100x100, 8x8x3", lambda: nbk.cnn(8, 1, readout="gap"), 100, (8, 8, 3), None),
    ("(d) CNN-GAP depth 8, 50x50, 16x16x3", lambda: nbk.cnn(8, 1, readout="gap"), 50, (16, 16, 3), None),
]


def gap_cost(depth, n, P, f=9):
    """Flop and byte estimate of the GAP kernel: per layer and pixel pair, the 3x3 joint-shift mean on nngp
    and ntk (2 * 2*sqrt(f) adds, separable) plus the ReLU map (~40 flops with arctan2 and sqrt)."""
    per_entry = depth * (2 * 2 * int(f ** 0.5) + 40)
    entries = n * n * P * P
    return per_entry * entries, depth * entries * 4 * 8  # bytes: ~8 passes over 4-byte arrays per layer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rate = matmul_gflops()
    rows = []
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
          f"backend {jax.default_backend()}; float32 matmul {rate:.1f} GFLOP/s\n")
    print("| case | seconds | entries/s (NNGP+NTK) | Neural Tangents 0.6.5 s | speed-up | notes |")
    print("|---|---|---|---|---|---|")
    for name, make, n, shape, nt in CASES:
        arch = make()
        x = np.random.default_rng(0).normal(size=(n,) + shape).astype(np.float32)
        arch.kernel(x, dtype=np.float32, progress=False)  # compile
        best = min(_timed(lambda: arch.kernel(x, dtype=np.float32, progress=False)) for _ in range(args.repeat))
        note = ""
        if name.startswith("(a)"):
            from nbkernels import blocks
            b = blocks.plan_blocks(n, n, 1, 4, True)
            nb = -(-n // b)
            flops = 2 * (nb * (nb + 1) // 2) * b * b * shape[0]  # the symmetric kernel's blocks on and above the diagonal
            note = (f"input Gram blocks {flops / 1e9:.1f} GFLOP at {flops / best / 1e9:.0f} GFLOP/s: "
                    f"{100 * flops / best / 1e9 / rate:.0f}% of matmul rate")
        elif "GAP" in name:
            depth = int(name.split("depth ")[1].split(",")[0])
            P = shape[0] * shape[1]
            flops, bytes_ = gap_cost(depth, n, P)
            note = f"~{flops / best / 1e9:.1f} GFLOP/s elementwise, ~{bytes_ / best / 1e9:.1f} GB/s"
        row = dict(case=name, seconds=best, entries_per_s=n * n / best, nt_seconds=nt,
                   speedup=(nt / best if nt else None), note=note, backend=jax.default_backend())
        rows.append(row)
        print(f"| {name} | {best:.3f} | {n * n / best:,.0f} | {nt if nt else '—'} | "
              f"{(f'{nt / best:.1f}x' if nt else '—')} | {note} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(matmul_gflops=rate, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
