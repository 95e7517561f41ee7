"""The experiment steps several notebooks share: data at a preset's scale, kernel accuracies over a
regularization grid (cached, timed), validation-tuned choices, and seed statistics.

    >>> x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=8)
    >>> res = study.kernel_accuracies(nbk.fcn(3), x_tr, y_tr, x_te, y_te, diag_regs=[1e-3, 1e-1])
    >>> res["nngp"]["test"]          # test accuracy per diag_reg; res["seconds"] the kernel's cost

Tuning is honest: the test set is split into a validation half (used to choose a regularizer, a
learning rate or a stopping time) and a test half (used to report), see :func:`split_validation`.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

from . import cache as cache_mod
from . import data, predict

_VERSION = "3"  # 2: compilation no longer inside the timing of small kernels; 3: exact diagonal (engine)


def prepared(ds, downsample_to: Optional[int] = None, **kw):
    """:func:`nbkernels.data.prepare` for a notebook: downsampled, standardized, one-hot targets."""
    return data.prepare(ds, downsample_to=downsample_to, **kw)


def split_validation(x_test, y_test):
    """Halve a test set into (validation, test): choose settings on the first, report on the second."""
    n = len(x_test) // 2
    return (x_test[:n], y_test[:n]), (x_test[n:], y_test[n:])


def timed_kernel(arch, x1, x2=None, get=("nngp", "ntk"), dtype=None):
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
        out = dict(nngp=np.asarray(k.nngp), seconds=seconds)
        if k.ntk is not None:
            out["ntk"] = np.asarray(k.ntk)
        return out
    key = dict(kind="timed-kernel", arch=repr(arch), get=list(get), dtype=str(dtype),
               x1=cache_mod.fingerprint(x1), x2=None if x2 is None else cache_mod.fingerprint(x2))
    return cache_mod.cached(key, compute, version=_VERSION)


def kernel_accuracies(arch, x_train, y_train, x_test, y_test, diag_regs: Sequence[float] = (0.0,),
                      get=("nngp", "ntk"), dtype=None, on_precision: str = "raise", sizes=None):
    """Kernel regression (t = infinity) accuracy of each of ``get`` for every relative diag_reg.

    Returns ``{"nngp": {"val": [...], "test": [...], "correct": [...], "best": i, "acc": ..., "score": ...,
    "best_val": ...}, "ntk": {...}, "seconds": kernel wall time, "entries": kernel entries computed,
    "n_report": size of the reported half}``: accuracies on the validation and test halves of ``x_test`` and
    which reported test points each diag_reg got right; then the diag_reg chosen on the validation half
    (index ``best``, :func:`tuned`), its test accuracy ``acc``, its per-point correctness ``score`` (for
    :func:`beats_paired`) and its validation accuracy ``best_val``.
    With ``sizes`` (training-set sizes), one kernel on the whole training set serves them all (its
    leading blocks) and the result is ``{m: result}``.
    """
    k_tt = timed_kernel(arch, x_train, None, get, dtype)
    k_st = timed_kernel(arch, x_test, x_train, get, dtype)
    (_, y_val), (_, y_rep) = split_validation(x_test, y_test)
    n_val = len(y_val)

    def at(m):
        out = dict(seconds=k_tt["seconds"] + k_st["seconds"],
                   entries=len(x_train) * (len(x_train) + 1) // 2 + len(x_test) * len(x_train),
                   diag_regs=list(diag_regs), n_report=len(y_rep))
        for g in get:
            val, test, correct = [], [], []
            for reg in diag_regs:
                pred = predict.gradient_descent_mse(k_tt[g][:m, :m], k_st[g][:, :m], y_train[:m], diag_reg=reg,
                                                    on_precision=on_precision)
                val.append(float(predict.accuracy(pred[:n_val], y_val)))
                correct.append(predict.correct(pred[n_val:], y_rep))
                test.append(float(np.mean(correct[-1])))
            acc, best = tuned(val, test)
            out[g] = dict(val=val, test=test, correct=correct, best=best, acc=acc, score=correct[best],
                          best_val=val[best])
        return out

    return at(len(x_train)) if sizes is None else {m: at(m) for m in sizes}


def tuned(val, test):
    """The test value at the setting with the best validation value (ties: the first)."""
    i = int(np.nanargmax(np.asarray(val, dtype=float)))
    return float(np.asarray(test)[i]), i


def accuracy_se(acc, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` test points."""
    acc = np.asarray(acc, dtype=float)
    return np.sqrt(acc * (1 - acc) / n)


def difference_se(a, b, n: int) -> float:
    """Standard error of the difference of two accuracies, each measured on ``n`` test points
    (their binomial errors added in quadrature)."""
    return float(np.hypot(accuracy_se(a, n), accuracy_se(b, n)))


def paired_difference_se(score_a, score_b) -> float:
    """Standard error, from test-set sampling, of the difference of two accuracies measured on the *same*
    test points: the spread of the per-point differences over sqrt(n) (the paired comparison behind
    McNemar's test). ``score_a``, ``score_b``: per-point correctness (0/1), or its mean over an ensemble's
    members. It does not see the noise of the networks' initialization; add the seeds' spread to it."""
    a, b = np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a paired comparison needs two per-point scores over the same test points; got shapes "
                         f"{a.shape} and {b.shape}.")
    return float(np.std(a - b, ddof=1) / np.sqrt(len(a)))


def beats_paired(score_a, score_b) -> bool:
    """Whether a's accuracy exceeds b's on the same test points by more than :func:`paired_difference_se`:
    the test for two deterministic predictors (kernels), whose only noise is the sampling of the test set."""
    return bool(np.mean(score_a) - np.mean(score_b) > paired_difference_se(score_a, score_b))


def beats(a, b, n: int) -> bool:
    """Whether accuracy ``a`` exceeds ``b`` by more than the standard error of the difference, for two
    accuracies measured on ``n`` test points each with independent noise (finite networks, whose
    initialization adds to the test sampling). Two deterministic predictors scored on the same points:
    :func:`beats_paired`."""
    return bool(a - b > difference_se(a, b, n))


def mean_se(values, axis: int = 0):
    """Mean and standard error of the mean over seeds."""
    v = np.asarray(values, dtype=float)
    n = v.shape[axis]
    return v.mean(axis), (v.std(axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(v.mean(axis)))


def pct(x, se=None) -> str:
    """An accuracy as a percentage, with its standard error when given."""
    return f"{100 * x:.1f}%" if se is None else f"{100 * x:.1f} ± {100 * se:.1f}%"
