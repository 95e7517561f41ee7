# %% [markdown]
# # 07 · Diagonal regularization acts like early stopping
#
# **Finding.** For kernels, adding a diagonal regularizer ε to the kernel matrix and stopping gradient flow at time t do nearly the same thing: both fit the kernel's large-eigenvalue directions and leave the small ones, with the correspondence t ≈ m·k·ln2/(η·ε) in the kernel's units (η the learning rate; ε in absolute units). Test accuracy against ε and against t therefore trace the same curve, and the best ε and the best stopping time correspond.
#
# **In the paper.** Lee et al. 2020, §3.6 "Diagonal regularization of kernels behaves like early stopping" and Fig. 7.
#
# **What you will see.** NTK test accuracy against ε and against t, overlaid through the map; finite-width networks' test accuracy along their training time on the same axis.

# %%
import os
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook, study, predict, train
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# Presets: data size, the ε grid (relative to the mean eigenvalue, as everywhere in `nbkernels`), and the finite networks' width and training steps. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=1000, n_test=2000, depth=2, eps_grid=list(np.logspace(-5, 2, 22)),
                    width=512, steps=1000, seeds=2),
    "default": dict(image=8, n_train=2000, n_test=4000, depth=2, eps_grid=list(np.logspace(-6, 2, 25)),
                    width=512, steps=2000, seeds=2),
    "gpu":     dict(image=32, n_train=5000, n_test=4000, depth=3, eps_grid=list(np.logspace(-7, 2, 28)),
                    width=2048, steps=10000, seeds=3),
    "paper":   dict(image=32, n_train=50000, n_test=10000, depth=3, eps_grid=list(np.logspace(-7, 2, 28)),
                    width=2048, steps=100000, seeds=5),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset)
m, k = y_tr.shape
print(scale.describe())

# %% [markdown]
# ## The kernel: ε against t
# The FCN's NTK (cached); one eigendecomposition gives the prediction at every t. Each ε maps to the time t(ε) = m·k·ln2/(η·ε·tr(K)/m), where both spectral filters — ridge λ/(λ+ε) and flow 1−exp(−ηλt/(mk)) — equal ½ at λ = ε.

# %%
arch = nbk.fcn(cfg["depth"], cfg["width"])
k_tt = study.timed_kernel(arch, x_tr)["ntk"]
k_st = study.timed_kernel(arch, x_te, x_tr)["ntk"]
eps = np.array(cfg["eps_grid"])
acc_reg = np.array([predict.accuracy(predict.gradient_descent_mse(k_tt, k_st, y_tr, diag_reg=e, on_precision="ignore"), y_te)
                    for e in eps])
times = predict.reg_to_time(predict.absolute_reg(k_tt, eps), m, k)
acc_flow = np.asarray(predict.accuracy(predict.gradient_descent_mse(k_tt, k_st, y_tr, t=times, on_precision="ignore"), y_te))

# %% [markdown]
# ## Finite networks along their training time
# The same architecture at finite width, NTK parameterization, plain SGD on the full batch at η = 0.9·η_crit, so training time t = η·step is in the kernel's units. Centered (the output at initialization is subtracted, notebook 03), so each network approximates the kernel's mean prediction rather than that plus its random initial function. Several seeds, each drawn separately.

# %%
runs = [train.train(arch, x_tr, y_tr, x_te, y_te, steps=cfg["steps"], lr_factor=0.9, center=True, seed=s, eval_every=max(cfg["steps"] // 30, 1))
        for s in range(cfg["seeds"])]
finite_t = [r.learning_rate * r.history["step"] for r in runs]
print(f"η_crit = {runs[0].eta_crit:.2f}; finite networks reach t = {finite_t[0][-1]:.3g}; "
      f"best finite accuracy {max(r.best_test_acc for r in runs):.3f}")

# %% [markdown]
# ## The overlay
# Bottom axis: flow time t; top axis: the ε that maps to it. The two kernel curves should lie on top of each other.

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
ax.semilogx(times, 100 * acc_reg, "o-", label="kernel, diagonal regularizer ε (placed at t(ε))")
ax.semilogx(times, 100 * acc_flow, "s--", label="kernel, gradient flow stopped at t")
for s, (t, r) in enumerate(zip(finite_t, runs)):
    ax.semilogx(t[1:], 100 * r.history["test_acc"][1:], "-", color="C2", alpha=0.7, label="finite network (seeds)" if s == 0 else None)
top = ax.secondary_xaxis("top", functions=(lambda t: predict.time_to_reg(t, m, k) / (np.trace(k_tt) / m),
                                           lambda e: predict.reg_to_time(e * np.trace(k_tt) / m, m, k)))
top.set_xlabel("relative diagonal regularizer ε")
plots.label(ax, "gradient-flow time t = η·steps (kernel units)", "test accuracy (%)")
ax.legend(fontsize=8)
plots.title(fig, "Diagonal regularization ≈ early stopping (FCN NTK)", scale)
fig.tight_layout()
plots.save(fig, "07_diag_reg_early_stopping/overlay", preset)
plt.show()

# %% [markdown]
# ## Interactive: pick ε
# The spectral filters at the chosen ε and at its time t(ε): how much of each eigendirection each method fits.

# %%
eigs = predict.spectrum(k_tt)
def show(e):
    reg_abs = predict.absolute_reg(k_tt, e)
    t = predict.reg_to_time(reg_abs, m, k)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.semilogx(eigs, predict.ridge_filter(eigs, reg_abs), label=f"ridge λ/(λ+ε), ε={e:.2g}")
    ax.semilogx(eigs, predict.flow_filter(eigs, t, m, k), "--", label=f"flow 1−exp(−λt/mk), t={t:.3g}")
    plots.label(ax, "kernel eigenvalue λ", "fraction of the direction fitted")
    i = int(np.argmin(abs(eps - e)))
    plots.title(ax, f"test accuracy: ridge {100 * acc_reg[i]:.1f}%, flow {100 * acc_flow[i]:.1f}%", scale)
    ax.legend(fontsize=8)
    plt.show()

notebook.interact(show, e=widgets.SelectionSlider(options=[float(f"{e:.3g}") for e in eps], value=float(f"{eps[len(eps) // 2]:.3g}"), description="ε"));

# %% [markdown]
# ## Verdict
# The claims: (1) after the map the two kernel curves agree — Pearson correlation above 0.9 over the grid (the largest gap is shown); (2) the best ε and the best t correspond: t(ε_best) is within two grid steps of t_best.

# %%
corr = float(np.corrcoef(acc_reg, acc_flow)[0, 1])
gap = float(np.max(np.abs(acc_reg - acc_flow)))
i_reg, i_flow = int(np.argmax(acc_reg)), int(np.argmax(acc_flow))
se = study.accuracy_se(acc_reg.max(), cfg["n_test"])
rows = [dict(what="correlation of accuracy(ε) and accuracy(t(ε))", ours=f"{corr:.3f}", paper="curves coincide (Fig. 7)", key=True),
        dict(what="largest gap between the curves", ours=f"{100 * gap:.1f} points (SE of one accuracy {100 * se:.1f})", paper="small", key=True),
        dict(what="best ε → t(ε) / best t", ours=f"{eps[i_reg]:.2g} → {times[i_reg]:.3g} / {times[i_flow]:.3g} ({abs(i_reg - i_flow)} grid steps)",
             paper="best ε ↔ best t", key=True),
        dict(what="best accuracy: ridge / flow / finite (best step)",
             ours=f"{study.pct(acc_reg.max())} / {study.pct(acc_flow.max())} / {study.pct(max(r.best_test_acc for r in runs))}", paper="—")]
notebook.table(rows)

# %% tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.verdict("07_diag_reg_early_stopping", "Diagonal regularization of the kernel behaves like early stopping",
                 corr > 0.9 and abs(i_reg - i_flow) <= 2, rows, scale, figure="overlay",
                 caveats=["ridge and flow predictions use on_precision='ignore', so the smallest ε and the longest times show what an unregularized solve returns, precision problems included"])
