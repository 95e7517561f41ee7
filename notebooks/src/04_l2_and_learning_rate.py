# %% [markdown]
# # 04 · Large learning rates and L2 move finite networks away from the kernel
#
# **Finding.** Finite networks trained with a small learning rate and no regularization behave like their kernels. A large learning rate (near or beyond the critical η_crit = 2/λ_max, the "catapult" regime) and L2 regularization each move them away from the kernel regime — at the paper's scale, to better accuracy than the kernel — and together they help by more than the sum of their separate gains (a superlinear interaction).
#
# **In the paper.** Lee et al. 2020, §3.1 "Large learning rates and L2 regularization drive differences between finite networks and kernels", Fig. 1 and Fig. 2.
#
# **What you will see.** Heatmaps over learning rate (multiples of η_crit) × L2 strength, every cell trained for the same gradient-flow time, of the finite network's test accuracy and of how often it predicts the kernel's class; a widget for each cell's learning curve.

# %%
import os
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import plots, notebook, stats, study, predict
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET`.

# %% tags=["parameters"]
preset: str = os.environ.get("NBKERNELS_PRESET", "default")  # the scale: ci, default, gpu or paper (PRESETS below)
dataset: str = "auto"  # cifar10, digits, or auto (CIFAR-10 when found, else the digits)
seed: int = 0  # the random draw of the images (and the first seed of any network)

# %% [markdown]
# Presets: a fully connected network (2 hidden layers, NTK parameterization), full-batch SGD; learning rates as multiples of the network's own η_crit (above 1 is the catapult regime) and an L2 grid. Every cell trains for the same gradient-flow time: `time` steps' worth at η_crit, so a cell at `lr_factor` f takes `time / f` steps (the small learning rate is not left unconverged by a shorter clock). The grid is scanned with one seed; the four cells the test compares (chosen on validation) are trained with `seeds` seeds. Every choice is made on `n_val` validation images held out of the training pool; every one of the `n_test` test images is reported (`default`: the whole 10,000-image batch). `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, n_train=500, n_val=500, n_test=1000, width=128, time=150, seeds=3,
                    lr_factors=[0.25, 1.5], l2_grid=[0.0, 1e-3, 3e-3]),
    "default": dict(image=8, n_train=1000, n_val=1000, n_test=10000, width=256, time=400, seeds=3,
                    lr_factors=[0.25, 0.5, 1.5], l2_grid=[0.0, 3e-4, 1e-3, 3e-3]),
    "gpu":     dict(image=32, n_train=5000, n_val=1000, n_test=4000, width=1024, time=2000, seeds=3,
                    lr_factors=[0.1, 0.5, 1.0, 1.5, 2.0], l2_grid=[0.0, 1e-5, 1e-4, 1e-3, 3e-3]),
    "paper":   dict(image=32, n_train=45000, n_val=5000, n_test=10000, width=2048, time=50000, seeds=4,
                    lr_factors=[0.05, 0.2, 0.5, 1.0, 1.5, 2.0], l2_grid=[0.0, 1e-6, 1e-5, 1e-4, 1e-3]),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds, sp, scale = notebook.load(cfg, dataset, seed, note=f"{cfg['seeds']} seeds on the compared cells")
x_tr, y_tr, x_te, y_te = sp.x_train, sp.y_train, sp.x_test, sp.y_test

# %% [markdown]
# ## The test, fixed before the run
# **Claim** (Lee et al. 2020, abstract and §3.1, Figs. 1–2): weight decay and the use of a large learning rate break the correspondence between finite and infinite networks.
#
# **Decisive test.** The correspondence is measured by prediction: on each test image, whether the finite network at the end of training predicts the class the NTK's gradient flow predicts at the same time t (1 if they agree). Every cell trains for the same t, so the comparison is at matched training time. Both parts must pass (`stats.all_of`, each a paired one-sided test at α = 0.05 over `seeds` networks per arm, the spread over seeds in the error): (1) the base cell (smallest learning rate, no L2) agrees with the kernel more often than the best large-learning-rate cell without L2; (2) more often than the best L2 cell at the smallest learning rate. "Best" is chosen on the validation images' accuracy. The accuracy gains (Table 1's +LR and +L2 columns, and whether the two together gain more than the sum) are shown with their paired errors and decide nothing.
#
# **Expected effect and power.** Not measured at matched time before: the previous runs gave every cell the same number of steps. A drop in agreement of 3 points or more (the previous accuracy gains were 6–8 points, which must show in the predicted classes) is found with power ≈ 0.9 or more on 10,000 images with three seeds, if the seeds' spread in agreement is under 1.5 points.
#
# *Changed after a result:* the rule of 2026-12-03 (the large learning rate and L2 each raise accuracy over the base by one binomial error in quadrature, and together by more than the sum; equal step counts, one seed; the L2 grid extended after a "no") gave **yes**; it did not measure the distance from the kernel.

# %% [markdown]
# ## The kernel at the same training time
# The same architecture's NTK; its gradient-flow prediction at t = η·steps, which every cell shares (η = f·η_crit, steps = time / f).

# %%
arch = nbk.fcn(2, cfg["width"])
k_tt, k_st = study.timed_kernel(arch, x_tr).ntk, study.timed_kernel(arch, x_te, x_tr).ntk

# %% [markdown]
# ## The grid
# Every (learning rate, L2) cell is one `study.finite_accuracies` run (cached), stopped at its best validation step for its accuracy, and read at the end of its training time for its agreement with the kernel. A cell that diverges or collapses is marked ✕ and never chosen.

# %%
SEEDS = list(range(seed, seed + cfg["seeds"]))

def cell(f, l2, seeds):
    steps = int(round(cfg["time"] / f))
    return study.finite_accuracies(arch, x_tr, y_tr, x_te, y_te, config=study.FULL_BATCH.with_steps(steps, evaluations=10),
                                   grid=[dict(lr_factor=f, l2=l2)], seeds=seeds, val=sp.val, on_failure="report")

lrs, l2s = cfg["lr_factors"], cfg["l2_grid"]
scan = {(f, l2): cell(f, l2, SEEDS[:1]) for f in lrs for l2 in l2s}
r0 = scan[lrs[0], 0.0].run
t = r0.learning_rate * round(cfg["time"] / lrs[0])   # η·steps, the same for every cell
kernel_class = predict.gradient_descent_mse(k_tt, k_st, y_tr, t=t, on_precision="ignore").argmax(-1)
agree = lambda fin: np.stack([(r.test_pred.argmax(-1) == kernel_class) for r in fin.chosen]).astype(float)  # (seeds, n)
A = np.array([[scan[f, l].acc for l in l2s] for f in lrs])
G = np.array([[agree(scan[f, l]).mean() for l in l2s] for f in lrs])
failed = np.array([[scan[f, l].failed for l in l2s] for f in lrs])
print(f"t = {t:.3g}; NTK accuracy at t {predict.accuracy(predict.gradient_descent_mse(k_tt, k_st, y_tr, t=t, on_precision='ignore'), y_te):.3f}")
print(np.round(100 * A, 1))

# %% [markdown]
# ## The compared cells, with seeds
# Chosen on the scan's validation accuracy (failed cells never), then trained with every seed.

# %%
def best_of(cells):
    ok = [c for c in cells if not scan[c].failed]
    return max(ok, key=lambda c: scan[c].val_acc)

chosen = {"base": (lrs[0], 0.0), "large lr": best_of([(f, 0.0) for f in lrs[1:]]),
          "L2": best_of([(lrs[0], l) for l in l2s[1:]]), "both": best_of([(f, l) for f in lrs[1:] for l in l2s[1:]])}
final = {name: cell(*c, SEEDS) for name, c in chosen.items()}
for name, fin in final.items():
    print(f"{name:8s} lr {chosen[name][0]:g}·η_crit, L2 {chosen[name][1]:g}: accuracy {fin.acc:.3f} ± {fin.acc_se:.3f}, "
          f"agreement with the kernel {agree(fin).mean():.3f}")

# %% [markdown]
# ## Heatmaps
# Rows: learning rate / η_crit; columns: L2 strength (one seed, every cell at the same training time). Left: test accuracy; right: the share of test images where the network predicts the kernel's class.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, Z, title, cmap in [(axes[0], 100 * A, "test accuracy (%)", "viridis"), (axes[1], 100 * G, "agreement with the NTK's class (%)", "magma")]:
    im = ax.imshow(Z, cmap=cmap, aspect="auto", origin="lower")
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            r, g, b, _ = im.cmap(im.norm(Z[i, j]))  # dark label on light cells, light on dark
            ax.text(j, i, "✕" if failed[i, j] else f"{Z[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w")
    ax.set_xticks(range(len(l2s)), [f"{l:g}" for l in l2s])
    ax.set_yticks(range(len(lrs)), [f"{f:g}" for f in lrs])
    plots.label(ax, "L2 strength", "learning rate / η_crit")
    fig.colorbar(im, ax=ax, label=title)
    ax.set_title(title)
plots.publish(fig, f"L2 × learning rate at equal training time t = {t:.3g}, FCN width {cfg['width']}", scale, "04_l2_and_learning_rate/heatmaps")


# %% [markdown]
# ## Interactive: one cell's learning curves

# %%
def show(lr_factor, l2):
    r = scan[lr_factor, l2].run
    plots.learning_curves([("validation", r.history, "val_acc"), ("test (chosen step, end)", r.history, "test_acc")],
                          what=f"lr {lr_factor:g}·η_crit = {r.learning_rate:.3g}, L2 {l2:g}"
                          + (f" ({r.failure})" if r.failure else ""), scale=scale)
    plt.show()

notebook.interact(show, lr_factor=widgets.SelectionSlider(options=lrs, description="lr/η_crit"),
                 l2=widgets.SelectionSlider(options=l2s, description="L2"));


# %% [markdown]
# ## Verdict
# The two paired tests of agreement fixed above decide; the accuracy gains are shown beside them.
#
# *Measured after the `default` run of 2026-12-05 (the rule above unchanged):* at matched training time the large learning rate changed nothing (agreement with the kernel +0.0 ± 0.7 points, accuracy +0.0 ± 0.3: the earlier runs' learning-rate "gain" was faster progress at equal step counts), and L2 moved the networks' predicted classes *toward* the kernel's (base − L2 = −16.8 ± 0.7 points) while raising accuracy by 8.3 ± 0.5. The likely reason is the measure: the kernel's prediction is the mean over initializations, and a finite network also carries its random initial function, which L2 decays (notebook 03 shows centering, which removes it, raising agreement by 37 points). A test of the correspondence that cannot be moved that way compares centered networks, or the kernel's distribution rather than its mean; that is a new rule, to be fixed before its own run.

# %%
test = stats.all_of([stats.paired(agree(final["base"]), agree(final[arm]), label=f"agreement with the kernel: base − {arm}")
                     for arm in ("large lr", "L2")], label="large lr and L2 each break the correspondence with the kernel")
gain = {arm: stats.paired(final[arm].scores, final["base"].scores, label=f"accuracy: {arm} − base") for arm in ("large lr", "L2", "both")}
label = lambda n: f"lr {chosen[n][0]:g}·η_crit, L2 {chosen[n][1]:g}"
rows = [dict(what=f"{t_.label} ({label(t_.label.split('− ')[1])})", ours=f"{100 * t_.estimate:+.1f} points ({t_.numbers})",
             paper="> 0 (breaks the correspondence)", key=True) for t_ in test.parts]
rows += [dict(what=f"{g.label} ({label(arm)}; descriptive)", ours=g.numbers, paper="> 0 (Table 1, Fig. 1)") for arm, g in gain.items()]
rows.append(dict(what="both − (large lr + L2) gains (descriptive)",
                 ours=f"{100 * (gain['both'].estimate - gain['large lr'].estimate - gain['L2'].estimate):+.1f} points",
                 paper="> 0 (superlinear)"))
notebook.table(rows)

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.verdict("04_l2_and_learning_rate", "Large learning rates and L2 each break the correspondence between finite networks and their kernel",
                 test, rows, scale, figure="heatmaps",
                 caveats=["the kernel's gradient-flow prediction is computed with on_precision='ignore'"])
