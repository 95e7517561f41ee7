"""Fused CPU kernels: the image layers of a convolutional network, every layer of a block at once.

The block engine's per-layer XLA programs (:mod:`nbkernels.engine`) pass over a block's whole kernel
array once per layer and operation. On a CPU that is where the time goes: XLA's loops over the 6-D
``(H, W, H, W, n1, n2)`` arrays are bound by memory traffic, far from what the arithmetic needs
(benchmarks/README.md, "Kernel throughput", has the measurements). This module computes the same
kernels in one compiled loop nest (Numba) that keeps its working
set in cache and runs every layer on it before moving on.

**Tiling over pixel pairs by their offset.** With unit strides and zero padding (``SAME`` or
``VALID``), a convolution moves both pixels of a pair together, so the offset ``(u, v)`` between them
never changes from the input to the readout. The pixel pairs with one offset form a *slab*, at most
``H x W`` pixels, that goes through every layer on its own: no halo is exchanged between slabs, and
there are exactly ``H^2 W^2`` entries in all, none wasted. Each layer of a slab is one pass (the
convolution's shifted sums, the affine map and the nonlinearity together), from one buffer into another,
and the readout sums the slab away at the end: ``GlobalAvgPool`` needs every slab, ``Flatten`` only the
one of offset 0 (the pixel diagonal). Input pairs are the innermost axis, so the loops are contiguous
and vectorize; a work item holds one row of slabs for about 256 input pairs (four buffers of 0.4 MB at
8x8, 1.3 MB at 16x16, of which a pixel's nine reads touch three rows of pixels), and items are spread
over the cores.

**Exact, whatever the blocking.** Every input pair's numbers are computed by the same operations in the
same order whatever block, chunk or thread it falls in, and the readout sums slabs in a fixed order:
blocked and one-block kernels are bit-identical. Against the XLA programs (which still serve
accelerators, strided and circular convolutions, and locally connected networks with pooling) they
agree to rounding: 1e-15 relative in float64 (tests); in float32 a few units of 1e-7, from the order
of additions and multiplications by reciprocals where XLA divides.

What it covers (:func:`prefix` says, and returns None otherwise): images through ``Conv`` (unit
strides, ``SAME`` or ``VALID``, any filter, NTK or standard parameterization, with or without bias;
``ConvLocal`` too when the readout is ``Flatten``, whose kernel is the CNN's), ``Relu`` and ``Erf``,
up to a ``GlobalAvgPool`` or ``Flatten`` readout. The layers after the readout (dense ones) run as XLA
programs as before. Whether the engine takes this path, and the block sides, are
:mod:`nbkernels.blocks`' decisions (``Settings.fused=False``, ``$NBKERNELS_FUSED=0``, turns it off).
"""
from __future__ import annotations

import dataclasses
import math
import sys
from typing import TYPE_CHECKING, Optional, Sequence

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import DTypeLike

from . import kernels as K

if TYPE_CHECKING:
    from .architecture import Architecture

OP_CONV, OP_RELU, OP_ERF = 0, 1, 2
READ_GAP, READ_FLATTEN = 0, 1
# columns of Prefix.ops: kind, filter h, w, padding low h, w, output h, w, standard parameterization, bias
_KIND, _FH, _FW, _LOH, _LOW, _HO, _WO, _STD, _BIAS = range(9)
# columns of Prefix.params: W_std^2, b_std^2, fan_in
_W2, _B2, _FAN = range(3)


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The image part of an architecture as the fused kernel runs it: its layers up to the readout."""

    ops: np.ndarray        # (n_ops, 9) int64, see the column names above
    params: np.ndarray     # (n_ops, 3) float64
    readout: int           # READ_GAP or READ_FLATTEN
    n_layers: int          # how many of the architecture's layers it covers, the readout included
    pad: int               # the farthest a convolution reads outside its output pixel
    spatial: tuple         # (H, W) entering the readout

    @property
    def slab_rows(self) -> int:
        """Rows of slabs (pixel offsets u) the readout needs: all for GlobalAvgPool, offset 0 for Flatten."""
        return 2 * self.spatial[0] - 1 if self.readout == READ_GAP else 1

    def passes(self) -> int:
        """Passes over a slab: one per convolution (with the nonlinearity after it), one per other nonlinearity."""
        return int(np.sum(self.ops[:, _KIND] == OP_CONV) + np.sum(
            (self.ops[:, _KIND] != OP_CONV) & (np.r_[OP_RELU, self.ops[:-1, _KIND]] != OP_CONV)))


def prefix(arch: "Architecture", input_shape: Sequence[int]) -> Optional[Prefix]:
    """The fused program for ``arch`` on inputs of ``input_shape`` (H, W, C), or None where the
    architecture has a layer it does not cover (see the module's docstring)."""
    from .layers import Conv, Erf, Flatten, GlobalAvgPool, Relu
    if len(input_shape) != 3:
        return None
    h, w, c = input_shape
    ops, params, local, pad = [], [], False, 0
    for n, layer in enumerate(arch.layers):
        if isinstance(layer, Conv):
            if layer.strides != (1, 1) or layer.padding == "CIRCULAR":
                return None
            (ho, (lo_h, _)), (wo, (lo_w, _)) = layer.geometry((h, w))
            fh, fw = layer.filter_shape
            ops.append((OP_CONV, fh, fw, lo_h, lo_w, ho, wo, layer.parameterization == "standard",
                        layer.b_std is not None))
            params.append((layer.W_std ** 2, (layer.b_std or 0.0) ** 2, c * fh * fw))
            local |= not layer.share_weights
            pad = max(pad, lo_h, lo_w, fh - 1 - lo_h, fw - 1 - lo_w)
            h, w, c = ho, wo, layer.out_chan
        elif isinstance(layer, (Relu, Erf)):
            ops.append((OP_RELU if isinstance(layer, Relu) else OP_ERF,) + (0,) * 8)
            params.append((0.0, 0.0, 0.0))
        elif isinstance(layer, (GlobalAvgPool, Flatten)):
            gap = isinstance(layer, GlobalAvgPool)
            if (gap and local) or not ops:
                return None  # an LCN's pooled kernel lives on the pixel diagonal: the XLA programs do it
            return Prefix(np.array(ops, np.int64).reshape(-1, 9), np.array(params, np.float64).reshape(-1, 3),
                          READ_GAP if gap else READ_FLATTEN, n + 1, pad, (h, w))
        else:
            return None
    return None


def constants(dtype: DTypeLike) -> np.ndarray:
    """The numbers the compiled loops need, in the computation's dtype (a float32 kernel stays float32)."""
    return np.array((0.0, 1.0, math.pi, math.pi / 2, math.pi / 4, K.ATAN_MOREBITS, 0.66, 1 / (2 * math.pi),
                     2 / math.pi, 4 / math.pi) + K.ATAN_P + K.ATAN_Q, dtype)


def block(pre: Prefix, x1: np.ndarray, x2: np.ndarray, same: np.ndarray, with_ntk: bool, dtype: DTypeLike,
          chunk_pairs: int = 256) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """The kernel state after the readout for the input pairs of ``x1`` (n1, H, W, C) and ``x2``:
    ``(nngp, ntk, var1, var2)``, each (n1, n2) or (n,) (``ntk`` None without ``with_ntk``; the
    variances None after ``GlobalAvgPool``, as :meth:`KernelState.global_avg_pool` leaves them).
    ``same`` (n1, n2) bool marks the pairs of one input with itself (exact angle 0 there).
    ``chunk_pairs``: input pairs one work item holds (``Settings.fused_pairs``: longer rows of pairs
    amortize each pixel's set-up; measured in benchmarks/README.md)."""
    x1 = np.ascontiguousarray(x1, dtype)
    n2 = len(x2)
    pad = -n2 % LANES  # whole vectors in the innermost loop (a ragged tail runs scalar)
    x2 = np.concatenate([x2, np.repeat(x2[-1:], pad, axis=0)]) if pad else x2
    same = np.pad(same, ((0, 0), (0, pad))) if pad else same
    rows = -(-int(chunk_pairs) // len(x2))
    # at least two work items per thread (the slab rows are uneven: those of small offsets hold more)
    rows = max(1, min(rows, -(-len(x1) // -(-2 * numba.get_num_threads() // pre.slab_rows))))
    x2t = np.ascontiguousarray(np.moveaxis(np.asarray(x2, dtype), 0, -1))  # (H, W, C, n2): input pairs innermost
    _announce_compilation(np.dtype(dtype))
    nngp, ntk, v1, v2 = _block(x1, x2t, np.ascontiguousarray(same, np.bool_), pre.ops,
                               pre.params.astype(dtype), constants(dtype), pre.readout, with_ntk, rows, pre.pad)
    nngp, ntk, v2 = nngp[:, :n2], ntk[:, :n2], v2[:n2]
    if pre.readout == READ_GAP:
        v1 = v2 = None
    return nngp, (ntk if with_ntk else None), v1, v2


# The innermost loops run over one block row's input pairs, 16 float32 (or 8 float64) to a vector on
# an AVX-512 CPU: blocks are padded to a multiple of 16 columns, since a ragged tail runs scalar, several
# times slower (benchmarks/README.md, "Kernel throughput", the ReLU map by row length).
LANES = 16


_announced = set()


def _announce_compilation(dtype):
    """Say so, once, before Numba compiles the kernel for ``dtype`` (about a minute; then it is loaded
    from its cache beside this file, or in ``$NUMBA_CACHE_DIR``). ``make`` compiles both dtypes at set-up."""
    if dtype in _announced:
        return
    _announced.add(dtype)
    want = numba.from_dtype(dtype)
    if any(sig[0].dtype == want for sig in _block.signatures):
        return
    try:  # Numba's cache index (a private API: if it moves, the note is merely printed once too often)
        if any(key[0][0].dtype == want for key in _block._cache._cache_file._load_index()):
            return
    except Exception:
        pass
    print(f"nbkernels: compiling the fused CPU kernel for {dtype} (once per installation, about a minute)",
          file=sys.stderr, flush=True)


_jit = njit(cache=True, error_model="numpy", nogil=True)
_pjit = njit(cache=True, error_model="numpy", nogil=True, parallel=True)
_inline = njit(cache=True, error_model="numpy", nogil=True, inline="always")
_U = np.uint64


@_jit
def _atan_unit_ratio(num, den, big, cst):
    """atan(num / den) + (pi/4 where big), Cephes' rational form as in :func:`kernels.atan2`."""
    x = num / den
    z = x * x
    p = (((cst[10] * z + cst[11]) * z + cst[12]) * z + cst[13]) * z + cst[14]
    q = ((((z + cst[15]) * z + cst[16]) * z + cst[17]) * z + cst[18]) * z + cst[19]
    r = x * (z * p / q) + x
    return cst[4] + (r + cst[5]) if big else r


@_jit
def _atan2(y, x, cst):
    """``arctan2(y, x)``: :func:`kernels.atan2` with its two divisions (lo/hi, then (a-1)/(a+1)) as one."""
    ay, ax = abs(y), abs(x)
    hi, lo = max(ay, ax), min(ay, ax)
    big = lo > cst[6] * hi
    num = lo - hi if big else lo
    den = lo + hi if big else hi
    t = _atan_unit_ratio(num, den if den > cst[0] else cst[1], big, cst)
    t = cst[3] - t if ay > ax else t
    t = cst[2] - t if x < cst[0] else t
    return -t if y < cst[0] else t


@_jit
def _variances(x, ops, fp, cst):
    """(n_ops + 1, H, W, n): each input's pixel variances entering every op, and after the last."""
    n, H, W, C = x.shape
    n_ops = ops.shape[0]
    out = np.zeros((n_ops + 1, H, W, n), x.dtype)
    cdt = x.dtype.type(C)
    for i in range(n):
        for a in range(H):
            for b in range(W):
                acc = cst[0]
                for c in range(C):
                    acc += x[i, a, b, c] * x[i, a, b, c]
                out[0, a, b, i] = acc / cdt
    h, w = H, W
    for o in range(n_ops):
        kind = ops[o, 0]
        if kind == OP_CONV:
            fh, fw, loh, low, ho, wo = ops[o, 1], ops[o, 2], ops[o, 3], ops[o, 4], ops[o, 5], ops[o, 6]
            nf = x.dtype.type(fh * fw)
            for a in range(ho):
                for b in range(wo):
                    for i in range(n):
                        acc = cst[0]
                        for dh in range(fh):
                            for dw in range(fw):
                                r, c = a + dh - loh, b + dw - low
                                if 0 <= r < h and 0 <= c < w:
                                    acc += out[o, r, c, i]
                        out[o + 1, a, b, i] = fp[o, _W2] * (acc / nf) + fp[o, _B2]
            h, w = ho, wo
        else:
            for a in range(h):
                for b in range(w):
                    for i in range(n):
                        v = out[o, a, b, i]
                        if kind == OP_RELU:
                            out[o + 1, a, b, i] = v / (cst[1] + cst[1])
                        else:
                            out[o + 1, a, b, i] = cst[8] * _atan2(v + v, math.sqrt(cst[1] + (v + v + v + v)), cst)
    return out


@_jit
def _zero_ring(buf, a0, a1, b0, b1, pad, HP, WP, M):
    """Zero the cells within ``pad`` of the domain [a0, a1) x [b0, b1) (buffer coordinates) that are
    not in it: what a convolution reads there is the zero padding, or a pair outside the image."""
    z = buf.dtype.type(0)
    for a in range(max(0, a0 - pad), min(HP, a1 + pad)):
        inside = a0 <= a < a1
        for b in range(max(0, b0 - pad), min(WP, b1 + pad)):
            if inside and b0 <= b < b1:
                continue
            base = _U((a * WP + b) * M)
            for m in range(_U(M)):
                buf[base + m] = z


@_inline
def _activate(act, ntk, k, th, f1, f2, same, cst):
    """The nonlinearity's map of one entry's (nngp, ntk); f1, f2 are the two pixels' variances (ReLU) or
    1 + 2 variances (erf). ``act`` and ``ntk`` are constants where it is inlined, so each loop that
    calls it compiles to its own branch-free, vectorized body."""
    if act == OP_RELU:
        s = math.sqrt(max(f1 * f2 - k * k, cst[0]))
        if same:
            s = cst[0]
        rest = cst[2] - _atan2(s, k, cst)      # pi - theta
        return (s + rest * k) * cst[7], (th * (rest * cst[7]) if ntk else th)
    if act == OP_ERF:
        r = math.sqrt(max(f1 * f2 - (k + k) * (k + k), cst[0]))
        return cst[8] * _atan2(k + k, r, cst), (th * (cst[9] / r) if ntk else th)
    return k, th


@_inline
def _finish_pixel(act, ntk, S, T, dst, acc_s, acc_t, nr, n2, aff, f1, f1_at, f2, f2_at, same, same_at, diag, cst):
    """One pixel of a convolution's output: its affine map of the summed shifts (``acc_s``, ``acc_t``)
    and the nonlinearity ``act`` after it (or none), written at ``dst``. ``aff``: 1 / filter size,
    W_std^2, b_std^2, and the NTK's coefficients (alpha, gamma): ntk = alpha mean(nngp) + gamma + W_std^2
    mean(ntk), which is nngp + W_std^2 mean(ntk) in NTK parameterization (alpha = W_std^2, gamma =
    b_std^2) and fan_in mean(nngp) + W_std^2 mean(ntk) (+ 1 with a bias) in the standard one."""
    inv, w2, b2, alpha, gamma = aff[0], aff[1], aff[2], aff[3], aff[4]
    for r in range(nr):
        g1 = f1[f1_at + _U(r)]
        row = _U(r * n2)
        sm = same_at + _U(r * n2)
        for j in range(_U(n2)):
            m = row + j
            ms = acc_s[m] * inv
            k = w2 * ms + b2
            th = (alpha * ms + gamma) + w2 * (acc_t[m] * inv) if ntk else cst[0]
            k, th = _activate(act, ntk, k, th, g1, f2[f2_at + j], same[sm + j] & diag, cst)
            S[dst + m] = k
            if ntk:
                T[dst + m] = th


@_inline
def _conv3_pixel(act, ntk, S, T, S2, T2, tl, dst, RM, M, nr, n2, aff, f1, f1_at, f2, f2_at, same, same_at, diag, cst):
    """:func:`_finish_pixel` for a 3 x 3 filter, its nine shifted reads summed in registers (``tl``: the
    top-left read, ``RM``: one pixel row): one pass where the general form makes ten."""
    inv, w2, b2, alpha, gamma = aff[0], aff[1], aff[2], aff[3], aff[4]
    M2, R2 = M + M, RM + RM
    for r in range(nr):
        g1 = f1[f1_at + _U(r)]
        row = _U(r * n2)
        sm = same_at + row
        for j in range(_U(n2)):
            m = row + j
            q = tl + m
            ms = (S[q] + S[q + M] + S[q + M2] + S[q + RM] + S[q + RM + M] + S[q + RM + M2]
                  + S[q + R2] + S[q + R2 + M] + S[q + R2 + M2]) * inv
            k = w2 * ms + b2
            th = cst[0]
            if ntk:
                mt = (T[q] + T[q + M] + T[q + M2] + T[q + RM] + T[q + RM + M] + T[q + RM + M2]
                      + T[q + R2] + T[q + R2 + M] + T[q + R2 + M2]) * inv
                th = (alpha * ms + gamma) + w2 * mt
            k, th = _activate(act, ntk, k, th, g1, f2[f2_at + j], same[sm + j] & diag, cst)
            S2[dst + m] = k
            if ntk:
                T2[dst + m] = th


@_inline
def _activate_pixel(act, ntk, S, T, dst, nr, n2, f1, f1_at, f2, f2_at, same, same_at, diag, cst):
    """One pixel of a nonlinearity that does not follow a convolution, in place."""
    for r in range(nr):
        g1 = f1[f1_at + _U(r)]
        row = dst + _U(r * n2)
        sm = same_at + _U(r * n2)
        for j in range(_U(n2)):
            th = T[row + j] if ntk else cst[0]
            k, th = _activate(act, ntk, S[row + j], th, g1, f2[f2_at + j], same[sm + j] & diag, cst)
            S[row + j] = k
            if ntk:
                T[row + j] = th


@_inline
def _shift_sum(acc, X, here, shifts, ns, M):
    """acc = the sum of X's M values at ``here + shifts[q]``, q < ns, in that order."""
    first = _U(here + shifts[0])
    for m in range(_U(M)):
        acc[m] = X[first + m]
    for q in range(1, ns):
        src = _U(here + shifts[q])
        for m in range(_U(M)):
            acc[m] += X[src + m]


@_inline
def _conv_layer_body(act, ntk, three, S, T, S2, T2, acc_s, acc_t, shifts, g, aff, f1, f2, same, diag, ct):
    """A convolution (and the nonlinearity ``act`` after it, or -1) over one slab's domain, from (S, T)
    into (S2, T2): a 3 x 3 filter's nine shifts summed in registers (``three``), any other filter's
    through ``acc_s`` / ``acc_t``. ``g``: the domain a0, a1, b0, b1, then pad, WP, M, nr, n2, H, W, n1,
    i0, u, v, and the op whose variances the nonlinearity reads, and the number of shifts."""
    a0, a1, b0, b1, pad, WP, M, nr, n2, H, W, n1, i0, u, v, fo, ns = g
    same_at = _U(i0 * n2)
    for a in range(a0, a1):
        for b in range(b0, b1):
            here = ((a + pad) * WP + b + pad) * M
            dst = _U(here)
            f1_at = _U(((fo * H + a) * W + b) * n1 + i0)
            f2_at = _U(((fo * H + a + u) * W + b + v) * n2)
            if three:
                _conv3_pixel(act, ntk, S, T, S2, T2, _U(here + shifts[0]), dst, _U(WP * M), _U(M), nr, n2, aff,
                             f1, f1_at, f2, f2_at, same, same_at, diag, ct)
                continue
            _shift_sum(acc_s, S, here, shifts, ns, M)
            if ntk:
                _shift_sum(acc_t, T, here, shifts, ns, M)
            _finish_pixel(act, ntk, S2, T2, dst, acc_s, acc_t, nr, n2, aff, f1, f1_at, f2, f2_at, same, same_at,
                          diag, ct)


@_jit
def _conv_layer(act, ntk, three, S, T, S2, T2, acc_s, acc_t, shifts, g, aff, f1, f2, same, diag, ct):
    """:func:`_conv_layer_body`, compiled with constant arguments (branch-free vector loops) for what
    the paper's networks are made of, a 3 x 3 convolution and a ReLU, with and without the NTK; and
    once with the arguments as they come for everything else (erf, other filters, no nonlinearity).
    Each compiled copy of the maps costs compile time (about 10 s), hence only these."""
    if three and act == OP_RELU:
        if ntk:
            _conv_layer_body(OP_RELU, True, True, S, T, S2, T2, acc_s, acc_t, shifts, g, aff, f1, f2, same, diag, ct)
        else:
            _conv_layer_body(OP_RELU, False, True, S, T, S2, T2, acc_s, acc_t, shifts, g, aff, f1, f2, same, diag, ct)
    else:
        _conv_layer_body(act, ntk, False, S, T, S2, T2, acc_s, acc_t, shifts, g, aff, f1, f2, same, diag, ct)


@_inline
def _act_layer_body(act, ntk, S, T, g, f1, f2, same, diag, ct):
    """A nonlinearity that does not follow a convolution, in place over one slab's domain."""
    a0, a1, b0, b1, pad, WP, M, nr, n2, H, W, n1, i0, u, v, fo, ns = g
    for a in range(a0, a1):
        for b in range(b0, b1):
            _activate_pixel(act, ntk, S, T, _U(((a + pad) * WP + b + pad) * M), nr, n2, f1,
                            _U(((fo * H + a) * W + b) * n1 + i0), f2, _U(((fo * H + a + u) * W + b + v) * n2),
                            same, _U(i0 * n2), diag, ct)


@_jit
def _act_layer(act, ntk, S, T, g, f1, f2, same, diag, ct):
    _act_layer_body(act, ntk, S, T, g, f1, f2, same, diag, ct)


@_jit
def _item(item, x1, x2t, ops, readout, with_ntk, rows, pad, hs, ws, f1, f2, same_flat, aff, part_k, part_t, max_ns, ct):
    """One work item of :func:`_block`: the input-pair rows ``rows * ci ...`` through every slab of the
    slab row ``ui``, into its partial sums."""
    n1, H, W, C = x1.shape
    n2 = x2t.shape[3]
    n_ops = ops.shape[0]
    dt = x1.dtype.type
    hl, wl = hs[n_ops], ws[n_ops]
    nu = 2 * hl - 1 if readout == READ_GAP else 1
    nv = 2 * wl - 1 if readout == READ_GAP else 1
    HP, WP = H + 2 * pad, W + 2 * pad
    ci, ui = item // nu, item % nu
    i0 = ci * rows
    nr = min(n1, i0 + rows) - i0
    M = nr * n2
    size = HP * WP * M
    S, S2 = np.zeros(size, x1.dtype), np.zeros(size, x1.dtype)
    T = np.zeros(size if with_ntk else 1, x1.dtype)
    T2 = np.zeros(size if with_ntk else 1, x1.dtype)
    acc_s, acc_t = np.zeros(M, x1.dtype), np.zeros(M if with_ntk else 1, x1.dtype)
    shifts = np.empty(max_ns, np.int64)
    u = ui - (hl - 1) if readout == READ_GAP else 0
    for vi in range(nv):
        v = vi - (wl - 1) if readout == READ_GAP else 0
        diag = u == 0 and v == 0
        # stage 0: the input covariance x1 . x2 / C
        a0, a1 = max(0, -u), min(H, H - u)
        b0, b1 = max(0, -v), min(W, W - v)
        for a in range(a0, a1):
            for b in range(b0, b1):
                base = _U(((a + pad) * WP + b + pad) * M)
                xr = x2t[a + u, b + v]
                for r in range(nr):
                    row = base + _U(r * n2)
                    xi = x1[i0 + r, a, b]
                    for j in range(_U(n2)):
                        S[row + j] = xi[0] * xr[0, j]
                    for c in range(1, C):
                        for j in range(_U(n2)):
                            S[row + j] += xi[c] * xr[c, j]
                    for j in range(_U(n2)):
                        S[row + j] = S[row + j] / dt(C)
                    if with_ntk:
                        for j in range(_U(n2)):
                            T[row + j] = ct[0]
        _zero_ring(S, a0 + pad, a1 + pad, b0 + pad, b1 + pad, pad, HP, WP, M)
        if with_ntk:
            _zero_ring(T, a0 + pad, a1 + pad, b0 + pad, b1 + pad, pad, HP, WP, M)
        o = 0
        while o < n_ops:
            kind = ops[o, 0]
            h, w = hs[o + 1], ws[o + 1]
            a0, a1 = max(0, -u), min(h, h - u)
            b0, b1 = max(0, -v), min(w, w - v)
            if kind == OP_CONV:
                act = ops[o + 1, 0] if o + 1 < n_ops and ops[o + 1, 0] != OP_CONV else -1
                fh, fw, loh, low = ops[o, 1], ops[o, 2], ops[o, 3], ops[o, 4]
                ns = 0
                for dh in range(fh):
                    for dw in range(fw):
                        shifts[ns] = ((dh - loh) * WP + dw - low) * M
                        ns += 1
                # the variances the nonlinearity reads: those entering it
                g = (a0, a1, b0, b1, pad, WP, M, nr, n2, H, W, n1, i0, u, v, o + 1 if act >= 0 else o, ns)
                _conv_layer(act, with_ntk, fh == 3 and fw == 3, S, T, S2, T2, acc_s, acc_t, shifts, g, aff[o], f1, f2,
                            same_flat, diag, ct)
                _zero_ring(S2, a0 + pad, a1 + pad, b0 + pad, b1 + pad, pad, HP, WP, M)
                S, S2 = S2, S
                if with_ntk:
                    _zero_ring(T2, a0 + pad, a1 + pad, b0 + pad, b1 + pad, pad, HP, WP, M)
                    T, T2 = T2, T
                o += 2 if act >= 0 else 1
            else:
                g = (a0, a1, b0, b1, pad, WP, M, nr, n2, H, W, n1, i0, u, v, o, 0)
                _act_layer(kind, with_ntk, S, T, g, f1, f2, same_flat, diag, ct)
                o += 1
        # the readout: this slab's sum over its pixels
        a0, a1 = max(0, -u), min(hl, hl - u)
        b0, b1 = max(0, -v), min(wl, wl - v)
        out = _U((ui * n1 + i0) * n2)
        for a in range(a0, a1):
            for b in range(b0, b1):
                base = _U(((a + pad) * WP + b + pad) * M)
                for m in range(_U(M)):
                    part_k[out + m] += S[base + m]
                if with_ntk:
                    for m in range(_U(M)):
                        part_t[out + m] += T[base + m]


@_pjit
def _items(n, x1, x2t, ops, readout, with_ntk, rows, pad, hs, ws, f1, f2, same_flat, aff, part_k, part_t, max_ns, ct):
    """The work items spread over the cores (a loop of its own: Numba's parallel pass takes minutes to
    compile a large body)."""
    for item in prange(n):
        _item(item, x1, x2t, ops, readout, with_ntk, rows, pad, hs, ws, f1, f2, same_flat, aff, part_k, part_t, max_ns,
              ct)


@_jit
def _block(x1, x2t, same, ops, fp, cst, readout, with_ntk, rows, pad):
    # the constants as a tuple: registers in the loops (read from an array, they were reloaded after
    # every store, which might have written there)
    ct = (cst[0], cst[1], cst[2], cst[3], cst[4], cst[5], cst[6], cst[7], cst[8], cst[9], cst[10], cst[11],
          cst[12], cst[13], cst[14], cst[15], cst[16], cst[17], cst[18], cst[19])
    n1, H, W, C = x1.shape
    n2 = x2t.shape[3]
    n_ops = ops.shape[0]
    dt = x1.dtype.type
    hs, ws = np.empty(n_ops + 1, np.int64), np.empty(n_ops + 1, np.int64)
    hs[0], ws[0] = H, W
    for o in range(n_ops):
        conv = ops[o, 0] == OP_CONV
        hs[o + 1] = ops[o, 5] if conv else hs[o]
        ws[o + 1] = ops[o, 6] if conv else ws[o]
    hl, wl = hs[n_ops], ws[n_ops]
    v1 = _variances(x1, ops, fp, cst)
    v2 = _variances(np.ascontiguousarray(np.transpose(x2t, (3, 0, 1, 2))), ops, fp, cst)
    # an activation's per-pixel factors: the variance (ReLU) or 1 + 2 variance (erf); flat, for the loops
    f1, f2 = v1.copy(), v2.copy()
    for o in range(n_ops):
        if ops[o, 0] == OP_ERF:
            f1[o] = ct[1] + (v1[o] + v1[o])
            f2[o] = ct[1] + (v2[o] + v2[o])
    f1, f2 = f1.ravel(), f2.ravel()
    same_flat = same.ravel()
    # the affine maps' coefficients, see _finish_pixel
    aff = np.zeros((n_ops, 5), x1.dtype)
    for o in range(n_ops):
        if ops[o, 0] == OP_CONV:
            aff[o, 0] = ct[1] / dt(ops[o, 1] * ops[o, 2])
            aff[o, 1], aff[o, 2] = fp[o, _W2], fp[o, _B2]
            if ops[o, _STD] == 1:
                aff[o, 3], aff[o, 4] = fp[o, _FAN], (ct[1] if ops[o, _BIAS] == 1 else ct[0])
            else:
                aff[o, 3], aff[o, 4] = fp[o, _W2], fp[o, _B2]
    nu = 2 * hl - 1 if readout == READ_GAP else 1
    chunks = (n1 + rows - 1) // rows
    part_k = np.zeros(nu * n1 * n2, x1.dtype)
    part_t = np.zeros(nu * n1 * n2, x1.dtype)
    max_ns = 1
    for o in range(n_ops):
        if ops[o, 0] == OP_CONV:
            max_ns = max(max_ns, ops[o, 1] * ops[o, 2])
    _items(chunks * nu, x1, x2t, ops, readout, with_ntk, rows, pad, hs, ws, f1, f2, same_flat, aff, part_k, part_t,
           max_ns, ct)
    count = dt(hl * wl * hl * wl) if readout == READ_GAP else dt(hl * wl)
    nngp, ntk = np.zeros(n1 * n2, x1.dtype), np.zeros(n1 * n2, x1.dtype)
    for ui in range(nu):
        for m in range(n1 * n2):
            nngp[m] += part_k[ui * n1 * n2 + m]
            ntk[m] += part_t[ui * n1 * n2 + m]
    var1, var2 = np.zeros(n1, x1.dtype), np.zeros(n2, x1.dtype)
    for a in range(hl):
        for b in range(wl):
            for i in range(n1):
                var1[i] += v1[n_ops, a, b, i]
            for j in range(n2):
                var2[j] += v2[n_ops, a, b, j]
    pix = dt(hl * wl)
    return ((nngp / count).reshape(n1, n2), (ntk / count).reshape(n1, n2), var1 / pix, var2 / pix)
