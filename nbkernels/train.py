"""Finite networks: Optax training with the paper's interventions, resumable and cached.

    >>> res = nbk.train.train(arch, x_train, y_train, x_test, y_test, steps=2000, lr_factor=0.5,
    ...                       l2=1e-4, center=True, ensemble=4, eval_every=100)
    >>> res.best_test_acc, res.best_step, res.history["test_acc"]

The loss is ``1/2 * mean over all m*k entries of (f - y)**2`` (the normalization of
:func:`nbkernels.predict.gradient_descent_mse`), so a small learning rate follows the NTK's
gradient flow with ``t = lr * steps``. Interventions:

* ``lr`` (absolute) or ``lr_factor`` (a multiple of the critical rate ``eta_crit = 2 / lambda_max``
  of the loss Hessian's Gauss-Newton part at initialization, ``J^T J / (m k)``, found by power
  iteration with jvp/vjp);
* ``l2`` with ``l2_mode="uniform"`` (``l2/2 * sum ||theta||^2``) or ``"layerwise"``: each layer's decay
  scaled by ``fan_in / W_std**2`` and biases by ``1 / b_std**2``, the NTK-equivalent L2 for
  standard-parameterized networks;
* ``center``: train ``f(theta) - f(theta_0)``; ``linearize``: train ``f(theta_0) + J(theta_0)(theta - theta_0)``;
* ``ensemble=n``: n networks trained together with ``jax.vmap``, predictions averaged;
* early stopping: ``best_test_acc`` and ``best_step`` over the evaluations (the paper's "+U").

Long runs write a checkpoint every ``checkpoint_every`` steps and resume from it; a finished run is
cached by its configuration, so re-running a notebook is instant.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Optional

import jax
import jax.flatten_util  # noqa: F401 - ravel_pytree for the power iteration
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from . import cache as cache_mod
from .layers import Conv

_VERSION = "train-1"


@dataclasses.dataclass
class TrainResult:
    history: dict            # step, train_loss, test_loss, test_acc (ensemble mean), member_test_acc
    test_pred: np.ndarray     # (n_test, k) ensemble-mean prediction at the end
    member_test_pred: np.ndarray  # (ensemble, n_test, k)
    learning_rate: float
    eta_crit: Optional[float]
    config: dict

    @property
    def final_test_acc(self) -> float:
        return float(self.history["test_acc"][-1])

    @property
    def best_test_acc(self) -> float:
        return float(np.max(self.history["test_acc"]))

    @property
    def best_step(self) -> int:
        return int(self.history["step"][int(np.argmax(self.history["test_acc"]))])

    @property
    def diverged(self) -> bool:
        return not np.isfinite(self.history["train_loss"][-1])


def layer_factors(arch, params):
    """Per-parameter L2 factors that make layer-wise L2 on a standard network equal uniform L2 in NTK
    coordinates: ``fan_in / W_std**2`` for weights, ``1 / b_std**2`` for biases (1 for NTK layers)."""
    out = {}
    for name, leaves in params["params"].items():
        layer = arch.layers[int(name.split("_")[0])]
        fac = {}
        for pname, p in leaves.items():
            if layer.parameterization != "standard":
                fac[pname] = 1.0
            elif pname == "W":
                shared = not isinstance(layer, Conv) or layer.share_weights
                fan_in = math.prod(p.shape[:-1]) if shared else p.shape[-2]
                fac[pname] = fan_in / layer.W_std ** 2
            else:
                fac[pname] = 1.0 / layer.b_std ** 2 if layer.b_std else 0.0
        out[name] = fac
    return {"params": out}


def _l2_transform(l2, factors):
    """Weight decay as an Optax transformation: grad += l2 * factor * theta (l2 may be traced)."""
    return optax.stateless(lambda g, p: jax.tree_util.tree_map(lambda gi, pi, c: gi + l2 * c * pi, g, p, factors))


def _optimizer(lr, optimizer, momentum, l2, factors):
    if optimizer == "sgd":
        opt = optax.sgd(lr)
    elif optimizer == "momentum":
        opt = optax.sgd(lr, momentum=momentum)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'momentum', got {optimizer!r}.")
    return optax.chain(_l2_transform(l2, factors), opt)


def _model_fn(net, center, linearize):
    def model(p, p0, x, f0):
        if linearize:
            _, tangent = jax.jvp(lambda q: net.apply(q, x), (p0,), (jax.tree_util.tree_map(jnp.subtract, p, p0),))
            out = f0 + tangent
        else:
            out = net.apply(p, x)
        return out - f0 if center else out
    return model


@functools.lru_cache(maxsize=32)
def _programs(arch, optimizer, momentum, center, linearize, batch_size):
    """The compiled programs of a training run, shared by every run of the same architecture and
    optimizer: the learning rate, L2 strength, per-layer factors and data key are arguments, so a grid
    over them compiles once (a CNN's step took 2-3 s to compile, per run, before)."""
    net = arch.network()
    model = _model_fn(net, center, linearize)

    def loss_fn(p, p0, xb, yb, f0b):
        return 0.5 * jnp.mean((model(p, p0, xb, f0b) - yb) ** 2)

    def one_step(p, s, p0, xb, yb, f0b, lr, l2, factors):
        loss, g = jax.value_and_grad(loss_fn)(p, p0, xb, yb, f0b)
        updates, s = _optimizer(lr, optimizer, momentum, l2, factors).update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    # the data are arguments rather than closed-over constants, so XLA does not embed (and try to
    # constant-fold) the whole training set in the compiled step
    @jax.jit
    def step(p, s, i, p0, xd, yd, f0d, lr, l2, factors, data_key):
        m = xd.shape[0]
        if batch_size is None or batch_size >= m:
            xb, yb, f0b = xd, yd, f0d
        else:
            idx = jax.random.choice(jax.random.fold_in(data_key, i), m, (batch_size,), replace=False)
            xb, yb, f0b = xd[idx], yd[idx], f0d[:, idx]
        return jax.vmap(one_step, in_axes=(0, 0, 0, None, None, 0, None, None, None))(
            p, s, p0, xb, yb, f0b, lr, l2, factors)

    predict_all = jax.jit(jax.vmap(model, in_axes=(0, 0, None, 0)))
    apply_all = jax.jit(jax.vmap(net.apply, in_axes=(0, None)))
    return step, predict_all, apply_all


@functools.lru_cache(maxsize=32)
def _gauss_newton_program(arch):
    """``v -> J^T J v`` at params ``p`` on inputs ``xs``, compiled once per architecture."""
    net = arch.network()

    # params and x are arguments, not closed-over constants: XLA would otherwise constant-fold the
    # forward pass over the whole batch at compile time (seconds per convolution).
    @jax.jit
    def gn(v, p, xs):
        f = lambda q: net.apply(q, xs)
        unravel = jax.flatten_util.ravel_pytree(p)[1]
        _, jv = jax.jvp(f, (p,), (unravel(v),))
        _, vjp = jax.vjp(f, p)
        return jax.flatten_util.ravel_pytree(vjp(jv)[0])[0]
    return gn


def max_ntk_eigenvalue(arch, params, x, n_out: int, iters: int = 30, key=None) -> float:
    """Largest eigenvalue of ``J^T J / (m k)`` (the Gauss-Newton loss Hessian) by power iteration with jvp/vjp."""
    gn = _gauss_newton_program(arch)
    flat = jax.flatten_util.ravel_pytree(params)[0]
    x = jnp.asarray(x)
    scale = 1.0 / (x.shape[0] * n_out)
    v = jax.random.normal(key if key is not None else jax.random.PRNGKey(0), flat.shape, flat.dtype)
    v = v / jnp.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        w = gn(v, params, x) * scale
        lam = float(jnp.vdot(v, w))
        v = w / jnp.linalg.norm(w)
    return lam


def critical_learning_rate(arch, params, x, n_out: int, **kw) -> float:
    """``eta_crit = 2 / lambda_max`` of the loss Hessian (Gauss-Newton part) at ``params``."""
    return 2.0 / max_ntk_eigenvalue(arch, params, x, n_out, **kw)


def _critical_rate_at_init(arch, cfg, member0, x, n_out, store):
    """eta_crit of the first member's initialization, cached: a grid over learning rates and L2
    strengths on one architecture and seed shares one power iteration instead of repeating it."""
    if store is None:
        return critical_learning_rate(arch, member0, x, n_out)
    key = dict(kind="eta_crit", arch=cfg["arch"], x=cache_mod.fingerprint(x), n_out=n_out, seed=cfg["seed"],
               ensemble=cfg["ensemble"])
    return store.get_or_compute(key, lambda: critical_learning_rate(arch, member0, x, n_out), version=_VERSION)


def _stack_init(net, keys, x):
    return jax.vmap(lambda k: net.init(k, x[:1]))(keys)


def train(arch, x_train, y_train, x_test, y_test, *, steps: int = 1000, lr: Optional[float] = None,
          lr_factor: Optional[float] = None, optimizer: str = "sgd", momentum: float = 0.9,
          batch_size: Optional[int] = None, l2: float = 0.0, l2_mode: str = "uniform", center: bool = False,
          linearize: bool = False, ensemble: int = 1, eval_every: int = 100, seed: int = 0,
          checkpoint_every: Optional[int] = None, cache=True, progress: bool = True,
          callback: Optional[Callable] = None) -> TrainResult:
    """Train ``arch.network()`` on MSE against zero-mean one-hot targets; see the module docstring.

    ``cache``: True (default cache), a :class:`nbkernels.cache.Cache`, or False. ``callback(step, loss)``
    is called after every step (for custom stopping or monitoring).
    """
    if (lr is None) == (lr_factor is None):
        raise ValueError("give exactly one of lr (absolute) or lr_factor (a multiple of eta_crit).")
    if l2_mode not in ("uniform", "layerwise"):
        raise ValueError(f"l2_mode must be 'uniform' or 'layerwise', got {l2_mode!r}.")
    if steps < 1 or ensemble < 1 or eval_every < 1:
        raise ValueError("steps, ensemble and eval_every must be positive.")
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    y_train, y_test = np.asarray(y_train, np.float32), np.asarray(y_test, np.float32)
    if y_train.ndim != 2 or y_train.shape[0] != x_train.shape[0]:
        raise ValueError(f"y_train must be one-hot (m, k) with m = {x_train.shape[0]}, got {y_train.shape}.")
    config = dict(arch=repr(arch), x_train=cache_mod.fingerprint(x_train), y_train=cache_mod.fingerprint(y_train),
                  x_test=cache_mod.fingerprint(x_test), y_test=cache_mod.fingerprint(y_test), steps=steps, lr=lr,
                  lr_factor=lr_factor, optimizer=optimizer, momentum=momentum, batch_size=batch_size, l2=l2,
                  l2_mode=l2_mode, center=center, linearize=linearize, ensemble=ensemble, eval_every=eval_every,
                  seed=seed)
    store = None if cache is False else (cache_mod.default_cache() if cache is True else cache)
    if store is None or not store.enabled:
        return _train(arch, config, x_train, y_train, x_test, y_test, None, checkpoint_every, progress, callback)
    return store.get_or_compute(
        config, lambda: _train(arch, config, x_train, y_train, x_test, y_test, store, checkpoint_every,
                               progress, callback), version=_VERSION)


def _train(arch, cfg, x_train, y_train, x_test, y_test, store, checkpoint_every, progress, callback):
    net = arch.network()
    m, k = y_train.shape
    keys = jax.random.split(jax.random.PRNGKey(cfg["seed"]), cfg["ensemble"] + 1)
    data_key, init_keys = keys[0], keys[1:]
    params0 = _stack_init(net, init_keys, x_train)
    member0 = jax.tree_util.tree_map(lambda a: a[0], params0)
    eta_crit = None
    if cfg["lr_factor"] is not None:
        eta_crit = _critical_rate_at_init(arch, cfg, member0, x_train[: min(m, 2048)], k, store)
        lr = cfg["lr_factor"] * eta_crit
    else:
        lr = cfg["lr"]
    factors = layer_factors(arch, member0) if cfg["l2_mode"] == "layerwise" else \
        jax.tree_util.tree_map(lambda _: 1.0, member0)
    tx = _optimizer(lr, cfg["optimizer"], cfg["momentum"], cfg["l2"], factors)  # its state's structure
    step_program, predict_all, apply_all = _programs(arch, cfg["optimizer"], cfg["momentum"], cfg["center"],
                                                     cfg["linearize"], cfg["batch_size"])
    f0_train, f0_test = apply_all(params0, x_train), apply_all(params0, x_test)
    x_train_d, y_train_d, x_test_d = jnp.asarray(x_train), jnp.asarray(y_train), jnp.asarray(x_test)
    hyper = (jnp.float32(lr), jnp.float32(cfg["l2"]), jax.tree_util.tree_map(jnp.float32, factors), data_key)

    def step_fn(p, s, i):
        return step_program(p, s, i, params0, x_train_d, y_train_d, f0_train, *hyper)

    def evaluate(p):
        tr = np.asarray(predict_all(p, params0, x_train_d, f0_train))
        te = np.asarray(predict_all(p, params0, x_test_d, f0_test))
        mean = te.mean(0)
        labels = y_test.argmax(-1)
        return dict(train_loss=float(0.5 * np.mean((tr - y_train) ** 2)),
                    test_loss=float(0.5 * np.mean((mean - y_test) ** 2)),
                    test_acc=float(np.mean(mean.argmax(-1) == labels)),
                    member_test_acc=float(np.mean(te.argmax(-1) == labels))), te

    # resume from a checkpoint of this exact configuration
    ckpt_key = None if store is None else store.key(dict(cfg, checkpoint=True), _VERSION)
    state = None
    if store is not None and checkpoint_every:
        try:
            state = store.get(ckpt_key)
        except (KeyError, cache_mod.CorruptEntry):
            state = None
    if state is None:
        params, opt_state = params0, jax.vmap(tx.init)(params0)
        start, history = 0, {n: [] for n in ("step", "train_loss", "test_loss", "test_acc", "member_test_acc")}
        ev, _ = evaluate(params)
        history["step"].append(0)
        for n, v in ev.items():
            history[n].append(v)
    else:
        params, opt_state, start, history = state["params"], state["opt_state"], state["step"], state["history"]
    te = None
    with tqdm(total=cfg["steps"], initial=start, desc="training", unit="step", disable=not progress, delay=2,
              leave=False) as bar:
        for step in range(start, cfg["steps"]):
            params, opt_state, loss = step_fn(params, opt_state, step)
            done = step + 1
            if callback is not None:
                callback(done, loss)
            if done % cfg["eval_every"] == 0 or done == cfg["steps"]:
                ev, te = evaluate(params)
                history["step"].append(done)
                for n, v in ev.items():
                    history[n].append(v)
                bar.set_postfix(test_acc=f"{ev['test_acc']:.3f}", loss=f"{ev['train_loss']:.3g}")
                if not np.isfinite(ev["train_loss"]):
                    break  # diverged: the history says so; nothing more to learn from this run
            if store is not None and checkpoint_every and done % checkpoint_every == 0 and done < cfg["steps"]:
                store.put(ckpt_key, dict(params=jax.device_get(params), opt_state=jax.device_get(opt_state),
                                         step=done, history=history))
            bar.update(1)
    if te is None:
        _, te = evaluate(params)
    return TrainResult(history={n: np.asarray(v) for n, v in history.items()}, test_pred=te.mean(0),
                       member_test_pred=te, learning_rate=float(lr), eta_crit=eta_crit, config=cfg)
