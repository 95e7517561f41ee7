"""Infinite-width kernels, the mathematics: the state that flows through the layers and their maps.

A :class:`KernelState` holds, for a block of ``n1 x n2`` input pairs, the cross kernels ``nngp``
and ``ntk`` and the diagonal variances ``var1`` / ``var2`` of each input (carried alongside so each
is computed once, as Neural Tangents does). Pixel axes come first and the pair axes last, so that
the shifts of a convolution move whole contiguous slabs of pairs:

* vectors: ``nngp`` is ``(n1, n2)``, ``var1`` is ``(n1,)``;
* images, pixel diagonal only (enough without pooling: CNN-VEC, LCN): ``nngp`` is ``(H, W, n1, n2)``;
* images, every pixel pair (needed by ``GlobalAvgPool``): ``nngp`` is ``(H, W, H, W, n1, n2)``.

Numerics follow Neural Tangents: the ReLU and Erf maps are written with ``arctan2`` so they keep
their precision where the correlation nears +-1 (every diagonal entry).

Planning (memory, block sides, which path computes a block) is :mod:`nbkernels.blocks`; running the
blocks is :mod:`nbkernels.engine`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import DTypeLike

_2PI = 2.0 * math.pi


@dataclasses.dataclass(frozen=True, eq=False)
class Kernel:
    """The NNGP and NTK of an architecture between two sets of inputs, each ``(N1, N2)`` (``ntk`` None
    when only the NNGP was asked for), and the compute settings that produced them
    (:class:`nbkernels.settings.Settings`; None when it came from a cache entry that did not record them)."""

    nngp: np.ndarray
    ntk: Optional[np.ndarray]
    settings: Optional[object] = None


@dataclasses.dataclass
class KernelState:
    nngp: jnp.ndarray
    ntk: Optional[jnp.ndarray]
    var1: Optional[jnp.ndarray]
    var2: Optional[jnp.ndarray]
    same: Optional[jnp.ndarray]    # (n1, n2) bool: the pair is one input with itself (or None: no such pair)
    width: int                     # features / channels of the signal (fan-in of the next layer)
    spatial: Tuple[int, ...] = ()  # (H, W) for images
    full: bool = False             # every pixel pair kept (for pooling)

    def replace(self, **kw: Any) -> "KernelState":
        return dataclasses.replace(self, **kw)

    def _broadcast_vars(self):
        v1, v2 = self.var1, self.var2
        if not self.spatial:
            return v1[:, None], v2[None, :]
        if not self.full:
            return v1[..., :, None], v2[..., None, :]
        return v1[:, :, None, None, :, None], v2[None, None, :, :, None, :]

    def same_mask(self) -> Optional[jax.Array]:
        """Where an entry pairs one input (and one pixel) with itself, broadcastable against ``nngp``;
        None when the block holds no such pair. There the correlation is exactly 1: computed from the
        cross kernel and the separately rounded variances it would be 1 - O(rounding), and the ReLU's
        angle sqrt(2 (1 - rho)) would be ~1e-8 instead of 0 (on the diagonal of every symmetric kernel)."""
        if self.same is None:
            return None
        if not self.spatial:
            return self.same
        if not self.full:
            return self.same[None, None]
        return diagonal_mask(self.spatial, bool) & self.same

    def elementwise(self, kernel_map: Callable, var_map: Callable) -> "KernelState":
        """The state after a pointwise nonlinearity: ``kernel_map`` takes the cross kernel (with both sides'
        variances), ``var_map`` each variance."""
        v1, v2 = self._broadcast_vars()
        nngp, dot = kernel_map(self.nngp, v1, v2, self.same_mask())
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


# arctan2 without libm (nbkernels.fused compiles the same rational form): XLA on CPU calls a scalar
# atan2 per element (~10 ns); this rational approximation (Cephes' atan, accurate to 2e-16 relative in
# float64) is plain arithmetic that XLA vectorizes and fuses with the rest of the kernel map, 7x faster.
ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
          -1.228866684490136173410e2, -6.485021904942025371773e1)
ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
          4.853903996359136964868e2, 1.945506571482613964425e2)
ATAN_MOREBITS = 3.061616997868382943065e-17  # pi/4 - float64(pi/4)


def _atan_unit(a):
    """atan(a) for 0 <= a <= 1."""
    big = a > 0.66
    x = jnp.where(big, (a - 1) / (a + 1), a)
    z = x * x
    P, Q = ATAN_P, ATAN_Q
    p = (((P[0] * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4]
    q = ((((z + Q[0]) * z + Q[1]) * z + Q[2]) * z + Q[3]) * z + Q[4]
    r = x * (z * p / q) + x
    return jnp.where(big, jnp.pi / 4 + (r + ATAN_MOREBITS), r)


def atan2(y: jax.Array, x: jax.Array) -> jax.Array:
    """``arctan2(y, x)``, vectorizable; agrees with numpy's to 2.3e-16 relative in float64."""
    ay, ax = jnp.abs(y), jnp.abs(x)
    hi, lo = jnp.maximum(ay, ax), jnp.minimum(ay, ax)
    t = _atan_unit(jnp.where(hi > 0, lo / jnp.where(hi > 0, hi, 1), 0))
    t = jnp.where(ay > ax, jnp.pi / 2 - t, t)
    t = jnp.where(x < 0, jnp.pi - t, t)
    return jnp.where(y < 0, -t, t)


def relu_map(nngp: jax.Array, v1: jax.Array, v2: jax.Array,
             same: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for (u, v) ~ N(0, [[v1, nngp], [nngp, v2]]).

    ``same`` marks the entries where u and v are one variable (angle exactly 0)."""
    s = jnp.sqrt(jnp.maximum(v1 * v2 - nngp ** 2, 0.0))  # sqrt(v1 v2) sin(theta)
    if same is not None:
        s = jnp.where(same, 0.0, s)
    rest = jnp.pi - atan2(s, nngp)                        # pi - theta
    return (s + rest * nngp) / _2PI, rest / _2PI


def relu_var(v: Optional[jax.Array]) -> Optional[jax.Array]:
    """A variance after ReLU: ``E[relu(u)^2] = v / 2``."""
    return None if v is None else v / 2.0


def erf_map(nngp: jax.Array, v1: jax.Array, v2: jax.Array,
            same: Optional[jax.Array] = None) -> tuple[jax.Array, jax.Array]:
    """E[erf(u) erf(v)] and E[erf'(u) erf'(v)] (the arcsine kernel). Its square root has no
    cancellation at correlation 1, so ``same`` is not needed."""
    r = jnp.sqrt(jnp.maximum((1 + 2 * v1) * (1 + 2 * v2) - 4 * nngp ** 2, 0.0))
    return (2 / jnp.pi) * atan2(2 * nngp, r), (4 / jnp.pi) / r


def erf_var(v: Optional[jax.Array]) -> Optional[jax.Array]:
    """A variance after erf: ``E[erf(u)^2] = (2/pi) arcsin(2v / (1 + 2v))``."""
    return None if v is None else (2 / jnp.pi) * atan2(2 * v, jnp.sqrt(1 + 4 * v))


def patch_mean(x: jax.Array, filter_shape: Sequence[int], strides: Sequence[int], geometry: Any, circular: bool,
               full: bool) -> jax.Array:
    """A convolution's effect on a kernel: the mean over the filter's joint shifts of both inputs.

    With ``full`` the array holds every pixel pair ``(H, W, H, W, ...)`` and each spatial dimension
    shifts two axes together; otherwise only the pixel diagonal ``(H, W, ...)`` is held. All shifts
    are summed in one expression, so XLA makes it a single pass over memory (the kernels are
    memory-bound: two separable passes cost 30% more here). Unit strides with zero padding (every
    convolution of the paper's networks) take :func:`_flat_shift_sum`; other geometries pad each
    shifted slice to the output's shape (XLA fuses those pads into the sum, where one padded copy of
    ``x`` read nine times would be a pass of its own). The terms and their order are the same either
    way, so the result is bit-identical to padding once and slicing.
    """
    if x is None:
        return None
    if not circular and all(s == 1 for s in strides):
        return _flat_shift_sum(x, filter_shape, geometry, full) / math.prod(filter_shape)
    groups = [(d, d + 2) if full else (d,) for d in range(len(filter_shape))]
    if circular:
        pads = [(0, 0)] * x.ndim
        for axes, (_, pad) in zip(groups, geometry):
            for a in axes:
                pads[a] = pad
        x = jnp.pad(x, pads, mode="wrap")
    total = None
    for shift in np.ndindex(*filter_shape):
        idx, pads = [slice(None)] * x.ndim, [(0, 0)] * x.ndim
        for axes, d, s, (n_out, (lo, _)) in zip(groups, shift, strides, geometry):
            for a in axes:
                if circular:
                    idx[a] = slice(d, d + (n_out - 1) * s + 1, s)
                    continue
                # output o reads input o*s + d - lo; outside [0, n) it reads the zero padding
                first = max(0, -(-(lo - d) // s))
                last = min(n_out - 1, (x.shape[a] - 1 + lo - d) // s)
                idx[a] = slice(first * s + d - lo, last * s + d - lo + 1, s)
                pads[a] = (first, n_out - 1 - last)
        part = x[tuple(idx)]
        if any(p != (0, 0) for p in pads):
            part = jnp.pad(part, pads)
        total = part if total is None else total + part
    return total / math.prod(filter_shape)


def _flat_shift_sum(x, filter_shape, geometry, full):
    """The sum over a unit-stride, zero-padded filter's joint shifts, read from the flattened array.

    Output pixel ``o`` reads input pixel ``o + d - lo`` along every pixel axis of a spatial dimension
    at once, so in the flat (row-major) array each shift is one constant offset: a contiguous slice
    of ``x.ravel()`` padded with zeros at both ends. Where a shift leaves the image (or wraps into
    the next row) the term is multiplied by 0: a boolean mask over the pixel axes, broadcast along
    the trailing (input-pair) axes as the second axis of an ``(pixels, pairs)`` view. XLA makes each
    term a contiguous, vectorized read; reading the shifts through padded slices of the 6-D array
    instead, it computed each term's bounds per element and ran 3x slower (CNN-GAP 8x8, 8x8 input
    pairs: 0.66 against 0.20 ms a convolution). Valid (shrinking) geometries are summed on the input
    grid and cut to the output's afterwards. Adding the masked zeros leaves every other term's sum
    bit for bit as it was.
    """
    groups = [(d, d + 2) if full else (d,) for d in range(len(filter_shape))]
    n_pix = 2 * len(groups) if full else len(groups)
    pix_shape = x.shape[:n_pix]
    rows, size = math.prod(pix_shape), math.prod(x.shape)
    elem_strides = [math.prod(x.shape[a + 1:]) for a in range(n_pix)]
    terms = []
    for shift in np.ndindex(*filter_shape):
        offset, valid = 0, np.ones(pix_shape, bool)
        for axes, d, (_, (lo, _)) in zip(groups, shift, geometry):
            for a in axes:
                offset += (d - lo) * elem_strides[a]
                read = np.arange(pix_shape[a]) + d - lo
                valid &= ((read >= 0) & (read < pix_shape[a])).reshape([-1 if k == a else 1 for k in range(n_pix)])
        terms.append((offset, valid.reshape(rows, 1)))
    before = max(0, -min(o for o, _ in terms))
    flat = jnp.pad(x.reshape(-1), (before, max(0, max(o for o, _ in terms))))
    total = None
    for offset, valid in terms:
        part = jax.lax.slice(flat, (before + offset,), (before + offset + size,)).reshape(rows, -1)
        if not valid.all():
            part = part * valid.astype(jnp.finfo(part.dtype).dtype)
        total = part if total is None else total + part
    total = total.reshape(x.shape)
    n_out = [n for n, _ in geometry]
    if any(n != pix_shape[a] for a, n in enumerate(n_out)):  # a valid convolution: cut to the output
        total = total[tuple(slice(0, n_out[a % len(groups)]) for a in range(n_pix))]
    return total


def take_diagonal(full: jax.Array) -> jax.Array:
    """The pixel diagonal ``(H, W, ...)`` of an array over every pixel pair ``(H, W, H, W, ...)``."""
    H, W = full.shape[:2]
    P = H * W
    d = jnp.diagonal(full.reshape((P, P) + full.shape[4:]), axis1=0, axis2=1)  # (..., P)
    return jnp.moveaxis(d, -1, 0).reshape((H, W) + full.shape[4:])


def embed_diagonal(diag: jax.Array) -> jax.Array:
    """The inverse of :func:`take_diagonal`: a pixel diagonal placed in an array of every pixel pair, zero elsewhere."""
    H, W = diag.shape[:2]
    P = H * W
    rest = diag.shape[2:]
    eye = jnp.eye(P, dtype=diag.dtype).reshape((P, P) + (1,) * len(rest))
    return (eye * diag.reshape((P, 1) + rest)).reshape((H, W, H, W) + rest)


def diagonal_mask(spatial: Sequence[int], dtype: DTypeLike) -> jax.Array:
    """1 on the pixel pairs that pair a pixel with itself, 0 elsewhere, shaped ``spatial * 2 + (1, 1)``."""
    P = math.prod(spatial)
    return jnp.eye(P, dtype=dtype).reshape(tuple(spatial) * 2 + (1, 1))


def input_state(x1: jax.Array, x2: jax.Array, full: bool, with_ntk: bool,
                same: Optional[jax.Array] = None) -> KernelState:
    """The input covariance ``x1 . x2 / fan_in`` (channel mean at each pixel), Neural Tangents' convention.

    ``same``: (n1, n2) bool, True where row i of x1 and row j of x2 are one input (the diagonal of a
    symmetric kernel's diagonal block), or None."""
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
    return KernelState(nngp, ntk, var1, var2, same, width=c, spatial=tuple(spatial), full=full)


# ----------------------------------------------------------------------------------------------
# dtype (the block policy, memory and block sides, is nbkernels.blocks)


def resolve_dtype(dtype: DTypeLike = None) -> np.dtype:
    """The dtype a kernel is computed in: ``dtype``, or float64 when JAX's x64 mode is on, else float32."""
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
