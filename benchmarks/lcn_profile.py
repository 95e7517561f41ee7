"""Where an LCN training step's time goes, and the share of the matmul rate it could reach at most
(issue 33, point 1: the LCN's >= 30% goal).

    .venv/bin/python benchmarks/lcn_profile.py > benchmarks/lcn_profile_cpu.txt

``train``'s compiled momentum step (the one ``bench_train.py paths`` times) is run under the JAX profiler;
each executed XLA operation's time is summed over the profiled steps and put in one of three groups by the
operation of the program it came from (its HLO metadata):

* the LCN's matrix products: the batched products over positions (forward, weight gradient, input gradient);
* the LCN's patches: building them (pad, slices, concatenation), their gradient (the slices of the patch
  gradient added back into the image gradient) and any relayout of the LCN's arrays;
* the rest: bias, ReLU, readout, loss, the optimizer's update.

The profiler slows every operation (a profiled step takes 1.3-1.5x an unprofiled one), so the groups are
reported as fractions of the profiled operations' summed time, and the step's share of the matmul rate is
timed without the profiler (``bench_train.time_step``). The ceiling is the share the step would reach if
everything but the LCN's products took no time: that share divided by the products' fraction. Benchmark
only, never asserted in tests.
"""
import collections
import glob
import gzip
import json
import re
import shutil
import tempfile
import time

import jax
import numpy as np

import nbkernels as nbk
from nbkernels import data
from bench_kernels import matmul_gflops
from bench_train import flops_per_example, step_inputs, time_step

CASES = [(16, 8), (64, 8), (16, 16), (64, 16)]   # (width, image side); batch 100, depth 2, as bench_train's rows
BATCH, STEPS = 100, 20
_INSTRUCTION = re.compile(r"%([\w.\-]+) = [^=]*? (\w+)\(.*?op_name=\"([^\"]*)\"")


def groups_of(hlo_text: str):
    """Executed-operation name -> group, from the compiled program's text."""
    out = {}
    for line in hlo_text.splitlines():
        m = _INSTRUCTION.search(line)
        if not m:
            continue
        name, opcode, op_name = m.groups()
        conv = "_Conv/" in op_name
        product = opcode == "dot" or "dot_general" in op_name.rsplit("/", 1)[-1]
        out[name] = ("LCN products" if conv and product else "LCN patches" if conv else "rest")
    return out


def profile(width: int, hw: int):
    arch = nbk.cnn(2, width, weight_sharing=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, hw, hw, 3)).astype(np.float32)
    y = data.one_hot(rng.integers(0, 10, len(x)))
    step, p0, s0, f0, hyper = step_inputs(arch, x, 1, BATCH)
    groups = groups_of(step.lower(p0, s0, 0, p0, x, y, f0, *hyper).compile().as_text())
    p, s = p0, s0
    for i in range(5):
        p, s, loss = step(p, s, i, p0, x, y, f0, *hyper)
    loss.block_until_ready()
    folder = tempfile.mkdtemp()
    try:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            t = time.perf_counter()
            for i in range(STEPS):
                p, s, loss = step(p, s, i, p0, x, y, f0, *hyper)
            loss.block_until_ready()
            wall = (time.perf_counter() - t) / STEPS
        trace = json.load(gzip.open(glob.glob(f"{folder}/**/*perfetto_trace.json.gz", recursive=True)[0]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    ms = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in groups:
            ms[groups[e["name"]]] += e.get("dur", 0) / 1000 / STEPS
    return arch, wall, ms


def main():
    rate = matmul_gflops()
    print(f"float32 matmul {rate:.1f} GFLOP/s on {jax.default_backend()}, jax {jax.__version__}\n")
    print("| case | image | batch | step: steps/s, share (unprofiled) | profiled step, ms | LCN products | LCN patches "
          "| rest | ceiling (products only) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for width, hw in CASES:
        arch, wall, ms = profile(width, hw)
        steps_per_s, _ = time_step(arch, hw, BATCH, 1, eigen=True)
        share = steps_per_s * flops_per_example(arch, (hw, hw, 3)) * BATCH / 1e9 / rate
        total = sum(ms.values())
        frac = {k: v / total for k, v in ms.items()}
        print(f"| LCN depth 2, width {width} | {hw}x{hw} | {BATCH} | {steps_per_s:.1f}, {100 * share:.0f}% | {1e3 * wall:.1f} "
              f"| {100 * frac['LCN products']:.0f}% | {100 * frac['LCN patches']:.0f}% | {100 * frac['rest']:.0f}% "
              f"| {100 * share / frac['LCN products']:.0f}% |", flush=True)
    print(f"\nfloat32 matmul {matmul_gflops():.1f} GFLOP/s after")


if __name__ == "__main__":
    main()
