"""Training-step paths for convolutions and LCNs, side by side in one run (issue 33, 2026-12-05).

    .venv/bin/python benchmarks/conv_paths.py

A plain-JAX two-layer net (conv, ReLU, conv, ReLU, dense readout), minibatch momentum steps, float32:
XLA's convolution against im2col (patches from 9 shifted slices, one matrix product), and today's LCN
(patches from lax.conv_general_dilated_patches, einsum) against the LCN as a batched matrix product over
positions with patches from slices. Numbers in benchmarks/README.md; not yet adopted in nbkernels.
"""
import time
import jax, jax.numpy as jnp, numpy as np
from jax import lax

from bench_kernels import matmul_gflops

def patches_slices(x, f=3):
    # SAME zero padding, stride 1: the 9 shifted views concatenated on channels, (n,h,w,9c), order (dy,dx,c)
    n, h, w, c = x.shape
    p = f // 2
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(f) for j in range(f)], axis=-1)

def conv_xla(x, W):
    return lax.conv_general_dilated(x, W, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

def conv_im2col(x, W):
    n, h, w, c = x.shape
    P = patches_slices(x)
    return (P.reshape(-1, P.shape[-1]) @ W.reshape(-1, W.shape[-1])).reshape(n, h, w, -1)

def lcn_einsum_patches(x, W):  # today's LCN
    P = lax.conv_general_dilated_patches(x, (3, 3), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.einsum("nhwp,hwpo->nhwo", P, W)

def lcn_bmm(x, W):  # positions as the batch of a batched matmul, patches by slices
    n, h, w, c = x.shape
    P = patches_slices(x)  # (n,h,w,9c), (dy,dx,c) order
    Pt = P.reshape(n, h * w, -1).transpose(1, 0, 2)  # (hw, n, 9c)
    y = jnp.einsum("snp,spo->sno", Pt, W.reshape(h * w, W.shape[-2], W.shape[-1]))
    return y.transpose(1, 0, 2).reshape(n, h, w, -1)

def conv_shift_sum(x, W):  # nine accumulated per-shift products
    n, h, w, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(jnp.einsum("nhwc,co->nhwo", xp[:, i:i + h, j:j + w, :], W[i, j]) for i in range(3) for j in range(3))

def conv_dilated_patches(x, W):  # patches as today's LCN builds them, then one product
    n, h, w, c = x.shape
    P = lax.conv_general_dilated_patches(x, (3, 3), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return (P.reshape(-1, P.shape[-1]) @ W.transpose(2, 0, 1, 3).reshape(-1, W.shape[-1])).reshape(n, h, w, -1)

def conv_im2col_first_only(x, W):
    return conv_im2col(x, W) if x.shape[-1] <= 4 else conv_xla(x, W)

def conv_im2col_after_first(x, W):
    return conv_xla(x, W) if x.shape[-1] <= 4 else conv_im2col(x, W)

CNN_PATHS = [("xla", conv_xla), ("im2col", conv_im2col), ("im2col after the first", conv_im2col_after_first),
             ("im2col first only", conv_im2col_first_only), ("per-shift sum", conv_shift_sum),
             ("dilated patches", conv_dilated_patches)]

def net(conv, params, x):
    for W in params[:-1]:
        x = jax.nn.relu(conv(x, W))
    return x.reshape(x.shape[0], -1) @ params[-1]

def bench(conv, shapes, x, y, n=30):
    key = jax.random.PRNGKey(0)
    params = [jax.random.normal(jax.random.fold_in(key, i), s) * 0.1 for i, s in enumerate(shapes)]
    mom = [jnp.zeros_like(p) for p in params]
    @jax.jit
    def step(params, mom, x, y):
        loss, g = jax.value_and_grad(lambda p: 0.5 * jnp.mean((net(conv, p, x) - y) ** 2))(params)
        mom = [0.9 * m + gi for m, gi in zip(mom, g)]
        return [p - 0.01 * m for p, m in zip(params, mom)], mom, loss
    p, m, l = step(params, mom, x, y); l.block_until_ready()
    best = 1e9
    for r in range(3):
        t = time.perf_counter()
        for i in range(n):
            p, m, l = step(p, m, x, y)
        l.block_until_ready()
        best = min(best, (time.perf_counter() - t) / n)
    g = jax.grad(lambda p: jnp.sum(net(conv, p, x) ** 2))(params)
    return best, g

rate = matmul_gflops(); print(f"matmul {rate:.0f} GFLOP/s")
for hw, width, batch in [(8, 64, 100), (16, 64, 100), (32, 64, 64), (16, 128, 64)]:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, hw, hw, 3)).astype(np.float32)); y = jnp.asarray(rng.normal(size=(batch, 10)).astype(np.float32))
    shapes = [(3, 3, 3, width), (3, 3, width, width), (hw * hw * width, 10)]
    flops = 3 * batch * 2 * (hw * hw * 27 * width + hw * hw * 9 * width * width + hw * hw * width * 10)
    res = {}
    for name, conv in CNN_PATHS:
        t, g = bench(conv, shapes, x, y); res[name] = g
        print(f"CNN {hw}x{hw} w{width} b{batch} {name}: {t*1e3:.1f} ms/step {flops/t/1e9:.1f} GFLOP/s {100*flops/t/1e9/rate:.0f}%", flush=True)
    print("  im2col: max rel grad diff", max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a))) for a, b in zip(res["xla"], res["im2col"])))
    if hw <= 16 and width == 64:
        lw = 16
        lshapes = [(hw, hw, 27, lw), (hw, hw, 9 * lw, lw), (hw * hw * lw, 10)]
        lflops = 3 * batch * 2 * (hw * hw * 27 * lw + hw * hw * 9 * lw * lw + hw * hw * lw * 10)
        # today's patches order from conv_general_dilated_patches is (c, dy, dx); only timing matters here
        for name, conv in [("lcn-today", lcn_einsum_patches), ("lcn-bmm", lcn_bmm)]:
            t, g = bench(conv, lshapes, x, y)
            print(f"LCN {hw}x{hw} w{lw} b{batch} {name}: {t*1e3:.1f} ms/step {lflops/t/1e9:.1f} GFLOP/s {100*lflops/t/1e9/rate:.0f}%", flush=True)
