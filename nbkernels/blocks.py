"""The block policy: how a kernel is cut into blocks and which path computes them, decided before
anything is allocated.

    >>> p = blocks.plan(arch, x1, x2, dtype=None, batch_size=None, settings=settings.get())
    >>> p.batch_size, p.fused, p.packed          # then engine.run(arch, x1, x2, p, sink)

A kernel between ``n1`` and ``n2`` inputs is computed in ``b x b`` blocks of input pairs (only those
on and above the diagonal when it is symmetric). :func:`plan` decides, for both the in-memory kernel
(:meth:`nbkernels.Architecture.kernel`) and the resumable store (:mod:`nbkernels.compute`):

* **the path**: on the CPU a convolutional network's image layers run in the fused Numba kernel
  (:func:`fused_prefix`, :mod:`nbkernels.fused`); otherwise each layer is one XLA program, carrying the
  NNGP and NTK as one complex array on the CPU (:func:`packs_complex`);
* **the memory model**: the bytes a block holds per input pair on that path (:func:`bytes_per_pair`,
  :func:`fused_bytes_per_pair`) against the block budget (:func:`block_budget`), and the result matrices
  against the free memory; a request that cannot fit raises :class:`KernelMemoryError` naming the fix;
* **the block side**: the largest that fits, or on the CPU the measured side that keeps a block's arrays
  in cache (:func:`cache_batch_size`) or gives the fused kernel enough work per block (:func:`fused_block_side`).

Every choice here changes speed and memory only: blocked, one-block, fused and XLA kernels agree to
rounding (tests: 1e-12 relative in float64). The measurements behind the constants are in
``benchmarks/README.md`` ("Kernel throughput": the fused kernel, complex packing, "Block sides for
every-pixel-pair kernels").
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import TYPE_CHECKING, Optional, Sequence

import jax
import numpy as np
from numpy.typing import DTypeLike

from . import fused
from . import kernels as K
from .settings import Settings, resolve

if TYPE_CHECKING:
    from .architecture import Architecture


class KernelMemoryError(MemoryError):
    """A kernel request that would not fit in memory; raised before anything is allocated."""


# ----------------------------------------------------------------------------------------------
# the path


def fused_prefix(arch: Architecture, input_shape: Sequence[int], devices: int = 1, settings: Optional[Settings] = None) -> Optional[fused.Prefix]:
    """The image layers the fused CPU kernel computes for ``arch`` (:mod:`nbkernels.fused`), or None
    where the per-layer XLA programs do: on accelerators, with more than one device, for layers it does
    not cover, or with ``settings.fused`` off."""
    if devices != 1 or not resolve(settings).fused or jax.default_backend() != "cpu":
        return None
    return fused.prefix(arch, tuple(input_shape))


def packs_complex(with_ntk: bool, settings: Optional[Settings] = None) -> bool:
    """Whether the XLA layer programs carry NNGP and NTK as one complex array (``nngp + i ntk``).

    XLA's CPU fusion cuts a loop wherever a division or square root has several users, so a ReLU map
    writing two real arrays runs as about six loops over memory; with one complex output it is one
    loop, and each convolution's nine shifted reads become one pass instead of two. The arithmetic is
    the same element for element (XLA may contract a multiply-add differently in the fused loop: entries
    may differ in their last bit). ``settings.pack``: None packs on the CPU only (not measured on
    accelerators); True or False forces it (benchmarks/README.md, "Kernel throughput", has the timings)."""
    if not with_ntk:
        return False
    pack = resolve(settings).pack
    return jax.default_backend() == "cpu" if pack is None else bool(pack)


# ----------------------------------------------------------------------------------------------
# the memory model


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


def block_budget(settings: Optional[Settings] = None) -> int:
    """Bytes one kernel block may use: ``settings.block_gb`` GiB, at most half the free memory."""
    return int(min(resolve(settings).block_gb * 2 ** 30, available_memory() // 2))


# Arrays alive at once inside a block of the XLA path, each the size of the cross kernel (nngp, ntk,
# the padded copies a convolution makes, the temporaries of the nonlinearity). Measured peaks stay below.
_LIVE_ARRAYS = 8


def bytes_per_pair(entries_per_pair: int, itemsize: int, with_ntk: bool) -> int:
    """Memory an XLA-path block holds per input pair, for ``entries_per_pair`` kernel entries (1, P or P²)."""
    return entries_per_pair * itemsize * (_LIVE_ARRAYS if with_ntk else _LIVE_ARRAYS // 2 + 1)


def fused_bytes_per_pair(pre: fused.Prefix, dtype: DTypeLike) -> int:
    """Memory a fused block holds per input pair: every slab row's partial NNGP and NTK sums, and the results."""
    return (2 * pre.slab_rows + 4) * np.dtype(dtype).itemsize


def fit_batch_size(n_max: int, per_pair: int, budget: int) -> int:
    """The largest block side whose ``side²`` pairs fit ``budget`` bytes (at least 1, at most ``n_max``)."""
    return int(max(1, min(n_max, math.isqrt(max(budget // per_pair, 1)))))


# ----------------------------------------------------------------------------------------------
# block sides


# Block sides tried, largest first, for XLA-path kernels that keep every pixel pair (CNN-GAP), and the
# most bytes one of their arrays may hold: 8 or 4 pair columns fill whole vectors (the pair axes are
# last), 1 leaves the pixel axes innermost; odd sides and 2 do not (benchmarks/README.md, "Block sides
# for every-pixel-pair kernels").
_FULL_SIDES = (8, 4, 1)
_FULL_ARRAY_BYTES = 4 * 2 ** 20


def cache_batch_size(entries_per_pair: int, itemsize: int, full: bool = False,
                     settings: Optional[Settings] = None) -> Optional[int]:
    """On a CPU, the XLA-path block side whose kernel arrays stay cache-sized; None on accelerators
    (bigger blocks win there).

    The convolutional kernels are memory-bound. Pixel-diagonal kernels (CNN-VEC, LCN): arrays of
    ``settings.block_cache_mb`` MiB keep a layer's passes in cache, several times faster than one block
    holding everything. Every-pixel-pair kernels (``full``): the largest of :data:`_FULL_SIDES` whose
    arrays stay within 4 MiB.
    """
    if jax.default_backend() != "cpu":
        return None
    if full:
        return next((b for b in _FULL_SIDES if b * b * entries_per_pair * itemsize <= _FULL_ARRAY_BYTES), 1)
    target = resolve(settings).block_cache_mb * 2 ** 20 / itemsize
    return max(8, math.isqrt(int(target // entries_per_pair)))


# Entry-passes (a pixel pair of one input pair through one pass) a fused block aims at: a fraction of a
# second each, so the first blocks time the rest (engine.run's estimate) and the progress bar moves.
_BLOCK_WORK = 3e8


def fused_block_side(pre: fused.Prefix, input_shape: Sequence[int]) -> int:
    """The fused kernel's block side: about :data:`_BLOCK_WORK` per block, a multiple of 16 from 16 to
    256 (whole vectors in the innermost loop, see ``fused._LANES``)."""
    p = input_shape[0] * input_shape[1]
    work = max(1, pre.passes()) * (p * p if pre.readout == fused.READ_GAP else p)
    side = math.isqrt(int(_BLOCK_WORK // work))
    return int(min(256, max(fused.LANES, side + -side % fused.LANES)))


def _fmt_bytes(n):
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 28 else f"{n / 2 ** 20:.1f} MiB"


def plan_blocks(n1: int, n2: int, entries_per_pair: int, itemsize: int, with_ntk: bool, batch_size: Optional[int] = None,
                devices: int = 1, in_memory: bool = True, full: bool = False, per_pair: Optional[int] = None,
                side: Optional[int] = None, settings: Optional[Settings] = None) -> int:
    """Choose (or check) the block side; refuse a request that cannot fit, before allocating.

    ``devices`` blocks are live at once (one per device), each with that share of the budget;
    ``in_memory=False`` (the store on disk) does not hold the result matrices; ``full``: the kernel keeps
    every pixel pair (see :func:`cache_batch_size`). ``per_pair`` and ``side``, for the fused CPU kernel:
    the bytes a block holds per input pair, and the block side it prefers."""
    what = f"{per_pair:,} bytes per input pair" if per_pair else f"{entries_per_pair} kernel entries per input pair"
    per_pair = per_pair or bytes_per_pair(entries_per_pair, itemsize, with_ntk)
    budget = block_budget(settings) // max(1, devices)
    fits = fit_batch_size(max(n1, n2), per_pair, budget)
    out_bytes = n1 * n2 * itemsize * (2 if with_ntk else 1)
    if in_memory and out_bytes > available_memory() // 2:
        raise KernelMemoryError(
            f"the kernel matrices alone need {_fmt_bytes(out_bytes)} ({n1} x {n2} entries) but only "
            f"{_fmt_bytes(available_memory())} is free: compute fewer inputs at a time, or use "
            f"`python -m nbkernels.compute`, which writes blocks to disk.")
    if batch_size is None:
        cache = side or cache_batch_size(entries_per_pair, itemsize, full, settings)
        b = min(fits, cache or fits)
        n = max(n1, n2)
        if full and side is None and cache is not None and b == cache:
            return b  # the measured sides; evening the blocks out would leave them
        return -(-n // -(-n // b))  # the same number of blocks, as even as they can be
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    b1, b2 = min(batch_size, n1), min(batch_size, n2)
    need = b1 * b2 * per_pair
    if need > max(budget, available_memory() // 2):
        raise KernelMemoryError(
            f"batch_size={batch_size} needs about {_fmt_bytes(need)} per block ({what}) but the block "
            f"budget is {_fmt_bytes(budget)}: use batch_size={fits} or smaller (or raise the budget: "
            "settings.context(block_gb=...) or $NBKERNELS_BLOCK_GB).")
    return batch_size


# ----------------------------------------------------------------------------------------------
# the plan


@dataclasses.dataclass(frozen=True)
class Plan:
    """What :func:`plan` decided: the block side, the blocks, the path, and the settings it used."""

    n1: int
    n2: int
    batch_size: int
    symmetric: bool
    dtype: np.dtype
    get: tuple
    fused: bool = False        # the image layers run in the fused CPU kernel
    packed: bool = False       # the XLA layer programs carry NNGP + i NTK
    settings: Settings = dataclasses.field(default_factory=Settings)

    @property
    def blocks(self) -> list:
        """Block origins (i, j), row-major; only j >= i for a symmetric kernel."""
        b = self.batch_size
        return [(i, j) for i in range(0, self.n1, b) for j in range(0, self.n2, b) if not self.symmetric or j >= i]

    def shape(self, i: int, j: int) -> tuple[int, int]:
        """The rows and columns of the block at origin ``(i, j)`` (the last ones may be short)."""
        b = self.batch_size
        return min(b, self.n1 - i), min(b, self.n2 - j)


def plan(arch: Architecture, x1: np.ndarray, x2: Optional[np.ndarray], *, dtype: DTypeLike = None,
         batch_size: Optional[int] = None, get: Sequence[str] = ("nngp", "ntk"), devices: int = 1,
         in_memory: bool = True, settings: Optional[Settings] = None) -> Plan:
    """Choose (or check) the block side and the path for ``arch`` on these inputs; refuse, before
    allocating, a request whose blocks or (``in_memory``) whose result matrices cannot fit. ``devices``
    blocks run at once, so each gets that share of the block budget. ``settings`` default: the ones in
    effect (:func:`nbkernels.settings.get`)."""
    settings = resolve(settings)
    dtype = K.resolve_dtype(dtype)
    n1 = len(x1)
    n2 = n1 if x2 is None else len(x2)
    shape = np.shape(x1)[1:]
    with_ntk = "ntk" in get
    pre = fused_prefix(arch, shape, devices, settings)
    if pre is not None:
        b = plan_blocks(n1, n2, 0, dtype.itemsize, with_ntk, batch_size, devices=devices, in_memory=in_memory,
                        per_pair=fused_bytes_per_pair(pre, dtype), side=fused_block_side(pre, shape),
                        settings=settings)
    else:
        entries = arch.kernel_entries_per_pair(shape)
        b = plan_blocks(n1, n2, entries, dtype.itemsize, with_ntk, batch_size, devices=devices,
                        in_memory=in_memory, full=arch.needs_all_pixel_pairs, settings=settings)
    return Plan(n1, n2, min(b, max(n1, n2)), x2 is None, dtype, tuple(get), fused=pre is not None,
                packed=packs_complex(with_ntk, settings), settings=settings)
