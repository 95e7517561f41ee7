"""nbkernels.stats by simulation: under no effect each test passes about alpha of the time, under a stated
effect with the power the normal approximation predicts; and its errors on bad input."""
import math

import numpy as np
import pytest

from nbkernels import stats

DRAWS = 3000
ALPHA = 0.05
# the sampling error of a pass rate over DRAWS draws at alpha: 0.004; 3.5 of them either side
SLACK = 3.5 * math.sqrt(ALPHA * (1 - ALPHA) / DRAWS)


def _images(rng, n):
    """Per-image difficulty: the chance a typical predictor gets each image right (CIFAR-like spread)."""
    return rng.beta(2, 3, size=n)


def _kernel_pair(rng, n, effect=0.0, shared=0.7):
    """Two deterministic predictors' 0/1 scores on the same images, correlated through the images: with
    probability ``shared`` they answer an image alike. ``effect``: A's accuracy above B's."""
    q = _images(rng, n)
    u = rng.random(n)
    same = rng.random(n) < shared
    a_u = np.where(same, u, rng.random(n))
    b = (u < q).astype(float)
    a = (a_u < np.clip(q + effect, 0, 1)).astype(float)
    return a, b


def _finite(rng, q, seeds, seed_sd, effect=0.0):
    """(seeds, n) 0/1 scores of finite networks: each seed shifts every image's chance by one draw."""
    shift = rng.normal(0, seed_sd, size=(seeds, 1))
    return (rng.random((seeds, len(q))) < np.clip(q + effect + shift, 0, 1)).astype(float)


def _rate(fn, draws=DRAWS, seed=0):
    rng = np.random.default_rng(seed)
    return np.mean([fn(rng).passed for _ in range(draws)])


def test_paired_kernels_null_passes_alpha():
    rate = _rate(lambda rng: stats.paired(*_kernel_pair(rng, 500)))
    assert abs(rate - ALPHA) < SLACK, rate


def test_paired_seeds_null_passes_alpha():
    """A finite network (3 seeds, a large seed spread) against a kernel of the same expected accuracy:
    the seeds' spread must be in the error, with its few degrees of freedom."""
    def draw(rng):
        q = _images(rng, 400)
        kernel = (rng.random(400) < q).astype(float)
        return stats.paired(_finite(rng, q, 3, 0.05), kernel)
    rate = _rate(draw)
    assert abs(rate - ALPHA) < SLACK, rate


def test_paired_seeds_both_sides_null():
    def draw(rng):
        q = _images(rng, 300)
        return stats.paired(_finite(rng, q, 4, 0.02), _finite(rng, q, 3, 0.02))
    rate = _rate(draw)
    assert abs(rate - ALPHA) < SLACK, rate


def test_seed_spread_ignored_would_be_too_loose():
    """The check above can fail: the same draws judged by the images' error alone pass far too often."""
    rng = np.random.default_rng(1)
    passes = []
    for _ in range(1000):
        q = _images(rng, 400)
        a, b = _finite(rng, q, 3, 0.05), (rng.random(400) < q).astype(float)
        passes.append(stats.paired(a.mean(0), b).passed)  # the seeds' mean treated as deterministic
    assert np.mean(passes) > 2 * ALPHA


def test_pooled_correlated_family_null():
    """Four comparisons sharing images (depths of one architecture): one pooled test at alpha."""
    def draw(rng):
        q = _images(rng, 400)
        u = rng.random(400)
        pairs = []
        for _ in range(4):
            v = np.where(rng.random(400) < 0.8, u, rng.random(400))
            pairs.append(((v < q).astype(float), (rng.random(400) < q).astype(float)))
        return stats.pooled(pairs)
    rate = _rate(draw)
    assert abs(rate - ALPHA) < SLACK, rate


def test_pooled_with_seeds_null():
    def draw(rng):
        q = _images(rng, 300)
        return stats.pooled([(_finite(rng, q, 3, 0.02), (rng.random(300) < q).astype(float)) for _ in range(3)])
    rate = _rate(draw)
    assert abs(rate - ALPHA) < SLACK, rate


@pytest.mark.parametrize("effect", [0.02, 0.04])
def test_paired_power_matches_normal_approximation(effect):
    rng = np.random.default_rng(2)
    tests = [stats.paired(*_kernel_pair(rng, 800, effect=effect)) for _ in range(DRAWS)]
    rate = np.mean([t.passed for t in tests])
    predicted = stats.power(np.mean([t.estimate for t in tests]), np.mean([t.se for t in tests]))
    assert 0.2 < predicted < 0.98
    assert abs(rate - predicted) < 3.5 * math.sqrt(predicted * (1 - predicted) / DRAWS) + 0.02, (rate, predicted)


def test_images_for_power_gives_that_power():
    """Plan the test set from the per-image spread, then check the planned size has the power asked."""
    rng = np.random.default_rng(3)
    a, b = _kernel_pair(rng, 20000, effect=0.02)
    n = stats.images_for_power(0.02, float(np.std(a - b)), target=0.8)
    tests = [stats.paired(*_kernel_pair(rng, n, effect=0.02)) for _ in range(1500)]
    assert abs(np.mean([t.passed for t in tests]) - 0.8) < 0.05


def test_equivalent_at_margin_passes_at_most_alpha():
    """At the margin's edge the true difference is not inside it: TOST must pass at most alpha."""
    rate = _rate(lambda rng: stats.equivalent(*_kernel_pair(rng, 2000, effect=0.03), margin=0.03))
    assert rate < ALPHA + SLACK, rate


def test_equivalent_passes_identical_predictors_with_power():
    rate = _rate(lambda rng: stats.equivalent(*_kernel_pair(rng, 2000, effect=0.0, shared=0.9), margin=0.03),
                 draws=500)
    assert rate > 0.9, rate


def test_all_of_is_at_level_and_needs_each_part():
    def draw(rng):
        return stats.all_of([stats.paired(*_kernel_pair(rng, 400, effect=0.2)), stats.paired(*_kernel_pair(rng, 400))])
    rate = _rate(draw, draws=2000)
    assert rate < ALPHA + SLACK, rate
    t = draw(np.random.default_rng(0))
    assert len(t.parts) == 2 and t.p == max(p.p for p in t.parts) and t.kind == "all_of"


def test_test_records_every_number():
    a, b = _kernel_pair(np.random.default_rng(4), 1000, effect=0.05)
    t = stats.paired(a, b, label="GAP − VEC")
    r = t.record()
    assert {"estimate", "se", "z", "p", "alpha", "passed", "n", "seeds", "label"} <= set(r)
    assert r["n"] == 1000 and r["seeds"] == 0 and r["df"] is None
    assert t.estimate == pytest.approx(a.mean() - b.mean())
    assert t.se == pytest.approx(np.std(a - b, ddof=1) / math.sqrt(1000))
    assert t.z == pytest.approx(t.estimate / t.se) and t.passed == (t.p < 0.05)
    assert "GAP − VEC" in str(t)


def test_seed_component_unbiased():
    """The seed term's estimate (var of per-seed means less the interaction's share) averages to the
    true seed variance over S."""
    rng = np.random.default_rng(5)
    q = _images(rng, 300)
    comps = [stats.seed_component(_finite(rng, q, 3, 0.03))[0] for _ in range(3000)]
    assert np.mean(comps) == pytest.approx(0.03 ** 2 / 3, rel=0.1)


@pytest.mark.parametrize("a, b, match", [
    (np.zeros((1, 10)), np.zeros(10), "one seed"),
    (np.zeros(10), np.zeros(9), "same test images"),
    (np.array([0.0, np.nan, 1.0]), np.zeros(3), "NaN"),
    (np.zeros((2, 2, 2)), np.zeros(2), r"shape \(n,\) or \(seeds, n\)"),
])
def test_bad_scores_say_what_is_wrong(a, b, match):
    with pytest.raises(ValueError, match=match):
        stats.paired(a, b)


def test_bad_arguments():
    a, b = np.ones(5), np.zeros(5)
    with pytest.raises(ValueError, match="alpha"):
        stats.paired(a, b, alpha=1.5)
    with pytest.raises(ValueError, match="margin"):
        stats.equivalent(a, b, margin=0)
    with pytest.raises(ValueError, match="same number of seeds"):
        stats.pooled([(np.ones((2, 5)), b), (np.ones((3, 5)), b)])
    with pytest.raises(ValueError, match="at least one"):
        stats.all_of([])


def test_a_seed_term_clipped_to_zero_leaves_the_normal_test_and_no_degrees_of_freedom():
    rng = np.random.default_rng(0)
    x = (rng.random(1000) < 0.6).astype(float)
    same = np.tile(x, (3, 1))                      # three seeds that agree: their variance term is zero
    t = stats.paired(same, (rng.random(1000) < 0.5).astype(float))
    assert math.isinf(t.df) and t.record()["df"] is None      # not "999 df" beside "3 seeds"
    spread = same.copy()
    spread[0, :100], spread[1, :100] = 1.0, 0.0    # seeds that differ in accuracy: Student's t with few df
    assert stats.paired(spread, x).df < 10


def test_independent_draws_are_tested_with_welchs_t():
    from scipy import stats as st
    a, b = [10.0, 12.0, 11.0], [8.0, 9.5, 7.0, 8.5]
    t = stats.independent(a, b, label="base − centered", unit="steps")
    ref = st.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert t.estimate == pytest.approx(np.mean(a) - np.mean(b)) and t.p == pytest.approx(ref.pvalue)
    assert t.passed and "steps" in t.numbers and "points" not in t.numbers and t.record()["unit"] == "steps"
    assert "unit" not in stats.paired(np.ones(5), np.zeros(5)).record()   # accuracy tests keep their records
    assert not stats.independent(b, a, unit="steps").passed
    with pytest.raises(ValueError, match="at least 2 finite"):
        stats.independent([1.0, float("nan")], b, unit="steps")
