"""Side by side with Neural Tangents 0.6.5: the same workloads, each library in its own process, in one run.

    .venv/bin/python benchmarks/bench_vs_nt.py                 # needs ../shared/reference/setup.sh's env
    .venv/bin/python benchmarks/bench_vs_nt.py --out benchmarks/vs_nt_cpu.json

Every workload is NNGP + NTK together, float32, x1 != x2 (two different random input sets), timed as
the best of ``--repeats`` calls after one call that compiles. This file is also the worker: run with
``--worker nbk|nt NAME`` under either environment it times one workload and prints JSON. Neural
Tangents is a measuring instrument here, never a dependency: only its own virtualenv imports it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NT_PYTHON = Path(os.environ.get("NT_ENV", Path.home() / ".cache" / "neural-tangents-0.6.5")) / "bin" / "python"

# name: (architecture, depth, n, input shape)
WORKLOADS = {
    "FC depth 3, 2000x2000, d=3072": ("fc", 3, 2000, (3072,)),
    "CNN-VEC depth 8, 200x200, 16x16x3": ("vec", 8, 200, (16, 16, 3)),
    "CNN-GAP depth 2, 100x100, 8x8x3": ("gap", 2, 100, (8, 8, 3)),
    "CNN-GAP depth 2, 30x30, 16x16x3": ("gap", 2, 30, (16, 16, 3)),
    "CNN-GAP depth 8, 4x4, 32x32x3": ("gap", 8, 4, (32, 32, 3)),
}
# Work estimate for the convolutional rows: about 64 flops per kernel entry (pixel pair, or pixel for
# CNN-VEC) and layer, NNGP and NTK together (the 3x3 joint-shift means, the affine maps, the ReLU's
# square root, three divisions and rational arctangent); see roofline.py for what this CPU sustains.
FLOPS_PER_ENTRY_LAYER = 64


def work_flops(name):
    kind, depth, n, shape = WORKLOADS[name]
    if kind == "fc":
        return None
    pixels = shape[0] * shape[1]
    return FLOPS_PER_ENTRY_LAYER * depth * n * n * (pixels ** 2 if kind == "gap" else pixels)


def best_time(run, repeats):
    """Seconds of the fastest of ``repeats`` calls of ``run()`` (which must block until done), and all
    of them; the caller has made the compiling call. Standard library only: both venvs import it."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times), times


def _inputs(n, shape):
    import numpy as np
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n,) + shape).astype(np.float32), rng.normal(size=(n,) + shape).astype(np.float32))


def _nbk_fn(kind, depth):
    import nbkernels as nbk
    arch = {"fc": lambda: nbk.fcn(depth, 1), "vec": lambda: nbk.cnn(depth, 1, readout="vec"),
            "gap": lambda: nbk.cnn(depth, 1, readout="gap")}[kind]()

    def run(x1, x2):
        k = arch.kernel(x1, x2, progress=False)
        return k.ntk
    return run


def _nt_fn(kind, depth):
    """The same architectures in Neural Tangents' stax: W_std**2 = 2, b_std = 0.1, 3x3 SAME convolutions."""
    from neural_tangents import stax
    w, b = 2 ** 0.5, 0.1
    if kind == "fc":
        layers = [stax.Flatten()] + [l for _ in range(depth) for l in (stax.Dense(1, W_std=w, b_std=b), stax.Relu())]
    else:
        layers = [l for _ in range(depth) for l in (stax.Conv(1, (3, 3), padding="SAME", W_std=w, b_std=b), stax.Relu())]
        layers.append(stax.Flatten() if kind == "vec" else stax.GlobalAvgPool())
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(10, W_std=w, b_std=b))
    import jax
    fn = jax.jit(kernel_fn, static_argnames="get")

    def run(x1, x2):
        k = fn(x1, x2, get=("nngp", "ntk"))
        return k.ntk.block_until_ready()
    return run


def worker(lib, name, repeats):
    import numpy as np
    kind, depth, n, shape = WORKLOADS[name]
    x1, x2 = _inputs(n, shape)
    run = (_nbk_fn if lib == "nbk" else _nt_fn)(kind, depth)
    ntk = np.asarray(run(x1, x2), np.float64)  # compiles; its values check that both compute one kernel
    seconds, times = best_time(lambda: np.asarray(run(x1, x2)), repeats)
    import jax
    print(json.dumps(dict(lib=lib, name=name, seconds=seconds, all=times, entries=n * n,
                          jax=jax.__version__, ntk_corner=ntk[:4, :4].ravel().tolist())))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "NAME"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="';'-separated parts of workload names (default: all)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--nt-malloc", action="store_true", help="also time Neural Tangents with nbkernels' malloc settings")
    a = ap.parse_args(argv)
    if a.worker:
        return worker(*a.worker, a.repeats)
    if not NT_PYTHON.exists():
        raise SystemExit(f"{NT_PYTHON} not found: build it with `bash ../shared/reference/setup.sh` (or set NT_ENV).")
    names = [n for n in WORKLOADS if not a.only or any(part in n for part in a.only.split(";"))]
    rows = []
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_ENABLE_X64", None)
    # "nbk_xla" is nbkernels with its per-layer XLA programs on the CPU too (NBKERNELS_FUSED=0: what
    # accelerators run, and the CPU before nbkernels.fused): the A/B of the fused kernel in the same run.
    # With --nt-malloc, Neural Tangents is also timed with nbkernels' glibc malloc settings
    # (engine.malloc_env()): what the allocator alone gives it (nothing, in benchmarks/README.md).
    columns = [("nt", "nt", NT_PYTHON, {}), ("nbk_xla", "nbk", sys.executable, {"NBKERNELS_FUSED": "0"}),
               ("nbk", "nbk", sys.executable, {})]
    if a.nt_malloc:
        from nbkernels.engine import malloc_env
        columns.insert(1, ("nt_malloc", "nt", NT_PYTHON, malloc_env()))
    for name in names:
        got = {}
        for lib, worker_lib, python, extra in columns:
            out = subprocess.run([str(python), __file__, "--worker", worker_lib, name, "--repeats", str(a.repeats)],
                                 env=dict(env, **extra), capture_output=True, text=True, timeout=3600)
            if out.returncode != 0:
                raise SystemExit(f"{lib} {name} failed:\n{out.stderr[-3000:]}")
            got[lib] = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = got["nt"]["seconds"] / got["nbk"]["seconds"]
        a_, b_ = got["nt"]["ntk_corner"], got["nbk"]["ntk_corner"]
        agree = max(abs(u - v) for u, v in zip(a_, b_)) / max(abs(u) for u in a_)
        if agree > 1e-4:  # float32: the two must compute the same kernel
            raise SystemExit(f"{name}: the NTKs differ by {agree:.1e} relative; the workloads are not the same")
        flops = work_flops(name)
        rows.append(dict(name=name, nt_s=got["nt"]["seconds"], nbk_s=got["nbk"]["seconds"], ratio=ratio,
                         nbk_xla_s=got["nbk_xla"]["seconds"],
                         nt_malloc_s=got["nt_malloc"]["seconds"] if a.nt_malloc else None,
                         ratio_xla=got["nt"]["seconds"] / got["nbk_xla"]["seconds"],
                         nbk_entries_per_s=got["nbk"]["entries"] / got["nbk"]["seconds"],
                         nbk_gflop_s=None if flops is None else flops / got["nbk"]["seconds"] / 1e9,
                         nt_gflop_s=None if flops is None else flops / got["nt"]["seconds"] / 1e9,
                         nt_jax=got["nt"]["jax"], nbk_jax=got["nbk"]["jax"], ntk_agreement=agree))
        print(f"| {name} | {got['nt']['seconds']:.3f} s | {got['nbk_xla']['seconds']:.3f} s | "
              f"{got['nbk']['seconds']:.3f} s | {ratio:.1f}× | {rows[-1]['ratio_xla']:.1f}× |" +
              (f" NT + malloc {got['nt_malloc']['seconds']:.3f} s |" if a.nt_malloc else ""), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(dict(cpu_count=os.cpu_count(), rows=rows), indent=1))


if __name__ == "__main__":
    main()
