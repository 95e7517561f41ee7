# %% [markdown]
# # 00 · Data tour: CIFAR-10 and regularized ZCA whitening
#
# **Finding.** Regularized ZCA whitening, `W = (Σ + ε·tr(Σ)/d·I)^(-1/2)`, interpolates between the raw images (large ε) and fully whitened ones (ε → 0), whose training covariance is the identity on the span of the data, while the classes stay separable.
#
# **In the paper.** Lee et al. 2020, *Finite Versus Infinite Neural Networks*, §3.10 and Fig. 9 (ZCA regularization); the preprocessing every later notebook uses.
#
# **What you will see.** A sample of each class; the eigenvalue spectrum of the pixel covariance with the regularizer's level; whitened images for a slider over ε; and a verdict computed from the data.

# %% [markdown]
# Imports first. All the logic lives in the `nbkernels` package; this notebook only calls it.

# %%
import os
from typing import Optional
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook
plots.use_style()

# %% [markdown]
# The parameters papermill can override (`papermill -p preset ci ...`). `preset` defaults to `$NBKERNELS_PRESET`, so the test suite runs the small one.

# %% tags=["parameters"]
preset: str = os.environ.get("NBKERNELS_PRESET", "default")  # the scale: ci, default, gpu or paper (PRESETS below)
dataset: str = "auto"  # cifar10, digits, or auto (CIFAR-10 when found, else the digits)
n_train: Optional[int] = None  # training images (None: the preset's)
n_test: Optional[int] = None  # test images (None: the preset's)
seed: int = 0  # the random draw of the images (and the first seed of any network)

# %% [markdown]
# The presets: `ci` is the smallest scale at which the finding holds, `default` fits a laptop in minutes, `paper` is the scale of the paper. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(n_train=1000,  n_test=1000,  eps_grid=[1.0, 0.1, 0.01, 1e-3, 0.0]),
    "default": dict(n_train=3000,  n_test=3000,  eps_grid=[10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 0.0]),
    "gpu":     dict(n_train=10000, n_test=4000, eps_grid=[10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 0.0]),
    "paper":   dict(n_train=50000, n_test=10000, eps_grid=[10.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 0.0]),
}
cfg = notebook.choose_preset(PRESETS, preset, n_train=n_train, n_test=n_test)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
scale = plots.scale(ds, ds.x_train, ds.x_test, preset)
print(scale.describe())

# %% [markdown]
# ## A sample of each class
# Eight images of every class, straight from the loader (float32 in [0, 1]).

# %%
per_class = 8
fig, axes = plt.subplots(len(ds.class_names), per_class, figsize=(per_class * 0.9, len(ds.class_names) * 0.95))
for c, name in enumerate(ds.class_names):
    idx = np.flatnonzero(ds.y_train == c)[:per_class]
    for j, i in enumerate(idx):
        ax = axes[c, j]
        ax.imshow(ds.x_train[i].squeeze(), cmap="gray" if ds.x_train.shape[-1] == 1 else None)
        ax.set_xticks([]); ax.set_yticks([]); ax.grid(False)
    axes[c, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
plots.title(fig, "Samples per class", scale)
plots.save(fig, "00_data_tour/samples", preset)
plt.show()


# %% [markdown]
# ## Whitening over a grid of ε
# Each ε is fitted on the training images (after per-channel standardization) and applied to both splits; one SVD of the training data serves the whole grid. The result is cached, so the widget below answers at once.

# %%
def zca_sweep(x_train, x_test, y_train, y_test, eps_grid):
    base = data.ZCA(0.0).fit(x_train)  # one SVD serves every ε
    out = {"eigenvalues": base.eigenvalues_, "eps": list(eps_grid), "runs": {}}
    for eps in eps_grid:
        z = base.with_eps(eps)
        w_tr, w_te = z.transform(x_train), z.transform(x_test)
        f_tr, f_te = w_tr.reshape(len(w_tr), -1), w_te.reshape(len(w_te), -1)
        f64 = f_tr.astype(np.float64)
        cov_eigs = np.linalg.eigvalsh(f64.T @ f64 / len(f64))[::-1]  # the whitened data's covariance spectrum
        rank = int((z.scale_ > 0).sum())
        # nearest class mean on whitened features: are the classes still separable?
        means = np.stack([f_tr[y_train == c].mean(0) for c in range(10)])
        d2 = (f_te ** 2).sum(1)[:, None] - 2 * f_te @ means.T + (means ** 2).sum(1)[None]
        acc = float((d2.argmin(1) == y_test).mean())
        dev = np.abs(cov_eigs[:rank] - 1)
        out["runs"][eps] = dict(cov_deviation=float(dev.max()), cov_median_deviation=float(np.median(dev)), ncm_accuracy=acc,
                                examples=w_tr[:6], reg=eps * z.eigenvalues_.sum() / z.eigenvalues_.size)
    return out

x_tr, x_te = data.standardize_channels(ds.x_train, ds.x_test)
config = dict(nb="00", data=nbk.cache.fingerprint(x_tr), test=nbk.cache.fingerprint(x_te), eps=cfg["eps_grid"])
sweep = nbk.cache.cached(config, lambda: zca_sweep(x_tr, x_te, ds.y_train, ds.y_test, cfg["eps_grid"]), version="4")

# %% [markdown]
# ## The spectrum of the pixel covariance
# Natural images have a covariance spectrum that decays roughly like a power law; ZCA divides each direction by the square root of its eigenvalue plus the regularizer `ε·tr(Σ)/d` (dashed lines), so directions below the line are left mostly unamplified.

# %%
eig = sweep["eigenvalues"]
fig, ax = plt.subplots()
ax.loglog(np.arange(1, len(eig) + 1), np.maximum(eig, 1e-12), label="eigenvalues of Σ")
for eps in cfg["eps_grid"]:
    if eps > 0:
        ax.axhline(sweep["runs"][eps]["reg"], ls="--", lw=0.8, color="gray")
        ax.text(1.1, sweep["runs"][eps]["reg"], f"ε={eps:g}", fontsize=8, va="bottom")
plots.label(ax, "eigenvalue index i", "eigenvalue λ_i (standardized pixel units²)")
plots.title(ax, "Pixel covariance spectrum and ZCA regularizer levels", scale)
ax.legend()
plots.save(fig, "00_data_tour/spectrum", preset)
plt.show()


# %% [markdown]
# ## Interactive: move ε
# The slider walks the cached grid (ε = 0 is full whitening). Top row: the images; bottom row: the same images whitened with that ε (each rescaled to [0, 1] for display).

# %%
def show(eps):
    run = sweep["runs"][eps]
    fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))
    for j in range(6):
        w = run["examples"][j]
        axes[0, j].imshow(ds.x_train[j].squeeze(), cmap="gray" if ds.x_train.shape[-1] == 1 else None)
        axes[1, j].imshow(((w - w.min()) / (np.ptp(w) + 1e-12)).squeeze(), cmap="gray" if w.shape[-1] == 1 else None)
        for ax in axes[:, j]:
            ax.set_xticks([]); ax.set_yticks([]); ax.grid(False)
    axes[0, 0].set_ylabel("raw"); axes[1, 0].set_ylabel(f"ZCA ε={eps:g}")
    plots.title(fig, f"ZCA ε={eps:g}: covariance deviation {run['cov_deviation']:.1e}, nearest-mean accuracy {100*run['ncm_accuracy']:.1f}%", scale)
    plt.show()

notebook.interact(show, eps=widgets.SelectionSlider(options=cfg["eps_grid"], value=cfg["eps_grid"][1], description="ε"));

# %% [markdown]
# ## What the tour shows
# This notebook is the data tour, not a finding of the paper: the report lists it without a verdict and counts the 13 findings (01–13). Its two checks are tests of the package (`tests/test_data.py`: ZCA at ε = 0 whitens the training covariance to the identity on the data's span; regularized ZCA keeps classes separable for a nearest-class-mean classifier). The numbers below are what they look like on this dataset: (1) as ε → 0 the largest deviation of the whitened training covariance from the identity (on the span of the data) shrinks to rounding at ε = 0 (the median deviation is shown too: the largest one belongs to the smallest eigenvalue of the pixel covariance, far below every regularizer level in the grid, so it stays near 1 until ε = 0); (2) after whitening with ε = 0.1, a nearest-class-mean classifier's test accuracy, against chance (10%).

# %%
devs = [sweep["runs"][e]["cov_deviation"] for e in cfg["eps_grid"]]
acc = sweep["runs"][0.1]["ncm_accuracy"]
se = np.sqrt(acc * (1 - acc) / len(ds.y_test))
rows = [dict(what=f"max (median) |eig(cov) - 1| at ε={e:g}", ours=f"{d:.2e} ({sweep['runs'][e]['cov_median_deviation']:.2e})",
             paper="→ 0 as ε → 0") for e, d in zip(cfg["eps_grid"], devs)]
rows.append(dict(what="nearest-class-mean test accuracy, ε=0.1", ours=f"{100*acc:.1f} ± {100*se:.1f}%", paper="above chance (10%)"))
notebook.table(rows)
notebook.tour("00_data_tour", "The data: CIFAR-10 at the suite's scales, and regularized ZCA from ε → ∞ to full whitening",
              rows, scale, figure="spectrum")
