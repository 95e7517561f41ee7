"""Results in words: accuracies as percentages, grid points as their settings.

    >>> formatting.pct(0.4321, 0.0048)                 # '43.2 ± 0.5%'
    >>> formatting.setting_label(dict(lr_factor=0.5, l2=1e-4))   # 'lr 0.5 eta_crit, L2 0.0001'
"""
from __future__ import annotations


def pct(x, se=None) -> str:
    """An accuracy (a fraction) as a percentage, with its standard error when given."""
    return f"{100 * x:.1f}%" if se is None else f"{100 * x:.1f} ± {100 * se:.1f}%"


def setting_label(setting: dict) -> str:
    """A grid point (a dict of :func:`nbkernels.train.train` options) in words: ``lr 0.5 eta_crit, L2 0.0001``."""
    names = dict(lr_factor=("lr", " eta_crit"), lr=("lr", ""), l2=("L2", ""), width=("width", ""))
    parts = []
    for k, v in setting.items():
        name, unit = names.get(k, (k, ""))
        parts.append(f"{name} {v:g}{unit}" if isinstance(v, float) else f"{name} {v}{unit}")
    return ", ".join(parts) or "default"
