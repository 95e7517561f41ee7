"""The block engine: every kernel computation, in memory or into the resumable store, runs here.

    >>> p = blocks.plan(arch, x1, x2, dtype=None, batch_size=None)        # refuses what cannot fit
    >>> out = engine.run(arch, x1, x2, p, engine.MemorySink(p))            # dict of (n1, n2) arrays

A kernel is cut into ``b x b`` blocks of input pairs (only those on and above the diagonal when it is
symmetric); :func:`nbkernels.blocks.plan` chooses ``b`` and the path before anything is allocated.
:func:`run` computes the blocks as the plan says: with one XLA program per layer
(:func:`block_program`) or, on the CPU, a convolutional network's image layers fused
(:mod:`nbkernels.fused`), ``len(devices)`` blocks at a time sharded over the devices (``jax.sharding``),
and hands each finished block to a *sink*: :class:`MemorySink` fills preallocated matrices;
``nbkernels.compute.StoreSink`` writes the store on disk and says which blocks are already done. After
the first blocks :func:`run` estimates the whole computation from their measured throughput and stops
with that estimate when it is over the plan's ``settings.max_hours``.

Exactness: the blocks see the same inputs whatever the block size, and the pairs of an input with
itself (the diagonal of a symmetric kernel) are marked (``same``), so their angle is exactly 0 and
blocked, one-block, sharded and stored kernels agree to rounding (tests: 1e-12 relative in float64).
"""
from __future__ import annotations

import ctypes
import functools
import math
import time
import types
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from . import fused
from . import kernels as K
from .blocks import Plan
from .settings import Settings, resolve

if TYPE_CHECKING:
    from .architecture import Architecture

FIELDS = ("nngp", "ntk", "var1", "var2", "same")
_PROGRAMS = {}


class KernelTimeError(RuntimeError):
    """A kernel that fits in memory but would run for longer than the caller allows (``max_hours``)."""


# ----------------------------------------------------------------------------------------------
# per-layer programs


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
    ``packed`` (:func:`nbkernels.blocks.packs_complex`) takes and returns NNGP and NTK as one complex array."""
    key = (layer, width, spatial, full, batched, packed)
    if key not in _PROGRAMS:
        def step(*arrays):
            out = layer.kernel_fn(K.KernelState(*_unpack(arrays, packed), width=width, spatial=spatial, full=full))
            return _pack(out, packed)
        _PROGRAMS[key] = jax.jit(jax.vmap(step) if batched else step)
    return _PROGRAMS[key]


def block_program(arch: Architecture, p: Plan, batched: bool = False) -> Callable:
    """The block computation ``(x1, x2, same) -> (nngp, ntk)`` on the path ``p`` chose.

    ``p.fused``: the image layers of a convolutional network run in the fused CPU kernel, the layers
    after its readout as XLA programs. Otherwise every layer is one XLA program: compiled as one
    program, XLA fuses each layer's nonlinearity into the next convolution's shifted sums and
    recomputes it once per shift, compounding with depth; layer by layer, every kernel is materialized
    exactly once. ``same`` is (b1, b2) bool, True where the two rows are one input. ``batched`` maps every
    program over a leading axis of blocks (sharded over devices by :func:`run`). Between programs the
    NNGP and NTK travel as one complex array where ``p.packed``.
    """
    full, with_ntk, packed = arch.needs_all_pixel_pairs, "ntk" in p.get, p.packed
    key = ("input", full, with_ntk, batched, packed)
    if key not in _PROGRAMS:
        def inputs(a, b, same):
            return _pack(K.input_state(a, b, full, with_ntk, same), packed)
        _PROGRAMS[key] = jax.jit(jax.vmap(inputs) if batched else inputs)

    def run_block(x1, x2, same):
        shape = x1.shape[1 + batched:]
        specs = arch.specs(shape)
        pre = fused.prefix(arch, shape) if p.fused and not batched else None
        if pre is not None:
            k = fused.block(pre, x1, x2, same, with_ntk, x1.dtype, p.settings.fused_pairs) + (same,)
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
# sinks


class MemorySink:
    """Fills one preallocated (n1, n2) matrix per field. A symmetric kernel's off-diagonal blocks are
    written with their mirror image; diagonal blocks are symmetrized in place, so the result is exactly
    symmetric without a second full-size copy."""

    def __init__(self, p: Plan):
        self.plan = p
        self.out = {name: np.empty((p.n1, p.n2), p.dtype) for name in p.get}

    def write(self, i: int, j: int, fields: dict) -> None:
        """Place block ``(i, j)``'s fields (its mirror too, for a symmetric kernel)."""
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
# by the next layer, where deep CNN-VEC kernels spent about half their time (benchmarks/README.md, "The
# allocator setting"). Arrays above 32 MiB (kernel matrices) are
# still mapped and unmapped on their own, so the heap keeps at most 256 MiB it does not use.
# ``Settings.mallopt=False`` (``$NBKERNELS_MALLOPT=0``) leaves the allocator alone.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_SETTINGS = {_M_TRIM_THRESHOLD: 256 * 2 ** 20, _M_MMAP_THRESHOLD: 32 * 2 ** 20}


def malloc_env() -> dict:
    """The same settings as glibc's environment variables (for another process, e.g. a benchmark's)."""
    return {"MALLOC_TRIM_THRESHOLD_": str(_MALLOC_SETTINGS[_M_TRIM_THRESHOLD]),
            "MALLOC_MMAP_THRESHOLD_": str(_MALLOC_SETTINGS[_M_MMAP_THRESHOLD])}


def tune_allocator(settings: Optional[Settings] = None) -> bool:
    """Keep freed block arrays in glibc's heap (see above), CPU only, unless ``settings.mallopt`` is
    off. Returns whether the thresholds are in effect (False off glibc or on accelerators). They are
    process-wide (glibc has one heap): the first kernel that runs sets them, once."""
    if not resolve(settings).mallopt or jax.default_backend() != "cpu":
        return False
    return _set_malloc_thresholds()


@functools.lru_cache(maxsize=None)
def _set_malloc_thresholds() -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(k, v) == 1 for k, v in _MALLOC_SETTINGS.items())


def _fmt_hours(s):
    return f"{s / 3600:,.1f} hours" if s >= 3600 else f"{s / 60:.1f} minutes"


def run(arch: Architecture, x1: np.ndarray, x2: Optional[np.ndarray], p: Plan, sink: Any, *,
        blocks: Optional[Sequence[tuple[int, int]]] = None, devices: Optional[Sequence[jax.Device]] = None,
        progress: bool = True, max_hours: Union[float, str, None] = "default", done: int = 0,
        what: str = "kernel blocks") -> None:
    """Compute ``blocks`` (default: every block of ``p``) and hand each to ``sink.write(i, j, fields)``.

    ``devices``: the devices that share the blocks (default: this process's first local device; more than one
    shards ``len(devices)`` blocks at a time over them). ``max_hours``: after the first blocks, stop
    with :class:`KernelTimeError` if the rest is estimated (from their measured time, compilation
    excluded) to take longer; None never stops; "default" is the plan's ``settings.max_hours``.
    ``done``: blocks finished before (the progress bar starts there). Returns the blocks computed.
    """
    if max_hours == "default":
        max_hours = p.settings.max_hours
    x1 = np.asarray(x1, p.dtype)
    x2 = x1 if x2 is None else np.asarray(x2, p.dtype)
    b = p.batch_size
    todo = list(p.blocks if blocks is None else blocks)
    tune_allocator(p.settings)
    devices = list(devices) if devices else jax.local_devices()[:1]
    d = len(devices)
    program = block_program(arch, p, batched=d > 1)
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


def mine(blocks: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
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
            "settings.context(max_hours=...) or $NBKERNELS_MAX_HOURS; None or 'none' for no limit).")


def warm() -> None:
    """Compile (or load from Numba's cache) the fused CPU kernel for float32 and float64, as ``make``'s
    set-up does once. It calls the kernel on NumPy arrays directly, so JAX's 64-bit mode is left alone."""
    from .layers import Conv, GlobalAvgPool, Relu
    arch = types.SimpleNamespace(layers=(Conv(1), Relu(), GlobalAvgPool()))
    pre = fused.prefix(arch, (4, 4, 2))
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 2))
    for dtype in (np.float32, np.float64):
        fused.block(pre, x, x, np.eye(3, dtype=bool), True, dtype)
