"""Results in words: accuracies as percentages, grid points as their settings.

    >>> formatting.pct(0.4321, 0.0048)                 # '43.2 ± 0.5%'
    >>> formatting.setting_label(dict(lr_factor=0.5, l2=1e-4))   # 'lr 0.5 eta_crit, L2 0.0001'
    >>> formatting.path("/home/me/nbkernels/figures/06/width.png")  # 'figures/06/width.png'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

REPO = Path(__file__).resolve().parent.parent


def path(p: Union[str, os.PathLike]) -> str:
    """A path as notebooks, pages and messages show it, naming no folder of the machine that ran them:
    relative to the repository when inside it, else to ``$NBKERNELS_FIGURES``, ``$NBKERNELS_DATA`` or
    ``$NBKERNELS_CACHE`` (written so), else to the home folder (``~/``), else its last two parts."""
    from . import settings  # the folders the environment names, read where the environment is read
    p = Path(p).expanduser().resolve()
    cache = settings.cache_dir()
    named = [("NBKERNELS_FIGURES", settings.figures_dir()), ("NBKERNELS_DATA", settings.data_dir()),
             ("NBKERNELS_CACHE", None if cache in (None, "off") else cache)]
    roots = [(REPO, "")] + [(Path(v).expanduser().resolve(), f"${var}/") for var, v in named if v] + [
        (Path.home().resolve(), "~/")]
    for root, prefix in roots:
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            continue
        return (prefix + rel) if rel != "." else (prefix.rstrip("/") or ".")
    return "…/" + "/".join(p.parts[-2:])


def pct(x: float, se: Optional[float] = None) -> str:
    """An accuracy (a fraction) as a percentage, with its standard error when given."""
    return f"{100 * x:.1f}%" if se is None else f"{100 * x:.1f} ± {100 * se:.1f}%"


def setting_label(setting: dict) -> str:
    """A grid point (a dict of :func:`nbkernels.train.train` options) in words: ``lr 0.5 eta_crit, L2 0.0001``
    (``center`` as ``centered`` or ``not centered``)."""
    names = dict(lr_factor=("lr", " eta_crit"), lr=("lr", ""), l2=("L2", ""), width=("width", ""))
    parts = []
    for k, v in setting.items():
        if k == "center":   # a switch reads as what it does
            parts.append("centered" if v else "not centered")
            continue
        name, unit = names.get(k, (k, ""))
        parts.append(f"{name} {v:g}{unit}" if isinstance(v, float) else f"{name} {v}{unit}")
    return ", ".join(parts) or "default"
