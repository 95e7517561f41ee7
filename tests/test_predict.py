import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import predict as P

RNG = np.random.default_rng(1)


def _problem(m=30, n=12, d=5, k=3):
    x = RNG.normal(size=(m + n, d))
    arch = nbk.fcn(2, 8, out_dim=k)
    K = arch.kernel(x).ntk
    y = np.eye(k)[RNG.integers(0, k, m)] - 1.0 / k
    return K[:m, :m], K[m:, :m], y, K[m:, m:]


def test_infinite_time_equals_regularized_solve():
    ktt, kst, y, _ = _problem()
    for reg in (0.0, 0.1):
        kreg = ktt + reg * np.trace(ktt) / len(ktt) * np.eye(len(ktt))
        expected = kst @ np.linalg.solve(kreg, y)
        np.testing.assert_allclose(P.gradient_descent_mse(ktt, kst, y, diag_reg=reg), expected, rtol=1e-8, atol=1e-10)
        late = P.gradient_descent_mse(ktt, kst, y, t=1e12, diag_reg=reg)
        np.testing.assert_allclose(late, expected, rtol=1e-6, atol=1e-8)


def test_time_zero_predicts_zero_and_array_of_times():
    ktt, kst, y, _ = _problem()
    ts = np.array([0.0, 1.0, 10.0, 100.0])
    out = P.gradient_descent_mse(ktt, kst, y, t=ts)
    assert out.shape == (4,) + (kst.shape[0], y.shape[1])
    np.testing.assert_array_equal(out[0], 0.0)
    for i, t in enumerate(ts):
        np.testing.assert_allclose(out[i], P.gradient_descent_mse(ktt, kst, y, t=t), rtol=1e-12, atol=1e-14)


def test_dynamics_match_ode_and_neural_tangents_normalization():
    # f_train(t) = (I - exp(-lr t K / (m k))) y: check against scipy's expm
    import scipy.linalg
    ktt, _, y, _ = _problem(m=10)
    m, k = y.shape
    lr, t = 0.7, 35.0
    expected = (np.eye(m) - scipy.linalg.expm(-lr * t * ktt / (m * k))) @ y
    np.testing.assert_allclose(P.gradient_descent_mse(ktt, None, y, t=t, learning_rate=lr), expected, rtol=1e-8, atol=1e-10)


def test_training_loss_decreases_monotonically():
    ktt, _, y, _ = _problem()
    ts = np.logspace(-1, 6, 40)
    losses = P.mse(P.gradient_descent_mse(ktt, None, y, t=ts), y)
    assert np.all(np.diff(losses) <= 1e-12)
    assert losses[-1] < 1e-6 * losses[0]


def test_posterior_variance_nonnegative_and_shrinks_at_training_points():
    ktt, kst, y, kss = _problem()
    mean, var = P.nngp_posterior(ktt, kst, y, kss, diag_reg=1e-3)
    assert np.all(var >= 0)
    assert np.all(var <= np.diag(kss) + 1e-12)
    _, var_train = P.nngp_posterior(ktt, ktt, y, ktt, diag_reg=1e-3)
    noise = 1e-3 * np.trace(ktt) / len(ktt)
    assert np.all(var_train <= 1.01 * noise)  # at the training points only the noise level remains
    np.testing.assert_allclose(mean, P.gradient_descent_mse(ktt, kst, y, diag_reg=1e-3), rtol=1e-10)


def test_metrics():
    y = np.array([0, 1, 2])
    pred = np.eye(3)[[0, 1, 1]]
    assert P.accuracy(pred, y) == pytest.approx(2 / 3)
    assert P.accuracy(pred, np.eye(3)[y]) == pytest.approx(2 / 3)
    assert P.mse(np.eye(3)[y] - 1 / 3, np.eye(3)[y] - 1 / 3) == 0


def _ill_conditioned(m=60, decay=1e-10):
    q, _ = np.linalg.qr(RNG.normal(size=(m, m)))
    eigs = np.logspace(0, np.log10(decay), m)
    return (q * eigs) @ q.T


def test_precision_error_in_float32_not_float64():
    K = _ill_conditioned()
    y = RNG.normal(size=(60, 2))
    with pytest.raises(P.PrecisionError) as info:
        P.gradient_descent_mse(K.astype(np.float32), None, y)
    err = info.value
    assert err.min_relative_eigenvalue < err.resolution == pytest.approx(np.finfo(np.float32).eps)
    assert "float64" in str(err) and "diag_reg >=" in str(err)
    out = P.gradient_descent_mse(K, None, y)  # float64: resolves 1e-10
    np.testing.assert_allclose(out, y, atol=1e-4)
    # the suggested diag_reg fixes float32
    P.gradient_descent_mse(K.astype(np.float32), None, y, diag_reg=err.suggested_diag_reg)
    with pytest.raises(P.PrecisionError):  # the eigendecomposition path checks too
        P.gradient_descent_mse(K.astype(np.float32), None, y, t=1.0)
    with pytest.warns(P.PrecisionWarning):
        P.gradient_descent_mse(K.astype(np.float32), None, y, t=1.0, on_precision="warn")


def test_nan_kernel_is_refused():
    K = np.eye(3); K[0, 1] = np.nan
    with pytest.raises(P.PrecisionError, match="NaN"):
        P.gradient_descent_mse(K, None, np.ones((3, 1)))


def test_shape_errors():
    ktt, kst, y, _ = _problem()
    with pytest.raises(ValueError, match="transposed"):
        P.gradient_descent_mse(ktt, kst.T, y)
    with pytest.raises(ValueError, match="y_train has 5 rows"):
        P.gradient_descent_mse(ktt, kst, y[:5])


def test_power_law_fit_and_critical_size():
    i = np.arange(1, 2001)
    eigs = 3.0 * i ** -1.5
    alpha, c = P.power_law_fit(eigs)
    assert alpha == pytest.approx(1.5, rel=1e-6) and c == pytest.approx(1.0, rel=1e-6)
    m32 = P.critical_size(alpha, c, np.float32)
    assert c * m32 ** -alpha == pytest.approx(np.finfo(np.float32).eps)
    assert P.critical_size(alpha, c, np.float64) > m32


def test_stopping_map_agrees_with_direct_computation():
    ktt, _, y, _ = _problem()
    m, k = y.shape
    eigs = P.spectrum(ktt)
    np.testing.assert_allclose(eigs, np.sort(np.linalg.eigvalsh(ktt))[::-1])
    reg = P.absolute_reg(ktt, 0.1)
    t = P.reg_to_time(reg, m, k, learning_rate=2.0)
    # both filters are one half at lambda = reg
    assert P.ridge_filter(reg, reg) == pytest.approx(0.5)
    assert P.flow_filter(reg, t, m, k, learning_rate=2.0) == pytest.approx(0.5)
    assert P.time_to_reg(t, m, k, 2.0) == pytest.approx(reg)
    # the filters, applied in the eigenbasis, reproduce the predictions
    w, v = np.linalg.eigh(ktt)
    direct = v @ np.diag(P.flow_filter(w, t, m, k, 2.0)) @ v.T @ y
    np.testing.assert_allclose(P.gradient_descent_mse(ktt, None, y, t=t, learning_rate=2.0), direct, rtol=1e-8, atol=1e-10)
    ridge = v @ np.diag(P.ridge_filter(w, reg)) @ v.T @ y
    np.testing.assert_allclose(P.gradient_descent_mse(ktt, None, y, diag_reg=0.1), ridge, rtol=1e-8, atol=1e-10)


def test_augmented_ensemble_k1_equals_plain_and_averages(tmp_path):
    from nbkernels import cache, data
    arch = nbk.cnn(1, 8, readout="vec")
    x = RNG.normal(size=(16, 4, 4, 1)); xt = RNG.normal(size=(5, 4, 4, 1))
    y = data.one_hot(RNG.integers(0, 10, 16))
    kfn = lambda a, b: arch.kernel(a, b, progress=False).ntk
    plain = P.gradient_descent_mse(kfn(x, None), kfn(xt, x), y)
    aug = lambda a, seed: data.augment(a, seed, crop_padding=1)
    mean1, _ = P.augmented_ensemble(kfn, x, y, xt, 1, aug)
    np.testing.assert_allclose(mean1, plain, rtol=1e-12)
    c = cache.Cache(tmp_path)
    mean3, running = P.augmented_ensemble(kfn, x, y, xt, 3, aug, cache=c, cache_key={"t": 1})
    manual = (plain + P.gradient_descent_mse(kfn(aug(x, 1), None), kfn(xt, aug(x, 1)), y)
              + P.gradient_descent_mse(kfn(aug(x, 2), None), kfn(xt, aug(x, 2)), y)) / 3
    np.testing.assert_allclose(mean3, manual, rtol=1e-10)
    assert len(running) == 3
    again, _ = P.augmented_ensemble(lambda a, b: 1 / 0, x, y, xt, 3, aug, cache=c, cache_key={"t": 1})
    np.testing.assert_array_equal(again, mean3)  # served from the cache


def test_ignore_precision_returns_what_a_plain_solve_does():
    """on_precision='ignore' on an indefinite kernel: the LU answer (a careless pipeline's), not an error."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 8))
    k = a @ a.T
    k[0, 0] = -1.0                                    # indefinite: Cholesky fails
    y = rng.normal(size=(8, 2))
    out = P.gradient_descent_mse(k, k, y, on_precision="ignore")
    np.testing.assert_allclose(out, k @ np.linalg.solve(k, y), rtol=1e-8, atol=1e-8)
    with pytest.raises(P.PrecisionError):
        P.gradient_descent_mse(k, k, y)


def test_rounding_cliff_orders_precisions_and_finds_the_decay():
    """A kernel whose smallest eigenvalue decays like m^-2: lower precisions break at smaller m."""
    rng = np.random.default_rng(1)
    n = 200
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    k = (q * np.arange(1, n + 1, dtype=float) ** -2.0) @ q.T
    sizes = [25, 50, 100, 200]
    crit = {d: P.rounding_cliff(k, sizes, d) for d in ("bfloat16", "float16", "float32")}
    assert crit["bfloat16"].critical < crit["float16"].critical < crit["float32"].critical
    assert all(np.isfinite(c.critical) and c.critical > 0 for c in crit.values())
    assert 1.0 < crit["float16"].alpha < 4.0       # leading blocks of a rotated spectrum decay fast


@pytest.mark.parametrize("decay", [1.5, 2.0])
def test_rounding_cliff_predicts_where_rounded_kernels_go_indefinite(decay):
    """Against the real thing: round the leading blocks and find the first that is not positive definite.
    The semicircle criterion lands within a factor of 2 of it (or past the grid when nothing breaks);
    the first-order criterion (lambda_min = sigma) is an order of magnitude late."""
    rng = np.random.default_rng(1)
    n = 800
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    k = (q * np.arange(1, n + 1, dtype=float) ** -decay) @ q.T
    sizes = [25, 50, 100, 200, 400, 800]
    broke_somewhere = False
    for d in ("bfloat16", "float16", "float32"):
        cliff = P.rounding_cliff(k, sizes, d)
        broken = [m for m in sizes if np.linalg.eigvalsh(P.round_to(k[:m, :m], d))[0] <= 0]
        if broken:
            broke_somewhere = True
            assert broken[0] / 2 <= cliff.critical <= 2 * broken[0], (d, cliff.critical, broken[0])
            assert cliff.critical_first_order > 3 * broken[0]
        else:
            assert cliff.critical > max(sizes) / 2, (d, cliff.critical)
    assert broke_somewhere


def test_the_paired_error_counts_only_disagreements():
    """Two classifiers scored on the same points: agreeing points carry no noise for their difference."""
    from nbkernels import stats
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    a = P.correct(np.eye(3)[[0, 1, 2, 0, 1, 2, 1, 0]], y)      # right on the first six
    b = P.correct(np.eye(3)[[0, 1, 2, 0, 0, 0, 0, 0]], y)      # right on five, the seventh among them
    assert a.tolist() == [True] * 6 + [False] * 2 and b.sum() == 5
    d = a.astype(float) - b
    assert stats.paired(a, b).se == pytest.approx(d.std(ddof=1) / np.sqrt(8))
    assert stats.paired(a, a).se == 0.0
    unpaired = np.hypot(*(np.sqrt(x.mean() * (1 - x.mean()) / 8) for x in (a, b)))
    assert stats.paired(a, b).se < unpaired
    with pytest.raises(ValueError, match="same test images"):
        stats.paired(a, b[:4])


def test_log_trend_extrapolates_only_forward_and_toward_the_level():
    """A gap of +1 point per doubling from -3 at 100 images reaches 0 at 800 and +1 at 1,600; a level behind
    the line (already passed) or one it moves away from gives None; bad sizes are refused."""
    from nbkernels import stats
    t = stats.log_trend([100, 200, 400], [-3.0, -2.0, -1.0])
    assert t.slope * np.log(2) == pytest.approx(1.0) and t.at(400) == pytest.approx(-1.0)
    assert t.reaches(0.0) == pytest.approx(800) and t.reaches(1.0) == pytest.approx(1600)
    assert t.reaches(-2.5) is None and t.reaches(-10.0) is None
    assert stats.log_trend([100, 200], [1.0, 1.0]).reaches(2.0) is None          # flat
    falling = stats.log_trend([100, 200, 400], [1.0, 0.0, -1.0])
    assert falling.reaches(-2.0) == pytest.approx(800) and falling.reaches(0.5) is None
    with pytest.raises(ValueError, match="positive sizes"):
        stats.log_trend([0, 100], [1.0, 2.0])
    with pytest.raises(ValueError, match="two or more"):
        stats.log_trend([100], [1.0])


def test_kernel_accuracies_reports_the_regularizer_chosen_on_validation():
    """The chosen diag_reg is the best on the validation half; its score is scored on the other half only."""
    from nbkernels import study
    rng = np.random.default_rng(3)
    x_tr, x_te = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    w = rng.normal(size=(6, 3))
    y_tr, y_te = np.eye(3)[(x_tr @ w).argmax(1)], np.eye(3)[(x_te @ w).argmax(1)]
    regs = [1e-4, 1e-1, 10.0, 1e3]
    r = study.kernel_accuracies(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, diag_regs=regs)
    assert isinstance(r, study.KernelAccuracies) and r.diag_regs == regs and r.n_report == 15
    for g in ("nngp", "ntk"):
        k = r.fit(g)
        assert k is getattr(r, g) and isinstance(k, study.KernelFit)
        assert k.best == int(np.argmax(k.val)) and k.best_val == max(k.val) and k.diag_reg == regs[k.best]
        assert k.acc == k.test[k.best] == pytest.approx(np.mean(k.score))
        assert len(k.score) == 15
        kern = nbk.fcn(1, 64).kernel
        pred = P.gradient_descent_mse(getattr(kern(x_tr), g), getattr(kern(x_te, x_tr), g), y_tr, diag_reg=k.diag_reg)
        assert np.array_equal(k.score, P.correct(pred[15:], y_te[15:]))
        assert np.array_equal(k.classes, np.asarray(pred[15:]).argmax(-1))   # its predicted classes, for agreement
    assert r.better == max(("nngp", "ntk"), key=lambda g: r.fit(g).best_val)  # chosen on validation, ties NNGP
    nngp_only = study.kernel_accuracies(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, diag_regs=regs, get=("nngp",))
    assert nngp_only.ntk is None and nngp_only.better == "nngp"
    with pytest.raises(KeyError, match="no 'ntk' kernel"):
        nngp_only.fit("ntk")
    # a learning curve: one kernel on all 40 images serves each size through its leading blocks
    curve = study.kernel_curve(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, [20, 40], diag_regs=regs)
    assert isinstance(curve, study.KernelCurve) and curve.sizes == [20, 40]
    assert np.array_equal(curve.at(40).ntk.score, r.ntk.score) and curve.at(40).ntk.diag_reg == r.ntk.diag_reg
    small = study.kernel_accuracies(nbk.fcn(1, 64), x_tr[:20], y_tr[:20], x_te, y_te, diag_regs=regs)
    assert curve.at(20).nngp.val == pytest.approx(small.nngp.val) and curve.at(20).nngp.best == small.nngp.best
    with pytest.raises(KeyError, match="no training-set size 30"):
        curve.at(30)
    with pytest.raises(ValueError, match="sizes must be training-set sizes from 1 to the 40"):
        study.kernel_curve(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, [20, 80])
    timed = study.timed_kernel(nbk.fcn(1, 64), x_tr, get=("nngp",))
    assert isinstance(timed, study.TimedKernel) and timed.ntk is None and timed.seconds > 0
    assert timed.get("nngp").shape == (40, 40)
    with pytest.raises(KeyError, match="no 'ntk' kernel"):
        timed.get("ntk")


def test_rounding_cliff_refuses_a_reference_that_is_itself_indefinite():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(60, 20))
    k = f @ f.T                                      # rank 20: singular beyond 20 points, even in float64
    assert P.rounding_cliff(k, [5, 10, 15], "float16").critical > 0
    with pytest.raises(P.PrecisionError, match="float64 itself breaks.*sizes below"):
        P.rounding_cliff(k - 1e-9 * np.eye(60), [10, 40], "float16")


def test_kernel_costs_time_both_kernels_side_by_side_and_cache_them(tmp_cache, monkeypatch):
    from nbkernels import study
    x = np.random.default_rng(0).normal(size=(12, 5, 5, 3))
    arch = nbk.cnn(2, 1, readout="gap")
    calls = []
    real = type(arch).kernel
    monkeypatch.setattr(type(arch), "kernel", lambda self, *a, **kw: calls.append(kw["get"]) or real(self, *a, **kw))
    cost = study.kernel_costs(arch, x, rounds=2)
    assert isinstance(cost, study.KernelCosts) and cost.nngp > 0 and cost.both > 0
    assert calls == [("nngp",), ("nngp", "ntk")] * 3          # one compiling run of each, then interleaved
    assert study.kernel_costs(arch, x, rounds=2) == cost and len(calls) == 6   # from the cache
