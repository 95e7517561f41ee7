"""The experiment steps several notebooks share: kernels with their wall time (cached), kernel
regression over a regularization grid, and the finite networks' grid search, each choosing its
settings on validation images. The statistics of the results are :mod:`nbkernels.stats`; their
wording, :mod:`nbkernels.formatting`.

    >>> x_tr, y_tr, x_te, y_te = data.prepare(ds, downsample_to=8)
    >>> res = study.kernel_accuracies(nbk.fcn(3), x_tr, y_tr, x_te, y_te, diag_regs=[1e-3, 1e-1])
    >>> res.nngp.acc, res.nngp.diag_reg, res.seconds    # chosen on validation; the kernel's cost
    >>> fin = study.finite_accuracies(nbk.cnn(2, 64), x_tr, y_tr, x_te, y_te,
    ...                               config=study.RECIPE.with_steps(2000), grid=[dict(lr_factor=f) for f in (0.3, 1.0)])
    >>> fin.acc, fin.setting, fin.step, stats.paired(fin.scores, res.ntk.score)

Tuning is honest: settings (a regularizer, a learning rate, a stopping time) are chosen on validation
images held out of the training pool (``data.load(n_val=...)``, passed as ``val=``) and every test
image is reported; without ``val`` the test set is halved instead (:func:`split_validation`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import DTypeLike

from . import cache as cache_mod
from . import predict
from . import train as train_mod
from .data import check_count
from .formatting import setting_label
from .stats import mean_se, tuned

if TYPE_CHECKING:
    from .architecture import Architecture

_VERSION = "3"  # 2: compilation no longer inside the timing of small kernels; 3: exact diagonal (engine)


def split_validation(x_test: np.ndarray, y_test: np.ndarray, val: Optional[tuple[np.ndarray, np.ndarray]] = None
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(validation, test): choose settings on the first, report on the second. With ``val`` (held-out
    training images, ``data.load(n_val=...)``) that is ``(val, (x_test, y_test))`` and every test image
    is reported; without it the test set is halved (the older notebooks' split)."""
    if val is not None:
        x_val, y_val = val
        if len(x_val) < 1 or len(x_val) != len(y_val):
            raise ValueError(f"val must be (x_val, y_val) with one target per image; got {len(x_val)} images and "
                             f"{len(y_val)} targets.")
        return (x_val, y_val), (x_test, y_test)
    n = len(x_test) // 2
    return (x_test[:n], y_test[:n]), (x_test[n:], y_test[n:])


@dataclasses.dataclass(frozen=True)
class TimedKernel:
    """A kernel and the wall time it took: ``nngp`` and ``ntk`` (None when not computed), float arrays of
    shape (n1, n2), and ``seconds``."""
    nngp: np.ndarray
    ntk: Optional[np.ndarray]
    seconds: float

    def get(self, kernel: str) -> np.ndarray:
        """The kernel named ``"nngp"`` or ``"ntk"``, for loops over kernel names."""
        return _named(self, kernel)


def _named(result, kernel: str):
    if kernel not in ("nngp", "ntk") or getattr(result, kernel) is None:
        have = [g for g in ("nngp", "ntk") if getattr(result, g) is not None]
        raise KeyError(f"no {kernel!r} kernel in this result; computed: {have}.")
    return getattr(result, kernel)


def timed_kernel(arch: Architecture, x1: np.ndarray, x2: Optional[np.ndarray] = None, get: Sequence[str] = ("nngp", "ntk"),
                 dtype: DTypeLike = None) -> TimedKernel:
    """``arch.kernel`` with its wall time, cached together (a cached kernel keeps the time it took)."""
    def compute():
        # compilation depends on the block size, so the first full run includes it; where that matters
        # (a run of seconds) the second run is the one timed
        for _ in range(2):
            t0 = time.perf_counter()
            k = arch.kernel(x1, x2, get=get, dtype=dtype, progress=False)
            seconds = time.perf_counter() - t0
            if seconds > 10:
                break
        out = dict(nngp=np.asarray(k.nngp), seconds=seconds)  # the cached payload: a dict of arrays
        if k.ntk is not None:
            out["ntk"] = np.asarray(k.ntk)
        return out
    key = dict(kind="timed-kernel", arch=repr(arch), get=list(get), dtype=str(dtype),
               x1=cache_mod.fingerprint(x1), x2=None if x2 is None else cache_mod.fingerprint(x2))
    out = cache_mod.cached(key, compute, version=_VERSION)
    return TimedKernel(nngp=out["nngp"], ntk=out.get("ntk"), seconds=float(out["seconds"]))


@dataclasses.dataclass(frozen=True)
class KernelCosts:
    """Seconds of the NNGP alone and of the NNGP and NTK together, timed side by side (:func:`kernel_costs`)."""
    nngp: float
    both: float


def kernel_costs(arch: Architecture, x1: np.ndarray, rounds: int = 3) -> KernelCosts:
    """Seconds of the NNGP alone and of the NNGP and NTK together, timed side by side: after a run of
    each that compiles, ``rounds`` interleaved runs, the fastest of each. Two timings taken apart drift
    with the machine (by a quarter over minutes here); cached together."""
    gets = {"nngp": ("nngp",), "both": ("nngp", "ntk")}

    def compute():
        times = {name: [] for name in gets}
        for r in range(rounds + 1):
            for name, get in gets.items():
                t0 = time.perf_counter()
                arch.kernel(x1, get=get, progress=False)
                if r:
                    times[name].append(time.perf_counter() - t0)
        return {name: min(t) for name, t in times.items()}  # the cached payload
    key = dict(kind="kernel-costs", arch=repr(arch), rounds=rounds, x1=cache_mod.fingerprint(x1))
    out = cache_mod.cached(key, compute, version=_VERSION)
    return KernelCosts(nngp=float(out["nngp"]), both=float(out["both"]))


@dataclasses.dataclass
class KernelFit:
    """One kernel's regression (t = infinity) over a diag_reg grid, chosen on the validation half."""
    val: list                # validation accuracy per diag_reg
    test: list               # reported-half accuracy per diag_reg
    correct: list            # per reported image, right or not, per diag_reg
    best: int                # index of the diag_reg chosen on validation
    diag_reg: float          # that diag_reg
    acc: float               # its accuracy on the reported half
    score: np.ndarray        # its per-image correctness (for paired comparisons)
    best_val: float          # its validation accuracy
    classes: Optional[np.ndarray] = None   # its predicted class per reported image (agreement with a network's)


@dataclasses.dataclass
class KernelAccuracies:
    """:func:`kernel_accuracies`' result: ``nngp`` and ``ntk`` (a :class:`KernelFit` each, None when not
    computed), the kernel's wall time and entries, and the size of the reported set."""
    nngp: Optional[KernelFit]
    ntk: Optional[KernelFit]
    seconds: float
    entries: int
    diag_regs: list
    n_report: int

    def fit(self, kernel: str) -> KernelFit:
        """The fit of the kernel named ``"nngp"`` or ``"ntk"``, for loops over kernel names."""
        return _named(self, kernel)

    @property
    def better(self) -> str:
        """The name of the kernel with the better validation accuracy (ties: NNGP): chosen without
        looking at the reported half."""
        fits = [g for g in ("nngp", "ntk") if getattr(self, g) is not None]
        return max(fits, key=lambda g: getattr(self, g).best_val)


def kernel_accuracies(arch: Architecture, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                      diag_regs: Sequence[float] = (0.0,), get: Sequence[str] = ("nngp", "ntk"), dtype: DTypeLike = None,
                      on_precision: str = "raise", val: Optional[tuple[np.ndarray, np.ndarray]] = None) -> KernelAccuracies:
    """Kernel regression (t = infinity) accuracy of each of ``get`` for every relative diag_reg, the
    regularizer chosen on validation.

    Parameters
    ----------
    arch : Architecture
        The network whose infinite-width kernels are computed.
    x_train, y_train : numpy.ndarray
        Training inputs and (m, k) one-hot targets.
    x_test, y_test : numpy.ndarray
        The reported images (every one is reported when ``val`` is given).
    diag_regs : sequence of float
        Relative diagonal regularizers to choose from on validation (:func:`nbkernels.predict.gradient_descent_mse`).
    get : sequence of {"nngp", "ntk"}
        The kernels to compute.
    dtype : dtype, optional
        float32 or float64 (default: float64 when JAX's x64 mode is on).
    on_precision : {"raise", "warn", "ignore"}
        What a solve the dtype cannot do does.
    val : (x_val, y_val), optional
        Validation images held out of the training pool (``data.load(n_val=...)``); without them the test set
        is halved (:func:`split_validation`).

    Returns
    -------
    KernelAccuracies
        Per kernel (``nngp``, ``ntk``) a :class:`KernelFit`: validation and reported accuracy per diag_reg, the
        chosen diag_reg with its reported accuracy ``acc``, per-image correctness ``score`` (for
        :func:`nbkernels.stats.paired`) and validation accuracy ``best_val``; ``better`` names the kernel with
        the better validation accuracy.
    """
    return kernel_curve(arch, x_train, y_train, x_test, y_test, [len(x_train)], diag_regs, get, dtype,
                        on_precision, val).results[0]


@dataclasses.dataclass(frozen=True)
class KernelCurve:
    """:func:`kernel_curve`'s result: one :class:`KernelAccuracies` per training-set size."""
    sizes: list
    results: list

    def at(self, size: int) -> KernelAccuracies:
        if size not in self.sizes:
            raise KeyError(f"no training-set size {size} in this curve; its sizes are {self.sizes}.")
        return self.results[self.sizes.index(size)]


def kernel_curve(arch: Architecture, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 sizes: Sequence[int], diag_regs: Sequence[float] = (0.0,), get: Sequence[str] = ("nngp", "ntk"),
                 dtype: DTypeLike = None, on_precision: str = "raise",
                 val: Optional[tuple[np.ndarray, np.ndarray]] = None) -> KernelCurve:
    """:func:`kernel_accuracies` on the first ``m`` training images for each ``m`` of ``sizes`` (a learning
    curve): one kernel on the whole training set serves every size through its leading blocks.

    Parameters
    ----------
    arch : Architecture
        The network whose infinite-width kernels are computed.
    x_train, y_train : numpy.ndarray
        Training inputs and (m, k) one-hot targets.
    x_test, y_test : numpy.ndarray
        The reported images (every one is reported when ``val`` is given).
    sizes : sequence of int
        Training-set sizes, whole numbers from 1 to ``len(x_train)``.
    diag_regs : sequence of float
        Relative diagonal regularizers to choose from on validation (:func:`nbkernels.predict.gradient_descent_mse`).
    get : sequence of {"nngp", "ntk"}
        The kernels to compute.
    dtype : dtype, optional
        float32 or float64 (default: float64 when JAX's x64 mode is on).
    on_precision : {"raise", "warn", "ignore"}
        What a solve the dtype cannot do does.
    val : (x_val, y_val), optional
        Validation images held out of the training pool (``data.load(n_val=...)``); without them the test set
        is halved (:func:`split_validation`).

    Returns
    -------
    KernelCurve
        One :class:`KernelAccuracies` per size (``curve.at(m)``).
    """
    sizes = [check_count(m, "sizes[]") for m in sizes]
    if not sizes or min(sizes) < 1 or max(sizes) > len(x_train):
        raise ValueError(f"sizes must be training-set sizes from 1 to the {len(x_train)} images given; got {sizes}.")
    (x_val, y_val), (x_rep, y_rep) = split_validation(x_test, y_test, val)
    if val is not None:  # one kernel against the training images serves both, validation rows first
        x_test = np.concatenate([x_val, x_rep])
    k_tt = timed_kernel(arch, x_train, None, get, dtype)
    k_st = timed_kernel(arch, x_test, x_train, get, dtype)
    n_val = len(y_val)

    def fit(g, m):
        val, test, correct, classes = [], [], [], []
        for reg in diag_regs:
            pred = predict.gradient_descent_mse(k_tt.get(g)[:m, :m], k_st.get(g)[:, :m], y_train[:m], diag_reg=reg,
                                                on_precision=on_precision)
            val.append(float(predict.accuracy(pred[:n_val], y_val)))
            correct.append(predict.correct(pred[n_val:], y_rep))
            classes.append(np.asarray(pred[n_val:]).argmax(-1))
            test.append(float(np.mean(correct[-1])))
        acc, best = tuned(val, test)
        return KernelFit(val=val, test=test, correct=correct, best=best, diag_reg=float(diag_regs[best]), acc=acc,
                         score=correct[best], best_val=val[best], classes=classes[best])

    def at(m):
        fits = {g: fit(g, m) if g in get else None for g in ("nngp", "ntk")}
        return KernelAccuracies(**fits, seconds=k_tt.seconds + k_st.seconds,
                                entries=len(x_train) * (len(x_train) + 1) // 2 + len(x_test) * len(x_train),
                                diag_regs=list(diag_regs), n_report=len(y_rep))

    return KernelCurve(sizes=sizes, results=[at(m) for m in sizes])


# The recipe for finite networks in the finite-versus-kernel comparisons, measured in
# benchmarks/recipe_finite.py (benchmarks/README.md gives the ladder): minibatch momentum SGD with warm-up
# then cosine decay, stopping chosen on validation; learning rates of 0.3-1 eta_crit (0.1 was worst for
# every network). Flips and 1-pixel crops (flip=True, crop=1) helped the FCN (+5.4 validation points) but
# not the CNNs at 8x8 (-2.4 CNN-VEC, -2.6 CNN-GAP), so they are an intervention, not part of the recipe;
# so is L2, which at 1e-4 made NTK-parameterized CNNs collapse after a few hundred steps. The reported
# images are scored where they are reported (test_curve=False). Arms derive from it:
# ``RECIPE.replace(lr_factor=1.0, center=True).with_steps(1000, evaluations=15)``.
RECIPE = train_mod.TrainConfig(optimizer="momentum", batch_size=100, schedule="cosine", warmup=100, lr_factor=0.3,
                               test_curve=False)
# Full-batch gradient descent at a constant rate, the gradient-flow correspondence's regime.
FULL_BATCH = train_mod.TrainConfig(lr_factor=0.9, test_curve=False)


@dataclasses.dataclass
class FiniteAccuracies:
    """:func:`finite_accuracies`' result: the grid point chosen on the validation half (its seeds' mean
    validation accuracy), its accuracy on the reported half (``acc``: the mean over seeds of each seed's
    accuracy at its own validation-chosen step, ``acc_se`` their standard error), the per-image
    correctness there (``score``, averaged over seeds: with ``scores``, for :func:`nbkernels.stats.paired` against a kernel's),
    the chosen runs (one per seed) with their learning curves, and every run."""
    setting: dict            # the chosen grid point (its train() arguments)
    label: str               # the chosen grid point in words
    steps: list              # each seed's stopping step, chosen on validation
    val_acc: float           # mean over seeds
    acc: float               # mean over seeds, reported half
    acc_se: float            # standard error over seeds (0 for one seed)
    seed_accs: list          # each seed's reported accuracy
    score: np.ndarray        # per reported image, the fraction of seeds right
    chosen: list             # the chosen grid point's TrainResult per seed
    runs: list               # (setting, [TrainResult per seed]) for every grid point, in grid order
    failures: list           # (label, seed, reason) of the runs that diverged or collapsed
    n_report: int
    failed: bool = False     # every grid point failed and on_failure="report" kept the first (see finite_accuracies)

    @property
    def scores(self) -> np.ndarray:
        """Per-seed, per reported image correctness, shape (seeds, n): for :func:`nbkernels.stats.paired`."""
        return np.asarray([r.test_correct for r in self.chosen], dtype=float)

    @property
    def run(self) -> "train_mod.TrainResult":
        """The chosen grid point's first seed (its learning curve: ``run.history``)."""
        return self.chosen[0]

    @property
    def step(self) -> int:
        return self.steps[0]

    @property
    def val_grid(self) -> list:
        """Each grid point's mean validation accuracy over seeds (NaN where a seed failed)."""
        return [_mean_val(rs) for _, rs in self.runs]


def _mean_val(results) -> float:
    return float("nan") if any(r.failed for r in results) else float(np.mean([r.val_acc for r in results]))


def finite_accuracies(arch: Union[Architecture, Callable[[int], Architecture]], x_train: np.ndarray, y_train: np.ndarray,
                      x_test: np.ndarray, y_test: np.ndarray, config: "train_mod.TrainConfig" = RECIPE,
                      grid: Sequence[dict] = ({},), seeds: Sequence[int] = (0,), on_failure: str = "raise",
                      val: Optional[tuple[np.ndarray, np.ndarray]] = None, progress: bool = False,
                      cache: Union[bool, "cache_mod.Cache"] = True) -> FiniteAccuracies:
    """Train a finite network at every grid point and seed, choose the point (on the seeds' mean validation
    accuracy) and each run's stopping step on the validation set, and report on the rest.

    Runs score the reported images only at the validation-chosen step and the last (``test_curve=False``). A
    grid point where a seed diverges or collapses is listed in ``failures`` and never chosen.

    Parameters
    ----------
    arch : Architecture, or callable width -> Architecture
        The network, or a function of the width when grid points give a ``width``.
    x_train, y_train, x_test, y_test : numpy.ndarray
        Training and reported images with one-hot targets.
    config : TrainConfig
        The arm's recipe (:data:`RECIPE` by default); every run is ``config.replace(**point, seed=seed)``.
    grid : sequence of dict
        Grid points: :class:`nbkernels.train.TrainConfig` fields to replace (and ``width``, for ``arch(width)``).
    seeds : sequence of int
        The initializations (and data orders) each grid point trains.
    on_failure : {"raise", "report"}
        When every point fails: an error naming each failure, or (a sweep that measures every setting) the
        first point returned with ``failed=True``, its runs as they ran.
    val : (x_val, y_val), optional
        Validation images held out of the training pool; without them the test set is halved.
    progress : bool
        Progress bars over each run's steps.
    cache : bool or Cache
        Where runs are cached (:func:`nbkernels.train.train`'s ``cache``).

    Returns
    -------
    FiniteAccuracies
        The chosen ``setting``, its mean ``acc`` and ``acc_se`` over seeds, per-seed scores ``scores`` for
        :func:`nbkernels.stats.paired`, stopping ``steps``, and every run.
    """
    if on_failure not in ("raise", "report"):
        raise ValueError(f"on_failure must be 'raise' or 'report', got {on_failure!r}.")
    if not grid:
        raise ValueError("grid is empty: give at least one setting (a dict of train() arguments; {} for the defaults).")
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed.")
    (x_val, y_val), (x_rep, y_rep) = split_validation(x_test, y_test, val)
    runs, failures = [], []
    for setting in grid:
        point = config.replace(**{k: v for k, v in setting.items() if k != "width"})
        if "width" in setting:
            net = arch(setting["width"])
        elif hasattr(arch, "network"):
            net = arch
        else:
            raise ValueError("arch is a function of the width: give every grid point a 'width'.")
        results = [train_mod.train(net, x_train, y_train, x_rep, y_rep, x_val=x_val, y_val=y_val,
                                   config=point.replace(seed=s), progress=progress, cache=cache) for s in seeds]
        runs.append((dict(setting), results))
        failures += [(setting_label(setting), s, r.failure) for s, r in zip(seeds, results) if r.failed]
    usable = [(st, rs) for st, rs in runs if np.isfinite(_mean_val(rs))]
    failed = not usable and on_failure == "report"
    if failed:
        usable = runs[:1]
    if not usable:
        raise RuntimeError("every finite run failed, so none can be chosen:\n" +
                           "\n".join(f"  {lab}, seed {s}: {why}" for lab, s, why in failures) +
                           "\nlower the learning rate, or check the inputs and targets.")
    setting, chosen = max(usable, key=lambda sr: _mean_val(sr[1]))  # ties: the first in grid order
    accs = [r.test_acc for r in chosen]
    mean, se = mean_se(accs)
    return FiniteAccuracies(setting=setting, label=setting_label(setting), steps=[r.chosen_step for r in chosen],
                            val_acc=float(np.mean([r.val_acc for r in chosen])), failed=failed, acc=float(mean),
                            acc_se=float(se), seed_accs=accs,
                            score=np.mean([r.test_correct for r in chosen], axis=0), chosen=chosen, runs=runs,
                            failures=failures, n_report=len(y_rep))


def tuned_inside(fit: Callable[[list], FiniteAccuracies], values: Sequence[float], key: str, *, factor: float = 10.0,
                 max_extensions: int = 3) -> FiniteAccuracies:
    """Tune one setting until the validation-chosen value lies inside its grid: ``fit(values)`` is a
    :func:`finite_accuracies` call over the grid ``[{key: v} for v in values]``; while the chosen value is
    the largest of a grid, the grid grows by ``factor`` beyond it (at most ``max_extensions`` times; a
    point that diverges is never chosen, which also ends the growth). Only validation accuracies decide,
    so the procedure is fixed before the reported images are looked at. The result's ``runs`` hold every
    grid point tried."""
    values = sorted(values)
    res = fit(values)
    for _ in range(max_extensions):
        if res.setting[key] != values[-1] or values[-1] <= 0:
            break
        values = values + [values[-1] * factor]
        res = fit(values)
    return res


# ----------------------------------------------------------------------------------------------
# arms of a comparison, each tuned on validation the same way


@dataclasses.dataclass(frozen=True)
class Arm:
    """One side of a finite comparison (a parameterization, a width, an architecture, an intervention): a
    name, the network, its recipe and the grid it is tuned over.

    ``grid`` maps :class:`nbkernels.train.TrainConfig` fields (and ``width``, when ``arch`` is a function of
    the width) to the values tried: ``{"lr_factor": (0.5, 1.0, 2.0), "l2": (0.0, 1e-4, 1e-3)}``; every
    combination is a grid point. The stopping step is tuned too, at every evaluation of each run.

    ``matched_time``: every point trains for the same gradient-flow time, in steps at the critical rate:
    a point at ``lr_factor`` f takes ``round(matched_time / f)`` steps, evaluated as often as ``config``
    is (a smaller rate is not left unconverged by a shorter clock). ``limits`` maps a setting to the
    (low, high) range the arm's claim allows it (a "large learning rate" arm: ``{"lr_factor": (1.0,
    None)}``): the grid never grows past it, and a choice at a limit is still marked as an edge.
    """
    name: str
    arch: Any
    config: "train_mod.TrainConfig"
    grid: dict
    matched_time: Optional[float] = None
    limits: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.matched_time is not None:
            if not self.matched_time > 0:
                raise ValueError(f"arm {self.name!r}: matched_time={self.matched_time!r} must be a positive number of "
                                 "steps at the critical rate.")
            if "lr_factor" not in self.grid and self.config.lr_factor is None:
                raise ValueError(f"arm {self.name!r}: matched_time counts steps at multiples of eta_crit, so the "
                                 "learning rate must be an lr_factor (in the grid or the config), not an absolute lr.")
        unknown = set(self.limits) - set(self.grid)
        if unknown:
            raise ValueError(f"arm {self.name!r}: limits name {sorted(unknown)}, which its grid does not vary.")

    def points(self) -> list[dict]:
        """Every combination of the grid's values, in order (the first key varies slowest); with
        ``matched_time``, each point also sets its ``steps`` and ``eval_every``."""
        keys = list(self.grid)
        combos = [[]]
        for k in keys:
            combos = [c + [v] for c in combos for v in self.grid[k]]
        points = [dict(zip(keys, c)) for c in combos]
        if self.matched_time is None:
            return points
        evaluations = max(self.config.steps // self.config.eval_every, 1)
        out = []
        for p in points:
            steps = max(int(round(self.matched_time / p.get("lr_factor", self.config.lr_factor))), 1)
            out.append(dict(p, steps=steps, eval_every=max(steps // evaluations, 1)))
        return out


def _ordinal(values: Sequence) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)


@dataclasses.dataclass
class TunedArm:
    """:func:`tune`'s result: the point chosen on validation by the scan, and that point trained again with
    fresh seeds, whose scores decide.

    ``inside``: every ordinal setting the grid varies (learning rate, L2, width, ...) was chosen strictly
    inside its values (``edges`` names those that were not); ``budget_bound``: a fresh seed's chosen stopping
    step is the last step of its budget, so more steps might have helped; ``early_bound``: a fresh seed's
    chosen stopping step is the first evaluation, the other edge of the stopping grid, so its best point
    may lie earlier (evaluate more often, or a lower learning rate may do better)."""
    name: str
    grid: dict
    chosen: dict
    inside: bool
    edges: list
    budget_bound: bool
    early_bound: bool
    stop_step: list
    budget_steps: int
    val_acc: float
    test_acc: float
    test_se: float
    seeds: list
    scan: FiniteAccuracies
    final: FiniteAccuracies
    failed: bool = False     # every grid point failed (tune(on_failure="report")): the first point, as it ran

    @property
    def scores(self) -> np.ndarray:
        """Per fresh seed, per reported image correctness (seeds, n): for :func:`nbkernels.stats.paired`."""
        return self.final.scores

    @property
    def label(self) -> str:
        """The chosen point in words, with the marks a table shows: ``lr 1 eta_crit, L2 0.0001`` then
        ``(edge: l2)``, ``(budget-bound)`` and ``(stopped at the first evaluation)`` where they apply."""
        marks = ([f"edge: {', '.join(self.edges)}"] if self.edges else []) + (["budget-bound"] if self.budget_bound else []) \
            + (["stopped at the first evaluation"] if self.early_bound else []) + (["every run failed"] if self.failed else [])
        return setting_label(self.chosen) + "".join(f" ({m})" for m in marks)

    def record(self) -> dict:
        """The arm as ``verdict.json`` records it (the names are fixed: checks read them)."""
        plain = lambda v: v.item() if isinstance(v, np.generic) else v
        return dict(name=self.name, grid={k: [plain(v) for v in vs] for k, vs in self.grid.items()},
                    chosen={k: plain(v) for k, v in self.chosen.items()}, inside=bool(self.inside),
                    budget_bound=bool(self.budget_bound), early_bound=bool(self.early_bound),
                    stop_step=[int(s) for s in self.stop_step],
                    budget_steps=int(self.budget_steps), val_acc=float(self.val_acc), test_acc=float(self.test_acc),
                    seeds=[int(s) for s in self.seeds], **({"failed": True} if self.failed else {}))


def _extended(grid: dict, chosen: dict, limits: Optional[dict] = None) -> Optional[dict]:
    """The grid grown one step beyond each ordinal setting chosen at an edge (by the ratio of its two outermost
    values: 0.3, 1, 3 grows to 10 above and to 0.1 below), or None when no edge can grow (a chosen 0, a
    setting with one value, values that are not numbers, or a new value outside its ``limits`` range)."""
    out, grew = {}, False
    for k, vs in grid.items():
        vs = list(vs)
        lo, hi = (limits or {}).get(k, (None, None))
        pos = sorted(v for v in vs if _ordinal([v]) and v > 0)
        if len(vs) > 1 and _ordinal(vs) and len(pos) >= 2:
            up, down = float(f"{max(vs) * max(vs) / sorted(vs)[-2]:.12g}"), float(f"{min(vs) * min(vs) / sorted(vs)[1]:.12g}")
            if chosen[k] == max(vs) and (hi is None or up <= hi):
                vs, grew = vs + [up], True
            elif chosen[k] == min(vs) and min(vs) > 0 and (lo is None or down >= lo):
                vs, grew = [down] + vs, True
        out[k] = vs
    return out if grew else None


def tune(arm: Arm, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
         val: tuple[np.ndarray, np.ndarray], seeds: Sequence[int] = (1, 2, 3), scan_seed: int = 0,
         extend: int = 2, on_failure: str = "raise", progress: bool = False,
         cache: Union[bool, "cache_mod.Cache"] = True) -> TunedArm:
    """Tune an arm on validation: scan every grid point with one seed, choose the point with the best
    validation accuracy (each run stopped at its best validation step), grow the grid beyond any setting
    chosen at its edge and scan again (at most ``extend`` times; only validation accuracies decide), then
    train the chosen point with fresh seeds, none of them the scan's, whose test scores are the arm's.

    Parameters
    ----------
    arm : Arm
        The network, its recipe and its grid.
    x_train, y_train, x_test, y_test : numpy.ndarray
        Training and reported images with one-hot targets.
    val : (x_val, y_val)
        Validation images held out of the training pool: every choice is made on them.
    seeds : sequence of int
        The fresh seeds of the chosen point (at least 3; never the scan's).
    scan_seed : int
        The seed of the scan.
    extend : int
        How many times the grid may grow past a setting chosen at its edge (:func:`_extended`); a choice
        still at an edge after that, or at an edge that cannot grow (L2 of 0), is marked (``edges``).
    on_failure : {"raise", "report"}
        When every point of the scan fails (diverged or collapsed): an error naming each failure, or (a sweep
        that must keep every arm, such as a width too narrow to learn) the first point trained with the fresh
        seeds and returned with ``failed=True``. A scan whose every point failed grows past its first point
        like any other choice (in an ascending grid, to a lower learning rate) before it is given up.
    progress : bool
        Progress bars over each run's steps.
    cache : bool or Cache
        Where runs are cached.

    Returns
    -------
    TunedArm
        The chosen point, whether it is inside its grid and whether its stopping is budget-bound or at the
        first evaluation, its fresh
        seeds' validation and test accuracy and per-image scores, and the scan.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 3:
        raise ValueError(f"tune needs at least 3 fresh seeds for the chosen point (its error counts their spread); "
                         f"got {seeds}.")
    if scan_seed in seeds:
        raise ValueError(f"the scan's seed {scan_seed} is among the fresh seeds {seeds}: the chosen point's scores "
                         "must come from runs that did not choose it; pass other seeds.")
    empty = [k for k, vs in arm.grid.items() if not len(vs)]
    if not arm.grid or empty:
        raise ValueError(f"arm {arm.name!r}: its grid {arm.grid} gives no values to {empty or 'any setting'}; an "
                         "untuned arm decides nothing.")
    common = dict(config=arm.config, val=val, progress=progress, cache=cache)
    scan = finite_accuracies(arm.arch, x_train, y_train, x_test, y_test, grid=arm.points(), seeds=[scan_seed],
                             on_failure=on_failure, **common)
    for _ in range(extend):  # grown grids rescan from the cache; only the new points train
        grown = _extended(arm.grid, scan.setting, arm.limits)   # all failed: past the first point (a lower rate)
        if grown is None:
            break
        arm = dataclasses.replace(arm, grid=grown)
        scan = finite_accuracies(arm.arch, x_train, y_train, x_test, y_test, grid=arm.points(), seeds=[scan_seed],
                                 on_failure=on_failure, **common)
    final = finite_accuracies(arm.arch, x_train, y_train, x_test, y_test, grid=[scan.setting], seeds=seeds,
                              on_failure="report", **common)
    chosen = {k: scan.setting[k] for k in arm.grid}   # without matched_time's steps
    edges = [k for k, vs in arm.grid.items() if len(vs) > 1 and _ordinal(vs)
             and not min(vs) < chosen[k] < max(vs)]
    budget, first = int(final.chosen[0].config.steps), int(final.chosen[0].config.eval_every)
    return TunedArm(name=arm.name, grid={k: list(vs) for k, vs in arm.grid.items()}, chosen=chosen, inside=not edges,
                    edges=edges, budget_bound=any(s >= budget for s in final.steps),
                    early_bound=any(s <= first < budget for s in final.steps), stop_step=list(final.steps),
                    budget_steps=budget, val_acc=final.val_acc, test_acc=final.acc,
                    test_se=final.acc_se, seeds=seeds, scan=scan, final=final, failed=scan.failed or final.failed)
