# %% [markdown]
# # 12 · Standard against NTK parameterization
#
# **Finding.** In the standard parameterization the largest stable learning rate falls like 1/width, while in the NTK parameterization it stays constant; the standard parameterization has an infinite-width NTK of its own, which depends on the layer widths (their ratios), reaches accuracy similar to the NTK-parameterized kernel, and can beat it when the relative widths are tuned. The paper reports that finite NTK-parameterized networks do better than standard ones at its scale.
#
# **In the paper.** Sohl-Dickstein et al. 2020, *On the infinite width limit of neural networks with a standard parameterization* (arXiv 2001.07301), Figs. 1–3; Lee et al. 2020, §3.4 and Table 1 (STD vs NTK rows).
#
# **What you will see.** η_crit against width for both parameterizations; kernel accuracy of the standard NTK over width ratios beside the NTK-parameterized kernel; finite networks of both kinds with tuned learning rates over widths.

# %%
import os
import jax
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook, study, train
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# Presets: widths for η_crit, width ratios r = (first hidden width)/(second) for the standard kernels, widths and learning-rate factors for the finite networks. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=1500, n_test=4000, crit_widths=[32, 64, 128, 256, 512, 1024, 2048],
                    ratios=[0.125, 0.25, 0.5, 1, 2, 4, 8], base_width=512, widths=[128, 512], lr_factors=[0.3, 0.9], steps=200,
                    diag_regs=[1e-3, 1e-2, 1e-1, 1.0]),
    "default": dict(image=8, n_train=1500, n_test=4000, crit_widths=[32, 64, 128, 256, 512, 1024, 2048],
                    ratios=[0.125, 0.25, 0.5, 1, 2, 4, 8], base_width=512, widths=[128, 512], lr_factors=[0.3, 0.9],
                    steps=800, diag_regs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    "gpu":     dict(image=32, n_train=5000, n_test=4000, crit_widths=[64, 128, 256, 512, 1024, 2048, 4096],
                    ratios=[0.125, 0.25, 0.5, 1, 2, 4, 8], base_width=1024, widths=[256, 1024, 2048], lr_factors=[0.1, 0.3, 0.6, 0.9],
                    steps=2000, diag_regs=list(np.logspace(-6, 0, 13))),
    "paper":   dict(image=32, n_train=50000, n_test=10000, crit_widths=[64, 128, 256, 512, 1024, 2048, 4096],
                    ratios=[0.125, 0.25, 0.5, 1, 2, 4, 8], base_width=2048, widths=[256, 1024, 4096], lr_factors=[0.1, 0.3, 0.6, 0.9],
                    steps=100000, diag_regs=list(np.logspace(-6, 0, 13))),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset)
print(scale.describe())


# %% [markdown]
# ## Largest stable learning rate against width
# η_crit = 2/λ_max of the loss Hessian's Gauss–Newton part at initialization (power iteration, `train.critical_learning_rate`), for a two-hidden-layer FCN at each width in both parameterizations.

# %%
def eta_crit(param, width):
    arch = nbk.fcn(2, width, parameterization=param)
    params = arch.network().init(jax.random.PRNGKey(seed), x_tr[:1])
    return train.critical_learning_rate(arch, params, x_tr[:500], 10)

crit = {p: np.array([nbk.cache.cached(dict(nb="12", p=p, w=w, x=nbk.cache.fingerprint(x_tr[:500]), seed=seed),
                                      lambda p=p, w=w: eta_crit(p, w)) for w in cfg["crit_widths"]])
        for p in ("standard", "ntk")}
slopes = {p: float(np.polyfit(np.log(cfg["crit_widths"]), np.log(crit[p]), 1)[0]) for p in crit}
print({p: f"η_crit ∝ width^{s:.2f}" for p, s in slopes.items()})


# %% [markdown]
# ## Kernels: the standard NTK depends on the width ratio
# A two-hidden-layer FCN with hidden widths (r·w, w) in standard parameterization; its NTK changes with r (the NTK-parameterized kernel does not depend on widths). Regularizer tuned on the validation half.

# %%
def fcn_widths(w1, w2, param):
    kw = dict(W_std=2 ** 0.5, b_std=0.1, parameterization=param)
    return nbk.serial(nbk.Flatten(), nbk.Dense(w1, **kw), nbk.Relu(), nbk.Dense(w2, **kw), nbk.Relu(), nbk.Dense(10, **kw))

def ntk_of(arch):  # the NTK at the regularizer chosen on validation (a study.KernelFit: acc, best_val, score per reported image)
    return study.kernel_accuracies(arch, x_tr, y_tr, x_te, y_te, diag_regs=cfg["diag_regs"], get=("nngp", "ntk")).ntk

w = cfg["base_width"]
ntk_param = ntk_of(nbk.fcn(2, w, parameterization="ntk"))
ntk_kernel, ntk_score = ntk_param.acc, ntk_param.score
std = {r: ntk_of(fcn_widths(int(r * w), w, "standard")) for r in cfg["ratios"]}
std_kernel = {r: k.acc for r, k in std.items()}
std_score = {r: k.score for r, k in std.items()}
best_r = max(std, key=lambda r: std[r].best_val)  # the width ratio is chosen on the validation half
print(f"NTK-param kernel {ntk_kernel:.3f}; standard kernel by ratio:", {r: round(a, 3) for r, a in std_kernel.items()})

# %% [markdown]
# ## Finite networks, learning rate tuned
# Both parameterizations at each width, full-batch SGD at each learning-rate factor (a multiple of that network's own η_crit, so the 1/width scaling is absorbed), each run stopped at its best validation step; the factor is chosen on the validation half (`study.finite_accuracies`), and the test accuracy is that of the reported half.

# %%
(_, _), (_, y_rep) = study.split_validation(x_te, y_te)  # the reported half
finite = {}
for p in ("standard", "ntk"):
    for width in cfg["widths"]:
        finite[p, width] = study.finite_accuracies(nbk.fcn(2, width, parameterization=p), x_tr, y_tr, x_te, y_te,
                                                   grid=[dict(lr_factor=f) for f in cfg["lr_factors"]], seeds=[seed],
                                                   steps=cfg["steps"], eval_every=max(cfg["steps"] // 10, 1), progress=False)
        f = finite[p, width]
        print(f"{p:8s} width {width:5d}: test {f.acc:.3f} at lr {f.run.learning_rate:.3g} ({f.label}), stopped at step {f.step}")

# %% [markdown]
# ## Figures

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
ax = axes[0]
for p, style in [("standard", "o-"), ("ntk", "s--")]:
    ax.loglog(cfg["crit_widths"], crit[p], style, label=f"{p}: slope {slopes[p]:.2f}")
plots.label(ax, "width (hidden units)", "η_crit (largest stable SGD step)")
ax.set_title("largest stable learning rate"); ax.legend()
ax = axes[1]
ax.semilogx(cfg["ratios"], [100 * std_kernel[r] for r in cfg["ratios"]], "o-", label="standard NTK, widths (r·w, w)")
ax.axhline(100 * ntk_kernel, color="C1", ls="--", label="NTK-parameterized kernel")
plots.log_ticks(ax, cfg["ratios"])
plots.label(ax, "width ratio r (first / second hidden layer)", "test accuracy (%)")
ax.set_title("infinite-width kernels"); ax.legend(fontsize=8)
ax = axes[2]
for p, style in [("standard", "o-"), ("ntk", "s--")]:
    ax.semilogx(cfg["widths"], [100 * finite[p, wd].acc for wd in cfg["widths"]], style, label=p)
plots.log_ticks(ax, cfg["widths"])
plots.label(ax, "width (hidden units)", "test accuracy (%), tuned lr")
ax.set_title("finite networks"); ax.legend()
plots.title(fig, "Standard vs NTK parameterization (FCN, 2 hidden layers)", scale)
fig.tight_layout()
plots.save(fig, "12_standard_vs_ntk_parameterization/parameterizations", preset)
plt.show()


# %% [markdown]
# ## Interactive: learning curves
# Pick a parameterization, a width and a learning-rate factor.

# %%
def show(param, width, factor):
    r = finite[param, width].runs[cfg["lr_factors"].index(factor)][1][0]
    plots.learning_curves([("validation", r.history, "val_acc"), ("test (reported half)", r.history, "test_acc")],
                          [("NTK kernel", ntk_kernel, "--")],
                          what=f"{param}, width {width}, lr {r.learning_rate:.3g}", scale=scale)
    plt.show()

notebook.interact(show, param=widgets.ToggleButtons(options=["standard", "ntk"]),
                 width=widgets.SelectionSlider(options=cfg["widths"]), factor=widgets.SelectionSlider(options=cfg["lr_factors"]));

# %% [markdown]
# ## Verdict
# The claims: (1) η_crit ∝ width^s with s within 0.3 of −1 in standard parameterization and |s| < 0.2 in NTK parameterization; (2) the standard kernel at equal widths is within two standard errors of the NTK-parameterized kernel; (3) the width ratio chosen on the validation half gives a standard kernel that beats the NTK-parameterized kernel by more than the standard error of the difference. Kernels are deterministic and scored on the same test images, so both errors are the paired ones (`study.paired_difference_se`). Which parameterization's finite networks do better is reported beside the paper's claim, not part of the verdict.
#
# *Known at this scale:* FCN kernels and η_crit are cheap at 8×8, so `ci` uses the same 1,500 training and 4,000 test images and widths up to 2,048 as `default` (99 s cold); only the finite networks train for fewer steps (200 against 800). With 600 training images and widths up to 1,024, `ci` gave a slope of −0.66 (short of −1 by more than the 0.3 allowed) and a chosen ratio that tied the NTK-parameterized kernel (+0.0 ± 0.5 points): **no**. The slope steepens toward −1 with width (the width-independent input layer and biases weigh less), so the widest octave matters. At `ci` and `default` all three hold, narrowly: the slope is −0.73; the standard kernel at r = 1 is 0.3 points above the NTK-parameterized one against two paired errors of 0.3; and the chosen ratio beats it by +0.4 ± 0.2 points, a difference of a few images out of 2,000 (the two kernels disagree on under 1% of the test images; the table counts them). Both kernels are deterministic and scored on the same images, so the paired error is their whole noise; with the unpaired binomial error used before (1.6 points) the same +0.4 was a tie. The finite networks here are far from converged (a few hundred full-batch steps).

# %%
n_rep = len(y_rep)
se2 = 2 * study.paired_difference_se(std_score[1], ntk_score)
rows = [dict(what="η_crit ∝ width^s: standard / NTK", ours=f"s = {slopes['standard']:.2f} / {slopes['ntk']:.2f}", paper="−1 / 0", key=True),
        dict(what="kernel: standard (r = 1) vs NTK-parameterized", ours=f"{study.pct(std_kernel[1])} vs {study.pct(ntk_kernel)} (2 paired SE of the difference: {100 * se2:.1f})",
             paper="similar", key=True),
        dict(what="kernel: width ratio r chosen on validation, − NTK-param",
             ours=f"r = {best_r}: {study.pct(std_kernel[best_r])} ({100 * (std_kernel[best_r] - ntk_kernel):+.1f} ± "
                  f"{100 * study.paired_difference_se(std_score[best_r], ntk_score):.1f}; of {n_rep} images the two disagree on "
                  f"{np.sum(std_score[best_r] != ntk_score)}: {np.sum(std_score[best_r] & ~ntk_score)} right only with r = {best_r}, "
                  f"{np.sum(~std_score[best_r] & ntk_score)} only with NTK param)", paper="tuned ratios can beat NTK param",
             key=True),
        dict(what="finite: standard vs NTK (tuned lr), by width",
             ours=", ".join(f"{wd}: {study.pct(finite['standard', wd].acc)} vs {study.pct(finite['ntk', wd].acc)}" for wd in cfg["widths"]),
             paper="NTK parameterization better (Lee et al. Table 1)")]
notebook.table(rows)
ok = abs(slopes["standard"] + 1) < 0.3 and abs(slopes["ntk"]) < 0.2 and abs(std_kernel[1] - ntk_kernel) <= se2 \
    and study.beats_paired(std_score[best_r], ntk_score)

# %% tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.legacy_verdict("12_standard_vs_ntk_parameterization", "η_crit ∝ 1/width (standard) vs constant (NTK); standard kernels match NTK ones and tuned width ratios beat them",
                 ok, rows, scale, figure="parameterizations")
