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
from nbkernels import data, plots, notebook, study, train, predict
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# Presets: two 3×3 layers on downsampled images, widths (channels), SGD with momentum at a fraction of η_crit, `members` networks per width (vmapped) for the noise.

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=100, n_test=600, depth=2, widths=[2, 8, 32], steps=100, members=1),
    "default": dict(image=8, n_train=300, n_test=2000, depth=2, widths=[2, 8, 32], steps=200, members=1),
    "paper":   dict(image=32, n_train=50000, n_test=10000, depth=8, widths=[16, 64, 256, 1024], steps=50000, members=4),
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
kernel_acc = float(predict.accuracy(predict.gradient_descent_mse(cnn_k["ntk"], study.timed_kernel(
    nbk.cnn(cfg["depth"], 256, readout="vec"), x_te, x_tr)["ntk"], y_tr, diag_reg=1e-2), y_te))
print(f"max |K_CNN − K_LCN| / max |K| = {kernel_diff:.1e}; NTK accuracy {kernel_acc:.3f}")

# %% [markdown]
# ## Finite networks over width
# Momentum SGD (β = 0.9) at 0.3·η_crit, full batch, centered (the network's output minus its output at initialization, `center=True`); each member scored on the test set and averaged. Centering matters here: uncentered, the first steps shrink the large initial outputs by driving the ReLUs negative, and a 2-channel CNN, whose few filters are shared by every pixel, loses all its units that way (training loss stuck at the zero function's 0.045 and 9.3–12.6% test accuracy: seeds 0, 1 and 2 at 0.3·η_crit, and two members each at 0.1 and 0.03·η_crit), while the LCN keeps some of its per-pixel units alive.

# %%
results = {}
for share in (True, False):
    for w in cfg["widths"]:
        arch = nbk.cnn(cfg["depth"], w, readout="vec", weight_sharing=share)
        r = train.train(arch, x_tr, y_tr, x_te, y_te, steps=cfg["steps"], lr_factor=0.3, optimizer="momentum", center=True,
                        ensemble=cfg["members"], seed=seed, eval_every=max(cfg["steps"] // 10, 1))
        results[share, w] = dict(run=r, acc=float(np.mean(r.member_test_pred.argmax(-1) == y_te.argmax(-1))))
    print("CNN" if share else "LCN", {w: round(results[share, w]["acc"], 3) for w in cfg["widths"]})

# %% [markdown]
# ## Figure

# %%
n_eff = cfg["n_test"]  # the members share the test points: test-set noise does not average out over them
fig, ax = plt.subplots(figsize=(7, 4))
for share, style in [(True, "o-"), (False, "s--")]:
    acc = np.array([results[share, w]["acc"] for w in cfg["widths"]])
    ax.errorbar(cfg["widths"], 100 * acc, 100 * study.accuracy_se(acc, n_eff), fmt=style, capsize=3,
                label="CNN (weight sharing)" if share else "LCN (no sharing)")
ax.axhline(100 * kernel_acc, color="gray", ls=":", label="their common NTK")
ax.set_xscale("log", base=2)
plots.label(ax, "width (channels per layer)", "test accuracy (%)")
ax.legend(fontsize=8)
plots.title(fig, f"CNN vs LCN over width (depth {cfg['depth']}, no pooling), {cfg['steps']} steps", scale)
fig.tight_layout()
plots.save(fig, "10_equivariance_cnn_vs_lcn/width", preset)
plt.show()


# %% [markdown]
# ## Interactive: learning curves at a width

# %%
def show(width):
    plots.learning_curves([("CNN" if share else "LCN", results[share, width]["run"].history, "member_test_acc")
                           for share in (True, False)],
                          [("NTK", kernel_acc, ":")], what=f"width {width}", scale=scale,
                          ylabel="test accuracy (%), first member")
    plt.show()

notebook.interact(show, width=widgets.SelectionSlider(options=cfg["widths"], description="width"));

# %% [markdown]
# ## Verdict
# The claims: (1) the kernels are identical (relative difference below 10⁻⁵ in float32); (2) at the smallest width the CNN beats the LCN by more than the standard error of the difference; (3) the gap at the largest width is smaller than at the smallest.
#
# *Known at this scale:* the kernels agree exactly (0 difference), but with a few hundred full-batch steps on 100 or 300 images the LCN is ahead of the CNN at every width: CNN − LCN = −0.8 / −5.0 / −0.2 ± 2.4 points at widths 2 / 8 / 32 at `ci`, −2.2 / −4.0 / −1.3 ± 1.4 at `default`, so the verdict is **no** at both, recorded as such. The LCN fits its training set faster (lower training loss at every step), and at this scale that wins; the paper's advantage of weight sharing shows with the full training set and long training, far beyond this CPU budget. Before the networks were centered, the 2-channel CNN did not train at all (10.0%, −15.6 points at `default`); centering removed that artefact, not the LCN's lead.

# %%
gaps = [results[True, w]["acc"] - results[False, w]["acc"] for w in cfg["widths"]]
w0 = cfg["widths"][0]
rows = [dict(what="max |K_CNN − K_LCN| / max |K|", ours=f"{kernel_diff:.1e}", paper="0 (identical kernels)", key=True)]
rows += [dict(what=f"CNN − LCN at width {w}", paper="> 0, shrinking with width (Fig. 5)", key=w in (w0, cfg["widths"][-1]),
              ours=f"{100 * g:+.1f} ± {100 * study.difference_se(results[True, w]['acc'], results[False, w]['acc'], n_eff):.1f} points")
         for w, g in zip(cfg["widths"], gaps)]
notebook.table(rows)
ok = kernel_diff < 1e-5 and study.beats(results[True, w0]["acc"], results[False, w0]["acc"], n_eff) and abs(gaps[-1]) < gaps[0]

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.verdict("10_equivariance_cnn_vs_lcn", "CNN and LCN share one kernel; weight sharing helps only narrow networks",
                 ok, rows, scale, figure="width")
