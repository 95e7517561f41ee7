"""The block engine: every kernel computation, in memory or into the resumable store, runs here.

    >>> p = engine.plan(arch, x1, x2, dtype=None, batch_size=None)        # refuses what cannot fit
    >>> out = engine.run(arch, x1, x2, p, engine.MemorySink(p))            # dict of (n1, n2) arrays

A kernel is cut into ``b x b`` blocks of input pairs (only those on and above the diagonal when it is
symmetric). :func:`plan` chooses ``b`` (or checks the one asked for) against the memory budget before
anything is allocated. :func:`run` computes the blocks with one XLA program per layer
(:func:`block_program`; on the CPU, a convolutional network's image layers run fused instead,
:mod:`nbkernels.fused`), ``len(devices)`` blocks at a time sharded over the devices (``jax.sharding``),
and hands each finished block to a *sink*: :class:`MemorySink` fills preallocated matrices;
``nbkernels.compute.StoreSink`` writes the store on disk and says which blocks are already done. After
the first blocks :func:`run` estimates the whole computation from their measured throughput and stops
with that estimate when it is over ``max_hours``.

Exactness: the blocks see the same inputs whatever the block size, and the pairs of an input with
itself (the diagonal of a symmetric kernel) are marked (``same``), so their angle is exactly 0 and
blocked, one-block, sharded and stored kernels agree to rounding (tests: 1e-12 relative in float64).
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import os
import time
from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from . import fused
from . import kernels as K

FIELDS = ("nngp", "ntk", "var1", "var2", "same")
_PROGRAMS = {}


class KernelTimeError(RuntimeError):
    """A kernel that fits in memory but would run for longer than the caller allows (``max_hours``)."""


# ----------------------------------------------------------------------------------------------
# per-layer programs


def packs_complex(with_ntk: bool) -> bool:
    """Whether the layer programs carry NNGP and NTK as one complex array (``nngp + i ntk``).

    XLA's CPU fusion cuts a loop wherever a division or square root has several users, so a ReLU map
    writing two real arrays (the NNGP and the NTK) runs as about six loops over memory; with one complex
    output it is one loop, and each convolution's nine shifted reads become one pass instead of two.
    The arithmetic is the same, element for element (XLA may contract a multiply-add differently in the
    fused loop: entries then differ in their last bit, at most 8e-17 relative in float64; the NTK-
    parameterized ReLU CNNs of the notebooks came out bit-identical in float32). Measured interleaved on
    2 cores (float32, x1 != x2, one block): CNN-GAP 8x8 7.0 -> 4.5 ms, 16x16 29.1 -> 26.3 ms, CNN-VEC
    depth 8 16x16 22.7 -> 18.9 ms. On by default on the CPU only (not measured on accelerators);
    ``$NBKERNELS_PACK=0`` or ``1`` overrides."""
    if not with_ntk:
        return False
    v = os.environ.get("NBKERNELS_PACK", "")
    return v == "1" if v in ("0", "1") else jax.default_backend() == "cpu"


def _unpack(arrays, packed):
    """The five ``FIELDS`` from a program's arrays (``(z, var1, var2, same)`` when packed)."""
    if not packed:
        return arrays
    z, var1, var2, same = arrays
    return (jax.numpy.real(z), jax.numpy.imag(z), var1, var2, same)


def _pack(state, packed):
    arrays = tuple(getattr(state, f) for f in FIELDS)
    if not packed:
        return arrays
    return (jax.lax.complex(state.nngp, state.ntk),) + arrays[2:]


def _layer_program(layer, width, spatial, full, batched=False, packed=False):
    """One layer's kernel map as its own XLA program; ``batched`` maps it over a leading axis of blocks;
    ``packed`` (:func:`packs_complex`) takes and returns NNGP and NTK as one complex array."""
    key = (layer, width, spatial, full, batched, packed)
    if key not in _PROGRAMS:
        def step(*arrays):
            out = layer.kernel_fn(K.KernelState(*_unpack(arrays, packed), width=width, spatial=spatial, full=full))
            return _pack(out, packed)
        _PROGRAMS[key] = jax.jit(jax.vmap(step) if batched else step)
    return _PROGRAMS[key]


def fused_prefix(arch, input_shape, devices: int = 1) -> Optional[fused.Prefix]:
    """The image layers the fused CPU kernel computes for ``arch`` (:mod:`nbkernels.fused`), or None
    where the per-layer XLA programs do: on accelerators, with more than one device, for layers it does
    not cover, or with ``$NBKERNELS_FUSED=0``."""
    if devices != 1 or not fused.enabled():
        return None
    return fused.prefix(arch, tuple(input_shape))


def block_program(arch, get: Sequence[str], batched: bool = False):
    """The block computation ``(x1, x2, same) -> (nngp, ntk)``.

    On the CPU the image layers of a convolutional network run fused (:func:`fused_prefix`), and the
    layers after its readout as XLA programs. Otherwise every layer is one XLA program: compiled as one
    program, XLA fuses each layer's nonlinearity into the next convolution's shifted sums and
    recomputes it once per shift, compounding with depth (CNN-VEC depth 8 ran 3x slower than eight
    separate programs); layer by layer, every kernel is materialized exactly once.
    ``same`` is (b1, b2) bool, True where the two rows are one input. ``batched`` maps every
    program over a leading axis of blocks (sharded over devices by :func:`run`). Between programs the
    NNGP and NTK travel as one complex array where :func:`packs_complex` says so.
    """
    full, with_ntk = arch.needs_all_pixel_pairs, "ntk" in get
    packed = packs_complex(with_ntk)
    key = ("input", full, with_ntk, batched, packed)
    if key not in _PROGRAMS:
        def inputs(a, b, same):
            return _pack(K.input_state(a, b, full, with_ntk, same), packed)
        _PROGRAMS[key] = jax.jit(jax.vmap(inputs) if batched else inputs)

    def run_block(x1, x2, same):
        shape = x1.shape[1 + batched:]
        specs = arch.specs(shape)
        pre = None if batched else fused_prefix(arch, shape)
        if pre is not None:
            k = fused.block(pre, x1, x2, same, with_ntk, x1.dtype) + (same,)
            for layer, spec in zip(arch.layers[pre.n_layers:], specs[pre.n_layers:]):
                k = _layer_program(layer, spec.channels, spec.spatial, False)(*k)
            return k[0], k[1]
        k = _PROGRAMS[key](x1, x2, same)
        for layer, spec in zip(arch.layers, specs):
            k = _layer_program(layer, spec.channels, spec.spatial, full and spec.is_image, batched, packed)(*k)
        if packed:  # split on the host: views, no more programs
            z = np.asarray(k[0])
            return z.real, z.imag
        return k[0], k[1]

    return run_block


# ----------------------------------------------------------------------------------------------
# the plan


@dataclasses.dataclass(frozen=True)
class Plan:
    n1: int
    n2: int
    batch_size: int
    symmetric: bool
    dtype: np.dtype
    get: tuple

    @property
    def blocks(self) -> list:
        """Block origins (i, j), row-major; only j >= i for a symmetric kernel."""
        b = self.batch_size
        return [(i, j) for i in range(0, self.n1, b) for j in range(0, self.n2, b) if not self.symmetric or j >= i]

    def shape(self, i, j):
        b = self.batch_size
        return min(b, self.n1 - i), min(b, self.n2 - j)


def plan(arch, x1, x2, *, dtype=None, batch_size=None, get=("nngp", "ntk"), devices: int = 1,
         in_memory: bool = True) -> Plan:
    """Choose (or check) the block size for ``arch`` on these inputs; refuse, before allocating, a
    request whose blocks or (``in_memory``) whose result matrices cannot fit. ``devices`` blocks run at
    once, so each gets that share of the block budget."""
    dtype = K.resolve_dtype(dtype)
    n1 = len(x1)
    n2 = n1 if x2 is None else len(x2)
    shape = np.shape(x1)[1:]
    pre = fused_prefix(arch, shape, devices)
    if pre is not None:
        b = K.plan_blocks(n1, n2, 0, dtype.itemsize, "ntk" in get, batch_size, devices=devices, in_memory=in_memory,
                          per_pair=fused.bytes_per_pair(pre, dtype), side=fused.block_side(pre, shape))
    else:
        entries = arch.kernel_entries_per_pair(shape)
        b = K.plan_blocks(n1, n2, entries, dtype.itemsize, "ntk" in get, batch_size, devices=devices,
                          in_memory=in_memory, full=arch.needs_all_pixel_pairs)
    return Plan(n1, n2, min(b, max(n1, n2)), x2 is None, dtype, tuple(get))


# ----------------------------------------------------------------------------------------------
# sinks


class MemorySink:
    """Fills one preallocated (n1, n2) matrix per field. A symmetric kernel's off-diagonal blocks are
    written with their mirror image; diagonal blocks are symmetrized in place, so the result is exactly
    symmetric without a second full-size copy."""

    def __init__(self, p: Plan):
        self.plan = p
        self.out = {name: np.empty((p.n1, p.n2), p.dtype) for name in p.get}

    def write(self, i, j, fields: dict):
        for name, blk in fields.items():
            out = self.out[name]
            m1, m2 = blk.shape
            if self.plan.symmetric and i == j:
                blk = (blk + blk.T) / 2
            out[i:i + m1, j:j + m2] = blk
            if self.plan.symmetric and i != j:
                out[j:j + m2, i:i + m1] = blk.T


# ----------------------------------------------------------------------------------------------
# running


def _pad_rows(x, start, b):
    """Rows ``start:start+b`` of x, padded by repeating the last row so every block has one shape."""
    blk = x[start:start + b]
    if blk.shape[0] < b and x.shape[0] > b:
        blk = np.concatenate([blk, np.repeat(blk[-1:], b - blk.shape[0], axis=0)])
    return blk


def _same(p: Plan, i, j, shape):
    """Which pairs of the (padded) block are one input with itself: the diagonal of diagonal blocks."""
    if p.symmetric and i == j:
        return np.eye(*shape, dtype=bool)
    return np.zeros(shape, dtype=bool)


# glibc's malloc on the CPU: XLA allocates every layer's output arrays (a few MiB each) anew and frees
# its inputs. With glibc's default (dynamic) thresholds the freed top of the heap is handed back to the
# system whenever it exceeds twice the largest array freed, and taken again, page fault by page fault,
# by the next layer: CNN-VEC depth 8 (200x200, 16x16) spent half its time there (0.59-0.88 s against
# 0.33-0.46 s with the settings below, interleaved runs). Arrays above 32 MiB (kernel matrices) are
# still mapped and unmapped on their own, so the heap keeps at most 256 MiB it does not use.
# ``$NBKERNELS_MALLOPT=0`` leaves the allocator alone.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_SETTINGS = {_M_TRIM_THRESHOLD: 256 * 2 ** 20, _M_MMAP_THRESHOLD: 32 * 2 ** 20}


def malloc_env() -> dict:
    """The same settings as glibc's environment variables (for another process, e.g. a benchmark's)."""
    return {"MALLOC_TRIM_THRESHOLD_": str(_MALLOC_SETTINGS[_M_TRIM_THRESHOLD]),
            "MALLOC_MMAP_THRESHOLD_": str(_MALLOC_SETTINGS[_M_MMAP_THRESHOLD])}


@functools.lru_cache(maxsize=None)
def tune_allocator() -> bool:
    """Keep freed block arrays in glibc's heap (see above); once per process, CPU only. Returns whether
    the settings are in effect (False off glibc, on accelerators, or with ``$NBKERNELS_MALLOPT=0``)."""
    if os.environ.get("NBKERNELS_MALLOPT", "1") == "0" or jax.default_backend() != "cpu":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(k, v) == 1 for k, v in _MALLOC_SETTINGS.items())


def default_max_hours() -> Optional[float]:
    """``$NBKERNELS_MAX_HOURS`` (default 1); 'none' turns the estimate's refusal off."""
    v = os.environ.get("NBKERNELS_MAX_HOURS", "1")
    return None if v.strip().lower() in ("none", "inf", "") else float(v)


def _fmt_hours(s):
    return f"{s / 3600:,.1f} hours" if s >= 3600 else f"{s / 60:.1f} minutes"


def run(arch, x1, x2, p: Plan, sink, *, blocks=None, devices=None, progress=True, max_hours="default",
        done=0, what="kernel blocks"):
    """Compute ``blocks`` (default: every block of ``p``) and hand each to ``sink.write(i, j, fields)``.

    ``devices``: the devices that share the blocks (default: this process's first local device; more than one
    shards ``len(devices)`` blocks at a time over them). ``max_hours``: after the first blocks, stop
    with :class:`KernelTimeError` if the rest is estimated (from their measured time, compilation
    excluded) to take longer; None never stops; "default" is :func:`default_max_hours`.
    ``done``: blocks finished before (the progress bar starts there). Returns the blocks computed.
    """
    if max_hours == "default":
        max_hours = default_max_hours()
    x1 = np.asarray(x1, p.dtype)
    x2 = x1 if x2 is None else np.asarray(x2, p.dtype)
    b = p.batch_size
    todo = list(p.blocks if blocks is None else blocks)
    tune_allocator()
    devices = list(devices) if devices else jax.local_devices()[:1]
    d = len(devices)
    program = block_program(arch, p.get, batched=d > 1)
    if d > 1:
        sharding = NamedSharding(Mesh(np.array(devices), ("blocks",)), PartitionSpec("blocks"))
    timings = []
    with tqdm(total=done + len(todo), initial=done, desc=what, unit="block", delay=3,
              disable=not progress or len(todo) <= 1) as bar:
        for r in range(0, len(todo), d):
            group = todo[r:r + d]
            padded = group + [group[-1]] * (d - len(group))
            xa = [_pad_rows(x1, i, b) for i, _ in padded]
            xb = [_pad_rows(x2, j, b) for _, j in padded]
            same = [_same(p, i, j, (len(a), len(c))) for (i, j), a, c in zip(padded, xa, xb)]
            t0 = time.perf_counter()
            if d > 1:
                out = [None if a is None else np.asarray(a) for a in
                       program(*(jax.device_put(np.stack(v), sharding) for v in (xa, xb, same)))]
                res = [tuple(None if a is None else a[k] for a in out) for k in range(d)]  # one transfer per field
            else:
                res = [tuple(None if a is None else np.asarray(a) for a in program(xa[0], xb[0], same[0]))]
            timings.append(time.perf_counter() - t0)
            for (i, j), (nngp, ntk) in zip(group, res):
                m1, m2 = p.shape(i, j)
                fields = {"nngp": nngp[:m1, :m2]}
                if "ntk" in p.get:
                    fields["ntk"] = ntk[:m1, :m2]
                sink.write(i, j, fields)
                bar.update(1)
            _check_time(timings, len(todo) - r - len(group), d, max_hours, p)
    return len(todo)


def mine(blocks):
    """The blocks of this process when several share the work (``jax.process_count()``): every n-th."""
    n, k = jax.process_count(), jax.process_index()
    return [blk for m, blk in enumerate(blocks) if m % n == k]


def _check_time(timings, remaining, d, max_hours, p: Plan):
    """Once, after the second round of blocks: the first includes compilation."""
    if max_hours is None or remaining <= 0 or len(timings) != 2:
        return
    per_round = timings[1]
    estimate = per_round * math.ceil(remaining / d)
    if estimate > max_hours * 3600:
        raise KernelTimeError(
            f"this kernel ({p.n1} x {p.n2} inputs in {len(p.blocks)} blocks of {p.batch_size}) would take about "
            f"{_fmt_hours(estimate)} more at the measured {per_round:.2f} s per block, over the limit of "
            f"{max_hours:g} hours. Compute it with the resumable store, which survives interruptions and "
            "spreads over devices and hosts (`python -m nbkernels.compute ... --out DIR`, see the README), "
            "on an accelerator; use fewer or smaller images; or raise the limit (max_hours=..., "
            "$NBKERNELS_MAX_HOURS, 'none' for no limit).")
