"""Finite networks: Optax training with the paper's interventions, resumable and cached.

    >>> res = nbk.train.train(arch, x_train, y_train, x_test, y_test, x_val=x_val, y_val=y_val,
    ...                       steps=2000, lr_factor=0.5, optimizer="momentum", batch_size=100,
    ...                       schedule="cosine", warmup=100, flip=True, crop=1, l2=1e-4, eval_every=100)
    >>> res.test_acc, res.chosen_step, res.failure      # chosen on the validation images

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
* ``ensemble=n``: n networks trained together in one program, predictions averaged (``jax.vmap`` for
  fully connected networks; convolutional ones unrolled, as XLA's CPU backend runs a vmapped
  convolution slower, see :func:`over_members`);
* minibatch SGD (``batch_size``; each epoch visits every training image once, in a fresh order) with
  ``optimizer="momentum"``, as practitioners train; full batch (``batch_size=None``) for the
  gradient-flow correspondence;
* learning-rate schedules: ``warmup`` steps of linear warm-up, then ``schedule="constant"``, ``"cosine"``
  (to zero at ``steps``) or ``"step"`` (x0.1 at 50% and 75% of ``steps``), from Optax;
* augmentation drawn afresh at every step (the paper's +DA): random horizontal flips (``flip``) and
  random crops of the image zero-padded by ``crop`` pixels;
* early stopping on validation data: with ``x_val, y_val`` every evaluation scores them, and
  ``chosen_step`` / ``test_acc`` / ``test_correct`` are taken at the evaluation with the best
  validation accuracy (the paper's "+U", chosen without looking at the test images);
  ``test_curve=False`` scores the test images only where they are reported: at that chosen evaluation
  (from a kept copy of its parameters) and at the end, not at every evaluation, which more than halved
  a CNN run that scores 11,000 test and validation images 16 times (26.1 s against 12.0 s, measured);
  ``plateau=n`` stops once the training loss has fallen by less than 1% over ``n`` evaluations.

A run that diverges (non-finite loss, or 10^4 times its initial loss) stops and says so in
``failure``, and so does one that collapses to constant outputs or to chance accuracy: such a run is
never chosen by :func:`nbkernels.study.finite_accuracies`.

Long runs write a checkpoint every ``checkpoint_every`` steps and resume from it; a finished run is
cached by its configuration, so re-running a notebook is instant.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.flatten_util  # noqa: F401 - ravel_pytree for the power iteration
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from . import cache as cache_mod
from .architecture import Architecture, Network, warn_if_channels_first
from .data import check_count
from .layers import Conv

PyTree = Any  # a pytree of arrays: a network's parameters or their per-leaf factors

_VERSION = "train-5"  # 2: validation scores, per-image correctness, schedules, augmentation, failures;
# 3: the LCN as a batched product over positions (the same function; float32 rounding differs);
# 4: convolutional networks' programs compiled with CPU_CONVOLUTIONS (Eigen's convolution; rounding differs);
# 5: TrainResult.config is the TrainConfig the run used, not its cache key (the numbers are bit-identical:
#    benchmarks/bit_identity_train.py)
_HISTORY = ("step", "train_loss", "test_loss", "test_acc", "member_test_acc", "val_acc", "val_loss")
SCHEDULES = ("constant", "cosine", "step")


@dataclasses.dataclass
class TrainResult:
    history: dict            # step, train_loss, test_loss, test_acc (ensemble mean), member_test_acc, val_acc, val_loss
    test_pred: np.ndarray     # (n_test, k) ensemble-mean prediction at the end
    member_test_pred: np.ndarray  # (ensemble, n_test, k)
    learning_rate: float
    eta_crit: Optional[float]
    config: "TrainConfig"   # the run's options (its data's fingerprints are its cache key's)
    eval_correct: Optional[np.ndarray] = None  # (evaluations, n_test) bool: the ensemble mean right per test image
    failure: Optional[str] = None  # why the run cannot be used ("diverged ...", "collapsed ..."), else None
    chosen_correct: Optional[np.ndarray] = None  # (n_test,) at the chosen evaluation, when test_curve=False

    @property
    def test_curve(self) -> bool:
        """Whether every evaluation scored the test images (else only the chosen one and the last)."""
        return self.eval_correct is not None

    def _needs_curve(self, what: str):
        if not self.test_curve:
            raise ValueError(f"{what} looks at the test accuracy of every evaluation, which this run did not "
                             f"record (test_curve=False); train with test_curve=True.")

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def final_test_acc(self) -> float:
        return float(self.history["test_acc"][-1])

    @property
    def best_test_acc(self) -> float:
        """The best test accuracy over the evaluations: optimistic, as it looks at the test images;
        :attr:`test_acc` is the honest early-stopped number."""
        self._needs_curve("best_test_acc")
        return float(np.max(self.history["test_acc"]))

    @property
    def best_step(self) -> int:
        self._needs_curve("best_step")
        return int(self.history["step"][int(np.argmax(self.history["test_acc"]))])

    @property
    def has_validation(self) -> bool:
        return len(self.history.get("val_acc", ())) == len(self.history["step"]) > 0

    @property
    def chosen_index(self) -> int:
        """The evaluation with the best validation accuracy (ties: the earliest; non-finite losses never)."""
        if not self.has_validation:
            raise ValueError("this run has no validation scores: pass x_val, y_val to train() to stop early "
                             "without looking at the test images.")
        val = np.where(np.isfinite(self.history["train_loss"]), self.history["val_acc"], -np.inf)
        return int(np.argmax(val))

    @property
    def chosen_step(self) -> int:
        return int(self.history["step"][self.chosen_index])

    @property
    def val_acc(self) -> float:
        return float(self.history["val_acc"][self.chosen_index])

    @property
    def test_acc(self) -> float:
        """Test accuracy at the step chosen on validation data."""
        return float(self.history["test_acc"][self.chosen_index])

    @property
    def test_correct(self) -> np.ndarray:
        """Per-test-image correctness at the chosen step (for paired comparisons)."""
        if self.eval_correct is None:
            return np.asarray(self.chosen_correct)
        return np.asarray(self.eval_correct[self.chosen_index])

    @property
    def diverged(self) -> bool:
        return not np.isfinite(self.history["train_loss"][-1]) or (self.failure or "").startswith("diverged")


def steps_to_loss(history: dict, level: float) -> float:
    """The step at which a run's training loss first reaches ``level``, interpolated between evaluations
    (linearly in the log of the loss): 0 when it starts at or below it, NaN when it never gets there.

    Parameters
    ----------
    history : dict
        A :class:`TrainResult`'s ``history`` (its ``step`` and ``train_loss``, from step 0).
    level : float
        The training loss to reach (positive).

    Returns
    -------
    float
        The (fractional) step.
    """
    if not level > 0:
        raise ValueError(f"steps_to_loss: level must be a positive training loss; got {level!r}.")
    step, loss = np.asarray(history["step"], dtype=float), np.asarray(history["train_loss"], dtype=float)
    below = np.flatnonzero(np.isfinite(loss) & (loss <= level))
    if not len(below):
        return float("nan")
    i = int(below[0])
    if i == 0:
        return float(step[0])
    l0, l1 = np.log(loss[i - 1]), np.log(loss[i])
    return float(step[i - 1] + (step[i] - step[i - 1]) * (l0 - np.log(level)) / (l0 - l1))


def layer_factors(arch: Architecture, params: PyTree) -> PyTree:
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


def l2_transform(l2: Union[float, jax.Array], factors: PyTree) -> optax.GradientTransformation:
    """Weight decay as an Optax transformation: grad += l2 * factor * theta (l2 may be traced)."""
    return optax.stateless(lambda g, p: jax.tree_util.tree_map(lambda gi, pi, c: gi + l2 * c * pi, g, p, factors))


def make_optimizer(lr: optax.ScalarOrSchedule, optimizer: str, momentum: float, l2: Union[float, jax.Array],
                   factors: PyTree) -> optax.GradientTransformation:
    """The Optax optimizer of a run: L2 (``l2_transform``) then SGD, with ``momentum`` for "momentum"."""
    if optimizer == "sgd":
        opt = optax.sgd(lr)
    elif optimizer == "momentum":
        opt = optax.sgd(lr, momentum=momentum)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'momentum', got {optimizer!r}.")
    return optax.chain(l2_transform(l2, factors), opt)


def _model_fn(net, center, linearize):
    def model(p, p0, x, f0):
        if linearize:
            _, tangent = jax.jvp(lambda q: net.apply(q, x), (p0,), (jax.tree_util.tree_map(jnp.subtract, p, p0),))
            out = f0 + tangent
        else:
            out = net.apply(p, x)
        return out - f0 if center else out
    return model


def lr_multiplier(schedule: str, steps: int, warmup: int = 0) -> optax.Schedule:
    """The factor the learning rate is multiplied by at each step, an Optax schedule: ``warmup`` steps
    rising linearly from 0, then constant, cosine decay to 0 at ``steps``, or step decay (x0.1 at 50% and
    again at 75% of ``steps``)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be at least 0 and fewer than steps={steps} steps, got {warmup}.")
    if schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, steps, end_value=0.0)
    after = optax.constant_schedule(1.0) if schedule == "constant" else optax.piecewise_constant_schedule(
        1.0, {max(steps // 2 - warmup, 1): 0.1, max(3 * steps // 4 - warmup, 2): 0.1})
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, 1.0, warmup), after], [warmup])


def augment_batch(x: jax.Array, key: jax.Array, flip: bool, crop: int) -> jax.Array:
    """Random horizontal flips and random crops of ``x`` zero-padded by ``crop`` pixels, drawn from
    ``key`` for each image (the jit-able counterpart of :func:`nbkernels.data.augment`)."""
    n, h, w, _ = x.shape
    k_flip, k_crop = jax.random.split(key)
    if flip:
        x = jnp.where(jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1)), x[:, :, ::-1], x)
    if crop:
        padded = jnp.pad(x, ((0, 0), (crop, crop), (crop, crop), (0, 0)))
        offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * crop + 1)
        x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(padded, offsets)
    return x


# XLA's CPU backend (JAX 0.10) hands convolutions to YNNPACK, which ran them on one thread: 105-111
# GFLOP/s with one thread or two, against 155-185 for Eigen's convolution on this 2-core CPU, whose float32
# matmul runs at 180-200 (benchmarks/README.md, "Training at the matmul rate"). This compile option keeps
# YNNPACK for matrix products (it is what runs the LCN's batched product at its best) and leaves
# convolutions to Eigen. Applied to the programs of networks with weight-sharing convolutions, on the CPU only.
CPU_CONVOLUTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


@functools.lru_cache(maxsize=None)
def _compiler_options(convolutional: bool, eigen: bool = True):
    """The options for :func:`_jit`: :data:`CPU_CONVOLUTIONS` where they apply and this XLA knows them."""
    if not (convolutional and eigen) or jax.default_backend() != "cpu":
        return None
    try:  # a later XLA may rename the option: then train as XLA chooses, and say so once
        jax.jit(lambda a: a + 1, compiler_options=CPU_CONVOLUTIONS).lower(jnp.zeros(1)).compile()
    except Exception as err:  # noqa: BLE001 - any refusal means: do without the option
        import warnings
        warnings.warn(f"XLA refused the compile option {CPU_CONVOLUTIONS} ({err}); convolutional networks "
                      "train with XLA's default CPU convolution, up to 1.7x slower.", RuntimeWarning, stacklevel=3)
        return None
    return dict(CPU_CONVOLUTIONS)


def _jit(fn, convolutional: bool, eigen: bool = True):
    """``jax.jit(fn)``, with :data:`CPU_CONVOLUTIONS` for a network with convolutions on the CPU
    (``eigen=False``: XLA's default, for the side-by-side benchmark)."""
    options = _compiler_options(convolutional, eigen)
    return jax.jit(fn) if options is None else jax.jit(fn, compiler_options=options)


def over_members(f: Callable, in_axes: Sequence[Optional[int]], unroll: bool) -> Callable:
    """``f`` mapped over the ensemble axis (axis 0 of the arguments whose ``in_axes`` is 0): ``jax.vmap``,
    or with ``unroll`` one call per member inside the same program, results stacked. XLA's CPU backend
    runs a vmapped convolution (a grouped convolution) slower than the members one after another (2-4x
    with its default convolution; 1.1-1.5x with Eigen's, :data:`CPU_CONVOLUTIONS`, measured for 4 members
    at 8x8), and a ``lax.map`` loop slower still, so convolutional networks unroll (benchmarks/README.md,
    "Training throughput", has the measurements)."""
    if not unroll:
        return jax.vmap(f, in_axes=in_axes)

    def unrolled(*args):
        n = jax.tree_util.tree_leaves([a for a, ax in zip(args, in_axes) if ax == 0])[0].shape[0]
        outs = [f(*[jax.tree_util.tree_map(lambda leaf: leaf[e], a) if ax == 0 else a for a, ax in zip(args, in_axes)])
                for e in range(n)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)
    return unrolled


def has_convolutions(arch: Architecture) -> bool:
    """Whether ``arch`` has a convolution (shared or local): its ensemble members are unrolled, not vmapped."""
    return any(isinstance(layer, Conv) for layer in arch.layers)  # ConvLocal is a Conv too


def has_shared_convolutions(arch: Architecture) -> bool:
    """Whether ``arch`` has a weight-sharing convolution (an XLA convolution): its programs compile with
    :data:`CPU_CONVOLUTIONS`. An LCN's batched products do not gain from them (0.9-1.05x, measured)."""
    return any(isinstance(layer, Conv) and layer.share_weights for layer in arch.layers)


@functools.lru_cache(maxsize=32)
def _programs(arch, optimizer, momentum, center, linearize, batch_size, schedule="constant", steps=1, warmup=0,
              flip=False, crop=0, unroll=None, eigen=True):
    """The compiled programs of a training run, shared by every run of the same architecture and
    optimizer: the learning rate, L2 strength, per-layer factors and data key are arguments, so a grid
    over them compiles once (a CNN's step took 2-3 s to compile, per run, before)."""
    net = arch.network()
    model = _model_fn(net, center, linearize)
    multiplier = lr_multiplier(schedule, steps, warmup)
    augmenting = bool(flip or crop)
    seq = has_convolutions(arch) if unroll is None else unroll  # unroll=False: vmap (benchmarks/bench_train.py)
    conv = has_shared_convolutions(arch)

    def loss_fn(p, p0, xb, yb, f0b):
        return 0.5 * jnp.mean((model(p, p0, xb, f0b) - yb) ** 2)

    def one_step(p, s, p0, xb, yb, f0b, lr, l2, factors):
        loss, g = jax.value_and_grad(loss_fn)(p, p0, xb, yb, f0b)
        updates, s = make_optimizer(lr, optimizer, momentum, l2, factors).update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    # the data are arguments rather than closed-over constants, so XLA does not embed (and try to
    # constant-fold) the whole training set in the compiled step
    def step(p, s, i, p0, xd, yd, f0d, lr, l2, factors, data_key):
        m = xd.shape[0]
        if batch_size is None or batch_size >= m:
            xb, yb, f0b = xd, yd, f0d
        else:
            per_epoch = m // batch_size  # an epoch visits every image once (the last partial batch dropped)
            order = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(data_key, 0), i // per_epoch), m)
            idx = jax.lax.dynamic_slice(order, ((i % per_epoch) * batch_size,), (batch_size,))
            xb, yb, f0b = xd[idx], yd[idx], f0d[:, idx]
        if augmenting:  # a fresh draw every step; f(theta_0) of the augmented images for centering
            xb = augment_batch(xb, jax.random.fold_in(jax.random.fold_in(data_key, 1), i), flip, crop)
            f0b = over_members(net.apply, (0, None), seq)(p0, xb)
        lr_i = lr * multiplier(i)
        return over_members(one_step, (0, 0, 0, None, None, 0, None, None, None), seq)(
            p, s, p0, xb, yb, f0b, lr_i, l2, factors)

    predict_all = _jit(over_members(model, (0, 0, None, 0), seq), conv, eigen)
    apply_all = _jit(over_members(net.apply, (0, None), seq), conv, eigen)
    return _jit(step, conv, eigen), predict_all, apply_all


def programs(arch: Architecture, config: TrainConfig, unroll: Optional[bool] = None,
             eigen: bool = True) -> tuple[Callable, Callable, Callable]:
    """``(step, predict_all, apply_all)``, the compiled programs of a run with ``config``, shared by every run
    that differs only in learning rate, L2, seed or ensemble size (those are arguments of the programs).

    ``step(params, opt_state, i, params0, x, y, f0, lr, l2, factors, data_key)`` takes one step of every
    member (arrays with a leading ensemble axis; ``f0`` the members' outputs at ``params0``) and returns
    ``(params, opt_state, loss)``; ``predict_all(params, params0, x, f0)`` and ``apply_all(params, x)`` give
    each member's outputs. ``unroll``: members one after another (True), vmapped (False), or, with None,
    unrolled for convolutional networks (:func:`over_members` says why). ``eigen=False`` compiles them
    without :data:`CPU_CONVOLUTIONS` (XLA's default CPU convolution), for the side-by-side benchmark.
    """
    return _programs(arch, config.optimizer, config.momentum, config.center, config.linearize, config.batch_size,
                     config.schedule, config.steps, config.warmup, config.flip, config.crop, unroll, eigen)


@functools.lru_cache(maxsize=32)
def _gauss_newton_program(arch):
    """``v -> J^T J v`` at params ``p`` on inputs ``xs``, compiled once per architecture."""
    net = arch.network()

    # params and x are arguments, not closed-over constants: XLA would otherwise constant-fold the
    # forward pass over the whole batch at compile time (seconds per convolution).
    def gn(v, p, xs):
        f = lambda q: net.apply(q, xs)
        unravel = jax.flatten_util.ravel_pytree(p)[1]
        _, jv = jax.jvp(f, (p,), (unravel(v),))
        _, vjp = jax.vjp(f, p)
        return jax.flatten_util.ravel_pytree(vjp(jv)[0])[0]
    return _jit(gn, has_shared_convolutions(arch))


def max_ntk_eigenvalue(arch: Architecture, params: PyTree, x: ArrayLike, n_out: int, iters: int = 30,
                       key: Optional[jax.Array] = None) -> float:
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


def critical_learning_rate(arch: Architecture, params: PyTree, x: ArrayLike, n_out: int, **kw: Any) -> float:
    """``eta_crit = 2 / lambda_max`` of the loss Hessian (Gauss-Newton part) at ``params``."""
    return 2.0 / max_ntk_eigenvalue(arch, params, x, n_out, **kw)


def _critical_rate_at_init(arch, cfg, member0, x, n_out, store):
    """eta_crit of the first member's initialization, cached: a grid over learning rates and L2
    strengths on one architecture and seed shares one power iteration instead of repeating it."""
    if store is None:
        return critical_learning_rate(arch, member0, x, n_out)
    key = dict(kind="eta_crit", arch=repr(arch), x=cache_mod.fingerprint(x), n_out=n_out, seed=cfg.seed,
               ensemble=cfg.ensemble)
    return store.get_or_compute(key, lambda: critical_learning_rate(arch, member0, x, n_out), version=_VERSION)


def init_members(net: Network, keys: jax.Array, x: np.ndarray) -> PyTree:
    """One initialization per key, stacked on a leading ensemble axis."""
    return jax.vmap(lambda k: net.init(k, x[:1]))(keys)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run's options, validated once (the module docstring says what each does).

    ``lr`` (absolute) or ``lr_factor`` (a multiple of eta_crit): exactly one. ``batch_size=None`` is full-batch
    gradient descent. ``plateau`` counts evaluations. ``seed`` draws the initialization and, for minibatches
    and augmentation, the data order.

        >>> cfg = TrainConfig(steps=2000, lr_factor=0.5, optimizer="momentum", batch_size=100)
        >>> nbk.train.train(arch, x_train, y_train, x_test, y_test, config=cfg, seed=1)  # keywords override
    """
    steps: int = 1000
    lr: Optional[float] = None
    lr_factor: Optional[float] = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    batch_size: Optional[int] = None
    schedule: str = "constant"
    warmup: int = 0
    flip: bool = False
    crop: int = 0
    l2: float = 0.0
    l2_mode: str = "uniform"
    center: bool = False
    linearize: bool = False
    ensemble: int = 1
    eval_every: int = 100
    plateau: Optional[int] = None
    seed: int = 0
    test_curve: bool = True

    def __post_init__(self):
        for name in ("steps", "ensemble", "eval_every", "warmup", "crop", "seed", "batch_size", "plateau"):
            none = name in ("batch_size", "plateau")  # whole numbers; the ranges are checked below, each with its reason
            object.__setattr__(self, name, check_count(getattr(self, name), name, allow_none=none, minimum=None))
        if (self.lr is None) == (self.lr_factor is None):
            raise ValueError("give exactly one of lr (absolute) or lr_factor (a multiple of eta_crit).")
        if self.l2_mode not in ("uniform", "layerwise"):
            raise ValueError(f"l2_mode must be 'uniform' or 'layerwise', got {self.l2_mode!r}.")
        if self.optimizer not in ("sgd", "momentum"):
            raise ValueError(f"optimizer must be 'sgd' or 'momentum', got {self.optimizer!r}.")
        if self.steps < 1 or self.ensemble < 1 or self.eval_every < 1:
            raise ValueError("steps, ensemble and eval_every must be positive.")
        if self.plateau is not None and self.plateau < 1:
            raise ValueError(f"plateau counts evaluations and must be at least 1, got {self.plateau}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (or None for full-batch gradient descent), got "
                             f"{self.batch_size}.")
        if self.crop < 0:
            raise ValueError(f"crop pads the image by that many pixels and cannot be negative, got {self.crop}.")
        if not (self.l2 >= 0 and math.isfinite(self.l2)):
            raise ValueError(f"l2={self.l2!r}: weight decay must be 0 or positive (negative decay grows the weights "
                             "until the run diverges); use e.g. l2=1e-4, or 0 for none.")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum!r}: heavy-ball momentum must be in [0, 1) (1 or more never forgets "
                             "a step and diverges); the recipe uses 0.9.")
        for name in ("lr", "lr_factor"):
            v = getattr(self, name)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name}={v!r}: the learning rate must be finite and not negative (0 leaves the network "
                                 "at its initialization)"
                                 + (" (a multiple of eta_crit: 0.3-2 are the rates the notebooks use)." if name == "lr_factor" else "."))
        lr_multiplier(self.schedule, self.steps, self.warmup)  # checks the schedule's arguments
        object.__setattr__(self, "flip", bool(self.flip))
        object.__setattr__(self, "crop", int(self.crop))

    @classmethod
    def of(cls, config: Optional["TrainConfig"] = None, **options: Any) -> "TrainConfig":
        """``config`` (or the defaults) with ``options`` replacing its fields (:meth:`replace`); an unknown
        name is an error."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise TypeError(f"train() got unknown option(s) {unknown}; the options are {names}.")
        return config.replace(**options) if config is not None else cls(**options)

    def replace(self, **changes: Any) -> "TrainConfig":
        """This config with ``changes`` to its fields, validated again; a learning rate given one way (``lr`` or
        ``lr_factor``) replaces the other, so an arm of a recipe can set either.

            >>> fast = study.RECIPE.replace(lr_factor=1.0, flip=True, crop=1)
        """
        if "lr" in changes and "lr_factor" not in changes:
            changes["lr_factor"] = None
        if "lr_factor" in changes and "lr" not in changes:
            changes["lr"] = None
        return dataclasses.replace(self, **changes)

    def with_steps(self, steps: int, evaluations: int = 15) -> "TrainConfig":
        """This config for ``steps`` steps, evaluated about ``evaluations`` times (every ``max(steps //
        evaluations, 1)`` steps, and at the end)."""
        return self.replace(steps=steps, eval_every=max(check_count(steps, "steps") // check_count(evaluations, "evaluations"), 1))


def train(arch: Architecture, x_train: ArrayLike, y_train: ArrayLike, x_test: ArrayLike, y_test: ArrayLike, *,
          x_val: Optional[ArrayLike] = None, y_val: Optional[ArrayLike] = None, config: Optional[TrainConfig] = None,
          checkpoint_every: Optional[int] = None, cache: Union[bool, cache_mod.Cache] = True, progress: bool = True,
          callback: Optional[Callable[[int, jax.Array], None]] = None, **options: Any) -> TrainResult:
    """Train ``arch.network()`` on MSE against zero-mean one-hot targets; see the module docstring.

    Parameters
    ----------
    arch : Architecture
        The network (its finite widths are the layers' widths).
    x_train, y_train : array_like
        Training inputs (NHWC images or (m, D) vectors) and (m, k) one-hot targets, k the network's outputs.
    x_test, y_test : array_like
        The reported images and targets, with the training inputs' features.
    x_val, y_val : array_like, optional
        Validation images: each evaluation scores them, and ``test_acc`` is taken at the best one.
    config : TrainConfig, optional
        The run's options; ``options`` (its field names) replace its fields.
    checkpoint_every : int, optional
        Write a checkpoint every this many steps into the cache, and resume from it.
    cache : bool or Cache
        True (the default cache), a :class:`nbkernels.cache.Cache`, or False.
    progress : bool
        A progress bar.
    callback : callable (step, loss) -> None, optional
        Called after every step (for custom stopping or monitoring).
    **options
        :class:`TrainConfig` fields: ``steps``, ``lr`` or ``lr_factor``, ``seed``, ``l2``, ...

    Returns
    -------
    TrainResult
        The learning curves (``history``), the step and test accuracy chosen on validation (``chosen_step``,
        ``test_acc``, ``test_correct``), the learning rate and eta_crit, and ``failure`` for a run that
        diverged or collapsed.

    Raises
    ------
    ValueError
        Inputs or targets that do not match each other or the network, non-finite values, options out of
        range: before any compute is spent.
    """
    cfg = TrainConfig.of(config, **options)
    data_ = _checked_data(arch, cfg, x_train, y_train, x_test, y_test, x_val, y_val)
    key = cache_key(arch, cfg, data_)
    store = None if cache is False else (cache_mod.default_cache() if cache is True else cache)
    if checkpoint_every and (store is None or not store.enabled):
        why = "cache=False" if store is None else "the results cache is off ($NBKERNELS_CACHE=off)"
        raise ValueError(f"checkpoint_every={checkpoint_every} writes checkpoints into the results cache, but {why}: "
                         "nothing could resume. Pass cache=True (or a nbkernels.cache.Cache) with the cache on, or drop "
                         "checkpoint_every.")
    if store is None or not store.enabled:
        return train_and_evaluate(arch, cfg, data_, key, None, checkpoint_every, progress, callback)
    return store.get_or_compute(
        key, lambda: train_and_evaluate(arch, cfg, data_, key, store, checkpoint_every, progress, callback),
        version=_VERSION)


class Data(NamedTuple):
    """A run's arrays, float32 and checked against each other and the network (:func:`train` checks them)."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: Optional[np.ndarray]
    y_val: Optional[np.ndarray]


def _checked_data(arch, cfg: TrainConfig, x_train, y_train, x_test, y_test, x_val, y_val) -> Data:
    """The arrays as float32, or the error that names what does not fit, before any compute."""
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    y_train, y_test = np.asarray(y_train, np.float32), np.asarray(y_test, np.float32)
    if y_train.ndim != 2 or y_train.shape[0] != x_train.shape[0]:
        raise ValueError(f"y_train must be one-hot (m, k) with m = {x_train.shape[0]}, got {y_train.shape}.")
    if y_test.ndim != 2 or y_test.shape[0] != x_test.shape[0]:
        raise ValueError(f"y_test must be one-hot (n, k) with n = {x_test.shape[0]}, got {y_test.shape}.")
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val (validation images and their one-hot targets), or neither.")
    if x_val is not None:
        x_val, y_val = np.asarray(x_val, np.float32), np.asarray(y_val, np.float32)
        if y_val.ndim != 2 or y_val.shape[0] != x_val.shape[0] or len(x_val) == 0:
            raise ValueError(f"y_val must be one-hot (n, k) with n = {x_val.shape[0]} > 0, got {y_val.shape}.")
    elif not cfg.test_curve:
        raise ValueError("test_curve=False scores the test images at the step chosen on validation data: pass "
                         "x_val and y_val, or keep test_curve=True.")
    for name, xs in (("x_train", x_train), ("x_test", x_test), ("x_val", x_val)):
        warn_if_channels_first(xs, name, stacklevel=3)  # the caller of train()
        if xs is not None and not np.all(np.isfinite(xs)):
            raise ValueError(f"{name} holds NaN or infinite values; clean or re-standardize the inputs.")
        if xs is not None and xs.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"{name} has features of shape {xs.shape[1:]} but x_train has {x_train.shape[1:]}: prepare "
                             "every split the same way (data.prepare_split does), the same image size and flattening.")
    for name, ys in (("y_train", y_train), ("y_test", y_test), ("y_val", y_val)):
        if ys is not None and not np.all(np.isfinite(ys)):
            raise ValueError(f"{name} holds NaN or infinite values; the targets are one-hot rows (data.one_hot).")
    n_out = _output_dim(arch, x_train)
    for name, ys in (("y_train", y_train), ("y_test", y_test), ("y_val", y_val)):
        if ys is not None and ys.shape[1] != n_out:
            raise ValueError(f"{name} has {ys.shape[1]} columns but the network has {n_out} outputs: give one-hot targets "
                             f"with one column per output (data.one_hot(labels, {n_out})), or build the architecture "
                             f"with out_dim={ys.shape[1]}.")
    m = len(x_train)
    if cfg.batch_size is not None and cfg.batch_size > m:
        raise ValueError(f"batch_size={cfg.batch_size} does not fit a training set of {m} images: use 1..{m}, or "
                         f"batch_size=None for full-batch gradient descent.")
    if cfg.flip or cfg.crop:
        if x_train.ndim != 4:
            raise ValueError(f"flips and crops need NHWC images, got x_train of shape {x_train.shape}; do not "
                             f"flatten the inputs (fcn() flattens them itself).")
        side = min(x_train.shape[1:3])
        if cfg.crop > side // 2:
            raise ValueError(f"crop={cfg.crop} pads a {x_train.shape[1]}x{x_train.shape[2]} image by more than half "
                             f"its side; use 0..{side // 2} (1 for 8x8 images, 4 for 32x32).")
    return Data(x_train, y_train, x_test, y_test, x_val, y_val)


def cache_key(arch: Architecture, cfg: TrainConfig, data_: Data) -> dict:
    """A run's cache key: the architecture, the data's fingerprints and the config's every field (as the keys of
    runs cached before the config was typed: ``test_curve`` only when it is not the default)."""
    fingerprints = {name: None if a is None else cache_mod.fingerprint(a) for name, a in data_._asdict().items()}
    key = dict(arch=repr(arch), **fingerprints, **dataclasses.asdict(cfg))
    if cfg.test_curve:
        del key["test_curve"]
    return key


def _output_dim(arch, x) -> int:
    """The network's number of outputs, from its shapes alone (``jax.eval_shape``: nothing is computed);
    inputs the network cannot take fail here, with the layer that refuses them."""
    net = arch.network()
    x1 = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), jnp.float32)
    out = jax.eval_shape(lambda a: net.apply(net.init(jax.random.PRNGKey(0), a), a), x1)
    return int(out.shape[-1])


def _exploded(loss: float, initial: float) -> bool:
    """The divergence rule: a non-finite training loss, or 10^4 times the initial one."""
    return not np.isfinite(loss) or loss > 1e4 * max(initial, 1e-12)


def failure_of(history: dict, final_pred: np.ndarray, labels: np.ndarray, n_classes: int) -> Optional[str]:
    """Why a finished run cannot be used, or None: a non-finite or exploded training loss (diverged),
    outputs that no longer depend on the input (collapsed to a constant), or accuracy at the end within
    two binomial standard errors of chance (validation accuracy where there is one, else test)."""
    loss = np.asarray(history["train_loss"], dtype=float)
    if _exploded(loss[-1], loss[0]):
        return f"diverged: training loss {loss[-1]:.3g} at step {history['step'][-1]} (from {loss[0]:.3g})"
    spread = float(np.std(final_pred, axis=0).max()) if len(final_pred) > 1 else np.inf
    if spread < 1e-4:
        return f"collapsed: constant outputs (largest spread over the test images {spread:.2g})"
    which = "val_acc" if len(history.get("val_acc", ())) else "test_acc"
    acc, n = float(history[which][-1]), len(labels)
    chance = 1.0 / n_classes
    if acc <= chance + 2 * np.sqrt(chance * (1 - chance) / n):
        return (f"collapsed: {which.replace('_acc', '')} accuracy {100 * acc:.1f}% at the end, within two standard "
                f"errors of chance ({100 * chance:.0f}%)")
    return None


@dataclasses.dataclass(frozen=True)
class Run:
    """What stays fixed while a run trains: its config and data on the device, the members' initial
    parameters and outputs, the compiled programs and the numbers they take (:func:`create_run`)."""
    cfg: TrainConfig
    data: Data
    params0: PyTree
    f0_train: jax.Array
    f0_test: jax.Array
    f0_val: Optional[jax.Array]
    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    step_program: Callable
    predict_all: Callable
    hyper: tuple              # (lr, l2, per-leaf L2 factors, data key): arguments of the step program
    optimizer: optax.GradientTransformation
    lr: float
    eta_crit: Optional[float]
    labels: np.ndarray        # the test images' classes

    def step(self, params: PyTree, opt_state: PyTree, i: int) -> tuple[PyTree, PyTree, jax.Array]:
        """One step of every member: ``(params, opt_state, loss)`` after step ``i``."""
        return self.step_program(params, opt_state, i, self.params0, self.x_train, self.y_train, self.f0_train,
                                 *self.hyper)


@dataclasses.dataclass
class TrainState:
    """A run in progress, what a checkpoint holds: the members' parameters and optimizer state after ``step``
    steps, the evaluations so far (``history``, and ``correct``, the test images right at each evaluation,
    with the test curve), and ``best``, the validation-chosen evaluation and its parameters (without it)."""
    params: PyTree
    opt_state: PyTree
    step: int
    history: dict
    correct: list
    best: dict


def create_run(arch: Architecture, cfg: TrainConfig, data_: Data, store: Optional[cache_mod.Cache]) -> Run:
    """Initialize the members, find eta_crit (for ``lr_factor``), build the optimizer and compile the programs."""
    net = arch.network()
    k = data_.y_train.shape[1]
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), cfg.ensemble + 1)
    data_key, init_keys = keys[0], keys[1:]
    params0 = init_members(net, init_keys, data_.x_train)
    member0 = jax.tree_util.tree_map(lambda a: a[0], params0)
    eta_crit = None
    if cfg.lr_factor is not None:
        eta_crit = _critical_rate_at_init(arch, cfg, member0, data_.x_train[: min(len(data_.x_train), 2048)], k, store)
        lr = cfg.lr_factor * eta_crit
    else:
        lr = cfg.lr
    factors = layer_factors(arch, member0) if cfg.l2_mode == "layerwise" else \
        jax.tree_util.tree_map(lambda _: 1.0, member0)
    step_program, predict_all, apply_all = programs(arch, cfg)
    return Run(cfg=cfg, data=data_, params0=params0, f0_train=apply_all(params0, data_.x_train),
               f0_test=apply_all(params0, data_.x_test),
               f0_val=None if data_.x_val is None else apply_all(params0, data_.x_val),
               x_train=jnp.asarray(data_.x_train), y_train=jnp.asarray(data_.y_train), x_test=jnp.asarray(data_.x_test),
               step_program=step_program, predict_all=predict_all,
               hyper=(jnp.float32(lr), jnp.float32(cfg.l2), jax.tree_util.tree_map(jnp.float32, factors), data_key),
               optimizer=make_optimizer(lr, cfg.optimizer, cfg.momentum, cfg.l2, factors), lr=float(lr),
               eta_crit=eta_crit, labels=data_.y_test.argmax(-1))


def score_test(run: Run, params: PyTree) -> tuple[np.ndarray, np.ndarray, dict]:
    """The members' test outputs, which test images the ensemble mean gets right, and the test scores."""
    te = np.asarray(run.predict_all(params, run.params0, run.x_test, run.f0_test))
    mean = te.mean(0)
    right = mean.argmax(-1) == run.labels
    return te, right, dict(test_loss=float(0.5 * np.mean((mean - run.data.y_test) ** 2)), test_acc=float(np.mean(right)),
                           member_test_acc=float(np.mean(te.argmax(-1) == run.labels)))


def evaluate(run: Run, params: PyTree) -> tuple[dict, Optional[np.ndarray], Optional[np.ndarray]]:
    """An evaluation's scores (training loss, validation, and the test images only with ``test_curve``, else
    NaN, filled in at the end), with the test outputs and correctness where scored."""
    d = run.data
    tr = np.asarray(run.predict_all(params, run.params0, run.x_train, run.f0_train))
    ev = dict(train_loss=float(0.5 * np.mean((tr - d.y_train) ** 2)))
    te = right = None
    if run.cfg.test_curve:
        te, right, test_scores = score_test(run, params)
        ev.update(test_scores)
    else:
        ev.update(test_loss=np.nan, test_acc=np.nan, member_test_acc=np.nan)
    if d.x_val is not None:
        va = np.asarray(run.predict_all(params, run.params0, d.x_val, run.f0_val)).mean(0)
        ev.update(val_acc=float(np.mean(va.argmax(-1) == d.y_val.argmax(-1))),
                  val_loss=float(0.5 * np.mean((va - d.y_val) ** 2)))
    return ev, te, right


def record(run: Run, state: TrainState, done: int, ev: dict, right: Optional[np.ndarray], params: PyTree) -> None:
    """Append an evaluation after ``done`` steps; keep the parameters of the best validation evaluation so far
    when the test images are scored only there (:attr:`TrainResult.chosen_index`'s rule)."""
    state.history["step"].append(done)
    for n, v in ev.items():
        state.history[n].append(v)
    if run.cfg.test_curve:
        state.correct.append(right)
    elif np.isfinite(ev["train_loss"]) and ev["val_acc"] > state.best["val_acc"]:
        state.best.update(val_acc=ev["val_acc"], index=len(state.history["step"]) - 1, params=params)


def create_train_state(run: Run) -> TrainState:
    """The run at step 0, its first evaluation recorded."""
    params = run.params0
    history = {n: [] for n in _HISTORY if run.data.x_val is not None or "val" not in n}
    state = TrainState(params=params, opt_state=jax.vmap(run.optimizer.init)(params), step=0, history=history,
                       correct=[], best=dict(val_acc=-np.inf, index=None, params=None))
    ev, _, right = evaluate(run, params)
    record(run, state, 0, ev, right, params)
    return state


def load_checkpoint(store: Optional[cache_mod.Cache], ckpt_key: Optional[str]) -> Optional[TrainState]:
    """The checkpoint of this exact run, or None (none written, or unreadable)."""
    if store is None or ckpt_key is None:
        return None
    try:
        saved = store.get(ckpt_key)
    except (KeyError, cache_mod.CorruptEntry):
        return None
    return TrainState(params=saved["params"], opt_state=saved["opt_state"], step=saved["step"],
                      history=saved["history"], correct=saved["correct"],
                      best=saved.get("best", dict(val_acc=-np.inf, index=None, params=None)))


def save_checkpoint(store: cache_mod.Cache, ckpt_key: str, state: TrainState) -> None:
    """Write the run's state (on the host) under ``ckpt_key``, in the layout earlier versions wrote."""
    store.put(ckpt_key, dict(params=jax.device_get(state.params), opt_state=jax.device_get(state.opt_state),
                             step=state.step, history=state.history, correct=state.correct,
                             best=dict(state.best, params=jax.device_get(state.best["params"]))))


def stop_reason(cfg: TrainConfig, history: dict) -> Optional[str]:
    """Why training ends after this evaluation: ``"diverged"`` (:func:`_exploded`), ``"plateau"`` (the
    training loss fell by less than 1% over ``cfg.plateau`` evaluations), or None to go on."""
    loss = history["train_loss"]
    if _exploded(loss[-1], loss[0]):
        return "diverged"
    p = cfg.plateau
    if p is not None and len(loss) > p and loss[-1] > 0.99 * loss[-1 - p]:
        return "plateau"
    return None


def finish(run: Run, state: TrainState, te: Optional[np.ndarray]) -> TrainResult:
    """The result: without the test curve, the test images scored at the chosen evaluation (from its kept
    parameters) and at the last; the histories as arrays; the failure, if any."""
    history, params = state.history, state.params
    chosen_correct = None
    if not run.cfg.test_curve:
        best = state.best
        last = len(history["step"]) - 1
        if best["index"] is None:  # no evaluation with a finite loss: chosen_index falls back to the first
            best.update(index=0, params=run.params0)
        for index, p in ([(best["index"], best["params"])] if best["index"] != last else []) + [(last, params)]:
            te, right, test_scores = score_test(run, p)
            for n, v in test_scores.items():
                history[n][index] = v
            if index == best["index"]:
                chosen_correct = right
    elif te is None:
        _, te, _ = evaluate(run, params)
    history = {n: np.asarray(v) for n, v in history.items()}
    k = run.data.y_train.shape[1]
    return TrainResult(history=history, test_pred=te.mean(0), member_test_pred=te, learning_rate=run.lr,
                       eta_crit=run.eta_crit, config=run.cfg,
                       eval_correct=np.asarray(state.correct, dtype=bool) if run.cfg.test_curve else None,
                       chosen_correct=chosen_correct, failure=failure_of(history, te.mean(0), run.labels, k))


def train_and_evaluate(arch: Architecture, cfg: TrainConfig, data_: Data, key: dict,
                       store: Optional[cache_mod.Cache], checkpoint_every: Optional[int], progress: bool,
                       callback: Optional[Callable]) -> TrainResult:
    """The loop: create the run, resume its checkpoint or start it, step, evaluate every ``eval_every`` steps
    (stopping early on divergence or a plateau), checkpoint every ``checkpoint_every`` steps, finish."""
    run = create_run(arch, cfg, data_, store)
    ckpt_key = None if store is None else store.key(dict(key, checkpoint=True), _VERSION)
    state = (load_checkpoint(store, ckpt_key) if checkpoint_every else None) or create_train_state(run)
    te = None
    with tqdm(total=cfg.steps, initial=state.step, desc="training", unit="step", disable=not progress, delay=2,
              leave=False) as bar:
        for step in range(state.step, cfg.steps):
            state.params, state.opt_state, loss = run.step(state.params, state.opt_state, step)
            done = state.step = step + 1
            if callback is not None:
                callback(done, loss)
            if done % cfg.eval_every == 0 or done == cfg.steps:
                ev, te, right = evaluate(run, state.params)
                record(run, state, done, ev, right, state.params)
                bar.set_postfix({"loss": f"{ev['train_loss']:.3g}",
                                 **({"test_acc": f"{ev['test_acc']:.3f}"} if cfg.test_curve else
                                    {"val_acc": f"{ev['val_acc']:.3f}"})})
                if stop_reason(cfg, state.history):
                    break  # diverged (the history says so) or at its plateau
            if store is not None and checkpoint_every and done % checkpoint_every == 0 and done < cfg.steps:
                save_checkpoint(store, ckpt_key, state)
            bar.update(1)
    return finish(run, state, te)
