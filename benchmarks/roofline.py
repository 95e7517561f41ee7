"""This CPU's roofline as JAX/XLA sees it: the ceilings the kernel benchmarks are read against.

    .venv/bin/python benchmarks/roofline.py --out benchmarks/roofline_cpu.json

Each ceiling is one XLA program, timed as the best of ``--repeats`` calls after one that compiles, all
cores (XLA's own threading), float32:

* **elementwise FMA**: a chain of 20 multiply-adds per element on a 1 MiB (cache-resident) array;
* **division**, **square root**: ten of each per element (their throughput, not latency);
* **arctan2 (libm)**: ``jnp.arctan2``, which XLA's CPU backend calls per element (what Neural Tangents
  uses); **arctan2 (nbkernels)**: the vectorized rational form in ``nbkernels.kernels.atan2``;
* **copy bandwidth**: ``y = 2 x`` (read + write) on 1 MiB (cache) and 256 MiB (DRAM) arrays;
* **matmul**: 2048 x 2048 float32 (the FC kernels and the training loops).

and, as the fused CPU kernel (``nbkernels.fused``, Numba) sees it, on **one core** (it runs one work
item per core), float32 on a 256 KiB cache-resident array:

* **division**, **square root** (Numba): ten per element, vectorized;
* **ReLU map (nbkernels.fused)**: the kernel's own map of one entry (NNGP and NTK), as its loops run it;
* **3 x 3 shifted sum (nbkernels.fused)**: the nine reads a convolution adds per entry and field.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bench_vs_nt import best_time


def _best(f, *args, repeats):
    import jax
    jax.block_until_ready(f(*args))  # compiles
    return best_time(lambda: jax.block_until_ready(f(*args)), repeats)[0]


def measure(repeats=20):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from nbkernels import kernels as K

    rng = np.random.default_rng(0)
    rows = []

    def vec(n):
        return jnp.asarray(rng.uniform(0.5, 1.5, n).astype(np.float32))

    x = vec(2 ** 18)

    def fma(a):
        y = a
        for _ in range(20):
            y = y * a + 0.5
        return y
    t = _best(jax.jit(fma), x, repeats=repeats)
    rows.append(dict(name="elementwise FMA", value=2 * 20 * x.size / t / 1e9, unit="GFLOP/s"))
    t = _best(jax.jit(lambda a: sum(1 / (a + i) for i in range(10))), x, repeats=repeats)
    rows.append(dict(name="division", value=10 * x.size / t / 1e9, unit="G/s"))
    t = _best(jax.jit(lambda a: sum(jnp.sqrt(a + i) for i in range(10))), x, repeats=repeats)
    rows.append(dict(name="square root", value=10 * x.size / t / 1e9, unit="G/s"))
    y = vec(2 ** 18)
    t = _best(jax.jit(jnp.arctan2), x, y, repeats=repeats)
    rows.append(dict(name="arctan2 (libm, per element)", value=x.size / t / 1e9, unit="G/s"))
    t = _best(jax.jit(K.atan2), x, y, repeats=repeats)
    rows.append(dict(name="arctan2 (nbkernels, vectorized)", value=x.size / t / 1e9, unit="G/s"))
    for label, n in (("copy bandwidth, 1 MiB (cache)", 2 ** 18), ("copy bandwidth, 256 MiB (DRAM)", 2 ** 26)):
        a = vec(n)
        t = _best(jax.jit(lambda v: 2 * v), a, repeats=repeats if n < 2 ** 20 else 5)
        rows.append(dict(name=label, value=2 * 4 * n / t / 1e9, unit="GB/s"))
    m = jnp.asarray(rng.normal(size=(2048, 2048)).astype(np.float32))
    t = _best(jax.jit(lambda a: a @ a), m, repeats=5)
    rows.append(dict(name="matmul 2048^2", value=2 * 2048 ** 3 / t / 1e9, unit="GFLOP/s"))
    t = _best(jax.jit(lambda a: a + 1), x[:16], repeats=200)
    rows.append(dict(name="dispatch (one tiny XLA program)", value=t * 1e6, unit="us"))
    rows += _numba_rows(repeats)
    return dict(cpu_count=os.cpu_count(), jax=jax.__version__, rows=rows)


def _numba_rows(repeats):
    import numpy as np
    from numba import njit
    from nbkernels import fused
    U = np.uint64
    ct = tuple(fused.constants(np.float32))

    @njit(error_model="numpy")
    def div(a, out):
        for m in range(U(a.shape[0])):
            v = a[m]
            out[m] = (((((((((1 / v + 1 / (v + 1)) + 1 / (v + 2)) + 1 / (v + 3)) + 1 / (v + 4)) + 1 / (v + 5))
                       + 1 / (v + 6)) + 1 / (v + 7)) + 1 / (v + 8)) + 1 / (v + 9))

    @njit(error_model="numpy")
    def sqrt(a, out):
        for m in range(U(a.shape[0])):
            v = a[m]
            out[m] = (np.sqrt(v) + np.sqrt(v + 1) + np.sqrt(v + 2) + np.sqrt(v + 3) + np.sqrt(v + 4) + np.sqrt(v + 5)
                      + np.sqrt(v + 6) + np.sqrt(v + 7) + np.sqrt(v + 8) + np.sqrt(v + 9))

    @njit(error_model="numpy")
    def relu(k, t, f1, f2, out_k, out_t, ct):
        for m in range(U(k.shape[0])):
            out_k[m], out_t[m] = fused.activate(fused.OP_RELU, True, k[m], t[m], f1[m], f2[m], False, ct)

    @njit(error_model="numpy")
    def sum9(x, out, row):
        r2, one, two = row + row, U(1), U(2)
        for m in range(U(out.shape[0])):
            out[m] = (x[m] + x[m + one] + x[m + two] + x[m + row] + x[m + row + one] + x[m + row + two]
                      + x[m + r2] + x[m + r2 + one] + x[m + r2 + two])

    rng = np.random.default_rng(0)
    n = 2 ** 16
    a = rng.uniform(0.5, 1.5, n).astype(np.float32)
    out, out2 = np.empty_like(a), np.empty_like(a)
    k = rng.normal(size=n).astype(np.float32)
    f = (np.abs(k) + a).astype(np.float32)
    xs = rng.normal(size=n + 2 * 64 + 2).astype(np.float32)
    cases = [("division (Numba, one core)", lambda: div(a, out), 10, "G/s"),
             ("square root (Numba, one core)", lambda: sqrt(a, out), 10, "G/s"),
             ("ReLU map (nbkernels.fused, one core)", lambda: relu(k, a, f, f, out, out2, ct), 1, "G entries/s"),
             ("3 x 3 shifted sum (nbkernels.fused, one core)", lambda: sum9(xs, out, U(64)), 1, "G entries/s")]
    rows = []
    for name, run, per, unit in cases:
        run()  # compiles
        t = best_time(run, repeats)[0]
        rows.append(dict(name=name, value=per * n / t / 1e9, unit=unit))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    res = measure(a.repeats)
    for r in res["rows"]:
        print(f"| {r['name']} | {r['value']:,.2f} {r['unit']} |")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
