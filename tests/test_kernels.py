"""The infinite-width kernels: Monte Carlo convergence, closed forms, structure, precision, bad input.

Monte Carlo tolerances reached here (float64, relative to the largest kernel entry) are asserted
below per architecture; the error must also shrink when width x samples grows 16-fold (ideally 4x).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nbkernels as nbk
from nbkernels import empirical

RNG = np.random.default_rng(0)
X_IMG = RNG.normal(size=(4, 4, 4, 2))
X_VEC = RNG.normal(size=(4, 6))


SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))


def relerr(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


ARCHS = {
    "fc-relu": (lambda w, p: nbk.fcn(2, w, parameterization=p), X_VEC),
    "fc-erf": (lambda w, p: nbk.fcn(2, w, activation="erf", parameterization=p), X_VEC),
    "cnn-vec": (lambda w, p: nbk.cnn(2, w, readout="vec", parameterization=p), X_IMG),
    "cnn-gap-same": (lambda w, p: nbk.cnn(2, w, readout="gap", parameterization=p), X_IMG),
    "cnn-gap-circular": (lambda w, p: nbk.cnn(2, w, readout="gap", padding="CIRCULAR", parameterization=p), X_IMG),
    "lcn": (lambda w, p: nbk.cnn(1, w, readout="vec", weight_sharing=False, parameterization=p), X_IMG),
}
# (small budget, large budget) as (width, samples); the large one is 16x the small one.
BUDGETS = {"nngp": ((64, 16), (64, 256)), "ntk": ((64, 4), (256, 16))}
PRINT_ONLY = bool(__import__("os").environ.get("MC_PRINT"))
TOL = {"nngp": 0.06, "ntk": 0.06}


@pytest.mark.parametrize("name, param, which",
                         [(n, "ntk", "nngp") for n in ARCHS]  # the NNGP does not depend on the parameterization
                         + [(n, p, "ntk") for n in ARCHS for p in ("ntk", "standard")])
def test_monte_carlo_convergence(name, param, which):
    make, x = ARCHS[name]
    estimate = empirical.monte_carlo_nngp if which == "nngp" else empirical.monte_carlo_ntk
    (w_small, s_small), (w_large, s_large) = BUDGETS[which]
    exact = getattr(make(w_small, param).kernel(x), which)
    assert np.allclose(exact, getattr(make(w_large, param).kernel(x), which)) or param == "standard"
    # A single small-budget draw can be lucky; its typical error is the mean over 4 independent draws.
    small = np.mean([relerr(estimate(make(w_small, param), x, n_samples=s_small, key=jax.random.PRNGKey(10 + r)),
                            exact) for r in range(4)])
    exact_large = getattr(make(w_large, param).kernel(x), which)
    large = relerr(estimate(make(w_large, param), x, n_samples=s_large, key=jax.random.PRNGKey(1)), exact_large)
    errs = [small, large]
    small, large = errs
    print(f"{name} {param} {which}: rel err {small:.3f} -> {large:.3f}")
    assert large < TOL[which] or PRINT_ONLY, errs
    assert large < 0.6 * small or PRINT_ONLY, errs  # 1/sqrt(16) = 0.25 expected; noisy, so 0.6


def test_one_hidden_layer_relu_nngp_by_hand():
    W_std, b_std = 1.3, 0.2
    arch = nbk.serial(nbk.Dense(100, W_std, b_std), nbk.Relu(), nbk.Dense(1, W_std, b_std))
    x = X_VEC
    k = arch.kernel(x).nngp
    d = x.shape[1]
    k0 = W_std ** 2 * x @ x.T / d + b_std ** 2
    n = np.sqrt(np.outer(np.diag(k0), np.diag(k0)))
    theta = np.arccos(np.clip(k0 / n, -1, 1))
    relu = n / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
    np.testing.assert_allclose(k, W_std ** 2 * relu + b_std ** 2, rtol=1e-12)


def test_one_hidden_layer_ntk_by_hand():
    # NTK parameterization: Theta = nngp_out + W^2 * Tdot * nngp_in (Jacot et al.)
    W_std, b_std = 1.0, 0.5
    arch = nbk.serial(nbk.Dense(100, W_std, b_std), nbk.Relu(), nbk.Dense(1, W_std, b_std))
    x = X_VEC
    k = arch.kernel(x)
    k0 = W_std ** 2 * x @ x.T / x.shape[1] + b_std ** 2
    n = np.sqrt(np.outer(np.diag(k0), np.diag(k0)))
    theta = np.arccos(np.clip(k0 / n, -1, 1))
    tdot = (np.pi - theta) / (2 * np.pi)
    # At correlation 1 (the diagonal) the arc-cosine derivative turns rounding of order eps into an
    # angle of order sqrt(eps) ~ 1.5e-8: that is the floor for the NTK in float64.
    np.testing.assert_allclose(k.ntk, k.nngp + W_std ** 2 * tdot * k0, rtol=SQRT_EPS)


def test_erf_closed_form():
    arch = nbk.serial(nbk.Dense(10, 1.0, None), nbk.Erf(), nbk.Dense(1, 1.0, None))
    k = arch.kernel(X_VEC).nngp
    s = X_VEC @ X_VEC.T / X_VEC.shape[1]
    d = np.diag(s)
    expected = 2 / np.pi * np.arcsin(2 * s / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))
    np.testing.assert_allclose(k, expected, rtol=1e-12)


def test_cnn_vec_equals_lcn_kernel():
    for p in ("ntk", "standard"):
        a = nbk.cnn(3, 32, readout="vec", parameterization=p).kernel(X_IMG)
        b = nbk.cnn(3, 32, readout="vec", weight_sharing=False, parameterization=p).kernel(X_IMG)
        np.testing.assert_allclose(a.nngp, b.nngp, rtol=1e-12)
        np.testing.assert_allclose(a.ntk, b.ntk, rtol=1e-12)
    gap = nbk.cnn(3, 32, readout="gap").kernel(X_IMG)
    lcn_gap = nbk.cnn(3, 32, readout="gap", weight_sharing=False).kernel(X_IMG)
    assert relerr(lcn_gap.nngp, gap.nngp) > 1e-3  # with pooling, weight sharing matters


@pytest.mark.parametrize("which", ["nngp", "ntk"])
def test_finite_lcns_converge_to_the_cnn_kernel(which):
    """Notebook 10's premise by Monte Carlo, independently of the kernel code's LCN path: finite random
    LCNs (no weight sharing) estimate the exact kernel of the CNN with the same receptive fields."""
    estimate = empirical.monte_carlo_nngp if which == "nngp" else empirical.monte_carlo_ntk
    w, n = BUDGETS[which][1]  # the large budget of the convergence test above
    lcn = nbk.cnn(2, w, readout="vec", weight_sharing=False)
    exact_cnn = getattr(nbk.cnn(2, w, readout="vec").kernel(X_IMG), which)
    err = relerr(estimate(lcn, X_IMG, n_samples=n, key=jax.random.PRNGKey(3)), exact_cnn)
    assert err < TOL[which], err


def test_circular_gap_is_shift_invariant():
    arch = nbk.cnn(2, 16, readout="gap", padding="CIRCULAR")
    k = arch.kernel(X_IMG)
    shifted = np.roll(X_IMG, shift=(1, 3), axis=(1, 2))
    np.testing.assert_allclose(arch.kernel(shifted).nngp, k.nngp, rtol=1e-12)
    np.testing.assert_allclose(arch.kernel(shifted).ntk, k.ntk, rtol=1e-12)
    # circular convolutions then pooling over all pixel pairs: even shifting one image alone changes nothing
    np.testing.assert_allclose(arch.kernel(shifted, X_IMG).nngp, k.nngp, rtol=1e-12)
    # with zero padding the borders break the symmetry
    same = nbk.cnn(2, 16, readout="gap", padding="SAME")
    assert relerr(same.kernel(shifted).nngp, same.kernel(X_IMG).nngp) > 1e-4


@pytest.mark.parametrize("arch", [nbk.fcn(3, 8), nbk.cnn(2, 8, readout="gap"), nbk.cnn(2, 8, readout="vec")],
                         ids=["fc", "gap", "vec"])
def test_symmetric_psd(arch):
    x = RNG.normal(size=(9, 4, 4, 2))
    k = arch.kernel(x)
    for m in (k.nngp, k.ntk):
        np.testing.assert_array_equal(m, m.T)
        eig = np.linalg.eigvalsh(m)
        assert eig.min() > -1e-12 * eig.max()
    kx = arch.kernel(x, x)
    np.testing.assert_allclose(kx.ntk, k.ntk, rtol=1e-12)


def test_float32_matches_float64():
    arch = nbk.cnn(2, 8, readout="gap")
    k64 = arch.kernel(X_IMG, dtype=jnp.float64)
    k32 = arch.kernel(X_IMG, dtype=jnp.float32)
    assert k32.nngp.dtype == np.float32 and k64.nngp.dtype == np.float64
    # float32 resolves the angle at correlation 1 (the diagonal) only to ~sqrt(eps32) = 3.5e-4
    assert relerr(k32.nngp, k64.nngp) < 1e-5
    assert relerr(k32.ntk, k64.ntk) < 1e-4


@pytest.mark.parametrize("arch", [nbk.fcn(2, 8), nbk.cnn(2, 8, readout="gap")], ids=["fc", "gap"])
def test_blocked_equals_unblocked(arch):
    x1, x2 = RNG.normal(size=(7, 4, 4, 2)), RNG.normal(size=(5, 4, 4, 2))
    for a, b in ((x1, x2), (x1, None)):
        full = arch.kernel(a, b)
        for bs in (1, 3, 4):
            blk = arch.kernel(a, b, batch_size=bs)
            np.testing.assert_allclose(blk.nngp, full.nngp, rtol=1e-12)
            np.testing.assert_allclose(blk.ntk, full.ntk, rtol=SQRT_EPS)  # see test_one_hidden_layer_ntk_by_hand


def test_standard_ntk_depends_on_width_ntk_does_not():
    x = X_IMG
    for p, changes in (("ntk", False), ("standard", True)):
        a = nbk.cnn(2, 16, readout="gap", parameterization=p).kernel(x)
        b = nbk.cnn(2, 64, readout="gap", parameterization=p).kernel(x)
        np.testing.assert_allclose(a.nngp, b.nngp, rtol=1e-12)  # the NNGP never depends on width
        assert (relerr(a.ntk, b.ntk) > 0.1) == changes


def test_strides_and_valid_padding_match_monte_carlo():
    arch = nbk.serial(nbk.Conv(128, (3, 2), strides=(2, 1), padding="VALID", W_std=1.5, b_std=0.2), nbk.Relu(),
                      nbk.Conv(128, (2, 2), padding="SAME", W_std=1.5), nbk.Relu(),
                      nbk.GlobalAvgPool(), nbk.Dense(10, b_std=0.1))
    x = RNG.normal(size=(3, 5, 4, 2))
    mc = empirical.monte_carlo_nngp(arch, x, n_samples=64)
    assert relerr(mc, arch.kernel(x).nngp) < 0.08


def test_traceable_kernel_fn_agrees_with_blocked_kernel():
    arch = nbk.cnn(2, 8, readout="gap")
    nngp, ntk = jax.jit(lambda a: arch.kernel_fn(a, a))(X_IMG)
    k = arch.kernel(X_IMG)
    np.testing.assert_allclose(nngp, k.nngp, rtol=1e-12)
    np.testing.assert_allclose(ntk, k.ntk, rtol=SQRT_EPS)


def test_get_nngp_only():
    k = nbk.cnn(2, 8, readout="gap").kernel(X_IMG, get="nngp")
    assert k.ntk is None and k.nngp.shape == (4, 4)


@pytest.mark.parametrize("make, x, match", [
    (lambda: nbk.serial(nbk.Dense(4), nbk.Relu(), nbk.Dense(1)), X_IMG, "Dense\\(4\\) got images.*Flatten"),
    (lambda: nbk.serial(nbk.Conv(4), nbk.Flatten(), nbk.Dense(1)), X_VEC, "Conv\\(4\\) got vectors.*\\(N, H, W, C\\)"),
    (lambda: nbk.serial(nbk.Conv(4), nbk.Relu()), X_IMG, "ends on images"),
])
def test_bad_architecture_input(make, x, match):
    with pytest.raises(ValueError, match=match):
        make().kernel(x)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="Conv: unknown padding 'same'.*SAME"):
        nbk.Conv(4, padding="same")
    with pytest.raises(ValueError, match="Dense: unknown parameterization 'ntk2'"):
        nbk.Dense(4, parameterization="ntk2")
    with pytest.raises(ValueError, match="W_std"):
        nbk.Dense(4, W_std=-1.0)


def test_bad_data():
    arch = nbk.fcn(2, 8)
    bad = X_VEC.copy(); bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="x1 has 1 NaN"):
        arch.kernel(bad)
    with pytest.raises(ValueError, match="same feature shape"):
        arch.kernel(X_VEC, X_VEC[:, :3])
    with pytest.raises(ValueError, match="vectors or .* images"):
        arch.kernel(np.ones(5))


def test_float64_without_x64_says_how():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            nbk.fcn(2, 8).kernel(X_VEC, dtype=np.float64)
        assert nbk.fcn(2, 8).kernel(X_VEC).nngp.dtype == np.float32  # float32 by default
    finally:
        jax.config.update("jax_enable_x64", True)


def test_request_that_cannot_fit_is_refused_before_allocating(monkeypatch):
    arch = nbk.cnn(2, 8, readout="gap")
    x = np.zeros((5000, 16, 16, 3))  # one block: its partial sums alone (fused, on the CPU) need 98 GiB
    with nbk.settings.context(block_gb=0.01):
        with pytest.raises(nbk.KernelMemoryError, match=r"batch_size=5000 needs about .* use batch_size=\d+"):
            arch.kernel(x, batch_size=5000)
    from nbkernels import blocks
    monkeypatch.setattr(blocks, "available_memory", lambda: 10 * 2 ** 20)
    with pytest.raises(nbk.KernelMemoryError, match="kernel matrices alone need"):
        nbk.fcn(1, 8).kernel(np.zeros((3000, 4)))


def test_network_shapes_and_lcn_is_unshared():
    x = jnp.asarray(X_IMG, jnp.float32)
    lcn = nbk.cnn(1, 5, readout="vec", weight_sharing=False).network()
    params = lcn.init(jax.random.PRNGKey(0), x)
    w = params["params"]["0_Conv"]["W"]
    assert w.shape == (4, 4, 3 * 3 * 2, 5)  # one filter per output pixel
    assert lcn.apply(params, x).shape == (4, 10)
    # the kernel's fan-in conventions: NTK-parameterized weights are N(0, 1)
    net = nbk.fcn(1, 1000).network()
    p = net.init(jax.random.PRNGKey(1), jnp.ones((1, 6)))
    assert abs(float(jnp.std(p["params"]["1_Dense"]["W"])) - 1.0) < 0.01


@pytest.mark.parametrize("padding,strides", [("SAME", (1, 1)), ("VALID", (1, 1)), ("SAME", (2, 1)),
                                             ("CIRCULAR", (1, 1)), ("CIRCULAR", (2, 2))])
def test_lcn_batched_product_equals_the_patch_einsum(padding, strides):
    """The LCN's forward pass (patches from shifted slices, a batched product over positions) equals
    the definition it replaced: lax.conv_general_dilated_patches' patches, in their (c, dy, dx) order,
    contracted with a filter per output position. float64 (tests/conftest.py), to rounding."""
    from jax import lax
    layer = nbk.Conv(4, (3, 2), strides, padding, W_std=1.3, b_std=None, share_weights=False)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 7, 6, 5)))
    net = nbk.Architecture((layer,)).network()
    params = net.init(jax.random.PRNGKey(0), x)
    got = net.apply(params, x)
    xp, pad = x, padding
    if padding == "CIRCULAR":
        xp = jnp.pad(x, [(0, 0)] + [p for _, p in layer.geometry(x.shape[1:3])] + [(0, 0)], mode="wrap")
        pad = "VALID"
    patches = lax.conv_general_dilated_patches(xp, layer.filter_shape, strides, pad,
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
    W = params["params"]["0_Conv"]["W"]
    want = 1.3 / np.sqrt(5 * 3 * 2) * jnp.einsum("nhwp,hwpo->nhwo", patches, W)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
