"""Cost per entry and pass of CNN-GAP kernels against the image size, the fused CPU kernel beside the XLA
programs (``Settings(fused=False)``), interleaved in one process: does the cost per kernel entry grow no
faster than the P^2 pixel pairs?

    .venv/bin/python benchmarks/scale_pixels.py --out benchmarks/scale_pixels_cpu.json

Float32, NNGP + NTK, x1 != x2, best of ``--repeats`` after a compiling call. An entry-pass is one pixel
pair of one input pair through one convolution and its ReLU.
"""
import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# (image side, inputs a side, depth)
CASES = [(8, 96, 2), (16, 48, 2), (32, 16, 2), (8, 48, 8), (32, 16, 8)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    import nbkernels as nbk
    rows = []
    for side, n, depth in CASES:
        rng = np.random.default_rng(0)
        x1, x2 = (rng.normal(size=(n, side, side, 3)).astype(np.float32) for _ in range(2))
        arch = nbk.cnn(depth, 1, readout="gap")
        best = {}
        for path in ("1", "0", "1", "0"):
            s = nbk.settings.Settings(fused=path == "1")
            arch.kernel(x1[:4], x2[:4], progress=False, settings=s)
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                arch.kernel(x1, x2, progress=False, max_hours=None, settings=s)
                best[path] = min(best.get(path, np.inf), time.perf_counter() - t0)
        passes = n * n * side ** 4 * depth
        row = dict(image=side, inputs=n, depth=depth, fused_s=best["1"], xla_s=best["0"],
                   fused_ns_per_entry_pass=best["1"] / passes * 1e9, xla_ns_per_entry_pass=best["0"] / passes * 1e9,
                   fused_entries_per_s=n * n / best["1"])
        rows.append(row)
        print(f"| {side}×{side} | {n}×{n} | {depth} | {row['fused_s']:.3f} s | {row['xla_s']:.3f} s | "
              f"{row['fused_ns_per_entry_pass']:.2f} | {row['xla_ns_per_entry_pass']:.2f} | "
              f"{row['fused_entries_per_s']:,.0f} |", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(dict(cpu_count=os.cpu_count(), rows=rows), indent=1))


if __name__ == "__main__":
    main()
