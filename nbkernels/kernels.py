"""Infinite-width kernels: the state that flows through the layers and the blocked computation.

A :class:`KernelState` holds, for a block of ``n1 x n2`` input pairs, the cross kernels ``nngp``
and ``ntk`` and the diagonal variances ``var1`` / ``var2`` of each input (carried alongside so each
is computed once, as Neural Tangents does). Pixel axes come first and the pair axes last, so that
the shifts of a convolution move whole contiguous slabs of pairs:

* vectors: ``nngp`` is ``(n1, n2)``, ``var1`` is ``(n1,)``;
* images, pixel diagonal only (enough without pooling: CNN-VEC, LCN): ``nngp`` is ``(H, W, n1, n2)``;
* images, every pixel pair (needed by ``GlobalAvgPool``): ``nngp`` is ``(H, W, H, W, n1, n2)``.

Numerics follow Neural Tangents: the ReLU and Erf maps are written with ``arctan2`` so they keep
their precision where the correlation nears +-1 (every diagonal entry).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

_2PI = 2.0 * math.pi


class Kernel(NamedTuple):
    """The NNGP and NTK of an architecture between two sets of inputs, each ``(N1, N2)``."""

    nngp: np.ndarray
    ntk: Optional[np.ndarray]


class KernelMemoryError(MemoryError):
    """A kernel request that would not fit in memory; raised before anything is allocated."""


@dataclasses.dataclass
class KernelState:
    nngp: jnp.ndarray
    ntk: Optional[jnp.ndarray]
    var1: Optional[jnp.ndarray]
    var2: Optional[jnp.ndarray]
    width: int                     # features / channels of the signal (fan-in of the next layer)
    spatial: Tuple[int, ...] = ()  # (H, W) for images
    full: bool = False             # every pixel pair kept (for pooling)

    def replace(self, **kw) -> "KernelState":
        return dataclasses.replace(self, **kw)

    def _broadcast_vars(self):
        v1, v2 = self.var1, self.var2
        if not self.spatial:
            return v1[:, None], v2[None, :]
        if not self.full:
            return v1[..., :, None], v2[..., None, :]
        return v1[:, :, None, None, :, None], v2[None, None, :, :, None, :]

    def elementwise(self, kernel_map, var_map) -> "KernelState":
        v1, v2 = self._broadcast_vars()
        nngp, dot = kernel_map(self.nngp, v1, v2)
        ntk = None if self.ntk is None else self.ntk * dot
        return self.replace(nngp=nngp, ntk=ntk, var1=var_map(self.var1), var2=var_map(self.var2))

    def flatten(self) -> "KernelState":
        if not self.spatial:
            return self
        nngp, ntk = self.nngp, self.ntk
        if self.full:
            nngp, ntk = take_diagonal(nngp), (None if ntk is None else take_diagonal(ntk))
        mean = lambda a: None if a is None else jnp.mean(a, axis=(0, 1))
        return self.replace(nngp=mean(nngp), ntk=mean(ntk), var1=mean(self.var1), var2=mean(self.var2),
                            width=self.width * math.prod(self.spatial), spatial=(), full=False)

    def global_avg_pool(self) -> "KernelState":
        if not self.full:
            raise AssertionError("GlobalAvgPool needs the full pixel-pair kernel")
        mean = lambda a: None if a is None else jnp.mean(a, axis=(0, 1, 2, 3))
        return self.replace(nngp=mean(self.nngp), ntk=mean(self.ntk), var1=None, var2=None,
                            spatial=(), full=False)


def relu_map(nngp, v1, v2):
    """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for (u, v) ~ N(0, [[v1, nngp], [nngp, v2]])."""
    s = jnp.sqrt(jnp.maximum(v1 * v2 - nngp ** 2, 0.0))  # sqrt(v1 v2) sin(theta)
    theta = jnp.arctan2(s, nngp)
    return (s + (jnp.pi - theta) * nngp) / _2PI, (jnp.pi - theta) / _2PI


def relu_var(v):
    return None if v is None else v / 2.0


def erf_map(nngp, v1, v2):
    """E[erf(u) erf(v)] and E[erf'(u) erf'(v)] (the arcsine kernel)."""
    r = jnp.sqrt(jnp.maximum((1 + 2 * v1) * (1 + 2 * v2) - 4 * nngp ** 2, 0.0))
    return (2 / jnp.pi) * jnp.arctan2(2 * nngp, r), (4 / jnp.pi) / r


def erf_var(v):
    return None if v is None else (2 / jnp.pi) * jnp.arctan2(2 * v, jnp.sqrt(1 + 4 * v))


def _window_sum(x, axes, f, stride, pads, circular):
    """Mean over a window of ``f`` shifts applied jointly to ``axes`` (one spatial dimension)."""
    if pads != (0, 0):
        pw = [(0, 0)] * x.ndim
        for a in axes:
            pw[a] = pads
        x = jnp.pad(x, pw, mode="wrap" if circular else "constant")
    length = x.shape[axes[0]] - f + 1
    total = None
    for d in range(f):
        idx = [slice(None)] * x.ndim
        for a in axes:
            idx[a] = slice(d, d + length)
        part = x[tuple(idx)]
        total = part if total is None else total + part
    if stride > 1:
        idx = [slice(None)] * x.ndim
        for a in axes:
            idx[a] = slice(None, None, stride)
        total = total[tuple(idx)]
    return total / f


def patch_mean(x, filter_shape, strides, geometry, circular, full):
    """A convolution's effect on a kernel: the mean over the filter's joint shifts of both inputs.

    With ``full`` the array holds every pixel pair ``(H, W, H, W, ...)`` and each spatial dimension
    shifts two axes together; otherwise only the pixel diagonal ``(H, W, ...)`` is held.
    """
    if x is None:
        return None
    for d, (f, s, (_, pads)) in enumerate(zip(filter_shape, strides, geometry)):
        axes = (d, d + 2) if full else (d,)
        x = _window_sum(x, axes, f, s, pads, circular)
    return x


def take_diagonal(full):
    H, W = full.shape[:2]
    P = H * W
    d = jnp.diagonal(full.reshape((P, P) + full.shape[4:]), axis1=0, axis2=1)  # (..., P)
    return jnp.moveaxis(d, -1, 0).reshape((H, W) + full.shape[4:])


def embed_diagonal(diag):
    H, W = diag.shape[:2]
    P = H * W
    rest = diag.shape[2:]
    eye = jnp.eye(P, dtype=diag.dtype).reshape((P, P) + (1,) * len(rest))
    return (eye * diag.reshape((P, 1) + rest)).reshape((H, W, H, W) + rest)


def diagonal_mask(spatial, dtype):
    P = math.prod(spatial)
    return jnp.eye(P, dtype=dtype).reshape(tuple(spatial) * 2 + (1, 1))


def input_state(x1, x2, full: bool, with_ntk: bool) -> KernelState:
    """The input covariance ``x1 . x2 / fan_in`` (channel mean at each pixel), Neural Tangents' convention."""
    c = x1.shape[-1]
    if x1.ndim == 2:
        nngp = x1 @ x2.T / c
        var1, var2 = jnp.sum(x1 ** 2, -1) / c, jnp.sum(x2 ** 2, -1) / c
        spatial = ()
    else:
        spatial = x1.shape[1:3]
        if full:
            nngp = jnp.einsum("iabk,jcdk->abcdij", x1, x2) / c
        else:
            nngp = jnp.einsum("iabk,jabk->abij", x1, x2) / c
        var1 = jnp.einsum("iabk,iabk->abi", x1, x1) / c
        var2 = jnp.einsum("iabk,iabk->abi", x2, x2) / c
    ntk = jnp.zeros_like(nngp) if with_ntk else None
    return KernelState(nngp, ntk, var1, var2, width=c, spatial=tuple(spatial), full=full)


# ----------------------------------------------------------------------------------------------
# dtype and memory


def resolve_dtype(dtype=None):
    x64 = bool(jax.config.jax_enable_x64)
    if dtype is None:
        return np.dtype(np.float64 if x64 else np.float32)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}. To study lower precisions, "
                         "compute in float32 and round the kernel afterwards.")
    if dtype == np.float64 and not x64:
        raise ValueError("dtype=float64 was asked for but JAX's 64-bit mode is off. Turn it on before "
                         "any JAX computation: jax.config.update('jax_enable_x64', True), or set the "
                         "environment variable JAX_ENABLE_X64=1.")
    return dtype


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or physical memory when that is unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def block_budget() -> int:
    """Bytes one kernel block may use: ``$NBKERNELS_BLOCK_GB`` (default 2 GiB), at most half the free memory."""
    gb = float(os.environ.get("NBKERNELS_BLOCK_GB", "2"))
    return int(min(gb * 2 ** 30, available_memory() // 2))


# Arrays alive at once inside a block, each the size of the cross kernel (nngp, ntk, the padded
# copies a convolution makes, the temporaries of the nonlinearity). Measured peaks stay below it.
_LIVE_ARRAYS = 8


def bytes_per_pair(entries_per_pair: int, itemsize: int, with_ntk: bool) -> int:
    return entries_per_pair * itemsize * (_LIVE_ARRAYS if with_ntk else _LIVE_ARRAYS // 2 + 1)


def fit_batch_size(n_max: int, per_pair: int, budget: int) -> int:
    return int(max(1, min(n_max, math.isqrt(max(budget // per_pair, 1)))))


def _fmt_bytes(n):
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 28 else f"{n / 2 ** 20:.1f} MiB"


def plan_blocks(n1, n2, entries_per_pair, itemsize, with_ntk, batch_size=None):
    """Choose (or check) the block size; refuse a request that cannot fit, before allocating."""
    per_pair = bytes_per_pair(entries_per_pair, itemsize, with_ntk)
    budget = block_budget()
    fits = fit_batch_size(max(n1, n2), per_pair, budget)
    out_bytes = n1 * n2 * itemsize * (2 if with_ntk else 1)
    if out_bytes > available_memory() // 2:
        raise KernelMemoryError(
            f"the kernel matrices alone need {_fmt_bytes(out_bytes)} ({n1} x {n2} entries) but only "
            f"{_fmt_bytes(available_memory())} is free: compute fewer inputs at a time, or use "
            f"`python -m nbkernels.compute`, which writes blocks to disk.")
    if batch_size is None:
        return fits
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    b1, b2 = min(batch_size, n1), min(batch_size, n2)
    need = b1 * b2 * per_pair
    if need > max(budget, available_memory() // 2):
        raise KernelMemoryError(
            f"batch_size={batch_size} needs about {_fmt_bytes(need)} per block ({entries_per_pair} "
            f"kernel entries per input pair) but the block budget is {_fmt_bytes(budget)}: use "
            f"batch_size={fits} or smaller (or raise $NBKERNELS_BLOCK_GB).")
    return batch_size
