"""Layers: each says, side by side, what it does to a finite network and to the kernel.

Conventions are Neural Tangents' ``stax`` (so numbers compare with published work):

* ``parameterization="ntk"``: ``z = (W_std / sqrt(fan_in)) * W x + b_std * b`` with ``W, b ~ N(0, 1)``.
* ``parameterization="standard"`` (the improved standard parameterization of arXiv 2001.07301):
  ``W ~ N(0, W_std**2 / fan_in)``, ``b ~ N(0, b_std**2)``, ``z = W x + b``. The NNGP is the same;
  the NTK of the layer is ``fan_in * NNGP_in + W_std**2 * NTK_in (+ 1 with a bias)``.
* ``fan_in`` is the number of input features for ``Dense`` and ``in_channels * filter size`` for
  convolutions; ``SAME`` pads with zeros, ``CIRCULAR`` wraps around.

Each layer has

* ``fn(x, name)``: the finite layer, called inside a Flax ``nn.compact`` method;
* ``kernel_fn(k)``: the same layer on a :class:`nbkernels.kernels.KernelState`;
* ``out_spec(spec)``: the output shape, raising a ``ValueError`` that names the layer and the fix
  when the input cannot go through it.

Example::

    >>> import numpy as np, nbkernels as nbk
    >>> arch = nbk.serial(nbk.Dense(512, W_std=2**0.5, b_std=0.1), nbk.Relu(), nbk.Dense(1))
    >>> k = arch.kernel(np.eye(3, 4))
    >>> k.nngp.shape
    (3, 3)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Tuple, Union

import flax.linen as nn

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import erf as _erf

from . import kernels as K

PARAMETERIZATIONS = ("ntk", "standard")
PADDINGS = ("SAME", "VALID", "CIRCULAR")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Shape of the signal between layers: ``spatial`` is () for vectors, (H, W) for images."""

    spatial: Tuple[int, ...]
    channels: int
    pooled: bool = False  # after GlobalAvgPool: no diagonal variances are carried

    @property
    def is_image(self) -> bool:
        return len(self.spatial) > 0


def _check_common(name, W_std, b_std, parameterization):
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"{name}: unknown parameterization {parameterization!r}; "
                         f"use one of {PARAMETERIZATIONS}.")
    if not (W_std > 0 and math.isfinite(W_std)):
        raise ValueError(f"{name}: W_std must be a positive number, got {W_std!r}.")
    if b_std is not None and not (b_std >= 0 and math.isfinite(b_std)):
        raise ValueError(f"{name}: b_std must be a non-negative number or None, got {b_std!r}.")


def _init_std(layer, fan_in):
    """Initial standard deviations (W, b) of the parameters as stored."""
    if layer.parameterization == "ntk":
        return 1.0, 1.0
    return layer.W_std / math.sqrt(fan_in), (layer.b_std or 0.0)


def _scales(layer, fan_in):
    """Multipliers (W, b) applied in the forward pass to the stored parameters."""
    if layer.parameterization == "ntk":
        return layer.W_std / math.sqrt(fan_in), (layer.b_std or 0.0)
    return 1.0, 1.0


def _affine_kernel(layer, k: K.KernelState, nngp_in, ntk_in, var1_in, var2_in, fan_in, mask=None):
    """The kernel side of ``z = W x + b`` once the input kernels were patch-averaged.

    ``mask`` (LCN in the full-pixel-pair representation) restricts the bias to the pixel diagonal.
    """
    W2 = layer.W_std ** 2
    b2 = 0.0 if layer.b_std is None else layer.b_std ** 2

    def shift(x, value):
        if value == 0.0:
            return x
        return x + (value if mask is None else value * mask)

    nngp = shift(W2 * nngp_in, b2)
    var1 = None if var1_in is None else W2 * var1_in + b2
    var2 = None if var2_in is None else W2 * var2_in + b2
    ntk = None
    if ntk_in is not None:
        if layer.parameterization == "ntk":
            ntk = nngp + W2 * ntk_in
        else:
            ntk = fan_in * nngp_in + W2 * ntk_in
            if layer.b_std is not None:
                ntk = shift(ntk, 1.0)
    return k.replace(nngp=nngp, ntk=ntk, var1=var1, var2=var2)


@dataclasses.dataclass(frozen=True)
class Dense:
    """Fully connected layer ``out_dim`` wide (Neural Tangents' ``stax.Dense``)."""

    out_dim: int
    W_std: float = 1.0
    b_std: Optional[float] = None
    parameterization: str = "ntk"

    def __post_init__(self):
        _check_common("Dense", self.W_std, self.b_std, self.parameterization)
        if int(self.out_dim) < 1:
            raise ValueError(f"Dense: out_dim must be a positive integer, got {self.out_dim!r}.")

    def out_spec(self, spec: Spec) -> Spec:
        if spec.is_image:
            raise ValueError(f"Dense({self.out_dim}) got images of shape {spec.spatial + (spec.channels,)}: "
                             "insert nbk.Flatten() or nbk.GlobalAvgPool() before it.")
        return Spec((), self.out_dim)

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return _DenseModule(self, name=name)(x)

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        return _affine_kernel(self, k, k.nngp, k.ntk, k.var1, k.var2, fan_in=k.width).replace(
            width=self.out_dim)


class _DenseModule(nn.Module):
    layer: Dense

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        w_init, b_init = _init_std(self.layer, fan_in)
        w_scale, b_scale = _scales(self.layer, fan_in)
        W = self.param("W", nn.initializers.normal(w_init), (fan_in, self.layer.out_dim))
        y = w_scale * (x @ W)
        if self.layer.b_std is not None:
            b = self.param("b", nn.initializers.normal(b_init), (self.layer.out_dim,))
            y = y + b_scale * b
        return y


def conv_geometry(size: int, f: int, s: int, padding: str) -> tuple[int, tuple[int, int]]:
    """Output length and (low, high) padding of one spatial dimension, as ``lax`` computes it."""
    if padding == "VALID":
        return (size - f) // s + 1, (0, 0)
    out = -(-size // s)
    total = max((out - 1) * s + f - size, 0)
    return out, (total // 2, total - total // 2)


@dataclasses.dataclass(frozen=True)
class Conv:
    """2-D convolution over NHWC images, ``out_chan`` channels (Neural Tangents' ``stax.Conv``).

    ``fan_in = in_channels * prod(filter_shape)``. With ``share_weights=False`` it is the locally
    connected layer (see :func:`ConvLocal`).
    """

    out_chan: int
    filter_shape: Tuple[int, int] = (3, 3)
    strides: Tuple[int, int] = (1, 1)
    padding: str = "SAME"
    W_std: float = 1.0
    b_std: Optional[float] = None
    parameterization: str = "ntk"
    share_weights: bool = True

    def __post_init__(self):
        name = self._name()
        _check_common(name, self.W_std, self.b_std, self.parameterization)
        object.__setattr__(self, "filter_shape", tuple(int(f) for f in self.filter_shape))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if self.padding not in PADDINGS:
            raise ValueError(f"{name}: unknown padding {self.padding!r}; use one of {PADDINGS}.")
        if len(self.filter_shape) != 2 or len(self.strides) != 2 or min(self.filter_shape + self.strides) < 1:
            raise ValueError(f"{name}: filter_shape and strides must be two positive integers each, "
                             f"got {self.filter_shape} and {self.strides}.")
        if int(self.out_chan) < 1:
            raise ValueError(f"{name}: out_chan must be a positive integer, got {self.out_chan!r}.")

    def _name(self):
        return "Conv" if self.share_weights else "ConvLocal"

    def geometry(self, spatial: Sequence[int]) -> list[tuple[int, tuple[int, int]]]:
        """Per spatial dimension, the output length and (low, high) padding (:func:`conv_geometry`)."""
        return [conv_geometry(n, f, s, self.padding)
                for n, f, s in zip(spatial, self.filter_shape, self.strides)]

    def out_spec(self, spec: Spec) -> Spec:
        if not spec.is_image:
            raise ValueError(f"{self._name()}({self.out_chan}) got vectors with {spec.channels} features: "
                             "convolutions take NHWC images; reshape the input to (N, H, W, C).")
        if spec.pooled:
            raise ValueError(f"{self._name()} after GlobalAvgPool is not supported.")
        geo = self.geometry(spec.spatial)
        if min(out for out, _ in geo) < 1:
            raise ValueError(f"{self._name()}: filter {self.filter_shape} with padding {self.padding!r} "
                             f"does not fit images of size {spec.spatial}; use padding='SAME'.")
        return Spec(tuple(out for out, _ in geo), self.out_chan)

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return _ConvModule(self, name=name)(x)

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        geo = self.geometry(k.spatial)
        circular = self.padding == "CIRCULAR"

        def conv(x, full):
            return K.patch_mean(x, self.filter_shape, self.strides, geo, circular, full)

        fan_in = k.width * math.prod(self.filter_shape)
        full = k.full and self.share_weights
        mask = None
        if k.full and not self.share_weights:
            # No weight sharing: distinct pixels see independent weights, so only the pixel
            # diagonal survives (the LCN's kernel lives on the diagonal).
            nngp, ntk = (None if a is None else K.embed_diagonal(conv(K.take_diagonal(a), False))
                         for a in (k.nngp, k.ntk))
            mask = K.diagonal_mask([out for out, _ in geo], nngp.dtype)
        else:
            nngp = conv(k.nngp, full)
            ntk = None if k.ntk is None else conv(k.ntk, full)
        var1, var2 = conv(k.var1, False), conv(k.var2, False)
        out = _affine_kernel(self, k, nngp, ntk, var1, var2, fan_in=fan_in, mask=mask)
        return out.replace(width=self.out_chan, spatial=tuple(o for o, _ in geo))


def ConvLocal(out_chan: int, filter_shape: Sequence[int] = (3, 3), strides: Sequence[int] = (1, 1),
              padding: str = "SAME", W_std: float = 1.0, b_std: Optional[float] = None,
              parameterization: str = "ntk") -> Conv:
    """Locally connected layer (LCN): a convolution's receptive fields without weight sharing.

    Every output pixel has its own filter and bias. Its kernel equals the CNN's kernel when no
    pooling follows (Flatten readout), because weight sharing only couples distinct pixels.
    """
    return Conv(out_chan, tuple(filter_shape), tuple(strides), padding, W_std, b_std,
                parameterization, share_weights=False)


def _patches(x, filter_shape, strides, out_hw, pads):
    """Patches of NHWC images from shifted strided slices, for the LCN: ``(n, h_out, w_out, fh*fw*c)``,
    in the order (dy, dx, c) of a flattened HWIO filter; ``pads``: the (low, high) zero padding of
    each spatial axis."""
    (oh, ow), (fh, fw), (sh, sw) = out_hw, filter_shape, strides
    xp = jnp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),))
    views = [xp[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
             for i in range(fh) for j in range(fw)]
    return jnp.concatenate(views, axis=-1)


class _ConvModule(nn.Module):
    layer: Conv

    @nn.compact
    def __call__(self, x):
        L = self.layer
        c_in = x.shape[-1]
        fan_in = c_in * math.prod(L.filter_shape)
        w_init, b_init = _init_std(L, fan_in)
        w_scale, b_scale = _scales(L, fan_in)
        geo = L.geometry(x.shape[1:3])
        out_hw = tuple(o for o, _ in geo)
        if L.padding == "CIRCULAR":  # circular padding by hand, then as VALID
            x = jnp.pad(x, [(0, 0)] + [p for _, p in geo] + [(0, 0)], mode="wrap")
            pad, pads = "VALID", ((0, 0), (0, 0))
        else:
            pad, pads = L.padding, tuple(p for _, p in geo)
        if L.share_weights:
            W = self.param("W", nn.initializers.normal(w_init), L.filter_shape + (c_in, L.out_chan))
            y = lax.conv_general_dilated(x, W.astype(x.dtype), L.strides, pad,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
            b_shape = (L.out_chan,)
        else:
            # W's patch axis keeps lax.conv_general_dilated_patches' order (c, dy, dx), which earlier
            # versions used, so a seed gives the same network; it is permuted to the patches' (dy, dx, c).
            fh, fw = L.filter_shape
            W = self.param("W", nn.initializers.normal(w_init), out_hw + (c_in * fh * fw, L.out_chan))
            Wp = W.reshape(out_hw + (c_in, fh * fw, L.out_chan)).swapaxes(-3, -2).reshape(W.shape)
            p = _patches(x, L.filter_shape, L.strides, out_hw, pads)
            n, s = x.shape[0], math.prod(out_hw)
            # positions as the batch of one batched matrix product (an einsum over "nhwp,hwpo" runs
            # at a few percent of the matmul rate on CPU: benchmarks/conv_paths.py)
            y = jnp.matmul(p.reshape(n, s, -1).swapaxes(0, 1), Wp.reshape(s, -1, L.out_chan).astype(x.dtype))
            y = y.swapaxes(0, 1).reshape((n,) + out_hw + (L.out_chan,))
            b_shape = out_hw + (L.out_chan,)
        y = w_scale * y
        if L.b_std is not None:
            b = self.param("b", nn.initializers.normal(b_init), b_shape)
            y = y + b_scale * b
        return y


class _Elementwise:
    def out_spec(self, spec: Spec) -> Spec:
        if spec.pooled:  # the pooled diagonal variances are not carried (see KernelState.global_avg_pool)
            raise ValueError(f"{type(self).__name__} after GlobalAvgPool is not supported: put a Dense readout "
                             "right after GlobalAvgPool.")
        return spec


@dataclasses.dataclass(frozen=True)
class Relu(_Elementwise):
    """ReLU. Kernel: the arc-cosine map of degree 1 (Cho & Saul), in the ``arctan2`` form."""

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return nn.relu(x)

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        return k.elementwise(K.relu_map, K.relu_var)


@dataclasses.dataclass(frozen=True)
class Erf(_Elementwise):
    """``erf(x)``. Kernel: the arcsine map (Williams 1997), in the ``arctan2`` form."""

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return _erf(x)

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        return k.elementwise(K.erf_map, K.erf_var)


@dataclasses.dataclass(frozen=True)
class Flatten:
    """Flatten images to vectors. Kernel: the average over the pixel diagonal."""

    def out_spec(self, spec: Spec) -> Spec:
        return Spec((), math.prod(spec.spatial) * spec.channels, spec.pooled)

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return x.reshape(x.shape[0], -1)

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        return k.flatten()


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool:
    """Average over pixels. Kernel: the average over all pixel pairs (needs every pair)."""

    def out_spec(self, spec: Spec) -> Spec:
        if not spec.is_image:
            raise ValueError("GlobalAvgPool got vectors: it averages over the pixels of NHWC images.")
        return Spec((), spec.channels, pooled=True)

    def fn(self, x: jax.Array, name: str) -> jax.Array:
        return jnp.mean(x, axis=(1, 2))

    def kernel_fn(self, k: K.KernelState) -> K.KernelState:
        return k.global_avg_pool()


LAYER_TYPES = (Dense, Conv, Relu, Erf, Flatten, GlobalAvgPool)
Layer = Union[Dense, Conv, Relu, Erf, Flatten, GlobalAvgPool]  # ConvLocal is a Conv
