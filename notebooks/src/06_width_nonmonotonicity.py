# %% [markdown]
# # 06 · Performance can fall as networks get wider
#
# **Finding.** For convolutional networks without pooling in standard parameterization, test accuracy against width is not monotone: it peaks at an intermediate width and falls as the width grows further, toward the (worse) infinite-width kernel. The dip is not double descent: it is far from the interpolation threshold (the width at which the network first fits its training set).
#
# **In the paper.** Lee et al. 2020, §3.3 "Performance can be non-monotonic in width beyond double descent" and Fig. 5 (left).
#
# **What you will see.** Test accuracy against width (powers of 2, several seeds, error bars) with the kernel as a reference line, the width at which the training set is first fitted, and learning curves per width.

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
# Presets: CNN-VEC (3×3 convolutions, flatten, dense readout) in standard parameterization, trained with the measured recipe (`study.RECIPE`: minibatch momentum SGD, warm-up then cosine decay) at a fraction of each network's η_crit with L2, widths over at least six octaves, `seeds` independently initialized networks per width. Each run stops at the step with the best accuracy on the validation half of the test images and is scored on the other half. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=100, n_test=600, depth=2, widths=[1, 2, 4, 8, 16, 32, 64], steps=200, batch=50, seeds=2, l2=1e-4),
    "default": dict(image=8, n_train=300, n_test=2000, depth=2, widths=[1, 2, 4, 8, 16, 32, 64], steps=1000, batch=100, seeds=2, l2=1e-4),
    "gpu":     dict(image=16, n_train=1000, n_test=4000, depth=3, widths=[1, 2, 4, 8, 16, 32, 64, 128, 256], steps=4000, batch=100, seeds=4, l2=1e-4),
    "paper":   dict(image=32, n_train=50000, n_test=10000, depth=8, widths=[8, 16, 32, 64, 128, 256, 512, 1024], steps=50000, batch=128, seeds=4, l2=1e-5),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset)
print(scale.describe())

# %% [markdown]
# ## The experiment
# One `study.finite_accuracies` call per width (cached runs), with `seeds` networks; each seed's accuracy is taken at its own validation-chosen step. The reference is the NNGP/NTK of the same architecture, regularizer and kernel chosen on the validation half.

# %%
results = {}
make = lambda w: nbk.cnn(cfg["depth"], w, readout="vec", parameterization="standard")
for w in cfg["widths"]:
    results[w] = study.finite_accuracies(make(w), x_tr, y_tr, x_te, y_te, seeds=range(cfg["seeds"]),
                                         **dict(study.RECIPE, batch_size=cfg["batch"], warmup=cfg["steps"] // 10),
                                         lr_factor=0.3, l2=cfg["l2"], steps=cfg["steps"], eval_every=max(cfg["steps"] // 15, 1),
                                         progress=False, on_failure="report")  # a width whose runs all fail is still a point
    r = results[w]
    print(f"width {w:4d}: {study.pct(r.acc, r.acc_se)}, stopped at {r.steps}, final train loss "
          f"{np.mean([c.history['train_loss'][-1] for c in r.chosen]):.4f}" + "".join(f"; {why}" for _, _, why in r.failures))
kr = study.kernel_accuracies(make(max(cfg["widths"])), x_tr, y_tr, x_te, y_te, diag_regs=[1e-3, 1e-2, 1e-1, 1.0])
kernel = kr[kr.better]   # the better kernel, chosen on validation
kernel_acc = kernel.acc

# %% [markdown]
# ## Accuracy against width
# Error bars: standard error over the seeds. Open markers: widths whose every run diverged or collapsed (recorded, scored where validation stopped them). The dotted line is the better of the two kernels; the shaded band marks the widths whose final training loss is below 10% of the zero function's (the training set is fitted there). The initial loss is no yardstick: in standard parameterization a narrow network's initial outputs can be large, so a tenfold fall from them need not fit anything.

# %%
ws = np.array(cfg["widths"])
acc = np.array([results[w].acc for w in ws]); err = np.array([results[w].acc_se for w in ws])
zero_loss = 0.5 * float(np.mean(y_tr ** 2))  # the training loss of the zero function (train.py's ½·mean squared error)
train_loss = {w: np.mean([c.history["train_loss"][-1] for c in results[w].chosen]) for w in ws}
fitted = [w for w in ws if train_loss[w] < 0.1 * zero_loss]
fig, ax = plt.subplots(figsize=(7, 4))
ax.errorbar(ws, 100 * acc, 100 * err, fmt="o-", capsize=3, label="CNN-VEC, standard param")
bad = [j for j, w in enumerate(ws) if results[w].failed]
if bad:
    ax.plot(ws[bad], 100 * acc[bad], "o", mfc="white", color="C0", label="every run failed")
ax.axhline(100 * kernel_acc, color="gray", ls=":", label=f"infinite-width kernel ({kr.better.upper()})")
if fitted:
    ax.axvspan(min(fitted), max(ws), color="C2", alpha=0.1, label="training set fitted")
ax.set_xscale("log", base=2)
plots.label(ax, "width (channels per layer)", "test accuracy (%)")
ax.legend(fontsize=8)
plots.title(fig, f"Test accuracy against width (stopping chosen on validation), up to {cfg['steps']} steps", scale)
fig.tight_layout()
plots.save(fig, "06_width_nonmonotonicity/width", preset)
plt.show()


# %% [markdown]
# ## Interactive: learning curves per width

# %%
def show(width):
    h = results[width].run.history
    plots.learning_curves([("validation (first seed)", h, "val_acc"), ("test (first seed)", h, "test_acc")],
                          [("kernel", kernel_acc, ":")], what=f"width {width}", scale=scale)
    plt.show()

notebook.interact(show, width=widgets.SelectionSlider(options=cfg["widths"], description="width"));

# %% [markdown]
# ## Verdict
# The claims: (1) the best width is intermediate (neither the narrowest nor the widest); (2) the widest network is worse than the best by more than two standard errors of their difference over the seeds (two seeds estimate that spread poorly, hence two), and by more than the standard error that also counts the sampling of the test set (both widths scored on the same test images: the paired error of the per-image differences, added in quadrature); (3) the best width is not the interpolation threshold (the narrowest width that fits the training set); (4) the fall is toward the worse kernel: the kernel is below the best width by more than the paired error, and the widest network is closer to it than the best width is.
#
# *Known at this scale:* at `ci` (100 training images) no peak shows, so the `ci` verdict is **no**, recorded as such. At `default` (300 images, recipe-trained, 2026-12-02) the peak is at width 8 (25.2 ± 1.5%) and width 64 falls 3.3 points, which is not beyond two seed errors (± 2.1), and the NNGP (7.3 points above the peak) is better than every width, so claim (4) cannot hold: here the widest networks fall away from the kernel, not toward a worse one. The paper's setting has finite networks that beat their kernel at the peak; at 8×8 the recipe's best networks stay below their kernels (`benchmarks/README.md`, the recipe table).

# %%
i = int(np.argmax(acc))
drop = acc[i] - acc[-1]
se_d = np.sqrt(err[i] ** 2 + err[-1] ** 2)                                        # the seeds' spread
se_test = study.paired_difference_se(results[ws[i]].score, results[ws[-1]].score)  # test sampling
se_total = np.hypot(se_d, se_test)
se_kernel = np.hypot(err[i], study.paired_difference_se(results[ws[i]].score, kernel.score))
threshold = min(fitted) if fitted else None
toward = acc[i] - kernel_acc > se_kernel and abs(acc[-1] - kernel_acc) < abs(acc[i] - kernel_acc)
rows = [dict(what="best width", ours=f"{ws[i]} ({study.pct(acc[i], err[i])})", paper="intermediate (Fig. 5)", key=True),
        dict(what="widest − best (± seeds, ± test sampling)", ours=f"{100 * -drop:+.1f} ± {100 * se_d:.1f} ± {100 * se_test:.1f} points",
             paper="< 0 beyond seed noise", key=True),
        dict(what="interpolation threshold (first width fitting the training set)", ours=str(threshold) if fitted else "none of these widths fits it", paper="≠ the dip",
             key=True),
        dict(what=f"kernel ({kr.better.upper()}) − best width; widest − kernel", ours=f"{100 * (kernel_acc - acc[i]):+.1f} ± {100 * se_kernel:.1f}; "
             f"{100 * (acc[-1] - kernel_acc):+.1f} points", paper="kernel below the best; the widest falls toward it")]
notebook.table(rows)
ok = 0 < i < len(ws) - 1 and drop > 2 * se_d and drop > se_total and threshold != ws[i] and toward

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.legacy_verdict("06_width_nonmonotonicity", "Accuracy peaks at an intermediate width and falls beyond it (not double descent)",
                 ok, rows, scale, figure="width")
