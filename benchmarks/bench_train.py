"""Training throughput: examples per second of full SGD steps (forward + backward + update), float32.

    python benchmarks/bench_train.py

A table for benchmarks/README.md, never asserted in tests. FLOPs per example count the matrix
products only (3x the forward pass: forward, and two products in the backward pass).
"""
import time

import jax
import numpy as np

import nbkernels as nbk
from nbkernels import data, train
from bench_kernels import matmul_gflops


def flops_per_example(arch, shape):
    total, spec_in = 0, arch.specs(shape)
    for layer, s_in, s_out in zip(arch.layers, spec_in, spec_in[1:]):
        if isinstance(layer, nbk.Dense):
            total += 2 * s_in.channels * s_out.channels
        elif isinstance(layer, nbk.Conv):
            total += 2 * np.prod(s_out.spatial) * s_out.channels * s_in.channels * np.prod(layer.filter_shape)
    return 3 * total


CASES = [
    ("FC depth 3, width 2048, d=3072", nbk.fcn(3, 2048), (3072,), 256),
    ("CNN depth 8, width 128, 8x8x3", nbk.cnn(8, 128), (8, 8, 3), 128),
    ("CNN depth 8, width 128, 16x16x3", nbk.cnn(8, 128), (16, 16, 3), 64),
]


def main():
    rate = matmul_gflops()
    print(f"float32 matmul {rate:.1f} GFLOP/s on {jax.default_backend()}\n")
    print("| case | batch | examples/s | GFLOP/s | share of matmul rate |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, arch, shape, batch in CASES:
        x = rng.normal(size=(batch,) + shape).astype(np.float32)
        y = data.one_hot(rng.integers(0, 10, batch))
        steps = 20
        kw = dict(lr=1e-3, eval_every=10 ** 6, cache=False, progress=False)
        train.train(arch, x, y, x[:8], y[:8], steps=2, **kw)  # compile
        t = time.perf_counter()
        train.train(arch, x, y, x[:8], y[:8], steps=steps + 2, **kw)
        base = time.perf_counter()
        train.train(arch, x, y, x[:8], y[:8], steps=2, **kw)
        per_step = ((base - t) - (time.perf_counter() - base)) / steps
        ex = batch / per_step
        gf = ex * flops_per_example(arch, shape) / 1e9
        print(f"| {name} | {batch} | {ex:,.0f} | {gf:.1f} | {100 * gf / rate:.0f}% |", flush=True)
    ensemble_rows(rate)


def ensemble_rows(rate, only=()):
    """Minibatch momentum steps of the notebooks' CNNs (8x8, batch 100): one member, and 4 members
    run as XLA sees them: unrolled in one program (what train() does for convolutions) or vmapped."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8, 8, 3)).astype(np.float32)
    y = data.one_hot(rng.integers(0, 10, 1000))
    print("\n| case (8x8, batch 100 unless said, momentum) | members | how | steps/s | member-examples/s | GFLOP/s | share |")
    print("|---|---|---|---|---|---|---|")
    cases = [("FCN depth 2, width 512 (full batch 1,000)", nbk.fcn(2, 512), None),
             ("FCN depth 2, width 512", nbk.fcn(2, 512), 100),
             ("CNN-VEC depth 2, width 32", nbk.cnn(2, 32), 100), ("CNN-VEC depth 2, width 64", nbk.cnn(2, 64), 100),
             ("CNN-GAP depth 2, width 64", nbk.cnn(2, 64, readout="gap"), 100),
             ("LCN depth 2, width 16", nbk.cnn(2, 16, weight_sharing=False), 100)]
    if only:
        cases = [c for c in cases if any(o in c[0] for o in only)]
    for name, arch, batch in cases:
        # 4 members as 4 separate runs ("alone" x4) against one program of 4: what a grid of 4 settings
        # would gain by running as members (train() takes lr and L2 as arguments, so it compiles once)
        for members, unroll in [(1, None), (4, True), (4, False)]:
            step, p0, s0, f0, hyper = step_inputs(arch, x, members, batch, unroll=unroll)
            p, s, loss = step(p0, s0, 0, p0, x, y, f0, *hyper)
            loss.block_until_ready()
            n = 30 if unroll is not False else 5
            t = time.perf_counter()
            for i in range(n):
                p, s, loss = step(p, s, i, p0, x, y, f0, *hyper)
            loss.block_until_ready()
            sps = n / (time.perf_counter() - t)
            per_step = len(x) if batch is None else batch
            gf = sps * per_step * members * flops_per_example(arch, (8, 8, 3)) / 1e9
            how = "alone" if members == 1 else ("unrolled" if unroll else "vmapped")
            print(f"| {name} | {members} | {how} | {sps:.1f} | {sps * per_step * members:,.0f} | {gf:.1f} | {100 * gf / rate:.0f}% |",
                  flush=True)


PATH_CASES = [  # (name, arch, image side, batch): the notebooks' CNNs and LCNs at the three image sizes
    ("CNN-VEC depth 2, width 32", nbk.cnn(2, 32), 8, 100), ("CNN-VEC depth 2, width 64", nbk.cnn(2, 64), 8, 100),
    ("CNN-GAP depth 2, width 64", nbk.cnn(2, 64, readout="gap"), 8, 100),
    ("CNN-VEC depth 2, width 64", nbk.cnn(2, 64), 16, 100), ("CNN-GAP depth 2, width 64", nbk.cnn(2, 64, readout="gap"), 16, 100),
    ("CNN-VEC depth 2, width 64", nbk.cnn(2, 64), 32, 64), ("CNN-GAP depth 2, width 64", nbk.cnn(2, 64, readout="gap"), 32, 64),
    ("CNN depth 8, width 128", nbk.cnn(8, 128), 16, 64),
    ("LCN depth 2, width 16", nbk.cnn(2, 16, weight_sharing=False), 8, 100),
    ("LCN depth 2, width 64", nbk.cnn(2, 64, weight_sharing=False), 8, 100),
    ("LCN depth 2, width 16", nbk.cnn(2, 16, weight_sharing=False), 16, 100),
]


def step_inputs(arch, x, members, batch, unroll=None, eigen=True):
    """``train``'s compiled momentum step for ``members`` networks (lr 0.01, no L2) and what it is called
    with: ``(step, params0, opt_state0, f0, hyper)``, for ``step(p, s, i, params0, x, y, f0, *hyper)``."""
    import jax.numpy as jnp
    p0 = train.init_members(arch.network(), jax.random.split(jax.random.PRNGKey(0), members), x)
    ones = jax.tree_util.tree_map(lambda _: 1.0, jax.tree_util.tree_map(lambda a: a[0], p0))
    s0 = jax.vmap(train.make_optimizer(0.1, "momentum", 0.9, 0.0, ones).init)(p0)
    cfg = train.TrainConfig(lr=0.01, optimizer="momentum", batch_size=batch)
    step, _, apply_all = train.programs(arch, cfg, unroll=unroll, eigen=eigen)
    hyper = (jnp.float32(0.01), jnp.float32(0.0), jax.tree_util.tree_map(jnp.float32, ones), jax.random.PRNGKey(1))
    return step, p0, s0, apply_all(p0, x), hyper


def time_step(arch, hw, batch, members, eigen, reps=3, seconds=1.0):
    """Steps/s of ``train``'s compiled minibatch momentum step (best of ``reps`` timings of about
    ``seconds`` each), and the float32 parameters after 3 steps (to compare the two paths)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(max(batch, 500), hw, hw, 3)).astype(np.float32)
    y = data.one_hot(rng.integers(0, 10, len(x)))
    step, p0, s0, f0, hyper = step_inputs(arch, x, members, batch, eigen=eigen)
    p, s = p0, s0
    for i in range(3):
        p, s, loss = step(p, s, i, p0, x, y, f0, *hyper)
    after3 = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(p)])
    t = time.perf_counter()
    p, s, loss = step(p, s, 3, p0, x, y, f0, *hyper)
    loss.block_until_ready()
    n = max(3, int(seconds / (time.perf_counter() - t)))
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(n):
            p, s, loss = step(p, s, i, p0, x, y, f0, *hyper)
        loss.block_until_ready()
        best = max(best, n / (time.perf_counter() - t))
    return best, after3


def path_rows(rate, only=()):
    """XLA's default CPU convolution (YNNPACK) against ``train.CPU_CONVOLUTIONS`` (Eigen's), side by side
    in one process on the same step, shapes and data; one member and (8x8 only) 4 unrolled members."""
    print("\n| case | image | batch | members | XLA default: steps/s, share | train (Eigen conv): steps/s, GFLOP/s, share |"
          " speed-up | params after 3 steps, max rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name, arch, hw, batch in PATH_CASES:
        if only and not any(o in name for o in only):
            continue
        for members in ([1, 4] if hw == 8 else [1]):
            fl = flops_per_example(arch, (hw, hw, 3)) * batch * members / 1e9
            old, p_old = time_step(arch, hw, batch, members, eigen=False)
            new, p_new = time_step(arch, hw, batch, members, eigen=True)
            old2, _ = time_step(arch, hw, batch, members, eigen=False)  # the default again: drift shows here
            old = max(old, old2)
            diff = np.max(np.abs(p_new - p_old)) / np.max(np.abs(p_old))
            print(f"| {name} | {hw}x{hw} | {batch} | {members} | {old:.1f}, {100 * old * fl / rate:.0f}% | "
                  f"{new:.1f}, {new * fl:.1f}, {100 * new * fl / rate:.0f}% | {new / old:.2f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["paths"]:  # bench_train.py paths [CNN-VEC ...]: default convolution against train's
        rate = matmul_gflops()
        print(f"float32 matmul {rate:.1f} GFLOP/s on {jax.default_backend()}, {jax.__version__}")
        path_rows(rate, only=sys.argv[2:])
        print(f"float32 matmul {matmul_gflops():.1f} GFLOP/s after")
    elif sys.argv[1:2] == ["ensembles"]:  # bench_train.py ensembles [FCN ...]: only the ensemble rows (matching cases)
        rate = matmul_gflops()
        print(f"float32 matmul {rate:.1f} GFLOP/s on {jax.default_backend()}")
        ensemble_rows(rate, only=sys.argv[2:])
    else:
        main()
