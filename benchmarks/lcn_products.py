"""How fast can this CPU's libraries run the LCN's per-position products at all? (issue 33, point 1: the LCN's
>= 30% goal; the companion of ``lcn_profile.py``.)

    .venv/bin/python benchmarks/lcn_products.py > benchmarks/lcn_products_cpu.txt

An LCN layer of width ``w`` on an ``s x s`` image is, per position p, a product of the batch's patches
(N x K, K = 9 x channels in) with that position's filters (K x w): the forward product, the weight gradient
(K x N) . (N x w) and the input gradient (N x w) . (w x K), batched over the s^2 positions. Each is timed
alone, for both layers of the depth-2 LCNs ``bench_train`` and ``lcn_profile`` time (batch 100):

* XLA as ``nbkernels.layers`` writes them today (``jnp.einsum`` on (p, n, k) patches), and the weight
  gradient's other dimension orders (the transposed result (p, w, k), example-minor operands);
* numpy's ``matmul`` on the same stacks, which calls its BLAS once per position.

The bound: the depth-2 step's products, each direction at the fastest rate any of these reached, as a share
of the float32 matmul rate. A step that runs its products through these libraries cannot do better, even if
its patches, bias, ReLU, readout and optimizer took no time. Benchmark only, never asserted in tests.
"""
import jax
import jax.numpy as jnp
import numpy as np

from bench_kernels import matmul_gflops
from bench_vs_nt import best_time
from lcn_profile import BATCH, CASES

WEIGHT_GRADIENT = {  # XLA's dimension orders for dW = patches^T . g, per position
    "(p,n,k),(p,n,w)->(p,k,w) [today]": lambda a, g: (a, g, "pnk,pnw->pkw"),
    "(p,n,w),(p,n,k)->(p,w,k)": lambda a, g: (g, a, "pnw,pnk->pwk"),
    "(p,k,n),(p,n,w)->(p,k,w)": lambda a, g: (a.transpose(0, 2, 1), g, "pkn,pnw->pkw"),
    "(p,w,n),(p,n,k)->(p,w,k)": lambda a, g: (g.transpose(0, 2, 1), a, "pwn,pnk->pwk"),
}
TODAY = {"forward": "xla", "input gradient": "xla", "weight gradient": f"xla {next(iter(WEIGHT_GRADIENT))}"}


def best_seconds(fn, inner: int = 30, repeat: int = 7) -> float:
    """Seconds per call of ``fn``: after a compiling call, the best of ``repeat`` timings of ``inner`` calls."""
    fn()
    return best_time(lambda: [fn() for _ in range(inner)], repeat)[0] / inner


def xla_rate(spec: str, x, y, flops: float) -> float:
    f = jax.jit(lambda u, v: jnp.einsum(spec, u, v))
    u, v = jnp.asarray(np.ascontiguousarray(x)), jnp.asarray(np.ascontiguousarray(y))
    return flops / best_seconds(lambda: f(u, v).block_until_ready()) / 1e9


def numpy_rate(x, y, flops: float) -> float:
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    return flops / best_seconds(lambda: np.matmul(x, y)) / 1e9


def layer_rates(positions: int, k: int, w: int) -> dict:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(positions, BATCH, k)).astype(np.float32)    # patches
    f = rng.normal(size=(positions, k, w)).astype(np.float32)        # filters
    g = rng.normal(size=(positions, BATCH, w)).astype(np.float32)    # output gradient
    flops = 2.0 * positions * BATCH * k * w
    rates = {"forward": {"xla": xla_rate("pnk,pkw->pnw", a, f, flops), "numpy": numpy_rate(a, f, flops)},
             "input gradient": {"xla": xla_rate("pnw,pkw->pnk", g, f, flops),
                                "numpy": numpy_rate(g, f.transpose(0, 2, 1), flops)},
             "weight gradient": {"numpy": numpy_rate(a.transpose(0, 2, 1), g, flops)}}
    for name, order in WEIGHT_GRADIENT.items():
        x, y, spec = order(a, g)
        rates["weight gradient"][f"xla {name}"] = xla_rate(spec, x, y, flops)
    return dict(k=k, flops=flops, rates=rates)


def main():
    rate = matmul_gflops()
    print(f"float32 matmul {rate:.1f} GFLOP/s; jax {jax.__version__}, numpy {np.__version__}; batch {BATCH}, depth 2")
    for width, side in CASES:
        positions = side * side
        layers = [layer_rates(positions, 9 * 3, width), layer_rates(positions, 9 * width, width)]
        print(f"\nLCN width {width}, {side}x{side} ({positions} positions)")
        best_total = today_total = 0.0
        for i, layer in enumerate(layers, 1):
            for direction, rates in layer["rates"].items():
                if i == 1 and direction == "input gradient":
                    continue   # the first layer's input gradient is never computed
                best_total += layer["flops"] / max(rates.values())
                today_total += layer["flops"] / rates[TODAY[direction]]
                cells = ", ".join(f"{name} {r:.1f}" for name, r in rates.items())
                print(f"  layer {i} (K = {layer['k']}) {direction}: "
                      f"{cells} GFLOP/s")
        total = sum(lay["flops"] for lay in layers) * 3 - layers[0]["flops"]
        print(f"  the step's products at XLA's rates today: {total / today_total:.1f} GFLOP/s "
              f"({100 * total / today_total / rate:.0f}% of the matmul rate); at the fastest rate of each: "
              f"{total / best_total:.1f} GFLOP/s, a bound of {100 * total / best_total / rate:.0f}% on the step")
    print(f"\nfloat32 matmul at the end {matmul_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
