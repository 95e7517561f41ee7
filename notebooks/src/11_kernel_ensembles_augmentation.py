# %% [markdown]
# # 11 · Kernel ensembles over augmented data
#
# **Finding.** Data augmentation, which kernels cannot use directly (the kernel of an augmented training set grows quadratically), can be brought to kernels by ensembling: average the predictions of kernels built on k independently augmented draws of the training set. Accuracy rises with k, the cost grows only linearly in k, and the gain is larger for kernels without pooling (FCN, CNN-VEC) than for CNN-GAP, whose pooling already builds in some invariance.
#
# **In the paper.** Lee et al. 2020, §3.9 "Data augmentation via ensembling" / Fig. 10 (best practice 2).
#
# **What you will see.** Test accuracy against k (flips and crops) for a CNN-VEC and a CNN-GAP NTK, the time per draw, and the gain over the un-augmented kernel.

# %%
import os
import time
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook, study, predict
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# Presets: draws k, sizes and the augmentation (horizontal flips, random crops with `crop` pixels of zero padding). CNN-GAP's kernel costs P² per image pair, so on a CPU it gets smaller images, a shallower network and a smaller training set than CNN-VEC: the comparison of the two gains is across those settings (the `paper` preset uses the same for both). CNN-VEC runs at 16×16 because at 8×8 a 1-pixel crop is already a 12% shift. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=16, gap_image=8, n_train=300, n_test=600, gap_train=100, gap_test=200, depth=3, gap_depth=2,
                    draws=4, crop=1, diag_regs=[1e-3, 1e-2, 1e-1, 1.0]),
    "default": dict(image=16, gap_image=8, n_train=800, n_test=1500, gap_train=200, gap_test=600, depth=3, gap_depth=2,
                    draws=6, crop=1, diag_regs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    "gpu":     dict(image=32, gap_image=16, n_train=5000, n_test=4000, gap_train=1000, gap_test=2000, depth=3, gap_depth=3,
                    draws=8, crop=2, diag_regs=list(np.logspace(-6, 0, 13))),
    "paper":   dict(image=32, gap_image=32, n_train=50000, n_test=10000, gap_train=50000, gap_test=10000, depth=8,
                    gap_depth=8, draws=20, crop=4, diag_regs=list(np.logspace(-6, 0, 13))),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
DATA = {"CNN-VEC": study.prepared(ds, downsample_to=cfg["image"]), "CNN-GAP": study.prepared(ds, downsample_to=cfg["gap_image"])}
x_vec, x_gap = DATA["CNN-VEC"][0], DATA["CNN-GAP"][0]
scale = plots.scale(ds, x_vec, DATA["CNN-VEC"][2], preset, image=[x_gap.shape[1:], x_vec.shape[1:]],
                    n_train=[cfg["gap_train"], cfg["n_train"]], n_test=[cfg["gap_test"], cfg["n_test"]])  # GAP: smaller
print(scale.describe())

# %% [markdown]
# ## The experiment
# For each architecture: choose the diagonal regularizer on the validation half with the un-augmented kernel, then average the NTK predictions over draws 0..k−1 (`predict.augmented_ensemble`; draw 0 is the un-augmented training set, so k = 1 is the plain kernel). Each draw's kernels are computed, used and dropped (cached with their wall time).

# %%
ARCHS = {"CNN-VEC": (nbk.cnn(cfg["depth"], 256, readout="vec"), cfg["n_train"], cfg["n_test"]),
         "CNN-GAP": (nbk.cnn(cfg["gap_depth"], 256, readout="gap"), cfg["gap_train"], cfg["gap_test"])}
aug = lambda x, seed: data.augment(x, seed=seed, flip=True, crop_padding=cfg["crop"])
results = {}
for name, (arch, m, n) in ARCHS.items():
    x_tr, y_tr, x_te, y_te = DATA[name]
    base = study.kernel_accuracies(arch, x_tr[:m], y_tr[:m], x_te[:n], y_te[:n], diag_regs=cfg["diag_regs"])
    reg = base.ntk.diag_reg  # chosen on the validation half
    seconds = []
    def kernel_fn(a, b=None):
        r = study.timed_kernel(arch, a, b)
        seconds.append(r["seconds"])
        return r["ntk"]
    _, running = predict.augmented_ensemble(
        kernel_fn, x_tr[:m], y_tr[:m], x_te[:n], cfg["draws"], aug,
        predict=lambda kt, ks, y: predict.gradient_descent_mse(kt, ks, y, diag_reg=reg, on_precision="ignore"))
    (_, _), (_, y_rep) = study.split_validation(x_te[:n], y_te[:n])
    right = np.array([predict.correct(p[n // 2:], y_rep) for p in running])    # (draws, reported images)
    acc = right.mean(1)
    per_draw = np.array(seconds).reshape(-1, 2).sum(1)  # train-train + test-train kernels of each draw
    results[name] = dict(acc=acc, right=right, seconds=np.cumsum(per_draw), reg=reg, n_rep=len(y_rep))
    print(f"{name}: diag_reg {reg:g}; accuracy k=1 {acc[0]:.3f} → k={cfg['draws']} {acc[-1]:.3f}; "
          f"{per_draw.mean():.2f} s per draw")

# %% [markdown]
# ## Accuracy and cost against k

# %%
ks = np.arange(1, cfg["draws"] + 1)
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, r in results.items():
    ax.errorbar(ks, 100 * r["acc"], 100 * study.accuracy_se(r["acc"], r["n_rep"]), fmt="o-", capsize=3, label=f"{name} NTK")
    bx.plot(ks, r["seconds"], "o-", label=name)
plots.label(ax, "draws k in the ensemble (k = 1: no augmentation)", "test accuracy (%)")
plots.label(bx, "draws k", "cumulative kernel wall time (s)")
ax.legend(); bx.legend()
ax.set_title(f"flips + crops (padding {cfg['crop']} px)"); bx.set_title("cost")
plots.title(fig, f"Kernel ensembles over augmented training sets (CNN-VEC on {cfg['image']}×{cfg['image']}, "
                 f"CNN-GAP on {cfg['gap_image']}×{cfg['gap_image']} images)", scale)
fig.tight_layout()
plots.save(fig, "11_kernel_ensembles_augmentation/draws", preset)
plt.show()


# %% [markdown]
# ## Interactive: one draw
# A few training images as draw k sees them, and both architectures' accuracy after k draws.

# %%
def show(k):
    x = DATA["CNN-VEC"][0]
    xa = x[:6] if k == 1 else aug(x, seed=k - 1)[:6]
    fig, axes = plt.subplots(1, 6, figsize=(9, 1.9))
    for j in range(6):
        w = xa[j]
        axes[j].imshow((w - w.min()) / (np.ptp(w) + 1e-12)); axes[j].set_xticks([]); axes[j].set_yticks([])
    plots.title(fig, f"draw {k}: " + ", ".join(f"{n} {100 * r['acc'][k - 1]:.1f}%" for n, r in results.items()) + " after k draws", scale)
    plt.show()

notebook.interact(show, k=widgets.IntSlider(min=1, max=cfg["draws"], value=2, description="k"));

# %% [markdown]
# ## Verdict
# The claims: (1) for each architecture the accuracy with all k draws is above the un-augmented kernel (k = 1) by more than the standard error of the difference (both are deterministic kernel predictions on the same test images, so the paired error of the per-image differences, `study.paired_difference_se`); (2) the cost is linear in k: a straight-line fit of cumulative time against k explains more than 95% of its variance (R²); (3) the gain is larger for CNN-VEC (no pooling) than for CNN-GAP, by more than the two gains' errors in quadrature.
#
# *Known at this scale:* CNN-VEC gains from the augmented draws: +1.7 ± 2.2 points from k = 1 to 4 at `ci` (within its noise), +2.7 ± 1.5 from k = 1 to 6 at `default` (beyond it, paired errors). The small CNN-GAP kernel (8×8 images, 100 or 200 training images) does not gain at all (+0.0 ± 2.0 at `ci`, −0.3 ± 2.2 at `default`); and not for want of the right augmentation: with flips alone (no crops) the same `default` kernel gains +0.3 ± 1.7 points (k = 1 → 6, measured outside the notebook). A pooled kernel is already nearly invariant to ±1-pixel shifts, and at 200 training images the flipped copies add too little; the paper's gain for CNN-GAP is at full scale. So claim (1) fails and the verdict is **no** at both, recorded as such; claims (2) and (3) hold at `default` (the gain is larger without pooling by 3.0 points against 2.7). The trend, measured (`benchmarks/scale_trends.py`, README there; NTK, flips and 1-pixel crops, the regularizer chosen on validation with the plain kernel): at 8×8 CNN-GAP's gain over k = 1 → 6 falls with the training-set size, +0.8, +0.0, −1.2 ± 1.5–1.6 points at 100, 200, 400 images (1,000 test images, 500 reported). At 16×16, with 100 training images and k = 1 → 4, it gains +2.3 ± 1.8 (600 test images, 300 reported; 506 s on this CPU). CNN-VEC at 16×16 gains −2.2, +2.2, +0.8 ± 1.4–1.7 at 250, 500, 1,000 images. So what CNN-GAP's gain needs is larger images, where a 1-pixel shift is a smaller part of the image, not more training images at 8×8. The `gpu` preset takes CNN-GAP to 16×16 with 1,000 training images and 2-pixel crops. The CPU cannot afford that in `default`: each 16×16 draw on 100 + 600 images took about 2 minutes.

# %%
rows, gains, gain_se, r2 = [], {}, {}, {}
for name, r in results.items():
    gains[name] = r["acc"][-1] - r["acc"][0]
    gain_se[name] = study.paired_difference_se(r["right"][-1], r["right"][0])
    fit = np.polyfit(ks, r["seconds"], 1)
    r2[name] = 1 - np.sum((np.polyval(fit, ks) - r["seconds"]) ** 2) / np.sum((r["seconds"] - r["seconds"].mean()) ** 2)
    rows.append(dict(what=f"{name}: accuracy k=1 → k={cfg['draws']}", ours=f"{study.pct(r['acc'][0])} → {study.pct(r['acc'][-1])} "
                     f"(gain {100 * gains[name]:+.1f} ± {100 * gain_se[name]:.1f})",
                     paper="rises with k (Fig. 10)", key=True))
    rows.append(dict(what=f"{name}: cost linear in k (R² of a line)", ours=f"{r2[name]:.3f} ({fit[0]:.2f} s per draw)", paper="linear",
                     key=name == "CNN-VEC"))
notebook.table(rows)

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.legacy_verdict("11_kernel_ensembles_augmentation", "Ensembles of kernels over augmented draws improve accuracy at linear cost; more without pooling",
                 all(study.beats_paired(r["right"][-1], r["right"][0]) for r in results.values()) and all(v > 0.95 for v in r2.values())
                 and gains["CNN-VEC"] - gains["CNN-GAP"] > np.hypot(gain_se["CNN-VEC"], gain_se["CNN-GAP"]),
                 rows, scale, figure="draws",
                 caveats=["the ensemble's kernel solves use on_precision='ignore' (the diag_reg is chosen on the validation half with the un-augmented kernel)"])
