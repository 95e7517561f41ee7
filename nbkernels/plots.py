"""One house style for every figure, one line that says what scale made it, and saving figures.

    >>> plots.use_style()                                   # once, in a notebook's import cell
    >>> scale = plots.scale(ds, x_tr, x_te, preset)         # what the experiment really used
    >>> fig, ax = plt.subplots()
    >>> ax.plot(...); plots.label(ax, "training-set size", "test accuracy (%)")
    >>> plots.title(fig, "NNGP vs NTK", scale)              # 2nd line: CIFAR-10 · 8×8×3 images · ...
    >>> plots.save(fig, "02_nngp_vs_ntk/accuracy", preset)  # figures/ at `default` only

Nothing changes matplotlib's global settings on import: :func:`use_style` applies the house style
explicitly, :func:`style` within a ``with`` block.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, Union

import matplotlib
import numpy as np

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import formatting, settings

if TYPE_CHECKING:
    from .data import Dataset

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

COMMITTED_PRESET = "default"  # the preset whose figures live (committed) in the repository's figures/


def use_style() -> None:
    """Apply the house style to every later figure of this process (a notebook calls it once)."""
    matplotlib.rcParams.update(STYLE)


def style() -> contextlib.AbstractContextManager:
    """The house style for the figures drawn inside a ``with plots.style():`` block only."""
    return matplotlib.rc_context(STYLE)


# ----------------------------------------------------------------------------------------------
# the scale a figure or verdict came from

Count = Union[int, Sequence[int]]


def _count(n: Count) -> str:
    if isinstance(n, (int, np.integer)):
        return f"{int(n):,}"
    lo, hi = min(n), max(n)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


@dataclasses.dataclass(frozen=True)
class Scale:
    """What an experiment used: dataset, image size (H, W, C) (or a list of them where architectures
    see different sizes), numbers of training and test images (a count, or the sizes of a sweep), and
    the preset. Made by :func:`scale` from the arrays used."""
    dataset: str
    image: tuple
    n_train: Count
    n_test: Count
    preset: str

    def describe(self) -> str:
        shapes = self.image if isinstance(self.image[0], (tuple, list)) else [self.image]
        images = " and ".join("×".join(str(d) for d in shape) for shape in shapes)
        return (f"{self.dataset} · {images} images · {_count(self.n_train)} train / {_count(self.n_test)} test"
                f" · preset '{self.preset}'")

    def replace(self, **kw: Any) -> "Scale":
        """The same scale with some fields changed (``image`` may be given as an int side length)."""
        if isinstance(kw.get("image"), (int, np.integer)):
            kw["image"] = (int(kw["image"]), int(kw["image"]), self.image[2])
        return dataclasses.replace(self, **kw)


def scale(ds: "Dataset", x_train: np.ndarray, x_test: np.ndarray, preset: str, **overrides: Any) -> Scale:
    """The scale of an experiment, read from the arrays it used (after downsampling), not from what was loaded.

    Parameters
    ----------
    ds : Dataset
        Names the dataset.
    x_train, x_test : numpy.ndarray, NHWC
        Give the image size and the counts.
    preset : str
    **overrides
        Fields to replace, e.g. ``n_train=sizes`` for a sweep over training-set sizes.

    Returns
    -------
    Scale
    """
    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    if x_train.ndim != 4 or x_test.ndim != 4:
        raise ValueError(f"plots.scale reads the image size from NHWC arrays; got shapes {x_train.shape} and "
                         f"{x_test.shape}. Pass the images before flattening.")
    return Scale(ds.label, tuple(int(d) for d in x_train.shape[1:]), len(x_train), len(x_test),
                 preset).replace(**overrides)


# ----------------------------------------------------------------------------------------------
# where figures go


def figures_dir(preset: str = COMMITTED_PRESET) -> Path:
    """Where a notebook at ``preset`` writes its figures and verdict.

    ``$NBKERNELS_FIGURES`` when set (the report and the tests set it). Otherwise the repository's
    committed ``figures/`` at the ``default`` preset only; any other preset writes
    ``reports/<preset>/figures`` (ignored by git), so an interactive run at ``ci`` leaves the committed
    results alone. Outside a checkout the same layout under the current directory.
    """
    env = settings.figures_dir()
    if env is not None:
        return env
    repo = Path(__file__).resolve().parent.parent
    base = repo if (repo / "pyproject.toml").exists() else Path.cwd()
    return base / "figures" if preset == COMMITTED_PRESET else base / "reports" / preset / "figures"


def label(ax: Axes, xlabel: str, ylabel: str) -> Axes:
    """Label both axes of ``ax`` (say the unit in the label: ``"test accuracy (%)"``)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def heatmap(ax: Axes, values: np.ndarray, xticklabels: Sequence[str], yticklabels: Sequence[str], *,
            cmap: str = "viridis", colorbar: str = "", marks: Union[np.ndarray, None] = None,
            fmt: str = "{:.1f}") -> Any:
    """A grid of numbers as a coloured image, each cell's number written on it (dark on light cells, light on
    dark); rows run up from the first. NaN cells are blank; ``marks`` (bool, the same shape) are cells whose
    number means nothing (a failed run): grey, with ✕, and left out of the colour scale."""
    values = np.asarray(values, dtype=float)
    marks = np.zeros(values.shape, bool) if marks is None else np.asarray(marks, bool)
    shown = np.ma.masked_invalid(np.where(marks, np.nan, values))
    cm = plt.get_cmap(cmap).with_extremes(bad="0.85")
    im = ax.imshow(shown, cmap=cm, aspect="auto", origin="lower")
    for i, j in np.ndindex(values.shape):
        if marks[i, j]:
            ax.text(j, i, "✕", ha="center", va="center", fontsize=9, color="k")
        elif np.isfinite(values[i, j]):
            r, g, b, _ = im.cmap(im.norm(values[i, j]))
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=8,
                    color="k" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "w")
    ax.set_xticks(range(len(xticklabels)), list(xticklabels))
    ax.set_yticks(range(len(yticklabels)), list(yticklabels))
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=colorbar)
    return im


def log_ticks(ax: Axes, values: Sequence[float], base: float = 2) -> Axes:
    """A log x axis ticked at exactly `values` (labelled as written), without the minor-tick labels that
    crowd a short log axis."""
    ax.set_xscale("log", base=base)
    ax.set_xticks(list(values), [f"{v:g}" for v in values])
    ax.minorticks_off()
    return ax


def title(fig_or_ax: Union[Figure, Axes], what: str, scale: Scale) -> str:
    """Title with the finding on the first line and the :class:`Scale` (dataset, image size, numbers of
    training and test images, preset) on the second: every figure says what produced it."""
    if not isinstance(scale, Scale):
        raise TypeError(f"plots.title needs a plots.Scale (plots.scale(ds, x_train, x_test, preset)), got {scale!r}.")
    text = f"{what}\n{scale.describe()}"
    if hasattr(fig_or_ax, "suptitle"):
        fig_or_ax.suptitle(text, fontsize=11)
    else:
        fig_or_ax.set_title(text)
    return text


def save(fig: Figure, name: str, preset: str, root: Union[str, os.PathLike, None] = None) -> list[Path]:
    """Write ``<figures_dir(preset)>/<name>.png`` and ``.svg``; returns the paths."""
    root = Path(root) if root is not None else figures_dir(preset)
    base = root / name
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        p = base.with_suffix("." + ext)
        fig.savefig(p, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


class Saved(list):
    """The paths a figure was written to (a list of :class:`pathlib.Path`), shown as where they are relative
    to the repository, so a notebook's output names no folder of the machine that ran it."""

    def __repr__(self) -> str:
        return "saved " + ", ".join(formatting.path(p) for p in self)


def publish(fig: Figure, what: str, scale: Scale, name: str) -> Saved:
    """A notebook's finished figure: titled with ``what`` and its :class:`Scale` (:func:`title`), laid out,
    written to ``<figures_dir(scale.preset)>/<name>.png`` and ``.svg`` (:func:`save`) and shown.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    what : str
        The finding, the title's first line.
    scale : Scale
        What produced the figure (the title's second line, and the preset that says where it goes).
    name : str
        ``"<notebook>/<figure>"``.

    Returns
    -------
    Saved
        The paths written; displayed (as a cell's last value) relative to the repository.
    """
    title(fig, what, scale)
    fig.tight_layout()
    paths = Saved(save(fig, name, scale.preset))
    plt.show()
    return paths


def width_axis(ax: Axes, ylabel: str = "test accuracy (%)") -> Axes:
    """An accuracy-against-width axes finished: width on a log2 axis, labelled, with a legend."""
    ax.set_xscale("log", base=2)
    label(ax, "width (channels per layer)", ylabel)
    ax.legend(fontsize=8)
    return ax


def learning_curves(curves: Sequence[tuple[str, dict, str]], references: Sequence[tuple[str, float, str]] = (), *,
                    what: str, scale: Scale, xlabel: str = "SGD step", ylabel: str = "accuracy (%)",
                    figsize: tuple[float, float] = (6, 3.5)) -> Figure:
    """The widgets' figure: finite networks' accuracy over training against horizontal kernel lines.

    ``curves``: ``(label, history, key)`` triples, plotted as ``history[key]`` (a fraction) against
    ``history["step"]``; a series scored at only some evaluations (NaN elsewhere, as the test accuracy
    of a run with ``test_curve=False``) is drawn as markers at those. ``references``: ``(label, accuracy, linestyle)`` triples drawn as grey lines.
    Accuracies are shown in percent. Returns the figure (the caller shows it).
    """
    styles = ["o-", "s--", "^-.", "v:"]
    fig, ax = plt.subplots(figsize=figsize)
    for i, (name, history, key) in enumerate(curves):
        steps, values = np.asarray(history["step"]), 100 * np.asarray(history[key], dtype=float)
        scored = np.isfinite(values)
        style = styles[i % len(styles)] if scored.all() else styles[i % len(styles)][0]
        ax.plot(steps[scored], values[scored], style, label=name)
    for name, accuracy, linestyle in references:
        ax.axhline(100 * accuracy, color="gray", ls=linestyle, label=name)
    label(ax, xlabel, ylabel)
    title(ax, what, scale)
    ax.legend(fontsize=8)
    return fig
