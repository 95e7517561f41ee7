# %% [markdown]
# # 10 · Equivariance: CNN against LCN
#
# **Finding.** A CNN without pooling (CNN-VEC) and a locally connected network (LCN: the same receptive fields, no weight sharing) have *identical* infinite-width kernels — weight sharing leaves no trace at infinite width. At finite width the CNN's equivariance helps: it beats the LCN at small widths, and the gap shrinks toward zero as the width grows and both approach the common kernel.
#
# **In the paper.** Lee et al. 2020, §3.7 "Equivariance is only beneficial for narrow networks far from the kernel regime" and Fig. 5 (right).
#
# **What you will see.** The two kernels compared entry by entry; test accuracy of CNN and LCN against width with the kernel as a reference line.

# %%
import os
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook, study
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# Presets: two 3×3 layers on downsampled images, widths (channels), the measured recipe (`study.RECIPE`: minibatch momentum SGD, warm-up then cosine decay) at a fraction of η_crit, centered, `seeds` networks per width for the noise; each run stops at its best validation step. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=100, n_test=600, depth=2, widths=[2, 8, 32], steps=150, batch=50, seeds=1),
    "default": dict(image=8, n_train=300, n_test=2000, depth=2, widths=[2, 8, 32], steps=600, batch=100, seeds=1),
    "gpu":     dict(image=16, n_train=2000, n_test=4000, depth=3, widths=[4, 16, 64, 128], steps=4000, batch=100, seeds=2),
    "paper":   dict(image=32, n_train=50000, n_test=10000, depth=8, widths=[16, 64, 256, 1024], steps=50000, batch=128, seeds=4),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset)
print(scale.describe())

# %% [markdown]
# ## The kernels are the same
# NNGP and NTK of the CNN and the LCN on the training images (float32), compared entry by entry.

# %%
cnn_k = study.timed_kernel(nbk.cnn(cfg["depth"], 256, readout="vec"), x_tr)
lcn_k = study.timed_kernel(nbk.cnn(cfg["depth"], 256, readout="vec", weight_sharing=False), x_tr)
kernel_diff = max(float(np.max(np.abs(cnn_k[g] - lcn_k[g])) / np.max(np.abs(cnn_k[g]))) for g in ("nngp", "ntk"))
kr = study.kernel_accuracies(nbk.cnn(cfg["depth"], 256, readout="vec"), x_tr, y_tr, x_te, y_te, diag_regs=[1e-3, 1e-2, 1e-1, 1.0])
kernel_acc = kr.ntk.acc   # on the reported half, diag_reg chosen on the validation half
print(f"max |K_CNN − K_LCN| / max |K| = {kernel_diff:.1e}; NTK accuracy {kernel_acc:.3f}")

# %% [markdown]
# ## Finite networks over width
# One `study.finite_accuracies` call per network and width (cached runs), centered (the network's output minus its output at initialization, `center=True`). Centering matters here: uncentered, the first steps shrink the large initial outputs by driving the ReLUs negative, and a 2-channel CNN, whose few filters are shared by every pixel, loses all its units that way (training loss stuck at the zero function's 0.045 and 9.3–12.6% test accuracy, measured with full-batch momentum SGD: seeds 0, 1 and 2 at 0.3·η_crit, and two members each at 0.1 and 0.03·η_crit), while the LCN keeps some of its per-pixel units alive. A width whose runs all fail is still scored, and its failures are printed.

# %%
results = {}
for share in (True, False):
    for w in cfg["widths"]:
        arch = nbk.cnn(cfg["depth"], w, readout="vec", weight_sharing=share)
        results[share, w] = study.finite_accuracies(
            arch, x_tr, y_tr, x_te, y_te, seeds=range(cfg["seeds"]), on_failure="report",
            **dict(study.RECIPE, batch_size=cfg["batch"], warmup=cfg["steps"] // 10), lr_factor=0.3, center=True,
            steps=cfg["steps"], eval_every=max(cfg["steps"] // 15, 1), progress=False)
    print("CNN" if share else "LCN", {w: round(results[share, w].acc, 3) for w in cfg["widths"]},
          [why for w in cfg["widths"] for _, _, why in results[share, w].failures])

# %% [markdown]
# ## Figure

# %%
n_rep = kr.n_report  # the reported half of the test images
fig, ax = plt.subplots(figsize=(7, 4))
for share, style in [(True, "o-"), (False, "s--")]:
    acc = np.array([results[share, w].acc for w in cfg["widths"]])
    err = np.hypot(study.accuracy_se(acc, n_rep), [results[share, w].acc_se for w in cfg["widths"]])
    ax.errorbar(cfg["widths"], 100 * acc, 100 * err, fmt=style, capsize=3,
                label="CNN (weight sharing)" if share else "LCN (no sharing)")
ax.axhline(100 * kernel_acc, color="gray", ls=":", label="their common NTK")
ax.set_xscale("log", base=2)
plots.label(ax, "width (channels per layer)", "test accuracy (%)")
ax.legend(fontsize=8)
plots.title(fig, f"CNN vs LCN over width (depth {cfg['depth']}, no pooling), up to {cfg['steps']} steps", scale)
fig.tight_layout()
plots.save(fig, "10_equivariance_cnn_vs_lcn/width", preset)
plt.show()


# %% [markdown]
# ## Interactive: learning curves at a width

# %%
def show(width):
    plots.learning_curves([("CNN" if share else "LCN", results[share, width].run.history, "test_acc")
                           for share in (True, False)],
                          [("NTK", kernel_acc, ":")], what=f"width {width}", scale=scale,
                          ylabel="test accuracy (%), first seed")
    plt.show()

notebook.interact(show, width=widgets.SelectionSlider(options=cfg["widths"], description="width"));

# %% [markdown]
# ## Verdict
# The claims: (1) the kernels are identical (relative difference below 10⁻⁵ in float32); (2) at the smallest width the CNN beats the LCN by more than the standard error of the difference (the paired error of the per-image differences on the reported half, and the seeds' spread, in quadrature); (3) the gap at the largest width is smaller than at the smallest.
#
# *Known at this scale:* the kernels agree exactly (0 difference). With full-batch training the LCN was ahead at every width (CNN − LCN −2.2 / −4.0 / −1.3 ± 1.4 points at widths 2 / 8 / 32 at `default`); with the recipe it still is (−4.2 / −1.9 / −4.5 ± 1.4–1.7, `default`, 2026-12-02). On 8×8 images an LCN has only 64 positions' weights to learn, and the recipe table in `benchmarks/README.md` shows the LCN reaching 42.6% validation accuracy where CNN-VEC reaches 36.6% (1,000 images, flips and crops, 1.0 η_crit): at this image size weight sharing is no advantage. The paper's claim is at 32×32 (1,024 positions); the `gpu` preset runs 16×16.

# %%
def gap(w):
    a, b = results[True, w], results[False, w]
    return a.acc - b.acc, float(np.hypot(study.paired_difference_se(a.score, b.score), np.hypot(a.acc_se, b.acc_se)))

gaps = {w: gap(w) for w in cfg["widths"]}
w0, w1 = cfg["widths"][0], cfg["widths"][-1]
rows = [dict(what="max |K_CNN − K_LCN| / max |K|", ours=f"{kernel_diff:.1e}", paper="0 (identical kernels)", key=True)]
rows += [dict(what=f"CNN − LCN at width {w}", paper="> 0, shrinking with width (Fig. 5)", key=w in (w0, w1),
              ours=f"{100 * g:+.1f} ± {100 * se:.1f} points") for w, (g, se) in gaps.items()]
rows += [dict(what="NTK (their common kernel)", ours=study.pct(kernel_acc), paper="the width → ∞ limit of both")]
notebook.table(rows)
ok = kernel_diff < 1e-5 and gaps[w0][0] > gaps[w0][1] and abs(gaps[w1][0]) < gaps[w0][0]

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.legacy_verdict("10_equivariance_cnn_vs_lcn", "CNN and LCN share one kernel; weight sharing helps only narrow networks",
                 ok, rows, scale, figure="width")
