import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nbkernels as nbk
from nbkernels import cache, data
from nbkernels import predict as P
from nbkernels import train as T

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 8)).astype(np.float32)
XT = RNG.normal(size=(20, 8)).astype(np.float32)
Y = data.one_hot(RNG.integers(0, 10, 40))
YT = data.one_hot(RNG.integers(0, 10, 20))


def test_trained_network_approaches_ntk_gradient_flow():
    """The correspondence: at large width and small lr, centered training follows the NTK's gradient flow."""
    lr, steps = 1.0, 200
    gaps = []
    for width in (64, 256, 1024):
        arch = nbk.fcn(2, width, b_std=0.1)
        res = T.train(arch, X, Y, XT, YT, steps=steps, lr=lr, center=True, eval_every=steps, cache=False,
                      progress=False)
        k = arch.kernel(np.concatenate([X, XT])).ntk
        pred = P.gradient_descent_mse(k[:40, :40], k[40:, :40], Y, t=lr * steps)
        gaps.append(float(np.abs(res.test_pred - pred).max() / np.abs(pred).max()))
    print("relative gap to the NTK prediction at widths 64, 256, 1024:", gaps)
    assert gaps[0] > gaps[1] > gaps[2]  # the gap shrinks with width (about 1/sqrt(width))
    assert gaps[2] < 0.2


def test_layerwise_l2_standard_equals_uniform_l2_ntk():
    """Standard parameterization + layer-wise L2 (with per-layer lr W_std^2/fan_in) = NTK param + uniform L2."""
    kw = dict(b_std=0.3, W_std=1.4)
    ntk_arch = nbk.fcn(2, 64, parameterization="ntk", **kw)
    std_arch = nbk.fcn(2, 64, parameterization="standard", **kw)
    key = jax.random.PRNGKey(3)
    x = jnp.asarray(X)
    p_ntk = ntk_arch.network().init(key, x)
    p_std = std_arch.network().init(key, x)
    l2, lr = 0.05, 0.3
    factors = T.layer_factors(std_arch, p_std)

    def one_step(arch, params, tx):
        net = arch.network()
        loss = lambda p: 0.5 * jnp.mean((net.apply(p, x) - Y) ** 2)
        g = jax.grad(loss)(params)
        upd, _ = tx.update(g, tx.init(params), params)
        return net.apply(optax.apply_updates(params, upd), x) - net.apply(params, x)

    tx_ntk = T.make_optimizer(lr, "sgd", 0.0, l2, jax.tree_util.tree_map(lambda _: 1.0, p_ntk))
    # matched learning rates: each standard layer steps with lr / factor (W_std^2/fan_in for weights)
    tx_std = optax.chain(T.l2_transform(l2, factors),
                         optax.stateless(lambda g, p: jax.tree_util.tree_map(lambda gi, c: -lr * gi / c, g, factors)))
    d_ntk, d_std = one_step(ntk_arch, p_ntk, tx_ntk), one_step(std_arch, p_std, tx_std)
    assert float(jnp.abs(d_ntk).max()) > 1e-3
    np.testing.assert_allclose(d_std, d_ntk, rtol=1e-4, atol=1e-6)
    # and uniform L2 on the standard network does not match
    tx_std_uniform = optax.chain(T.l2_transform(l2, jax.tree_util.tree_map(lambda _: 1.0, factors)),
                                 optax.stateless(lambda g, p: jax.tree_util.tree_map(lambda gi, c: -lr * gi / c, g, factors)))
    assert float(jnp.abs(one_step(std_arch, p_std, tx_std_uniform) - d_ntk).max()) > 1e-3


def test_centered_network_outputs_zero_at_init():
    res = T.train(nbk.fcn(2, 32), X, Y, XT, YT, steps=1, lr=0.0, center=True, eval_every=1, cache=False,
                  progress=False)
    np.testing.assert_array_equal(res.member_test_pred, 0.0)
    plain = T.train(nbk.fcn(2, 32), X, Y, XT, YT, steps=1, lr=0.0, eval_every=1, cache=False, progress=False)
    assert np.abs(plain.member_test_pred).max() > 0.1


def test_ensembles_reduce_prediction_variance():
    arch = nbk.fcn(2, 64)
    preds = {}
    for n in (1, 8):
        preds[n] = np.stack([T.train(arch, X, Y, XT, YT, steps=50, lr=1.0, ensemble=n, seed=s, eval_every=50,
                                     cache=False, progress=False).test_pred for s in range(4)])
    var1, var8 = preds[1].var(0).mean(), preds[8].var(0).mean()
    assert var8 < 0.3 * var1  # 1/8 expected


def test_linearized_network_matches_network_at_large_width_and_small_lr():
    arch = nbk.fcn(2, 512)
    kw = dict(steps=30, lr=0.5, eval_every=30, cache=False, progress=False)
    a = T.train(arch, X, Y, XT, YT, **kw)
    b = T.train(arch, X, Y, XT, YT, linearize=True, **kw)
    assert np.abs(a.test_pred - b.test_pred).max() < 0.05 * np.abs(a.test_pred).max()


def test_critical_learning_rate_by_power_iteration():
    arch = nbk.fcn(1, 32)
    params = arch.network().init(jax.random.PRNGKey(0), jnp.asarray(X))
    net = arch.network()
    J = jax.jacobian(lambda p: net.apply(p, jnp.asarray(X)))(params)
    J = jnp.concatenate([a.reshape(40 * 10, -1) for a in jax.tree_util.tree_leaves(J)], axis=1)
    lam = float(jnp.linalg.eigvalsh(J @ J.T / (40 * 10)).max())
    assert T.max_ntk_eigenvalue(arch, params, jnp.asarray(X), 10, iters=100) == pytest.approx(lam, rel=1e-3)
    res = T.train(arch, X, Y, XT, YT, steps=5, lr_factor=0.5, eval_every=5, cache=False, progress=False)
    assert res.learning_rate == pytest.approx(0.5 * res.eta_crit)
    big = T.train(arch, X, Y, XT, YT, steps=200, lr_factor=3.0, eval_every=10, cache=False, progress=False)
    assert big.diverged  # far above eta_crit, full-batch gradient descent blows up


def test_early_stopping_and_history():
    res = T.train(nbk.fcn(2, 64), X, Y, XT, YT, steps=60, lr=2.0, eval_every=20, cache=False, progress=False)
    assert list(res.history["step"]) == [0, 20, 40, 60]
    assert res.best_test_acc == max(res.history["test_acc"])
    assert res.best_step in (0, 20, 40, 60)
    assert np.all(np.diff(res.history["train_loss"]) < 0)


def test_minibatch_momentum_deterministic():
    kw = dict(steps=20, lr=0.1, optimizer="momentum", batch_size=10, eval_every=10, cache=False, progress=False)
    a = T.train(nbk.fcn(1, 32), X, Y, XT, YT, **kw)
    b = T.train(nbk.fcn(1, 32), X, Y, XT, YT, **kw)
    np.testing.assert_array_equal(a.test_pred, b.test_pred)
    c = T.train(nbk.fcn(1, 32), X, Y, XT, YT, **dict(kw, seed=1))
    assert not np.array_equal(a.test_pred, c.test_pred)


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    store = cache.Cache(tmp_path)
    kw = dict(steps=20, lr=0.1, optimizer="momentum", batch_size=10, eval_every=5, progress=False)
    reference = T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=False, **kw)

    class Interrupt(Exception):
        pass

    def die(step, loss):
        if step == 13:
            raise Interrupt()

    with pytest.raises(Interrupt):
        T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=store, checkpoint_every=5, callback=die, **kw)
    steps_run = []
    resumed = T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=store, checkpoint_every=5,
                      callback=lambda s, l: steps_run.append(s), **kw)
    assert steps_run[0] == 11  # resumed after the step-10 checkpoint
    np.testing.assert_array_equal(resumed.test_pred, reference.test_pred)
    np.testing.assert_array_equal(resumed.history["test_acc"], reference.history["test_acc"])
    # a finished run is cached by configuration: no step runs again
    again = T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=store, checkpoint_every=5,
                    callback=lambda s, l: 1 / 0, **kw)
    np.testing.assert_array_equal(again.test_pred, reference.test_pred)


def test_bad_arguments():
    with pytest.raises(ValueError, match="exactly one of lr"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, steps=1)
    with pytest.raises(ValueError, match="y_train must be one-hot"):
        T.train(nbk.fcn(1, 8), X, Y[:5], XT, YT, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="l2_mode"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, steps=1, lr=0.1, l2_mode="fancy")


# --- practitioners' training: schedules, minibatch epochs, augmentation, validation choices, failures

def test_learning_rate_schedules():
    const = T.lr_multiplier("constant", 100, warmup=10)
    assert [float(const(i)) for i in (0, 5, 10, 99)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    cos = T.lr_multiplier("cosine", 100, warmup=0)
    assert float(cos(0)) == pytest.approx(1.0) and float(cos(50)) == pytest.approx(0.5, abs=1e-6)
    assert float(cos(100)) == pytest.approx(0.0, abs=1e-7)
    step = T.lr_multiplier("step", 100)
    assert [float(step(i)) for i in (49, 50, 74, 75)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule must be one of"):
        T.lr_multiplier("linear", 100)
    with pytest.raises(ValueError, match="warmup must be"):
        T.lr_multiplier("cosine", 100, warmup=100)


def test_augmentation_flips_and_crops_each_image():
    x = jnp.asarray(RNG.normal(size=(64, 6, 6, 2)).astype(np.float32))
    key = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(T.augment_batch(x, key, False, 0), x)
    flipped = np.asarray(T.augment_batch(x, key, True, 0))
    same = [np.array_equal(flipped[i], x[i]) for i in range(64)]
    mirrored = [np.array_equal(flipped[i], x[i, :, ::-1]) for i in range(64)]
    assert all(s or m for s, m in zip(same, mirrored)) and 15 < sum(mirrored) < 49
    cropped = np.asarray(T.augment_batch(x, key, False, 1))
    padded = np.pad(np.asarray(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    shifts = []
    for i in range(64):  # every output is a window of the zero-padded image
        found = [(dy, dx) for dy in range(3) for dx in range(3)
                 if np.array_equal(cropped[i], padded[i, dy:dy + 6, dx:dx + 6])]
        assert found, i
        shifts.append(found[0])
    assert len(set(shifts)) > 5  # drawn per image
    np.testing.assert_array_equal(cropped, T.augment_batch(x, key, False, 1))  # deterministic for the key
    assert not np.array_equal(cropped, T.augment_batch(x, jax.random.PRNGKey(1), False, 1))


def test_minibatches_visit_every_image_once_per_epoch():
    """Training on a target only one image carries: with batch 1, the loss of every step is that image's."""
    x = RNG.normal(size=(8, 4)).astype(np.float32)
    losses = []
    T.train(nbk.fcn(1, 16), x, data.one_hot(np.arange(8) % 10), x, data.one_hot(np.arange(8) % 10), steps=16, lr=1e-9, batch_size=1,
            eval_every=16, cache=False, progress=False, callback=lambda s, l: losses.append(float(l[0])))
    per_image = np.round(losses, 6)
    assert len(set(per_image[:8])) == 8 and sorted(per_image[:8]) == sorted(per_image[8:])  # each once per epoch
    assert list(per_image[:8]) != list(per_image[8:])  # in a fresh order


def test_centered_network_is_zero_on_augmented_images_at_init():
    """Centering subtracts f(theta_0) of the augmented batch, so the first step's loss is exactly that of zero
    outputs: 1/2 mean(y^2) = 0.045 for zero-mean one-hot targets over 10 classes."""
    x = RNG.normal(size=(40, 6, 6, 3)).astype(np.float32)
    first = []
    T.train(nbk.cnn(1, 8), x, Y, x[:20], YT, steps=2, lr=0.1, optimizer="momentum", batch_size=10, flip=True,
            crop=1, center=True, eval_every=2, cache=False, progress=False,
            callback=lambda s, l: first.append(np.asarray(l)) if s == 1 else None)
    np.testing.assert_allclose(first[0], 0.045, rtol=1e-6)


def test_stopping_is_chosen_on_validation_and_reported_on_test():
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    x_tr, y_tr = x_tr[:300], y_tr[:300]
    (xv, yv), (xt, yt) = (x_te[:150], y_te[:150]), (x_te[150:300], y_te[150:300])
    r = T.train(nbk.fcn(1, 64), x_tr, y_tr, xt, yt, x_val=xv, y_val=yv, steps=300, lr=0.5, optimizer="momentum",
                batch_size=50, schedule="cosine", warmup=20, eval_every=30, cache=False, progress=False)
    assert r.failure is None and r.has_validation
    i = int(np.argmax(r.history["val_acc"]))
    assert r.chosen_index == i and r.chosen_step == r.history["step"][i] and r.val_acc == r.history["val_acc"][i]
    assert r.test_acc == r.history["test_acc"][i] == pytest.approx(np.mean(r.test_correct))
    assert r.eval_correct.shape == (len(r.history["step"]), 150) and r.test_acc > 0.5  # chance: 0.1
    plain = T.train(nbk.fcn(1, 64), x_tr, y_tr, xt, yt, steps=30, lr=0.5, eval_every=30, cache=False, progress=False)
    with pytest.raises(ValueError, match="no validation scores: pass x_val"):
        plain.chosen_step


def test_test_curve_off_reports_the_same_numbers_scoring_the_test_images_twice():
    """test_curve=False scores the test images only at the validation-chosen evaluation and at the end:
    the reported numbers (chosen step, test accuracy, per-image correctness, final predictions) are those
    of the run that scores them at every evaluation."""
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    x_tr, y_tr = x_tr[:300], y_tr[:300]
    (xv, yv), (xt, yt) = (x_te[:150], y_te[:150]), (x_te[150:300], y_te[150:300])
    kw = dict(steps=200, lr=0.5, optimizer="momentum", batch_size=50, schedule="cosine", warmup=20, eval_every=20,
              ensemble=2, cache=False, progress=False)
    full = T.train(nbk.fcn(1, 64), x_tr, y_tr, xt, yt, x_val=xv, y_val=yv, **kw)
    lean = T.train(nbk.fcn(1, 64), x_tr, y_tr, xt, yt, x_val=xv, y_val=yv, test_curve=False, **kw)
    assert full.test_curve and not lean.test_curve and lean.eval_correct is None
    assert 0 < full.chosen_index < len(full.history["step"]) - 1   # the chosen evaluation is not the last
    assert lean.chosen_step == full.chosen_step and lean.test_acc == full.test_acc
    np.testing.assert_array_equal(lean.test_correct, full.test_correct)
    np.testing.assert_array_equal(lean.test_pred, full.test_pred)
    np.testing.assert_array_equal(lean.history["val_acc"], full.history["val_acc"])
    scored = np.isfinite(lean.history["test_acc"])
    assert scored.sum() == 2 and scored[lean.chosen_index] and scored[-1]
    assert lean.final_test_acc == full.final_test_acc and lean.failure is None
    with pytest.raises(ValueError, match="test_curve=True"):
        lean.best_test_acc
    with pytest.raises(ValueError, match="pass x_val and y_val"):
        T.train(nbk.fcn(1, 64), x_tr, y_tr, xt, yt, test_curve=False, **kw)


def test_resume_keeps_the_chosen_parameters_without_a_test_curve(tmp_path):
    """With test_curve=False the checkpoint carries the validation-chosen parameters, so a resumed run reports
    the chosen evaluation's test images as the uninterrupted one does."""
    store = cache.Cache(tmp_path)
    kw = dict(steps=20, lr=0.1, optimizer="momentum", batch_size=10, eval_every=5, progress=False, test_curve=False)
    val = dict(x_val=XT[:10], y_val=YT[:10])
    reference = T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=False, **val, **kw)

    def die(step, loss):
        if step == 13:
            raise KeyboardInterrupt()

    with pytest.raises(KeyboardInterrupt):
        T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=store, checkpoint_every=5, callback=die, **val, **kw)
    resumed = T.train(nbk.fcn(1, 32), X, Y, XT, YT, cache=store, checkpoint_every=5, **val, **kw)
    assert resumed.chosen_step == reference.chosen_step and resumed.test_acc == reference.test_acc
    np.testing.assert_array_equal(resumed.test_correct, reference.test_correct)
    np.testing.assert_array_equal(resumed.test_pred, reference.test_pred)


def test_failed_runs_are_named():
    hist = dict(step=[0, 10], train_loss=[0.05, 0.03], test_acc=[0.1, 0.6])
    labels = np.arange(100) % 10
    good = np.eye(10)[labels]
    assert T.failure_of(hist, good, labels, 10) is None
    assert T.failure_of(dict(hist, train_loss=[0.05, np.nan]), good, labels, 10).startswith("diverged")
    assert T.failure_of(dict(hist, train_loss=[0.05, 1e3]), good, labels, 10).startswith("diverged")
    assert "constant outputs" in T.failure_of(hist, np.ones((100, 10)) * 0.3, labels, 10)
    assert "within two standard errors of chance" in T.failure_of(dict(hist, test_acc=[0.5, 0.13]), good, labels, 10)
    # a learning rate far above eta_crit diverges, and the run says so instead of scoring a NaN accuracy
    big = T.train(nbk.fcn(2, 64), X, Y, XT, YT, steps=200, lr=100.0, eval_every=10, cache=False, progress=False)
    assert big.failed and big.failure.startswith("diverged") and big.diverged


def test_training_arguments_that_cannot_work_are_refused():
    img = RNG.normal(size=(40, 8, 8, 3)).astype(np.float32)
    kw = dict(steps=2, lr=0.1, cache=False, progress=False)
    with pytest.raises(ValueError, match="batch_size=50 does not fit a training set of 40"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, batch_size=50, **kw)
    with pytest.raises(ValueError, match="crop=5 pads a 8x8 image by more than half"):
        T.train(nbk.cnn(1, 4), img, Y, img[:20], YT, crop=5, **kw)
    with pytest.raises(ValueError, match="flips and crops need NHWC images"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, flip=True, **kw)
    with pytest.raises(ValueError, match="x_train holds NaN"):
        T.train(nbk.fcn(1, 8), np.where(X > 2, np.nan, X), Y, XT, YT, **kw)
    with pytest.raises(ValueError, match="give both x_val and y_val"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, x_val=XT, **kw)
    with pytest.raises(ValueError, match="warmup must be"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, warmup=5, **kw)
    with pytest.raises(ValueError, match="optimizer must be"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, optimizer="adam", **kw)


def test_a_train_config_is_validated_once_and_keywords_override_it(tmp_path):
    """The options are one frozen, validated TrainConfig; train()'s keywords replace its fields, and a run
    given as a config or as keywords is the same run (the same cache entry)."""
    with pytest.raises(ValueError, match="exactly one of lr"):
        T.TrainConfig(steps=10)
    with pytest.raises(ValueError, match="plateau counts evaluations"):
        T.TrainConfig(lr=0.1, plateau=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        T.TrainConfig(lr=0.1, batch_size=0)
    with pytest.raises(ValueError, match="crop pads the image"):
        T.TrainConfig(lr=0.1, crop=-1)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['stpes'\]"):
        T.train(nbk.fcn(1, 8), X, Y, XT, YT, lr=0.1, stpes=3, cache=False, progress=False)
    cfg = T.TrainConfig(steps=3, lr=0.1, eval_every=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 4
    assert T.TrainConfig.of(cfg, seed=2) == T.TrainConfig(steps=3, lr=0.1, eval_every=3, seed=2)
    store = cache.Cache(tmp_path)
    a = T.train(nbk.fcn(1, 8), X, Y, XT, YT, config=cfg, seed=2, cache=store, progress=False)
    b = T.train(nbk.fcn(1, 8), X, Y, XT, YT, steps=3, lr=0.1, eval_every=3, seed=2, cache=store, progress=False)
    assert a.config == b.config == cfg.replace(seed=2) and a.config.seed == 2
    assert len(list(tmp_path.glob("*/*.pkl"))) == 1  # the second call read the first one's entry
    np.testing.assert_array_equal(a.test_pred, b.test_pred)


def test_arms_derive_from_a_recipe_by_replacing_fields():
    from nbkernels import study
    recipe = study.RECIPE
    assert isinstance(recipe, T.TrainConfig) and recipe.optimizer == "momentum" and not recipe.test_curve
    fast = recipe.replace(lr_factor=1.0, flip=True, crop=1)
    assert (fast.lr_factor, fast.flip, fast.crop, fast.batch_size) == (1.0, True, 1, 100) and recipe.lr_factor == 0.3
    absolute = recipe.replace(lr=0.05)                        # a rate given the other way replaces the first
    assert absolute.lr == 0.05 and absolute.lr_factor is None
    assert recipe.with_steps(1000, evaluations=15).eval_every == 66 and recipe.replace(warmup=0).with_steps(7, 15).eval_every == 1
    with pytest.raises(ValueError, match="warmup must be"):
        recipe.with_steps(50)                                  # the recipe's 100 warm-up steps do not fit in 50
    with pytest.raises(TypeError):
        recipe.replace(stpes=3)


def test_convolutional_ensembles_unroll_to_the_same_numbers_as_vmap():
    """Members of a CNN ensemble run one after another inside one program (a vmapped convolution is ~20x
    slower on CPU); the unrolled map gives vmap's numbers."""
    img = jnp.asarray(RNG.normal(size=(12, 6, 6, 3)).astype(np.float32))
    net = nbk.cnn(1, 8).network()
    params = T.init_members(net, jax.random.split(jax.random.PRNGKey(0), 3), img)
    by_vmap = T.over_members(net.apply, (0, None), unroll=False)(params, img)
    unrolled = T.over_members(net.apply, (0, None), unroll=True)(params, img)
    assert unrolled.shape == (3, 12, 10)
    np.testing.assert_allclose(unrolled, by_vmap, rtol=1e-5, atol=1e-6)
    assert T.has_convolutions(nbk.cnn(1, 8, weight_sharing=False)) and not T.has_convolutions(nbk.fcn(1, 8))
    kw = dict(steps=4, lr=0.05, optimizer="momentum", batch_size=6, eval_every=4, cache=False, progress=False)
    pair = T.train(nbk.cnn(1, 8), np.asarray(img), Y[:12], np.asarray(img), Y[:12], ensemble=2, **kw)
    assert pair.member_test_pred.shape == (2, 12, 10)
    assert not np.allclose(pair.member_test_pred[0], pair.member_test_pred[1])


def test_finite_accuracies_chooses_on_validation_and_never_a_failed_run():
    from nbkernels import study
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    x_tr, y_tr, x_te, y_te = x_tr[:300], y_tr[:300], x_te[:200], y_te[:200]
    grid = [dict(lr=0.2), dict(lr=0.5), dict(lr=50.0)]  # two that learn, one that diverges
    cfg = T.TrainConfig(steps=150, lr=0.2, optimizer="momentum", batch_size=50, eval_every=50, test_curve=False)
    kw = dict(config=cfg, cache=False)
    fin = study.finite_accuracies(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, grid=grid, seeds=(0, 1), **kw)
    assert isinstance(fin, study.FiniteAccuracies) and fin.n_report == 100
    assert [lab for lab, _, _ in fin.failures] == ["lr 50", "lr 50"] and np.isnan(fin.val_grid[2])
    means = fin.val_grid[:2]
    assert fin.setting == grid[int(np.argmax(means))] and fin.val_acc == max(means)
    assert fin.seed_accs == [r.test_acc for r in fin.chosen] and fin.acc == pytest.approx(np.mean(fin.seed_accs))
    assert fin.acc == pytest.approx(np.mean(fin.score)) and fin.score.shape == (100,)
    assert fin.acc_se == pytest.approx(np.std(fin.seed_accs, ddof=1) / np.sqrt(2))
    assert fin.steps == [r.chosen_step for r in fin.chosen] and fin.acc > 0.5
    # the test half is what is reported: training again on it as "test" reproduces the chosen run's numbers
    (xv, yv), (xr, yr) = study.split_validation(x_te, y_te)
    again = T.train(nbk.fcn(1, 64), x_tr, y_tr, xr, yr, x_val=xv, y_val=yv, config=cfg.replace(**fin.setting, seed=0),
                    cache=False, progress=False)
    assert again.config == fin.chosen[0].config   # each run keeps the TrainConfig it ran
    assert again.test_acc == fin.chosen[0].test_acc
    with pytest.raises(RuntimeError, match="(?s)every finite run failed.*lr 50, seed 0: (diverged|collapsed)"):
        study.finite_accuracies(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, grid=[dict(lr=50.0)], **kw)
    kept = study.finite_accuracies(nbk.fcn(1, 64), x_tr, y_tr, x_te, y_te, grid=[dict(lr=50.0)], on_failure="report", **kw)
    assert kept.failed and kept.failures and kept.acc == kept.chosen[0].test_acc
    assert not fin.failed
    with pytest.raises(ValueError, match="give every grid point a 'width'"):
        study.finite_accuracies(lambda w: nbk.fcn(1, w), x_tr, y_tr, x_te, y_te, grid=[dict(lr=0.5)], **kw)
    widths = study.finite_accuracies(lambda w: nbk.fcn(1, w), x_tr, y_tr, x_te, y_te,
                                     grid=[dict(width=8, lr=0.5), dict(width=64, lr=0.5)], **kw)
    assert widths.label in ("width 8, lr 0.5", "width 64, lr 0.5")


def test_finite_accuracies_with_held_out_validation_reports_every_test_image():
    """val=: choices on held-out training images, every test image reported; scores (seeds, n) feed stats."""
    from nbkernels import stats, study
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    cfg = T.TrainConfig(steps=60, optimizer="momentum", batch_size=50, eval_every=20, lr=0.3, test_curve=False)
    kw = dict(config=cfg, cache=False)
    fin = study.finite_accuracies(nbk.fcn(1, 32), x_tr[:200], y_tr[:200], x_te[:120], y_te[:120], seeds=(0, 1, 2),
                                  val=(x_tr[200:300], y_tr[200:300]), **kw)
    assert fin.n_report == 120 and fin.scores.shape == (3, 120)
    again = T.train(nbk.fcn(1, 32), x_tr[:200], y_tr[:200], x_te[:120], y_te[:120], x_val=x_tr[200:300],
                    y_val=y_tr[200:300], config=cfg.replace(seed=1), cache=False, progress=False)
    assert again.test_acc == fin.chosen[1].test_acc
    t = stats.paired(fin.scores, np.zeros(120))
    assert t.seeds == 3 and t.n == 120 and t.passed
    with pytest.raises(ValueError, match="val must be"):
        study.finite_accuracies(nbk.fcn(1, 32), x_tr[:200], y_tr[:200], x_te, y_te, val=(x_tr[:5], y_tr[:4]), **kw)


def test_tuned_inside_grows_the_grid_until_the_choice_is_inside():
    from nbkernels import study
    calls = []

    def fit(values, best=1e-1):  # a stand-in for finite_accuracies: validation peaks at `best`
        calls.append(list(values))
        chosen = min(values, key=lambda v: abs(np.log10(v + 1e-12) - np.log10(best)))
        return type("R", (), dict(setting=dict(l2=chosen)))()

    res = study.tuned_inside(fit, [0.0, 1e-4, 1e-3, 1e-2], "l2")
    assert res.setting["l2"] == pytest.approx(0.1) and calls[-1] == [0.0, 1e-4, 1e-3, 1e-2, pytest.approx(0.1), pytest.approx(1.0)]
    calls.clear()
    assert study.tuned_inside(lambda v: fit(v, best=1e3), [0.0, 1e-2], "l2", max_extensions=2).setting["l2"] == pytest.approx(1.0)
    assert len(calls) == 3  # the growth stops after max_extensions
    calls.clear()
    assert study.tuned_inside(lambda v: fit(v, best=1e-3), [0.0, 1e-3, 1e-2], "l2").setting["l2"] == 1e-3 and len(calls) == 1


def _convolutions_in_ynn_fusions(hlo: str) -> int:
    """How many of a compiled program's YNNPACK fusions call a computation holding a convolution."""
    import re
    with_conv, current = set(), None
    for line in hlo.splitlines():
        head = re.match(r"\s*%?([\w.\-]+)\s.*\{\s*$", line)
        if head and "=" not in line.split("{")[0]:
            current = head.group(1)
        elif "convolution(" in line and current:
            with_conv.add(current)
    calls = re.findall(r"%ynn_fusion[\w.]* = .*calls=%([\w.\-]+)", hlo)
    return sum(c in with_conv for c in calls)


def test_convolutional_programs_compile_with_eigens_convolution_to_the_same_numbers():
    """train's programs for networks with convolutions carry T.CPU_CONVOLUTIONS on the CPU (XLA's default
    YNNPACK convolution ran on one of two cores, benchmarks/README.md); a step equals the default's to
    float32 rounding, fully connected networks compile as before, and an option XLA refuses falls back
    to the default with a warning instead of failing."""
    img = RNG.normal(size=(40, 8, 8, 3)).astype(np.float32)
    arch = nbk.cnn(2, 8)
    cfg = T.TrainConfig(lr=0.05, optimizer="momentum", batch_size=20)
    net = arch.network()
    p0 = T.init_members(net, jax.random.split(jax.random.PRNGKey(0), 1), img)
    ones = jax.tree_util.tree_map(lambda _: 1.0, jax.tree_util.tree_map(lambda a: a[0], p0))
    s0 = jax.vmap(T.make_optimizer(0.1, "momentum", 0.9, 0.0, ones).init)(p0)
    hyper = (jnp.float32(0.05), jnp.float32(0.0), jax.tree_util.tree_map(jnp.float32, ones), jax.random.PRNGKey(1))
    after = {}
    for eigen in (True, False):
        step, _, apply_all = T.programs(arch, cfg, eigen=eigen)
        f0 = apply_all(p0, img)
        p, s = p0, s0
        for i in range(3):
            p, s, _ = step(p, s, i, p0, img, Y[:40], f0, *hyper)
        after[eigen] = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(p)])
        hlo = step.lower(p0, s0, 0, p0, img, Y[:40], f0, *hyper).compile().as_text()
        to_ynn = _convolutions_in_ynn_fusions(hlo)
        if jax.default_backend() == "cpu" and eigen:
            assert to_ynn == 0, "a convolution went to YNNPACK despite CPU_CONVOLUTIONS"
    np.testing.assert_allclose(after[True], after[False], rtol=0, atol=1e-5 * np.abs(after[False]).max())
    assert T._compiler_options(False) is None and T._compiler_options(True, eigen=False) is None
    if jax.default_backend() == "cpu":
        assert T._compiler_options(True) == T.CPU_CONVOLUTIONS


def test_a_compile_option_xla_refuses_falls_back_with_a_warning(monkeypatch):
    if jax.default_backend() != "cpu":
        pytest.skip("the option is for the CPU only")
    monkeypatch.setattr(T, "CPU_CONVOLUTIONS", {"xla_cpu_no_such_option_nbkernels": "1"})
    T._compiler_options.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="XLA refused the compile option"):
            assert T._compiler_options(True) is None
    finally:
        T._compiler_options.cache_clear()


def test_an_arm_is_tuned_on_validation_and_confirmed_with_fresh_seeds(tmp_path):
    from nbkernels import study
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    val, x_tr, y_tr = (x_tr[300:400], y_tr[300:400]), x_tr[:300], y_tr[:300]
    recipe = T.TrainConfig(steps=60, lr_factor=0.5, optimizer="momentum", batch_size=50, eval_every=20, test_curve=False)
    arm = study.Arm("FCN", nbk.fcn(1, 32), recipe, {"lr_factor": (0.1, 0.5, 2.0), "l2": (0.0, 1e-3)})
    assert arm.points()[:3] == [dict(lr_factor=0.1, l2=0.0), dict(lr_factor=0.1, l2=1e-3), dict(lr_factor=0.5, l2=0.0)]
    store = cache.Cache(tmp_path)
    t = study.tune(arm, x_tr, y_tr, x_te[:150], y_te[:150], val=val, cache=store, extend=0)
    scan_vals = dict(zip(map(lambda p: tuple(p.items()), arm.points()), t.scan.val_grid))
    assert t.chosen == t.scan.setting and scan_vals[tuple(t.chosen.items())] == max(v for v in t.scan.val_grid if v == v)
    assert [r.config.seed for r in t.final.chosen] == [1, 2, 3] and t.scan.chosen[0].config.seed == 0  # fresh seeds
    assert t.scores.shape == (3, 150) and t.test_acc == pytest.approx(np.mean(t.final.seed_accs))
    assert "l2" in t.edges and not t.inside            # two L2 values: the choice is always at an edge
    assert t.inside == (not t.edges) and t.budget_steps == 60
    assert t.budget_bound == any(s == 60 for s in t.stop_step)
    assert t.early_bound == any(s == 20 for s in t.stop_step)   # the first evaluation: the other edge of the steps
    rec = t.record()
    assert list(rec) == ["name", "grid", "chosen", "inside", "budget_bound", "early_bound", "stop_step", "budget_steps",
                         "val_acc", "test_acc", "seeds"]
    assert rec["grid"] == {"lr_factor": [0.1, 0.5, 2.0], "l2": [0.0, 1e-3]} and rec["seeds"] == [1, 2, 3]
    assert "(edge: " in t.label and "l2" in t.label.split("(edge: ")[1]
    grown = study.tune(arm, x_tr, y_tr, x_te[:150], y_te[:150], val=val, cache=store)   # extend=2: past an edge
    if t.chosen["lr_factor"] == 2.0:
        assert grown.grid["lr_factor"][:4] == [0.1, 0.5, 2.0, 8.0]
    assert grown.chosen == grown.scan.setting and grown.grid["l2"] == [0.0, 1e-3]   # one positive value: no ratio to grow by
    assert "l2" in grown.edges                                                     # so the choice stays marked
    with pytest.raises(ValueError, match="scan's seed 0 is among the fresh seeds"):
        study.tune(arm, x_tr, y_tr, x_te, y_te, val=val, seeds=(0, 1, 2), cache=store)
    with pytest.raises(ValueError, match="at least 3 fresh seeds"):
        study.tune(arm, x_tr, y_tr, x_te, y_te, val=val, seeds=(1, 2), cache=store)
    with pytest.raises(ValueError, match="untuned arm decides nothing"):
        study.tune(study.Arm("x", arm.arch, recipe, {}), x_tr, y_tr, x_te, y_te, val=val, cache=store)


def test_a_grid_grows_past_a_choice_at_its_edge():
    from nbkernels import study
    grid = {"lr_factor": [0.3, 1.0, 3.0], "l2": [0.0, 1e-4, 1e-3], "flip": [False, True]}
    assert study._extended(grid, dict(lr_factor=3.0, l2=1e-3, flip=True)) == {
        "lr_factor": [0.3, 1.0, 3.0, pytest.approx(9.0)], "l2": [0.0, 1e-4, 1e-3, pytest.approx(1e-2)], "flip": [False, True]}
    assert study._extended(grid, dict(lr_factor=0.3, l2=0.0, flip=False))["lr_factor"][0] == pytest.approx(0.09)
    assert study._extended(grid, dict(lr_factor=1.0, l2=0.0, flip=False)) is None   # L2 of 0 cannot grow below
    assert study._extended({"l2": [0.0, 1e-4]}, dict(l2=1e-4)) is None               # one positive value: no ratio


def test_an_arm_at_matched_time_sets_each_points_steps_and_never_grows_past_its_limits(tmp_path):
    from nbkernels import study
    limits = {"lr_factor": (1.0, None)}
    assert study._extended({"lr_factor": [1.0, 1.5, 2.0]}, dict(lr_factor=1.0), limits) is None   # 0.67 is below 1
    assert study._extended({"lr_factor": [1.0, 1.5, 2.0]}, dict(lr_factor=2.0), limits)["lr_factor"][-1] == \
        pytest.approx(8 / 3)
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    val, x_tr, y_tr = (x_tr[300:400], y_tr[300:400]), x_tr[:300], y_tr[:300]
    recipe = T.TrainConfig(steps=60, lr_factor=0.5, eval_every=20, test_curve=False)   # full batch, 3 evaluations
    arm = study.Arm("large lr", nbk.fcn(1, 32), recipe, {"lr_factor": (1.0, 2.0)}, matched_time=100, limits=limits)
    assert arm.points() == [dict(lr_factor=1.0, steps=100, eval_every=33), dict(lr_factor=2.0, steps=50, eval_every=16)]
    t = study.tune(arm, x_tr, y_tr, x_te[:150], y_te[:150], val=val, cache=cache.Cache(tmp_path))
    assert list(t.chosen) == ["lr_factor"] and t.budget_steps == round(100 / t.chosen["lr_factor"])
    assert [r.config.steps for r in t.final.chosen] == [t.budget_steps] * 3
    assert min(t.grid["lr_factor"]) == 1.0                      # never grown below its limit
    assert ("lr_factor" in t.edges) == (t.chosen["lr_factor"] in (1.0, max(t.grid["lr_factor"])))
    with pytest.raises(ValueError, match="must be an lr_factor"):
        study.Arm("x", arm.arch, T.TrainConfig(lr=0.1), {"l2": (0.0, 1e-3)}, matched_time=100)
    with pytest.raises(ValueError, match="which its grid does not vary"):
        study.Arm("x", arm.arch, recipe, {"l2": (0.0, 1e-3)}, limits=limits)


def test_an_arm_whose_every_run_fails_raises_or_is_kept_and_marked(tmp_path):
    from nbkernels import notebook, study
    ds = data.load("digits")
    x_tr, y_tr, x_te, y_te = data.prepare(ds)
    val, x_tr, y_tr = (x_tr[300:400], y_tr[300:400]), x_tr[:300], y_tr[:300]
    recipe = T.TrainConfig(steps=40, lr_factor=0.5, eval_every=20, test_curve=False)
    arm = study.Arm("too fast", nbk.fcn(1, 16), recipe, {"lr_factor": (60.0, 100.0)})   # far past eta_crit: diverges
    store = cache.Cache(tmp_path)
    with pytest.raises(RuntimeError, match="every finite run failed"):
        study.tune(arm, x_tr, y_tr, x_te[:100], y_te[:100], val=val, cache=store)
    t = study.tune(arm, x_tr, y_tr, x_te[:100], y_te[:100], val=val, cache=store, on_failure="report")
    assert t.failed and t.grid["lr_factor"][-2:] == [60.0, 100.0] and len(t.grid["lr_factor"]) == 4   # grown twice, lower
    assert t.chosen == {"lr_factor": t.grid["lr_factor"][0]}
    assert "(every run failed)" in t.label and t.record()["failed"] is True
    assert any("every run of its grid diverged or collapsed" in c for c in notebook.arm_caveats([t.record()]))


@pytest.mark.parametrize("arch, shape", [(nbk.cnn(2, 3, readout="vec"), (6, 6, 3)),
                                         (nbk.cnn(2, 3, readout="vec", weight_sharing=False), (6, 6, 3)),
                                         (nbk.fcn(1, 10), (5,))])
def test_parameter_count_is_the_initialized_networks(arch, shape):
    params = arch.network().init(jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
    assert arch.n_parameters(shape) == sum(p.size for p in jax.tree_util.tree_leaves(params))
    # an LCN has one set of filters per position: 36 positions of 6x6 against the CNN's one
    if shape == (6, 6, 3):
        assert nbk.cnn(2, 3, readout="vec", weight_sharing=False).n_parameters(shape) > 30 * (
            nbk.cnn(2, 3, readout="vec").n_parameters(shape) - (6 * 6 * 3 * 10 + 10))


def test_steps_to_loss_interpolates_between_evaluations():
    h = dict(step=[0, 10, 20, 30], train_loss=[1.0, 0.1, 0.01, 0.001])
    assert T.steps_to_loss(h, 2.0) == 0 and T.steps_to_loss(h, 0.1) == 10
    assert T.steps_to_loss(h, 10 ** -1.5) == pytest.approx(15)      # halfway in log loss
    assert np.isnan(T.steps_to_loss(h, 1e-4))                          # never reached
    with pytest.raises(ValueError, match="positive training loss"):
        T.steps_to_loss(h, 0.0)
