"""Finite-width estimates of the kernels: Monte Carlo NNGP and the empirical NTK.

These are what the infinite-width kernels are the limit of; the tests and notebooks use them to
check :meth:`nbkernels.Architecture.kernel`.

* NNGP = E_theta[f(x1) f(x2)^T] at random initialization, averaged over output units;
* NTK  = J(x1) J(x2)^T with J the Jacobian of the outputs in the parameters, averaged over output units.

Example::

    >>> arch = nbk.fcn(2, 1024)
    >>> mc = nbk.empirical.monte_carlo_nngp(arch, x1, x2, n_samples=64, key=jax.random.PRNGKey(0))
    >>> k = nbk.empirical.ntk(arch, params, x1, x2)
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from .architecture import Architecture


@partial(jax.jit, static_argnums=0)
def _nngp_samples(arch, keys, x1, x2):
    net = arch.network()

    def one(key):
        params = net.init(key, x1[:1])
        f1, f2 = net.apply(params, x1), net.apply(params, x2)
        return f1 @ f2.T / f1.shape[-1]

    return jnp.sum(jax.vmap(one)(keys), axis=0)


@partial(jax.jit, static_argnums=0)
def _ntk(arch, params, x1, x2):
    """Sum over output units o of J_o(x1) J_o(x2)^T, one output unit at a time (``lax.map``): the Jacobians
    held at once are (n1 + n2) x parameters, not out_dim times that (an LCN's per-position weights made
    the all-outputs Jacobian 9.6 GB at width 256)."""
    net = arch.network()
    out_dim = jax.eval_shape(net.apply, params, x1[:1]).shape[-1]

    def contract(a, b):
        return jnp.einsum("ip,jp->ij", a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))

    def one(o):
        j1 = jax.jacrev(lambda p: net.apply(p, x1)[:, o])(params)
        j2 = jax.jacrev(lambda p: net.apply(p, x2)[:, o])(params)
        return sum(jax.tree_util.tree_leaves(jax.tree_util.tree_map(contract, j1, j2)))

    return jnp.sum(jax.lax.map(one, jnp.arange(out_dim)), axis=0) / out_dim


@partial(jax.jit, static_argnums=0)
def _ntk_sample(arch, key, x1, x2):
    return _ntk(arch, arch.network().init(key, x1[:1]), x1, x2)


def _mean_over_keys(sample_sum, arch, x1, x2, n_samples, key, chunk):
    x1 = jnp.asarray(x1)
    x2 = x1 if x2 is None else jnp.asarray(x2)
    keys = jax.random.split(jax.random.PRNGKey(0) if key is None else key, n_samples)
    total = 0.0
    for s in range(0, n_samples, chunk):
        total = total + sample_sum(arch, keys[s:s + chunk], x1, x2)
    return np.asarray(total / n_samples)


def _ntk_samples(arch, keys, x1, x2):
    return sum(_ntk_sample(arch, k, x1, x2) for k in keys)


def monte_carlo_nngp(arch: Architecture, x1: ArrayLike, x2: Optional[ArrayLike] = None, *, n_samples: int = 32,
                     key: Optional[jax.Array] = None) -> np.ndarray:
    """Mean over ``n_samples`` random initializations of f(x1) f(x2)^T / out_dim."""
    return _mean_over_keys(_nngp_samples, arch, x1, x2, n_samples, key, chunk=64)


def monte_carlo_ntk(arch: Architecture, x1: ArrayLike, x2: Optional[ArrayLike] = None, *, n_samples: int = 8,
                    key: Optional[jax.Array] = None) -> np.ndarray:
    """Mean of the empirical NTK over ``n_samples`` random initializations."""
    return _mean_over_keys(_ntk_samples, arch, x1, x2, n_samples, key, chunk=1)


def ntk(arch: Architecture, params: Any, x1: ArrayLike, x2: Optional[ArrayLike] = None) -> np.ndarray:
    """Empirical NTK ``J(x1) J(x2)^T / out_dim`` of the network with ``params`` (via jax.jacobian)."""
    x1 = jnp.asarray(x1)
    return np.asarray(_ntk(arch, params, x1, x1 if x2 is None else jnp.asarray(x2)))
