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
import warnings
from typing import Any, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import blocks, engine
from . import kernels as K
from . import settings as settings_mod
from .settings import Settings
from .layers import (LAYER_TYPES, Conv, ConvLocal, Dense, Erf, Flatten, GlobalAvgPool, Layer, Relu,
                     Spec)


class Network(nn.Module):
    """The finite network of an :class:`Architecture` (a Flax module)."""

    layers: Tuple

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """The network's outputs (N, out_dim) for inputs ``x`` (NHWC images or (N, D) vectors)."""
        for i, layer in enumerate(self.layers):
            x = layer.fn(x, name=f"{i}_{type(layer).__name__}")
        return x


class ChannelsFirstWarning(UserWarning):
    """Images that look channels-first (N, C, H, W), as PyTorch holds them; nbkernels takes NHWC."""


def warn_if_channels_first(x: Optional[ArrayLike], name: str = "x", stacklevel: int = 1) -> None:
    """Warn when 4-D images look channels-first: their second axis holds 1 or 3 entries and their last
    axis more. Computed as given, ``(6, 3, 8, 8)`` would be 6 images of 3x8 pixels with 8 channels."""
    shape = np.shape(x)
    if len(shape) == 4 and shape[1] in (1, 3) and shape[3] > shape[1]:
        warnings.warn(f"{name} has shape {shape}, which looks channels-first (N, C, H, W); nbkernels takes "
                      f"NHWC images and reads it as {shape[1]}x{shape[2]} pixels with {shape[3]} channels. "
                      f"If it is NCHW, pass np.transpose({name}, (0, 2, 3, 1)).", ChannelsFirstWarning,
                      stacklevel=stacklevel + 1)


def _validate_inputs(x, name):
    if not isinstance(x, (np.ndarray, jax.Array)):
        x = np.asarray(x)
    if x.ndim not in (2, 4):
        raise ValueError(f"{name} must be (N, D) vectors or (N, H, W, C) images, got shape {x.shape}.")
    warn_if_channels_first(x, name, stacklevel=3)  # the caller of Architecture.kernel
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

    def specs(self, input_shape: Sequence[int]) -> list:
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

    def kernel_entries_per_pair(self, input_shape: Sequence[int]) -> int:
        """The most numbers one input pair holds at any layer (1, P, or P**2 for P pixels)."""
        full = self.needs_all_pixel_pairs
        return max(math.prod(s.spatial) ** (2 if full else 1) for s in self.specs(input_shape))

    # -- finite ------------------------------------------------------------------------------
    def network(self) -> Network:
        """The finite Flax network with the widths given to the layers.

        Returns
        -------
        Network
            A ``flax.linen`` module: ``params = net.init(key, x[:1])``, ``net.apply(params, x)``.
        """
        return Network(tuple(self.layers))

    def n_parameters(self, input_shape: Sequence[int]) -> int:
        """How many trainable numbers the finite network has on inputs of ``input_shape`` (one image: H, W, C
        or features), counted from the shapes alone (nothing is initialized).

        Parameters
        ----------
        input_shape : sequence of int
            One input's shape, without the batch axis: ``x.shape[1:]``.

        Returns
        -------
        int
            The number of weights and biases.
        """
        self.specs(input_shape)   # a clear error for an input the layers cannot take
        shapes = jax.eval_shape(lambda: self.network().init(jax.random.PRNGKey(0), jnp.zeros((1, *input_shape))))
        return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes)))

    # -- infinite ----------------------------------------------------------------------------
    def kernel_fn(self, x1: jax.Array, x2: Optional[jax.Array], get: Sequence[str] = ("nngp", "ntk")
                  ) -> tuple[jax.Array, Optional[jax.Array]]:
        """The kernel between x1 and x2 as one traceable function, to compose inside your own ``jax.jit``.

        :meth:`kernel` computes the same thing block by block with one XLA program per layer, which is
        much faster on a CPU (see :func:`nbkernels.engine.block_program`); tests check that the two agree.
        """
        same = jnp.eye(x1.shape[0], dtype=bool) if x2 is None or x2 is x1 else None
        k = K.input_state(x1, x1 if x2 is None else x2, full=self.needs_all_pixel_pairs, with_ntk="ntk" in get,
                          same=same)
        for layer in self.layers:
            k = layer.kernel_fn(k)
        return k.nngp, k.ntk

    def kernel(self, x1: ArrayLike, x2: Optional[ArrayLike] = None, *, dtype: DTypeLike = None,
               batch_size: Optional[int] = None, cache: Any = None, get: Sequence[str] = ("nngp", "ntk"),
               progress: bool = True, max_hours: Union[float, str, None] = "default",
               settings: Optional[Settings] = None) -> K.Kernel:
        """Exact infinite-width NNGP and NTK between ``x1`` and ``x2`` (``x1`` with itself when None).

        Computed in blocks so memory stays bounded; a request that cannot fit is refused before anything is
        allocated. With ``x2=None`` (or ``x2`` equal to ``x1``) only the blocks on and above the diagonal are
        computed and the result is exactly symmetric.

        Parameters
        ----------
        x1 : array_like, shape (N1, H, W, C) or (N1, D)
            NHWC images or vectors (an array that looks channels-first gets a ``ChannelsFirstWarning``).
        x2 : array_like, optional
            The second inputs, with ``x1``'s features; None: ``x1`` with itself.
        dtype : dtype, optional
            float32 or float64 (default float64 when JAX's 64-bit mode is on, else float32).
        batch_size : int, optional
            Inputs per block side (default: the largest block within ``settings.block_gb``).
        cache : Cache or bool, optional
            Store the result keyed by architecture, data and dtype.
        get : sequence of {"nngp", "ntk"}
            ``("nngp",)`` skips the NTK.
        progress : bool
            A progress bar over blocks.
        max_hours : float or None
            After its first blocks, a computation estimated to take longer stops with ``KernelTimeError``
            (default ``settings.max_hours``, 1; None: no limit), pointing to the resumable store.
        settings : Settings, optional
            How to compute it (default: the settings in effect, :func:`nbkernels.settings.get`).

        Returns
        -------
        Kernel
            ``nngp`` and ``ntk`` (None when not asked), each (N1, N2), and the ``settings`` that made them.

        Raises
        ------
        ValueError
            Inputs of the wrong shape or with NaN values.
        KernelMemoryError
            A block that would not fit, with the batch size that would.
        KernelTimeError
            A computation estimated to run longer than ``max_hours``.
        """
        settings = settings_mod.resolve(settings)
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
            if x2 is x1 or (x2.shape == x1.shape and np.array_equal(x1, x2)):
                x2 = None  # one set of inputs with itself: symmetric, its diagonal exact
        self.specs(x1.shape[1:])
        if cache is not None and cache is not False:
            from . import cache as cache_mod
            store = cache_mod.default_cache() if cache is True else cache
            key = dict(kind="kernel", arch=repr(self), dtype=str(dtype), get=list(get),
                       x1=cache_mod.fingerprint(x1), x2=None if x2 is None else cache_mod.fingerprint(x2))
            arrays = store.get_or_compute(
                key, lambda: self._kernel_arrays(x1, x2, dtype, batch_size, get, progress, max_hours, settings),
                version=_KERNEL_VERSION)
        else:
            arrays = self._kernel_arrays(x1, x2, dtype, batch_size, get, progress, max_hours, settings)
        made_by = arrays.get("settings")
        return K.Kernel(arrays["nngp"], arrays.get("ntk"), None if made_by is None else Settings(**made_by))

    def _kernel_arrays(self, x1, x2, dtype, batch_size, get, progress, max_hours, settings):
        p = blocks.plan(self, x1, x2, dtype=dtype, batch_size=batch_size, get=get, settings=settings)
        sink = engine.MemorySink(p)
        engine.run(self, x1, x2, p, sink, progress=progress, max_hours=max_hours)
        return dict(sink.out, settings=dataclasses.asdict(settings))


_KERNEL_VERSION = "kernels-2"  # 2: an input paired with itself has angle exactly 0 (diagonal to rounding)


def serial(*layers: Layer) -> Architecture:
    """Compose layers into an :class:`Architecture` (Neural Tangents' ``stax.serial``).

    Parameters
    ----------
    *layers : Dense, Conv, ConvLocal, Relu, Erf, Flatten or GlobalAvgPool
        In order, input to readout.

    Returns
    -------
    Architecture
        ``arch.kernel(x1, x2)`` the exact infinite-width kernels, ``arch.network()`` the finite network.

    Examples
    --------
    >>> arch = nbk.serial(nbk.Conv(64, (3, 3)), nbk.Relu(), nbk.GlobalAvgPool(), nbk.Dense(10))
    """
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

    Images are flattened first.

    Parameters
    ----------
    depth : int
        Hidden layers.
    width : int
        Units per hidden layer (the finite network's; the NTK-parameterized kernels do not depend on it).
    out_dim : int
        Outputs (classes).
    W_std, b_std : float
        Neural Tangents' weight and bias scales (defaults W_std**2 = 2, b_std**2 = 0.01); ``b_std=None``: no bias.
    activation : {"relu", "erf"}
    parameterization : {"ntk", "standard"}
        NTK parameterization, or the improved standard parameterization of arXiv 2001.07301.
    readout_W_std : float, optional
        The readout's W_std (default ``W_std``).

    Returns
    -------
    Architecture
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
    """The paper's convolutional networks: ``depth`` convolutions, then a readout.

    Parameters
    ----------
    depth : int
        Convolutional layers.
    width : int
        Channels per layer (the finite network's).
    readout : {"vec", "gap"}
        Flatten (CNN-VEC) or global average pooling (CNN-GAP) before the Dense readout.
    weight_sharing : bool
        False gives the locally connected network (LCN) with the same receptive fields.
    out_dim : int
        Outputs (classes).
    filter_shape : (int, int)
    padding : {"SAME", "VALID", "CIRCULAR"}
        SAME pads with zeros (Neural Tangents' convention).
    W_std, b_std : float
        Weight and bias scales; ``b_std=None``: no bias.
    activation : {"relu", "erf"}
    parameterization : {"ntk", "standard"}
    readout_W_std : float, optional
        The readout's W_std (default ``W_std``).

    Returns
    -------
    Architecture
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
