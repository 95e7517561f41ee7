"""One house style for every figure, and saving to ``figures/`` as PNG and SVG.

    >>> fig, ax = nbk.plots.subplots()
    >>> ax.plot(...); nbk.plots.label(ax, "training-set size", "test accuracy (%)")
    >>> nbk.plots.title(fig, "NNGP vs NTK", ds, preset="ci")
    >>> nbk.plots.save(fig, "02_nngp_vs_ntk/accuracy")
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np

import matplotlib.pyplot as plt

# Okabe & Ito's colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.figsize": (6.4, 4.2),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "svg.hashsalt": "nbkernels",  # stable SVG ids, so committed figures diff cleanly
}
matplotlib.rcParams.update(STYLE)


def figures_dir() -> Path:
    """``$NBKERNELS_FIGURES``, else the repository's ``figures/`` (next to the package), else ./figures."""
    env = os.environ.get("NBKERNELS_FIGURES")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists():
        return repo / "figures"
    return Path.cwd() / "figures"


def subplots(*args, **kw):
    return plt.subplots(*args, **kw)


def label(ax, xlabel: str, ylabel: str):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def log_ticks(ax, values, base: float = 2):
    """A log x axis ticked at exactly `values` (labelled as written), without the minor-tick labels that
    crowd a short log axis."""
    ax.set_xscale("log", base=base)
    ax.set_xticks(list(values), [f"{v:g}" for v in values])
    ax.minorticks_off()
    return ax


def scale_line(ds=None, preset: str | None = None, extra: str = "") -> str:
    parts = []
    if ds is not None:
        parts.append(ds.describe() if hasattr(ds, "describe") else str(ds))
    if extra:
        parts.append(extra)
    if preset:
        parts.append(f"preset '{preset}'")
    return " | ".join(parts)


def title(fig_or_ax, what: str, ds=None, preset: str | None = None, extra: str = ""):
    """Title with the finding on the first line and dataset, scale and preset on the second."""
    text = what + ("\n" + scale_line(ds, preset, extra) if (ds is not None or preset or extra) else "")
    if hasattr(fig_or_ax, "suptitle"):
        fig_or_ax.suptitle(text, fontsize=11)
    else:
        fig_or_ax.set_title(text)
    return text


def save(fig, name: str, root=None) -> list:
    """Write ``<figures>/<name>.png`` and ``.svg``; returns the paths."""
    root = Path(root) if root is not None else figures_dir()
    base = root / name
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        p = base.with_suffix("." + ext)
        fig.savefig(p, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


def learning_curves(curves, references=(), *, what: str, ds=None, preset: str | None = None,
                    xlabel: str = "SGD step", ylabel: str = "test accuracy (%)", figsize=(6, 3.5)):
    """The widgets' figure: finite networks' accuracy over training against horizontal kernel lines.

    ``curves``: ``(label, history, key)`` triples, plotted as ``history[key]`` (a fraction) against
    ``history["step"]``. ``references``: ``(label, accuracy, linestyle)`` triples drawn as grey lines.
    Accuracies are shown in percent. Returns the figure (the caller shows it).
    """
    styles = ["o-", "s--", "^-.", "v:"]
    fig, ax = plt.subplots(figsize=figsize)
    for i, (name, history, key) in enumerate(curves):
        ax.plot(history["step"], 100 * np.asarray(history[key]), styles[i % len(styles)], label=name)
    for name, accuracy, linestyle in references:
        ax.axhline(100 * accuracy, color="gray", ls=linestyle, label=name)
    label(ax, xlabel, ylabel)
    title(ax, what, ds, preset)
    ax.legend(fontsize=8)
    return fig
