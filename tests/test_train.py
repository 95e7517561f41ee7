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

    tx_ntk = T._optimizer(lr, "sgd", 0.0, l2, jax.tree_util.tree_map(lambda _: 1.0, p_ntk))
    # matched learning rates: each standard layer steps with lr / factor (W_std^2/fan_in for weights)
    tx_std = optax.chain(T._l2_transform(l2, factors),
                         optax.stateless(lambda g, p: jax.tree_util.tree_map(lambda gi, c: -lr * gi / c, g, factors)))
    d_ntk, d_std = one_step(ntk_arch, p_ntk, tx_ntk), one_step(std_arch, p_std, tx_std)
    assert float(jnp.abs(d_ntk).max()) > 1e-3
    np.testing.assert_allclose(d_std, d_ntk, rtol=1e-4, atol=1e-6)
    # and uniform L2 on the standard network does not match
    tx_std_uniform = optax.chain(T._l2_transform(l2, jax.tree_util.tree_map(lambda _: 1.0, factors)),
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
