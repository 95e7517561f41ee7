"""The verdicts' statistical tests: one-sided, at a level fixed before the run, on the same test images.

Every verdict in the suite is one of these tests (or an intersection of them), each returning a
:class:`Test` that records what decided it (estimate, standard error, z, p, alpha, images, seeds), so
``verdict.json`` and the report can show the evidence beside the paper's number.

    >>> t = stats.paired(gap.score, vec.score, label="CNN-GAP − CNN-VEC, NTK")      # kernels: (n,)
    >>> t = stats.paired(finite.scores, kernel.score, label="best CNN − its NTK")  # finite: (seeds, n)
    >>> t = stats.pooled([(gap[d].score, vec[d].score) for d in depths])            # one test, a family
    >>> t = stats.all_of([t1, t2])                                                   # "A and B"
    >>> t = stats.equivalent(eps.score, time.score, margin=0.01)                     # "behaves like"
    >>> t.passed, t.estimate, t.se, t.p

Scores are per-image: correctness (0/1) or any per-image score (a mean over an ensemble's members, a
loss). Shape ``(n,)`` is a deterministic predictor (a kernel), whose only noise is the sampling of the
test images; shape ``(seeds, n)`` is a finite network trained from ``seeds`` independent
initializations, and the error then also counts the spread over seeds. The standard error of the
difference of means follows the two-way random-effects model (images and seeds both drawn at random):

    Var(Ā − B̄) = σ²(u − v)/n + σ²_seed,A/S + σ²_seed,B/T + σ²_int,A/(nS) + σ²_int,B/(nT)

estimated without bias by the variance of the per-image differences over n, plus, for each side with
seeds, the variance of its per-seed accuracies over S less the interaction's share (the residual mean
square of the seeds × images table over nS, which the per-image term already counts). With seeds the
seed term has S − 1 degrees of freedom, so the p value is Student's t with Welch–Satterthwaite degrees
of freedom (three seeds and a normal approximation would pass a null effect about twice as often as
alpha); without seeds it is the normal approximation of the paired (McNemar) comparison.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _st

ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Test:
    """One decisive test. ``passed`` is ``p < alpha``; ``estimate`` is in the scores' unit (accuracy as
    a fraction for correctness scores), ``z = estimate / se`` (for an equivalence test, the smaller of
    its two one-sided statistics), ``df`` the degrees of freedom behind ``p`` (``inf``: normal)."""
    label: str
    estimate: float
    se: float
    z: float
    p: float
    alpha: float
    passed: bool
    n: int = 0                       # test images behind it
    seeds: int = 0                   # seeds of the finite side(s) (0: deterministic on both sides)
    df: float = math.inf
    kind: str = "greater"            # greater | pooled | equivalent | all_of
    margin: Optional[float] = None   # the equivalence margin
    parts: tuple = ()                # the tests of an all_of
    unit: str = "points"             # the estimate's unit: "points" (accuracy fractions shown ×100) or as measured

    def record(self) -> dict:
        """The test as plain numbers for ``verdict.json``."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "parts" and not (k == "unit" and v == "points")}
        out["df"] = None if math.isinf(self.df) else self.df
        if self.parts:
            out["parts"] = [t.record() for t in self.parts]
        return out

    @property
    def numbers(self) -> str:
        """The test's numbers in words (accuracy scores: points): ``+1.52 ± 0.41 points, z = 3.71, p = 0.0001 < 0.05``."""
        if self.kind == "all_of":
            return f"{sum(t.passed for t in self.parts)} of {len(self.parts)} parts pass (largest p {self.p:.3g})"
        margin = f" within ±{100 * self.margin:.1f}" if self.margin is not None else ""
        if self.unit != "points":
            return (f"{self.estimate:+.4g} ± {self.se:.3g} {self.unit}, t = {self.z:.2f} ({self.df:.1f} df), "
                    f"p = {self.p:.3g} {'<' if self.passed else '≥'} {self.alpha:g}")
        return (f"{100 * self.estimate:+.2f} ± {100 * self.se:.2f} points{margin}, z = {self.z:.2f}, "
                f"p = {self.p:.3g} {'<' if self.passed else '≥'} {self.alpha:g}")

    def __str__(self) -> str:
        return f"{self.label}: {self.numbers}"


def _as_scores(score, what: str) -> np.ndarray:
    s = np.asarray(score, dtype=float)
    if s.ndim not in (1, 2) or s.shape[-1] < 2:
        raise ValueError(f"{what} must be per-image scores of shape (n,) or (seeds, n) with n >= 2; got shape {s.shape}.")
    if s.ndim == 2 and s.shape[0] < 2:
        raise ValueError(f"{what} has one seed (shape {s.shape}): one initialization cannot measure the spread over "
                         "seeds; train at least 2 (the verdicts use 3), or pass shape (n,) for a deterministic predictor.")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what} has {int(np.size(s) - np.isfinite(s).sum())} NaN or infinite scores: a diverged run "
                         "is a failure to report, not a score.")
    return s


def seed_component(s: np.ndarray) -> tuple[float, int]:
    """The seeds' share of the variance of the grand mean of a (seeds, n) table, and its degrees of
    freedom: var(per-seed means)/S less the interaction's share (ANOVA), clipped at zero."""
    if s.ndim == 1:
        return 0.0, 0
    S, n = s.shape
    seed_means = s.mean(axis=1)
    resid = s - seed_means[:, None] - s.mean(axis=0)[None, :] + s.mean()
    ms_int = float((resid ** 2).sum() / ((S - 1) * (n - 1)))
    return max(float(seed_means.var(ddof=1)) - ms_int / n, 0.0) / S, S - 1


def _difference(a, b):
    a, b = _as_scores(a, "score_a"), _as_scores(b, "score_b")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a paired test needs both sides scored on the same test images; got {a.shape[-1]} and "
                         f"{b.shape[-1]} images.")
    n = a.shape[-1]
    d = (a.mean(0) if a.ndim == 2 else a) - (b.mean(0) if b.ndim == 2 else b)
    parts = [(float(d.var(ddof=1)) / n, n - 1), seed_component(a), seed_component(b)]
    var = sum(c for c, _ in parts)
    seeded = [k for c, k in parts[1:] if k and c > 0]
    # Welch–Satterthwaite: only the seed terms have few degrees of freedom; where every seed term is zero
    # (clipped: the seeds vary less than their images do) the error is the images' alone, normal as for kernels
    df = math.inf if not seeded or var == 0 else var ** 2 / sum(c ** 2 / k for c, k in parts if k and c > 0)
    seeds = max((x.shape[0] for x in (a, b) if x.ndim == 2), default=0)
    return float(d.mean()), math.sqrt(var), df, n, seeds


def _sf(z: float, df: float) -> float:
    """One-sided p value of a statistic z: normal, or Student's t with df degrees of freedom."""
    if math.isnan(z):
        return 1.0
    return float(_st.norm.sf(z) if math.isinf(df) else _st.t.sf(z, df))


def _z(estimate: float, se: float) -> float:
    if se > 0:
        return estimate / se
    return math.inf if estimate > 0 else (-math.inf if estimate < 0 else math.nan)


def _check_alpha(alpha: float):
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")


def greater(estimate: float, se: float, alpha: float = ALPHA, *, label: str = "", n: int = 0, seeds: int = 0,
            df: float = math.inf, kind: str = "greater") -> Test:
    """One-sided test that a quantity with this estimate and standard error is above zero."""
    _check_alpha(alpha)
    z = _z(estimate, se)
    p = _sf(z, df)
    return Test(label=label, estimate=float(estimate), se=float(se), z=float(z), p=p, alpha=alpha, passed=p < alpha,
                n=int(n), seeds=int(seeds), df=float(df), kind=kind)


def paired(score_a: ArrayLike, score_b: ArrayLike, alpha: float = ALPHA, *, label: str = "A − B") -> Test:
    """One-sided test that A beats B on the same test images (mean per-image score higher).

    The error counts the test images' sampling (paired: only the images where the two differ move it) and,
    for a side with seeds, the spread over seeds (module docstring); with seeds the p value is Student's t
    with Welch–Satterthwaite degrees of freedom, else normal.

    Parameters
    ----------
    score_a, score_b : array_like, shape (n,) or (seeds, n)
        Per-image scores (1 right, 0 wrong): ``(n,)`` for a deterministic predictor (a kernel),
        ``(seeds, n)`` for finite networks from independent initializations (at least 2 seeds).
    alpha : float
        The test's level (0.05 for the verdicts).
    label : str
        What is compared, in words (``"finite − NTK"``).

    Returns
    -------
    Test
        ``estimate`` (A − B), ``se``, ``z``, ``p``, ``alpha``, ``passed`` (p < alpha), ``n``, ``seeds``, ``df``.
    """
    _check_alpha(alpha)
    est, se, df, n, seeds = _difference(score_a, score_b)
    return greater(est, se, alpha, label=label, n=n, seeds=seeds, df=df)


def independent(a: ArrayLike, b: ArrayLike, alpha: float = ALPHA, *, label: str = "A − B", unit: str) -> Test:
    """One-sided test that quantity A's mean is above B's, from independent draws of each (one number per
    seed: a training speed, a loss), with Welch's t: the error is the draws' spread alone.

    Parameters
    ----------
    a, b : array_like
        One measurement per independent draw (at least 2 each), finite.
    alpha : float
        The test's level.
    label : str
        What is tested, in words.
    unit : str
        The measurements' unit (``"steps"``), shown with the estimate.

    Returns
    -------
    Test
        Estimate mean(a) − mean(b), its standard error, Welch's t and degrees of freedom, and p.
    """
    a, b = (np.asarray(v, dtype=float).ravel() for v in (a, b))
    for name, v in (("a", a), ("b", b)):
        if len(v) < 2 or not np.all(np.isfinite(v)):
            raise ValueError(f"independent: {name} must hold at least 2 finite measurements (one per draw); got {v}.")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else math.inf
    return dataclasses.replace(greater(float(a.mean() - b.mean()), se, alpha, label=label, seeds=max(len(a), len(b)),
                                       df=df), unit=unit)


def pooled(pairs: Sequence, alpha: float = ALPHA, *, label: str = "pooled A − B") -> Test:
    """One test of the mean per-image difference over a family of correlated comparisons on the same test
    images (depths, kernels, architectures): A's scores averaged over the family against B's.

    Parameters
    ----------
    pairs : sequence of (score_a, score_b)
        Each side ``(n,)`` or ``(seeds, n)``, every pair on the same n images (and, where several pairs have
        seeds, the same number of seeds: seed s of each member is averaged into one composite draw, and
        composite draws are independent).
    alpha : float
        The test's level.
    label : str
        What is compared, in words.

    Returns
    -------
    Test
        As :func:`paired`'s, with ``kind="pooled"``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pooled needs at least one (score_a, score_b) pair.")
    sides = []
    for j in (0, 1):
        arrs = [_as_scores(p[j], f"pair {i} side {'ab'[j]}") for i, p in enumerate(pairs)]
        seeds = {x.shape[0] for x in arrs if x.ndim == 2}
        ns = {x.shape[-1] for x in arrs}
        if len(ns) > 1:
            raise ValueError(f"pooled pairs must all be scored on the same test images; got image counts {sorted(ns)}.")
        if len(seeds) > 1:
            raise ValueError(f"pooled pairs with seeds must have the same number of seeds on a side; got {sorted(seeds)}.")
        sides.append(np.mean(np.broadcast_arrays(*arrs), axis=0))
    t = paired(sides[0], sides[1], alpha, label=label)
    return dataclasses.replace(t, kind="pooled")


def all_of(tests: Sequence[Test], *, label: str = "") -> Test:
    """Intersection–union test of "A and B and …": passes when every part passes at its own level; its p value
    is the largest part's (the test is then at that level, with no correction needed).

    Parameters
    ----------
    tests : sequence of Test
        The parts, each fixed before the run.
    label : str
        The claim in words (default: the parts' labels joined by "and").

    Returns
    -------
    Test
        ``kind="all_of"``, the weakest part's estimate, error and p, and every part in ``parts``.
    """
    tests = list(tests)
    if not tests:
        raise ValueError("all_of needs at least one test.")
    worst = max(tests, key=lambda t: t.p)
    return Test(label=label or " and ".join(t.label for t in tests), estimate=worst.estimate, se=worst.se, z=worst.z,
                p=worst.p, alpha=max(t.alpha for t in tests), passed=all(t.passed for t in tests), n=worst.n,
                seeds=max(t.seeds for t in tests), df=worst.df, kind="all_of", parts=tuple(tests))


def equivalent(score_a: ArrayLike, score_b: ArrayLike, margin: float, alpha: float = ALPHA, *,
               label: str = "|A − B|") -> Test:
    """Two one-sided tests (TOST) that A and B differ by less than ``margin`` on the same test images: passes
    when the difference is shown both above −margin and below +margin at ``alpha``.

    Parameters
    ----------
    score_a, score_b : array_like, shape (n,) or (seeds, n)
        Per-image scores, as for :func:`paired`.
    margin : float
        The equivalence margin in the scores' unit (0.01 = one point of accuracy), stated before the run.
    alpha : float
        The test's level.
    label : str
        What is compared, in words.

    Returns
    -------
    Test
        ``kind="equivalent"``, ``z`` the smaller of the two one-sided statistics, ``margin``.
    """
    _check_alpha(alpha)
    if not margin > 0:
        raise ValueError(f"margin must be positive (in the scores' unit: 0.01 = one accuracy point); got {margin!r}.")
    est, se, df, n, seeds = _difference(score_a, score_b)
    z = min(_z(est + margin, se), _z(margin - est, se))
    p = _sf(z, df)
    return Test(label=label, estimate=est, se=se, z=float(z), p=p, alpha=alpha, passed=p < alpha, n=n, seeds=seeds,
                df=df, kind="equivalent", margin=float(margin))


def power(effect: float, se: float, alpha: float = ALPHA) -> float:
    """Probability that a one-sided test at ``alpha`` passes when the true effect is ``effect`` and the
    estimate's standard error is ``se`` (normal approximation)."""
    _check_alpha(alpha)
    return float(_st.norm.sf(_st.norm.isf(alpha) - effect / se))


def images_for_power(effect: float, sd: float, target: float = 0.8, alpha: float = ALPHA) -> int:
    """Test images a paired test needs to pass with probability ``target`` when the true effect is
    ``effect`` and the per-image differences have standard deviation ``sd``: n = ((z_α + z_β)·sd/effect)²."""
    _check_alpha(alpha)
    if not effect > 0:
        raise ValueError(f"effect must be positive to plan for power; got {effect!r}.")
    return int(math.ceil(((_st.norm.isf(alpha) + _st.norm.isf(1 - target)) * sd / effect) ** 2))


# ----------------------------------------------------------------------------------------------
# descriptive statistics: errors beside the numbers, choices on validation, trends against size


def accuracy_se(acc: Union[float, ArrayLike], n: int) -> Union[float, np.ndarray]:
    """Binomial standard error of an accuracy measured on ``n`` test images (an array for an array)."""
    acc = np.asarray(acc, dtype=float)
    return np.sqrt(acc * (1 - acc) / n)


def mean_se(values: ArrayLike, axis: int = 0) -> tuple[Union[float, np.ndarray], Union[float, np.ndarray]]:
    """Mean and standard error of the mean over seeds (axis ``axis``); zero error for one seed."""
    v = np.asarray(values, dtype=float)
    n = v.shape[axis]
    return v.mean(axis), (v.std(axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(v.mean(axis)))


def tuned(val: Sequence[float], test: Sequence[float]) -> tuple[float, int]:
    """``(test value, index)`` at the setting with the best validation value (ties: the first)."""
    i = int(np.nanargmax(np.asarray(val, dtype=float)))
    return float(np.asarray(test)[i]), i


@dataclasses.dataclass(frozen=True)
class LogTrend:
    """A straight line through values against log size: ``value ≈ intercept + slope · ln(size)``."""
    slope: float
    intercept: float
    largest: float           # the largest measured size

    def at(self, size: float) -> float:
        return self.intercept + self.slope * float(np.log(size))

    def reaches(self, level: float) -> Optional[float]:
        """The size beyond the largest measured one where the line reaches ``level``; None when the line is
        flat, moves away from it, or is already past it there."""
        ahead = level - self.at(self.largest)
        if self.slope == 0 or ahead * self.slope <= 0:
            return None
        size = float(np.exp((level - self.intercept) / self.slope))
        return size if np.isfinite(size) else None


def log_trend(sizes: Sequence[float], values: Sequence[float]) -> LogTrend:
    """Least-squares fit of ``values`` against ``ln(sizes)`` (a gap against training-set size, say), for
    extrapolating where it would cross a level. An extrapolation of a measured trend, not a measurement."""
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    if sizes.shape != values.shape or sizes.ndim != 1 or len(sizes) < 2 or np.any(sizes <= 0):
        raise ValueError(f"a trend needs two or more positive sizes with one value each; got sizes {sizes.tolist()} "
                         f"and {values.size} values.")
    slope, intercept = np.polyfit(np.log(sizes), values, 1)
    return LogTrend(float(slope), float(intercept), float(sizes.max()))
