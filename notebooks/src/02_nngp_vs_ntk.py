# %% [markdown]
# # 02 · NNGP against NTK
#
# **Finding.** Bayesian inference with the NNGP kernel (only the readout trained, in the infinite-width limit) usually predicts better than gradient-descent training of all layers (the NTK), and the NNGP is cheaper to compute.
#
# **In the paper.** Lee et al. 2020, §3.2 "NNGP vs NTK" and Fig. 3 (and Table 1's kernel columns).
#
# **What you will see.** For a fully connected network (FCN), a convolutional network without pooling (CNN-VEC) and with global average pooling (CNN-GAP): NNGP and NTK test accuracy over training-set sizes and over the diagonal regularizer, the share of settings the NNGP wins, and the time each kernel takes.

# %% [markdown]
# Imports first; the experiment is a few calls into `nbkernels`.

# %%
import os
import numpy as np
import matplotlib.pyplot as plt
import ipywidgets as widgets
import nbkernels as nbk
from nbkernels import data, plots, notebook, study
plots.use_style()

# %% [markdown]
# Parameters papermill can override; `preset` defaults to `$NBKERNELS_PRESET` so the test suite runs the small one.

# %% tags=["parameters"]
preset = os.environ.get("NBKERNELS_PRESET", "default")
dataset = "auto"
seed = 0

# %% [markdown]
# The presets. Images are downsampled (`image`) so the CNN kernels fit a CPU; CNN-GAP needs every pixel pair (P² entries per image pair), so it gets a smaller training set. A *setting* is one architecture × training-set size × diagonal regularizer. `gpu` is sized for one H100/H200-class GPU in a few minutes (README, "On an accelerator": how it was sized, and whether it has run).

# %%
PRESETS = {
    "ci":      dict(image=8, sizes=[250, 500, 1000], gap_sizes=[100, 200], n_test=2000, gap_test=1000,
                    depth=3, diag_regs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    "default": dict(image=8, sizes=[500, 1000, 2000, 4000], gap_sizes=[200, 400, 800], n_test=4000, gap_test=1200,
                    depth=3, diag_regs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
    "gpu":     dict(image=32, sizes=[1000, 2000, 5000, 10000], gap_sizes=[250, 500, 1000], n_test=4000, gap_test=1000,
                    depth=3, diag_regs=list(np.logspace(-6, 0, 13))),
    "paper":   dict(image=32, sizes=[1000, 5000, 20000, 50000], gap_sizes=[1000, 5000, 20000, 50000], n_test=10000,
                    gap_test=10000, depth=8, diag_regs=list(np.logspace(-6, 0, 13))),
}
cfg = notebook.choose_preset(PRESETS, preset)
ds = data.load(dataset, n_train=max(cfg["sizes"]), n_test=cfg["n_test"], seed=seed)
x_tr, y_tr, x_te, y_te = study.prepared(ds, downsample_to=cfg["image"])
scale = plots.scale(ds, x_tr, x_te, preset, n_train=cfg["gap_sizes"] + cfg["sizes"],
                    n_test=[cfg["gap_test"], cfg["n_test"]])  # CNN-GAP on fewer images
print(scale.describe())

# %% [markdown]
# ## The experiment
# One call per architecture: both kernels on the largest training subset and between test and training points (each smaller size uses the leading block), then kernel regression at every regularizer. Results are cached, so re-running (or the widget below) is instant. Accuracies are on the held-out half of the test set; the other half is kept for choosing regularizers where a notebook tunes them.

# %%
ARCHS = {
    "FCN": nbk.fcn(cfg["depth"], 1024),
    "CNN-VEC": nbk.cnn(cfg["depth"], 256, readout="vec"),
    "CNN-GAP": nbk.cnn(cfg["depth"], 256, readout="gap"),
}
results = {}
for name, arch in ARCHS.items():
    sizes, n_test = (cfg["gap_sizes"], cfg["gap_test"]) if name == "CNN-GAP" else (cfg["sizes"], cfg["n_test"])
    by_size = study.kernel_accuracies(arch, x_tr[:max(sizes)], y_tr[:max(sizes)], x_te[:n_test], y_te[:n_test],
                                      diag_regs=cfg["diag_regs"], sizes=sizes)
    for m in sizes:
        results[name, m] = by_size[m]
        print(f"{name:8s} m={m:5d}: NNGP best {max(results[name, m]['nngp'].test):.3f}, "
              f"NTK best {max(results[name, m]['ntk'].test):.3f}")

# %% [markdown]
# ## NNGP and NTK over training-set size
# The best regularizer per kernel and size (chosen on the validation half); error bars are binomial standard errors on the test half.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
for ax, name in zip(axes, ARCHS):
    sizes = sorted(m for (a, m) in results if a == name)
    n_rep = (cfg["gap_test"] if name == "CNN-GAP" else cfg["n_test"]) - (cfg["gap_test"] if name == "CNN-GAP" else cfg["n_test"]) // 2
    for g, style in [("nngp", "o-"), ("ntk", "s--")]:
        acc = np.array([results[name, m][g].acc for m in sizes])
        ax.errorbar(sizes, 100 * acc, 100 * study.accuracy_se(acc, n_rep), fmt=style, capsize=3, label=g.upper())
    ax.set_xscale("log")
    plots.label(ax, "training-set size m (images)", "test accuracy (%)" if ax is axes[0] else "")
    ax.set_title(name)
    ax.legend()
plots.title(fig, "NNGP vs NTK over training-set size (tuned diag_reg)", scale)
fig.tight_layout()
plots.save(fig, "02_nngp_vs_ntk/sizes", preset)
plt.show()


# %% [markdown]
# ## Interactive: every setting
# Pick an architecture and a size; the plot shows both kernels over the diagonal regularizer (relative to the mean eigenvalue, `K + ε·tr(K)/m·I`).

# %%
def show(arch, m):
    sizes = sorted(s for (a, s) in results if a == arch)
    m = min(sizes, key=lambda s: abs(s - m))
    r = results[arch, m]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for g, style in [("nngp", "o-"), ("ntk", "s--")]:
        ax.semilogx(cfg["diag_regs"], 100 * np.array(r[g].test), style, label=g.upper())
    plots.label(ax, "diagonal regularizer ε (relative to mean eigenvalue)", "test accuracy (%)")
    plots.title(ax, f"{arch}, m={m}: kernel time {r.seconds:.2f} s",
                scale.replace(n_train=m, n_test=cfg["gap_test"] if arch == "CNN-GAP" else cfg["n_test"]))
    ax.legend()
    plt.show()

notebook.interact(show, arch=widgets.Dropdown(options=list(ARCHS)),
                 m=widgets.SelectionSlider(options=cfg["sizes"], description="m"));

# %% [markdown]
# ## Cost: the NNGP alone against NNGP and NTK together
# The NTK is computed alongside the NNGP (it needs the NNGP's derivative maps at every layer), so asking for the NNGP alone skips that work. Timed on the largest GAP training set, side by side (`study.kernel_costs`: interleaved runs after compilation, the fastest of each).

# %%
m_time = max(cfg["gap_sizes"])
timing = {}
for name, arch in ARCHS.items():
    cost = study.kernel_costs(arch, x_tr[:m_time])
    only, both = cost["nngp"], cost["both"]
    timing[name] = (only, both)
    print(f"{name:8s}: NNGP {only:.3f} s, NNGP+NTK {both:.3f} s ({both / only:.2f}×)")

# %% [markdown]
# ## Verdict
# The claim, as the paper makes it (Fig. 3 compares each kernel at its best regularizer): in more than half of the settings (architecture × training-set size, each kernel's regularizer chosen on the validation half) the NNGP's test accuracy is higher than the NTK's; and the NNGP alone is cheaper than the NTK (which carries the NNGP with it): the total time over the three architectures (dominated by the costly CNN-GAP kernel; the FCN's milliseconds are at the timer's noise, so each is shown but not required). The table gives each margin with its standard error (paired: both kernels are scored on the same test images), beside the paper's claim; at a fixed, untuned ε the count is also shown.

# %%
rows, wins, fixed_wins, fixed_total = [], 0, 0, 0
for (name, m), r in results.items():
    nngp, ntk = r["nngp"].acc, r["ntk"].acc
    se = study.paired_difference_se(r["nngp"].score, r["ntk"].score)  # same test images
    wins += nngp > ntk
    d = np.array(r["nngp"].test) - np.array(r["ntk"].test)
    fixed_wins += int((d > 0).sum()); fixed_total += d.size
    rows.append(dict(what=f"{name}, m={m}: NNGP − NTK (tuned ε)",
                     ours=f"{100 * (nngp - ntk):+.1f} ± {100 * se:.1f} points",
                     paper="NNGP ≥ NTK in most settings (Fig. 3)"))
settings = len(results)
rows.append(dict(what="settings the NNGP wins (tuned ε)", ours=f"{wins} of {settings}", paper="most", key=True))
rows.append(dict(what="(arch, m, ε) triples the NNGP wins at a fixed ε", ours=f"{fixed_wins} of {fixed_total}", paper="—"))
nngp_s, both_s = sum(o for o, b in timing.values()), sum(b for o, b in timing.values())
cheaper = nngp_s < both_s
rows.append(dict(what=f"kernel time of all architectures, NNGP vs NNGP+NTK (m={m_time})", ours=f"{nngp_s:.2f} s vs {both_s:.2f} s",
                 paper="NNGP cheaper", key=True))
rows += [dict(what=f"{n} kernel time, NNGP vs NNGP+NTK (m={m_time})", ours=f"{o:.3f} s vs {b:.3f} s", paper="NNGP cheaper")
         for n, (o, b) in timing.items()]
notebook.table(rows)

# %% tags=["verdict"]
# NBVAL_CHECK_OUTPUT
notebook.verdict("02_nngp_vs_ntk", "NNGP outperforms NTK in most settings, and is cheaper to compute",
                 wins > settings / 2 and cheaper, rows, scale, figure="sizes")
