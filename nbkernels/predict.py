"""Predictions from kernels: gradient flow, Bayesian posterior, precision diagnostics, augmentation ensembles.

Plain functions over kernel matrices, with Neural Tangents' semantics so published numbers compare.

Gradient flow (``gradient_descent_mse``): the mean prediction of the infinite ensemble trained on the
loss ``1/2 * mean over all m*k entries of (f - y)**2``, i.e. training-set dynamics
``exp(-lr * t * K / (m * k))``; pass the NNGP to train only the readout, the NTK to train every layer::

    >>> f = nbk.predict.gradient_descent_mse(k_tt, k_st, y_train)                 # t = infinity: a solve
    >>> f_t = nbk.predict.gradient_descent_mse(k_tt, k_st, y_train, t=[1, 10, 100])  # one eigendecomposition
    >>> nbk.predict.accuracy(f, y_test)

``diag_reg`` is relative: ``K + diag_reg * (tr K / m) * I``. When ``K`` is numerically not positive
definite in its dtype, a :class:`PrecisionError` says so (with the remedies) instead of returning garbage.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
import scipy.linalg
from tqdm.auto import tqdm


class PrecisionError(ArithmeticError):
    """The training kernel is not positive definite at the working precision."""

    def __init__(self, message: str, min_relative_eigenvalue: Optional[float] = None, resolution: Optional[float] = None,
                 suggested_diag_reg: Optional[float] = None):
        super().__init__(message)
        self.min_relative_eigenvalue = min_relative_eigenvalue
        self.resolution = resolution
        self.suggested_diag_reg = suggested_diag_reg


class PrecisionWarning(UserWarning):
    pass


# ----------------------------------------------------------------------------------------------
# input checks


def _as_matrix(a, name):
    a = np.asarray(a)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {a.shape}.")
    return a


def _check(k_train_train, k_test_train, y_train):
    ktt = _as_matrix(k_train_train, "k_train_train")
    m = ktt.shape[0]
    if ktt.shape != (m, m):
        raise ValueError(f"k_train_train must be square (m, m), got {ktt.shape}: pass K(x_train, x_train), and the "
                         "test kernel K(x_test, x_train) as k_test_train.")
    y = np.asarray(y_train, dtype=ktt.dtype)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape[0] != m:
        raise ValueError(f"y_train has {y.shape[0]} rows but k_train_train is {m} x {m}: pass the targets of "
                         "the same training points (one-hot, shape (m, k)).")
    kst = None
    if k_test_train is not None:
        kst = _as_matrix(k_test_train, "k_test_train").astype(ktt.dtype, copy=False)
        if kst.shape[1] != m:
            raise ValueError(f"k_test_train must be (n_test, {m}) to match k_train_train, got {kst.shape}. "
                             "(Is it transposed? Use arch.kernel(x_test, x_train).)")
    for name, a in (("k_train_train", ktt), ("k_test_train", kst), ("y_train", y)):
        if a is not None and not np.all(np.isfinite(a)):
            raise PrecisionError(f"{name} contains NaN or infinite values: the kernel overflowed or the inputs "
                                 "were not finite. Recompute it in float64 (JAX_ENABLE_X64=1).")
    check_symmetric(ktt)
    return ktt, kst, y


def check_symmetric(k: ArrayLike, name: str = "k_train_train") -> None:
    """A training kernel is K(x_train, x_train), symmetric to rounding (``1000 * eps`` of its dtype, relative to
    its largest entry); anything else, a test kernel passed in its place, say, is refused with its worst entry."""
    k = np.asarray(k)
    scale = float(np.max(np.abs(k))) if k.size else 0.0
    if scale == 0.0:
        return
    diff = np.abs(k - k.T)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    rel = float(diff[worst]) / scale
    if rel > 1e3 * float(np.finfo(k.dtype).eps):
        raise ValueError(f"{name} is not symmetric: entries {worst} and {worst[::-1]} differ by {float(diff[worst]):.3g} "
                         f"({rel:.2g} of its largest entry). A training kernel is K(x_train, x_train): pass "
                         "arch.kernel(x_train), not a test kernel (or (K + K.T) / 2 if the asymmetry is your rounding).")


def regularize(k_train_train: ArrayLike, diag_reg: float) -> np.ndarray:
    """``K + diag_reg * (tr K / m) * I`` (``diag_reg`` relative to the mean eigenvalue)."""
    k = np.array(k_train_train, copy=True)
    if diag_reg:
        if diag_reg < 0:
            raise ValueError(f"diag_reg must be >= 0, got {diag_reg}.")
        m = k.shape[0]
        k[np.diag_indices(m)] += diag_reg * np.trace(k) / m
    return k


def _precision_problem(k, dtype, eigs=None):
    """The message and numbers of a kernel that is not positive definite at ``dtype``'s precision."""
    if eigs is None:
        eigs = np.linalg.eigvalsh(k.astype(np.float64))
    lam_max = float(np.max(np.abs(eigs)))
    rel = float(np.min(eigs) / lam_max) if lam_max > 0 else -np.inf
    res = float(np.finfo(dtype).eps)
    mean_eig = float(np.trace(k.astype(np.float64)) / k.shape[0])
    suggest = 10 * res * lam_max / mean_eig
    msg = (f"the {k.shape[0]}x{k.shape[0]} training kernel is not positive definite in {np.dtype(dtype).name}: "
           f"its smallest eigenvalue is {rel:.2e} of the largest, below the {np.dtype(dtype).name} resolution "
           f"{res:.1e}. Remedies: compute and solve in float64 (JAX_ENABLE_X64=1, dtype=float64), or add "
           f"diag_reg >= {suggest:.1e}.")
    return msg, rel, res, suggest


def _report(on_precision, msg, rel, res, suggest):
    if on_precision == "raise":
        raise PrecisionError(msg, rel, res, suggest)
    if on_precision == "warn":
        warnings.warn(msg, PrecisionWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------
# gradient flow


def _solve_psd(k, rhs, on_precision):
    """Cholesky solve in k's dtype; a failed factorization or a near-zero pivot is a precision problem."""
    dtype = k.dtype
    try:
        c, lower = scipy.linalg.cho_factor(k, lower=True, check_finite=False)
        pivots = np.diag(c).astype(np.float64) ** 2
        # Cholesky pivots bound the eigenvalues: a tiny pivot ratio flags a near-singular kernel cheaply.
        suspicious = pivots.min() < np.finfo(dtype).eps * pivots.max()
        out = scipy.linalg.cho_solve((c, lower), rhs, check_finite=False)
        failed = not np.all(np.isfinite(out))
    except np.linalg.LinAlgError:
        suspicious, failed, out = True, True, None
    if suspicious or failed:
        msg, rel, res, suggest = _precision_problem(k, dtype)
        if failed or rel < res:
            _report(on_precision, msg, rel, res, suggest)
            if failed:
                # "warn"/"ignore": what a general (LU) solver returns for this indefinite matrix, as a
                # careless pipeline would; an exactly singular one has no answer at all
                try:
                    out = scipy.linalg.solve(k, rhs, check_finite=False)
                except np.linalg.LinAlgError:
                    raise PrecisionError(msg, rel, res, suggest) from None
    return out


def gradient_descent_mse(k_train_train: ArrayLike, k_test_train: Optional[ArrayLike], y_train: ArrayLike,
                         t: Optional[Union[float, ArrayLike]] = None, learning_rate: float = 1.0,
                         diag_reg: float = 0.0, on_precision: str = "raise") -> np.ndarray:
    """Mean prediction of the infinite ensemble trained by gradient flow on MSE, at time ``t``.

    The loss is ``1/2 * mean over all m*k entries of (f - y)**2``, so the dynamics are
    ``exp(-eta * t * K / (m * k))`` (Neural Tangents' ``gradient_descent_mse_ensemble``).

    Parameters
    ----------
    k_train_train : array_like, shape (m, m)
        NNGP (only the readout trained) or NTK (all layers trained) of the training set; symmetric.
    k_test_train : array_like, shape (n, m), or None
        Kernel between test and training points; None predicts on the training set.
    y_train : array_like, shape (m, k)
        Targets (zero-mean one-hot, :func:`nbkernels.data.one_hot`).
    t : float or array_like, optional
        None for t = infinity (a Cholesky solve), a scalar, or an array of times (one eigendecomposition
        serves them all).
    learning_rate : float
        eta in ``exp(-eta * t * K / (m * k))``.
    diag_reg : float
        Relative diagonal regularizer: ``K + diag_reg * tr(K) / m * I``.
    on_precision : {"raise", "warn", "ignore"}
        What to do when K is not positive definite at its precision.

    Returns
    -------
    numpy.ndarray
        Predictions, shape (n, k), or (len(t), n, k) for an array of times.

    Raises
    ------
    PrecisionError
        When K cannot be solved in its dtype (with ``on_precision="raise"``); the message gives the remedies.
    ValueError
        Shapes that do not match, or a training kernel that is not square and symmetric.
    """
    if on_precision not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_precision must be 'raise', 'warn' or 'ignore', got {on_precision!r}.")
    ktt, kst, y = _check(k_train_train, k_test_train, y_train)
    if kst is None:
        kst = ktt
    k = regularize(ktt, diag_reg)
    squeeze = np.asarray(y_train).ndim == 1
    if t is None:
        out = kst @ _solve_psd(k, y, on_precision)
        return out[:, 0] if squeeze else out
    ts = np.asarray(t, dtype=np.float64)
    if np.any(ts < 0):
        raise ValueError("t must be >= 0.")
    eigs, vecs = np.linalg.eigh(k)
    if eigs.min() < np.finfo(k.dtype).eps * np.abs(eigs).max():
        msg, rel, res, suggest = _precision_problem(k, k.dtype, eigs)
        _report(on_precision, msg, rel, res, suggest)
        eigs = np.maximum(eigs, 0.0)  # "warn"/"ignore": flow along the non-negative part only
    m, n_out = y.shape
    proj = vecs.T @ y                                  # targets in the eigenbasis
    left = kst @ vecs
    rate = learning_rate * eigs / (m * n_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(eigs > 0, 1.0 / eigs, 0.0)
    outs = []
    for tt in np.atleast_1d(ts):
        # (1 - exp(-rate t)) / lambda, with the lambda -> 0 limit rate t / lambda = lr t / (m k)
        filt = np.where(eigs > 0, -np.expm1(-rate * tt) * inv, learning_rate * tt / (m * n_out))
        outs.append(left @ (filt[:, None] * proj))
    out = np.stack(outs).astype(ktt.dtype)
    if ts.ndim == 0:
        out = out[0]
    return out[..., 0] if squeeze else out


def nngp_posterior(k_train_train: ArrayLike, k_test_train: Optional[ArrayLike], y_train: ArrayLike,
                   k_test_test: Optional[ArrayLike] = None, diag_reg: float = 0.0,
                   on_precision: str = "raise") -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Bayesian NNGP posterior: mean and variance of each test output.

    Parameters
    ----------
    k_train_train : array_like, shape (m, m)
        The NNGP of the training set.
    k_test_train : array_like, shape (n, m), or None
        The NNGP between test and training points; None predicts on the training set.
    y_train : array_like, shape (m, k)
        Targets (zero-mean one-hot).
    k_test_test : array_like, shape (n, n) or (n,), optional
        The test kernel or its diagonal; without it only the mean is returned.
    diag_reg : float
        Relative observation noise: ``diag_reg * tr(K) / m``.
    on_precision : {"raise", "warn", "ignore"}
        What to do when K is not positive definite at its precision.

    Returns
    -------
    mean : numpy.ndarray, shape (n, k)
    variance : numpy.ndarray, shape (n,), or None
        None without ``k_test_test``.
    """
    ktt, kst, y = _check(k_train_train, k_test_train, y_train)
    if kst is None:
        kst = ktt
    k = regularize(ktt, diag_reg)
    mean = kst @ _solve_psd(k, y, on_precision)
    var = None
    if k_test_test is not None:
        prior = np.asarray(k_test_test)
        prior = np.diag(prior) if prior.ndim == 2 else prior
        if prior.shape != (kst.shape[0],):
            raise ValueError(f"k_test_test must be ({kst.shape[0]}, {kst.shape[0]}) or its diagonal, "
                             f"got {np.shape(k_test_test)}.")
        sol = _solve_psd(k, kst.T, on_precision)
        var = np.maximum(prior - np.einsum("ij,ji->i", kst, sol), 0.0)
    return mean, var


# ----------------------------------------------------------------------------------------------
# metrics


def _labels(y):
    y = np.asarray(y)
    return y.argmax(-1) if y.ndim >= 2 else y


def correct(pred: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Whether each argmax prediction equals its label (for paired tests).

    Parameters
    ----------
    pred : array_like, shape (..., n, k)
        Predictions; leading axes allowed.
    y : array_like, shape (n,) or (n, k)
        Integer labels or one-hot rows.

    Returns
    -------
    numpy.ndarray of bool, shape (..., n)
    """
    return np.asarray(pred).argmax(-1) == _labels(y)


def accuracy(pred: ArrayLike, y: ArrayLike) -> Union[float, np.ndarray]:
    """Fraction of argmax predictions equal to the labels.

    Parameters
    ----------
    pred : array_like, shape (..., n, k)
        Predictions; leading axes (times, members) allowed.
    y : array_like, shape (n,) or (n, k)
        Integer labels or one-hot rows.

    Returns
    -------
    float or numpy.ndarray
        The accuracy, one per leading index.
    """
    return np.mean(correct(pred, y), axis=-1)


def mse(pred: ArrayLike, y_one_hot: ArrayLike) -> Union[float, np.ndarray]:
    """Mean over all entries of (f - y)^2 against zero-mean one-hot targets."""
    return np.mean((np.asarray(pred) - np.asarray(y_one_hot)) ** 2, axis=(-2, -1))


# ----------------------------------------------------------------------------------------------
# spectra and the precision cliff


def spectrum(k: ArrayLike) -> np.ndarray:
    """Eigenvalues of a symmetric kernel, largest first (computed in float64)."""
    return np.linalg.eigvalsh(np.asarray(k, dtype=np.float64))[::-1]


def power_law_fit(eigs: ArrayLike, start: float = 0.05, stop: float = 0.5) -> tuple[float, float]:
    """Fit ``lambda_i / lambda_1 = c * i^(-alpha)`` on the tail ``start*m <= i < stop*m``; returns (alpha, c)."""
    eigs = np.asarray(eigs, dtype=np.float64)
    m = len(eigs)
    i = np.arange(1, m + 1)
    sel = (i >= max(2, int(start * m))) & (i < max(int(stop * m), 3)) & (eigs > 0)
    if sel.sum() < 2:
        raise ValueError("not enough positive eigenvalues in the fitting window to fit a power law.")
    slope, intercept = np.polyfit(np.log(i[sel]), np.log(eigs[sel] / eigs[0]), 1)
    return float(-slope), float(np.exp(intercept))


def critical_size(alpha: float, c: float, dtype: DTypeLike) -> float:
    """Training-set size m at which the smallest relative eigenvalue ``c * m^(-alpha)`` reaches the dtype's
    resolution: past it an unregularized solve in that dtype breaks down."""
    res = float(np.finfo(dtype).eps) if not isinstance(dtype, float) else dtype
    return float((c / res) ** (1.0 / alpha))


@dataclasses.dataclass(frozen=True)
class RoundingCliff:
    """:func:`rounding_cliff`'s prediction: the critical training-set sizes (refined and first-order), and
    per size of the grid the margin, the smallest relative eigenvalue and the rounding noise's relative size."""
    critical: float              # m* where the refined margin reaches 1 (inf: it does not fall)
    critical_first_order: float  # m* where lambda_min / lambda_1 reaches sigma / lambda_1 (N = 1)
    margin: list                 # min_N lambda_(N) / (2 sigma sqrt N), per size
    min_rel: list                # lambda_min / lambda_1, per size
    noise_rel: list              # sigma / lambda_1, per size
    alpha: float                 # decay exponent of lambda_min / lambda_1 in m


def rounding_cliff(k: ArrayLike, sizes: Sequence[int], dtype: DTypeLike) -> RoundingCliff:
    """Predict where rounding a kernel to ``dtype`` makes kernel regression break, from float64 alone.

    Rounding to nearest perturbs each entry by an independent relative error of standard deviation
    ``eps / (2 sqrt 3)`` (``eps`` the dtype's resolution): the perturbation of the leading m x m block is a
    symmetric random matrix with entries of standard deviation ``sigma(m) = eps / (2 sqrt 3) * rms(K_m)``.
    Restricted to the N eigendirections of ``K_m`` with the smallest eigenvalues it is an N x N Wigner
    matrix, whose eigenvalues spread to ``+-2 sigma sqrt(N)`` (the semicircle edge), so the rounded kernel goes
    indefinite once some N of its eigenvalues lie below ``2 sigma sqrt(N)``. The margin
    ``min_N lambda_(N) / (2 sigma sqrt(N))`` (``lambda_(N)`` the N-th smallest eigenvalue) follows a power law
    in m; fitted over ``sizes``, the m where it reaches 1 is the predicted critical size (extrapolated
    beyond the grid where needed). ``critical_first_order`` is the cruder N = 1 criterion
    ``lambda_min = sigma``, which ignores how the noise on many small eigenvalues adds up. Raises
    :class:`PrecisionError` where the float64 block itself is not positive definite.

    Returns a :class:`RoundingCliff`.
    """
    k = np.asarray(k, dtype=np.float64)
    sizes = np.asarray(sorted(sizes))
    min_rel, noise_rel, margin = [], [], []
    for m in sizes:
        e = np.linalg.eigvalsh(k[:m, :m])                          # ascending
        if e[0] <= 0:
            raise PrecisionError(
                f"the float64 kernel's leading {m} x {m} block is not positive definite (smallest eigenvalue "
                f"{e[0]:.3g}, largest {e[-1]:.3g}): float64 itself breaks there, so it cannot be the reference "
                f"for a lower precision; pass sizes below {m}.", min_relative_eigenvalue=e[0] / e[-1])
        sigma = resolution(dtype) / (2 * np.sqrt(3)) * np.sqrt(np.mean(k[:m, :m] ** 2))
        min_rel.append(e[0] / e[-1])
        noise_rel.append(sigma / e[-1])
        margin.append(np.min(e / (2 * sigma * np.sqrt(np.arange(1, m + 1)))))
    lm = np.log(sizes)

    def crossing(log_ratio):                                       # where a power-law fit of the ratio hits 1
        slope, intercept = np.polyfit(lm, log_ratio, 1)
        return float(np.exp(-intercept / slope)) if slope < 0 else float("inf")

    return RoundingCliff(critical=crossing(np.log(margin)),
                         critical_first_order=crossing(np.log(min_rel) - np.log(noise_rel)),
                         margin=margin, min_rel=min_rel, noise_rel=noise_rel,
                         alpha=float(-np.polyfit(lm, np.log(min_rel), 1)[0]))


def round_to(k: ArrayLike, dtype: DTypeLike) -> np.ndarray:
    """A kernel rounded to a lower precision (float16, bfloat16, float32) and back, to study precision cliffs."""
    if str(dtype) == "bfloat16":
        import ml_dtypes
        return np.asarray(k).astype(ml_dtypes.bfloat16).astype(np.float64)
    return np.asarray(k).astype(dtype).astype(np.float64)


def resolution(dtype: DTypeLike) -> float:
    """Machine epsilon of ``dtype`` (float16, bfloat16, float32, float64): the relative resolution of its entries."""
    if str(dtype) == "bfloat16":
        return 2.0 ** -7
    return float(np.finfo(dtype).eps)


# ----------------------------------------------------------------------------------------------
# regularization as early stopping


def absolute_reg(k_train_train: ArrayLike, diag_reg: float) -> float:
    """The absolute ridge of a relative ``diag_reg``: ``diag_reg * tr(K) / m``."""
    k = np.asarray(k_train_train)
    return diag_reg * np.trace(k) / k.shape[0]


def ridge_filter(eigs: ArrayLike, reg_abs: float) -> np.ndarray:
    """How much of each eigendirection kernel ridge regression fits: ``lambda / (lambda + reg)``."""
    eigs = np.asarray(eigs)
    return eigs / (eigs + reg_abs)


def flow_filter(eigs: ArrayLike, t: float, m: int, k: int, learning_rate: float = 1.0) -> np.ndarray:
    """How much gradient flow has fitted at time t: ``1 - exp(-lr * lambda * t / (m * k))``."""
    return -np.expm1(-learning_rate * np.asarray(eigs) * t / (m * k))


def reg_to_time(reg_abs: ArrayLike, m: int, k: int, learning_rate: float = 1.0) -> Union[float, np.ndarray]:
    """The flow time whose filter crosses 1/2 where the ridge filter does: ``t = m k ln2 / (lr * reg)``.

    Both filters reach one half at ``lambda = reg`` exactly when ``lr * reg * t / (m k) = ln 2``:
    the map t ~ 1/(lr * eps) in the kernel's units.
    """
    return m * k * np.log(2.0) / (learning_rate * np.asarray(reg_abs))


def time_to_reg(t: ArrayLike, m: int, k: int, learning_rate: float = 1.0) -> Union[float, np.ndarray]:
    """The inverse of :func:`reg_to_time`: the absolute ridge whose filter matches flow time ``t``."""
    return m * k * np.log(2.0) / (learning_rate * np.asarray(t))


# ----------------------------------------------------------------------------------------------
# kernel ensembles over augmented draws of the training set


def augmented_ensemble(kernel_fn: Callable, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_draws: int,
                       augment: Callable, predict: Optional[Callable] = None, cache: Any = None,
                       cache_key: Optional[dict] = None, progress: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """Average kernel predictions over ``n_draws`` augmented draws of the training set.

    Draw 0 is the training set itself, so ``n_draws=1`` equals the plain prediction; draw i > 0 is
    ``augment(x_train, seed=i)``. Each draw needs one m x m and one n x m kernel, computed, used and
    dropped in turn, so memory stays that of a single kernel regression. With ``cache`` (a
    :class:`nbkernels.cache.Cache`) and ``cache_key`` (a dict), each draw's predictions are cached.

    ``kernel_fn(a, b)`` returns the kernel matrix between a and b (b=None: a with itself);
    ``predict(k_tt, k_st, y)`` defaults to the t = infinity gradient-flow prediction.

    Returns (mean predictions (n, k), list of predictions after 1..n_draws draws).
    """
    predict = predict or (lambda ktt, kst, y: gradient_descent_mse(ktt, kst, y))
    running, total = [], 0.0
    from . import cache as cache_mod

    for i in tqdm(range(n_draws), desc="augmented draws", disable=not progress, delay=2):
        def one(i=i):
            xa = x_train if i == 0 else augment(x_train, seed=i)
            return predict(kernel_fn(xa, None), kernel_fn(x_test, xa), y_train)
        if cache is not None and cache_key is not None:
            key = dict(cache_key, draw=i, x_train=cache_mod.fingerprint(x_train), x_test=cache_mod.fingerprint(x_test))
            pred = cache.get_or_compute(key, one, version="augmented-ensemble-1")
        else:
            pred = one()
        total = total + pred
        running.append(total / (i + 1))
    return running[-1], running
