# %% [markdown]
# # 01 · Finite against infinite networks: the overview
#
# **Finding.** The paper's Table 1: for fully connected networks the infinite-width kernels (NNGP, NTK) beat the finite networks trained in the base setting; for convolutional networks, finite networks with the right interventions (centering, large learning rate, L2, early stopping, ensembling) beat their kernels.
#
# **In the paper.** Lee et al. 2020, §3 and Table 1.
#
# **What you will see.** For FCN, CNN-VEC and CNN-GAP: NNGP and NTK accuracy beside finite networks in the paper's settings (base, +centering, +large learning rate, +L2, +early stopping, +ensemble, and the best of these), one table and one grouped bar chart; a widget for each setting's learning curve against the kernel line.

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
# Presets. The convolutional networks are costly to train on a CPU, so they get fewer images and channels than the FCN; every setting trains for the same number of full-batch SGD steps.

# %%
PRESETS = {
    "ci":      dict(image=8, fcn=dict(n=500, width=256, steps=200), cnn=dict(n=150, width=16, steps=100), depth=2, n_test=1000,
                    lr=0.5, large_lr=1.5, l2=1e-4, members=2),
    "default": dict(image=8, fcn=dict(n=1000, width=512, steps=600), cnn=dict(n=300, width=16, steps=300), depth=2, n_test=2000,
                    lr=0.5, large_lr=1.5, l2=1e-4, members=2),
    "paper":   dict(image=32, fcn=dict(n=50000, width=2048, steps=100000), cnn=dict(n=50000, width=256, steps=100000), depth=3,
                    n_test=10000, lr=0.5, large_lr=1.5, l2=1e-5, members=8),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=cfg["fcn"]["n"], n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset, n_train=[cfg["cnn"]["n"], cfg["fcn"]["n"]])  # CNNs on fewer images
print(scale.describe())

# %% [markdown]
# ## The settings
# Each is one call to `train.train` (cached). Early stopping is the base run's best test accuracy over its evaluations (optimistic, as it picks the step on the test set; the paper picks it on validation data).

# %%
ARCHS = {"FCN": (lambda w: nbk.fcn(cfg["depth"], w), cfg["fcn"]),
         "CNN-VEC": (lambda w: nbk.cnn(cfg["depth"], w, readout="vec"), cfg["cnn"]),
         "CNN-GAP": (lambda w: nbk.cnn(cfg["depth"], w, readout="gap"), cfg["cnn"])}
SETTINGS = {"base": dict(lr_factor=cfg["lr"]), "+centering": dict(lr_factor=cfg["lr"], center=True),
            "+large lr": dict(lr_factor=cfg["large_lr"]), "+L2": dict(lr_factor=cfg["lr"], l2=cfg["l2"]),
            "+ensemble": dict(lr_factor=cfg["lr"], ensemble=cfg["members"])}
finite, kernels = {}, {}
for name, (make, sc) in ARCHS.items():
    m = sc["n"]
    kr = study.kernel_accuracies(make(256), x_tr[:m], y_tr[:m], x_te, y_te, diag_regs=[1e-3, 1e-2, 1e-1, 1.0])
    kernels[name] = {g: kr[g]["acc"] for g in ("nngp", "ntk")}
    for setting, kw in SETTINGS.items():
        r = train.train(make(sc["width"]), x_tr[:m], y_tr[:m], x_te, y_te, steps=sc["steps"], seed=seed,
                        eval_every=max(sc["steps"] // 10, 1), **kw)
        finite[name, setting] = dict(run=r, acc=r.final_test_acc if np.isfinite(r.history["train_loss"][-1]) else 0.1)
    finite[name, "+early stopping"] = dict(run=finite[name, "base"]["run"], acc=finite[name, "base"]["run"].best_test_acc)
    best = max((s for (n, s) in finite if n == name), key=lambda s: finite[name, s]["acc"])
    finite[name, "best"] = dict(run=finite[name, best]["run"], acc=finite[name, best]["acc"], which=best)
    print(f"{name}: NNGP {kernels[name]['nngp']:.3f}, NTK {kernels[name]['ntk']:.3f}; finite " +
          ", ".join(f"{s} {finite[name, s]['acc']:.3f}" for s in list(SETTINGS) + ["+early stopping", "best"]))

# %% [markdown]
# ## Table 1 at this scale

# %%
COLUMNS = ["base", "+centering", "+large lr", "+L2", "+early stopping", "+ensemble", "best"]
rows_t = [dict(architecture=n, **{c: study.pct(finite[n, c]["acc"]) for c in COLUMNS},
               NNGP=study.pct(kernels[n]["nngp"]), NTK=study.pct(kernels[n]["ntk"])) for n in ARCHS]
notebook.table(rows_t)

# %%
fig, ax = plt.subplots(figsize=(12, 4))
bars = COLUMNS + ["NNGP", "NTK"]
width = 0.8 / len(bars)
for j, b in enumerate(bars):
    vals = [100 * (kernels[n][b.lower()] if b in ("NNGP", "NTK") else finite[n, b]["acc"]) for n in ARCHS]
    ax.bar(np.arange(len(ARCHS)) + j * width, vals, width, label=b, hatch="//" if b in ("NNGP", "NTK") else None)
ax.set_xticks(np.arange(len(ARCHS)) + 0.4 - width / 2, list(ARCHS))
plots.label(ax, "architecture", "test accuracy (%)")
ax.legend(ncol=5, fontsize=8)
plots.title(fig, f"Finite networks (settings) against their kernels (hatched); FCN on {cfg['fcn']['n']}, "
                 f"CNNs on {cfg['cnn']['n']} training images", scale)
fig.tight_layout()
plots.save(fig, "01_finite_vs_infinite/table1", preset)
plt.show()


# %% [markdown]
# ## Interactive: a setting's learning curve against the kernel

# %%
def show(arch, setting):
    plots.learning_curves([(setting, finite[arch, setting]["run"].history, "test_acc")],
                          [(g.upper(), kernels[arch][g], ls) for g, ls in [("nngp", ":"), ("ntk", "--")]],
                          what=f"{arch}, {setting}", scale=scale)
    plt.show()

notebook.interact(show, arch=widgets.Dropdown(options=list(ARCHS)), setting=widgets.Dropdown(options=COLUMNS));

# %% [markdown]
# ## Verdict
# The paper's orderings: (1) the better kernel beats the base finite FCN; (2) for each CNN the best finite setting beats the better of its kernels. Each by more than the standard error of the difference, counted on the reported half (the kernels' accuracy is measured there; the conservative choice for the finite networks, scored on the whole test set). The best finite setting is picked on the test set, which favours the finite side.
#
# *Known at this scale:* (1) holds by a wide margin, but the small, briefly trained CNNs of the `ci` preset (16 channels, 100 full-batch steps on 150 images) stay below their kernels (best finite CNN-VEC 24.5% against 25.8%, CNN-GAP 21.6% against 27.4%), so the `ci` verdict is **no**, recorded as such; the paper's finite CNNs train for orders of magnitude more steps on 45,000 images.

# %%
k_best = {n: max(kernels[n].values()) for n in ARCHS}
rows = [dict(what="FCN: best kernel vs base finite", ours=f"{study.pct(k_best['FCN'])} vs {study.pct(finite['FCN', 'base']['acc'])}", paper="kernel > base", key=True)]
rows += [dict(what=f"{n}: best finite ({finite[n, 'best']['which']}) vs best kernel", ours=f"{study.pct(finite[n, 'best']['acc'])} vs {study.pct(k_best[n])}",
              paper="finite > kernel", key=True) for n in ("CNN-VEC", "CNN-GAP")]
notebook.table(rows)
n_rep = len(y_te) - len(y_te) // 2
ok = study.beats(k_best["FCN"], finite["FCN", "base"]["acc"], n_rep) and all(
    study.beats(finite[n, "best"]["acc"], k_best[n], n_rep) for n in ("CNN-VEC", "CNN-GAP"))

# %% expect="no" tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.verdict("01_finite_vs_infinite", "Kernels beat the base finite FCN; the best finite CNNs beat their kernels",
                 ok, rows, scale, figure="table1")
