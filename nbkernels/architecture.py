"""One architecture description, two views: the finite Flax network and its infinite-width kernels.

Example::

    >>> import numpy as np, nbkernels as nbk
    >>> arch = nbk.cnn(depth=2, width=64, readout="gap")
    >>> x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    >>> k = arch.kernel(x)                        # Kernel(nngp=(4, 4), ntk=(4, 4))
    >>> net = arch.network()                      # flax.linen.Module, widths as given
    >>> params = net.init(jax.random.PRNGKey(0), x)
    >>> net.apply(params, x).shape
    (4, 10)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np
from tqdm.auto import tqdm

from . import kernels as K
from .layers import (LAYER_TYPES, Conv, ConvLocal, Dense, Erf, Flatten, GlobalAvgPool, Relu,
                     Spec)


class Network(nn.Module):
    """The finite network of an :class:`Architecture` (a Flax module)."""

    layers: Tuple

    @nn.compact
    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer.fn(x, name=f"{i}_{type(layer).__name__}")
        return x


def _validate_inputs(x, name):
    if not isinstance(x, (np.ndarray, jax.Array)):
        x = np.asarray(x)
    if x.ndim not in (2, 4):
        raise ValueError(f"{name} must be (N, D) vectors or (N, H, W, C) images, got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}).")
    if not np.all(np.isfinite(np.asarray(x))):
        bad = int(np.size(x) - np.isfinite(np.asarray(x)).sum())
        raise ValueError(f"{name} has {bad} NaN or infinite values: clean or impute the data "
                         "before computing kernels.")
    return x


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A sequence of layers (see :func:`serial`)."""

    layers: Tuple

    # -- description -------------------------------------------------------------------------
    def __repr__(self):
        return "serial(" + ", ".join(repr(layer) for layer in self.layers) + ")"

    @property
    def needs_all_pixel_pairs(self) -> bool:
        return any(isinstance(layer, GlobalAvgPool) for layer in self.layers)

    def specs(self, input_shape) -> list:
        """Shapes after each layer; raises a ValueError naming the first layer that cannot take its input."""
        spec = Spec(tuple(input_shape[:-1]), int(input_shape[-1]))
        out = [spec]
        for layer in self.layers:
            spec = layer.out_spec(spec)
            out.append(spec)
        if spec.is_image:
            raise ValueError("the architecture ends on images: finish with nbk.Flatten() or "
                             "nbk.GlobalAvgPool() and a Dense readout.")
        return out

    def kernel_entries_per_pair(self, input_shape) -> int:
        """The most numbers one input pair holds at any layer (1, P, or P**2 for P pixels)."""
        full = self.needs_all_pixel_pairs
        return max(math.prod(s.spatial) ** (2 if full else 1) for s in self.specs(input_shape))

    # -- finite ------------------------------------------------------------------------------
    def network(self) -> Network:
        """The finite Flax network with the widths given to the layers."""
        return Network(tuple(self.layers))

    # -- infinite ----------------------------------------------------------------------------
    def kernel_fn(self, x1, x2, get=("nngp", "ntk")):
        """The kernel between x1 and x2 as one traceable function, to compose inside your own ``jax.jit``.

        :meth:`kernel` computes the same thing block by block with one XLA program per layer, which is
        much faster on a CPU (see ``_jitted_block_fn``); tests check that the two agree.
        """
        k = K.input_state(x1, x2, full=self.needs_all_pixel_pairs, with_ntk="ntk" in get)
        for layer in self.layers:
            k = layer.kernel_fn(k)
        return k.nngp, k.ntk

    def kernel(self, x1, x2=None, *, dtype=None, batch_size=None, cache=None, get=("nngp", "ntk"),
               progress=True) -> K.Kernel:
        """Exact infinite-width NNGP and NTK between ``x1`` and ``x2`` (``x1`` with itself when None).

        Computed in blocks of ``batch_size`` inputs per side so memory stays bounded (the default is
        the largest block that fits the budget, ``$NBKERNELS_BLOCK_GB``); a request that cannot fit
        is refused before anything is allocated. With ``x2=None`` only the blocks on and above the
        diagonal are computed and the result is exactly symmetric. ``dtype`` is float32 unless JAX's
        64-bit mode is on. ``get=("nngp",)`` skips the NTK. ``cache`` (a :class:`nbkernels.cache.Cache`
        or True for the default one) stores the result keyed by architecture, data and dtype.
        """
        if isinstance(get, str):
            get = (get,)
        if not set(get) <= {"nngp", "ntk"} or "nngp" not in get:
            raise ValueError(f"get must be ('nngp',) or ('nngp', 'ntk'), got {get!r}.")
        dtype = K.resolve_dtype(dtype)
        x1 = _validate_inputs(x1, "x1")
        if x2 is not None:
            x2 = _validate_inputs(x2, "x2")
            if x2.shape[1:] != x1.shape[1:]:
                raise ValueError(f"x1 and x2 must have the same feature shape, got {x1.shape[1:]} and "
                                 f"{x2.shape[1:]}.")
        self.specs(x1.shape[1:])
        if cache is not None and cache is not False:
            from . import cache as cache_mod
            store = cache_mod.default_cache() if cache is True else cache
            key = dict(kind="kernel", arch=repr(self), dtype=str(dtype), get=list(get),
                       x1=cache_mod.fingerprint(x1), x2=None if x2 is None else cache_mod.fingerprint(x2))
            arrays = store.get_or_compute(
                key, lambda: self._kernel_arrays(x1, x2, dtype, batch_size, get, progress),
                version=_KERNEL_VERSION)
            return K.Kernel(arrays["nngp"], arrays.get("ntk"))
        arrays = self._kernel_arrays(x1, x2, dtype, batch_size, get, progress)
        return K.Kernel(arrays["nngp"], arrays.get("ntk"))

    def _kernel_arrays(self, x1, x2, dtype, batch_size, get, progress):
        symmetric = x2 is None
        n1 = x1.shape[0]
        n2 = n1 if symmetric else x2.shape[0]
        with_ntk = "ntk" in get
        b = K.plan_blocks(n1, n2, self.kernel_entries_per_pair(x1.shape[1:]), dtype.itemsize,
                          with_ntk, batch_size)
        x1 = np.asarray(x1, dtype)
        x2 = x1 if symmetric else np.asarray(x2, dtype)
        block_fn = _jitted_block_fn(self, tuple(get))
        starts1 = range(0, n1, b)
        starts2 = range(0, n2, b)
        pairs = [(i, j) for i in starts1 for j in starts2 if not symmetric or j >= i]
        out = {name: np.empty((n1, n2), dtype) for name in get}
        with tqdm(total=len(pairs), desc="kernel blocks", unit="block", delay=3,
                  disable=not progress or len(pairs) == 1) as bar:
            for i, j in pairs:
                r1, r2 = _pad_block(x1, i, b), _pad_block(x2, j, b)
                res = block_fn(r1, r2)
                m1, m2 = min(b, n1 - i), min(b, n2 - j)
                for name, arr in zip(("nngp", "ntk"), res):
                    if name not in out:
                        continue
                    arr = np.asarray(arr)[:m1, :m2]
                    out[name][i:i + m1, j:j + m2] = arr
                    if symmetric and j != i:
                        out[name][j:j + m2, i:i + m1] = arr.T
                bar.update(1)
        if symmetric:  # diagonal blocks: make exact symmetry hold to the last bit
            for name in out:
                out[name] = (out[name] + out[name].T) / 2
        return out


_KERNEL_VERSION = "kernels-1"


def _pad_block(x, start, b):
    """Rows ``start:start+b`` of x, padded by repeating the last row so every block has one shape."""
    blk = x[start:start + b]
    if blk.shape[0] < b and x.shape[0] > b:
        blk = np.concatenate([blk, np.repeat(blk[-1:], b - blk.shape[0], axis=0)])
    return blk


_JIT_CACHE = {}
_FIELDS = ("nngp", "ntk", "var1", "var2")


def _layer_program(layer, width, spatial, full, batched=False):
    """One layer's kernel map as its own XLA program; ``batched`` maps it over a leading axis of blocks."""
    key = (layer, width, spatial, full, batched)
    if key not in _JIT_CACHE:
        def step(*arrays):
            out = layer.kernel_fn(K.KernelState(*arrays, width=width, spatial=spatial, full=full))
            return tuple(getattr(out, f) for f in _FIELDS)
        _JIT_CACHE[key] = jax.jit(jax.vmap(step) if batched else step)
    return _JIT_CACHE[key]


def _jitted_block_fn(arch, get, batched=False):
    """The block computation as one XLA program per layer.

    Compiled as one program, XLA fuses each layer's nonlinearity into the next convolution's shifted
    sums and recomputes it once per shift, compounding with depth: CNN-VEC depth 8 ran 3x slower
    than eight separate programs. Layer by layer, every kernel is materialized exactly once.
    ``batched`` maps every program over a leading axis of blocks (``nbkernels.compute`` shards it).
    """
    full, with_ntk = arch.needs_all_pixel_pairs, "ntk" in get
    key = ("input", full, with_ntk, batched)
    if key not in _JIT_CACHE:
        def inputs(a, b):
            return tuple(getattr(K.input_state(a, b, full, with_ntk), f) for f in _FIELDS)
        _JIT_CACHE[key] = jax.jit(jax.vmap(inputs) if batched else inputs)

    def run(x1, x2):
        k = _JIT_CACHE[key](x1, x2)
        for layer, spec in zip(arch.layers, arch.specs(x1.shape[1 + batched:])):
            k = _layer_program(layer, spec.channels, spec.spatial, full and spec.is_image, batched)(*k)
        return k[0], k[1]

    return run


def serial(*layers) -> Architecture:
    """Compose layers into an :class:`Architecture` (Neural Tangents' ``stax.serial``)."""
    flat = []
    for layer in layers:
        if isinstance(layer, Architecture):
            flat.extend(layer.layers)
        elif isinstance(layer, LAYER_TYPES):
            flat.append(layer)
        else:
            raise ValueError(f"serial() takes nbkernels layers, got {layer!r} ({type(layer).__name__}).")
    if not flat:
        raise ValueError("serial() needs at least one layer.")
    return Architecture(tuple(flat))


_ACTIVATIONS = {"relu": Relu, "erf": Erf}


def _activation(name):
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(_ACTIVATIONS)}.") from None


def fcn(depth: int = 3, width: int = 2048, *, out_dim: int = 10, W_std: float = 2 ** 0.5,
        b_std: Optional[float] = 0.1, activation: str = "relu", parameterization: str = "ntk",
        readout_W_std: Optional[float] = None) -> Architecture:
    """The paper's fully connected network: ``depth`` hidden layers of ``width``, then a Dense readout.

    Images are flattened first. Defaults: ReLU, W_std**2 = 2, b_std = 0.1 (b_std**2 = 0.01).
    """
    if depth < 1:
        raise ValueError(f"fcn: depth must be at least 1, got {depth}.")
    kw = dict(b_std=b_std, parameterization=parameterization)
    layers = [Flatten()]
    for _ in range(depth):
        layers += [Dense(width, W_std=W_std, **kw), _activation(activation)]
    layers.append(Dense(out_dim, W_std=readout_W_std or W_std, **kw))
    return serial(*layers)


def cnn(depth: int = 3, width: int = 256, *, readout: str = "vec", weight_sharing: bool = True,
        out_dim: int = 10, filter_shape: Sequence[int] = (3, 3), padding: str = "SAME",
        W_std: float = 2 ** 0.5, b_std: Optional[float] = 0.1, activation: str = "relu",
        parameterization: str = "ntk", readout_W_std: Optional[float] = None) -> Architecture:
    """The paper's convolutional networks: ``depth`` conv layers, then a readout.

    ``readout="vec"`` flattens (CNN-VEC), ``"gap"`` global-average-pools (CNN-GAP).
    ``weight_sharing=False`` gives the locally connected network (LCN) with the same receptive fields.
    """
    if depth < 1:
        raise ValueError(f"cnn: depth must be at least 1, got {depth}.")
    if readout not in ("vec", "gap"):
        raise ValueError(f"cnn: readout must be 'vec' or 'gap', got {readout!r}.")
    conv = Conv if weight_sharing else ConvLocal
    kw = dict(padding=padding, W_std=W_std, b_std=b_std, parameterization=parameterization)
    layers = []
    for _ in range(depth):
        layers += [conv(width, tuple(filter_shape), **kw), _activation(activation)]
    layers.append(Flatten() if readout == "vec" else GlobalAvgPool())
    layers.append(Dense(out_dim, W_std=readout_W_std or W_std, b_std=b_std,
                        parameterization=parameterization))
    return serial(*layers)
