"""What every notebook does the same way: choose a preset, load data, print the verdict.

The presets themselves stay visible in each notebook (DESIGN section 3); this module only checks
the choice and records the verdict so the report can show it.

    >>> cfg = nbk.notebook.choose_preset(PRESETS, preset)
    >>> nbk.notebook.verdict("06_width", claim, ok, rows)   # prints `finding reproduced: yes`
"""
from __future__ import annotations

import json
import os

from . import plots

PRESET_NAMES = ("ci", "default", "paper")


def default_preset() -> str:
    return os.environ.get("NBKERNELS_PRESET", "default")


def choose_preset(presets: dict, preset: str, **overrides) -> dict:
    """The settings of ``preset`` with any non-None ``overrides``; a clear error for unknown names."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; this notebook has {sorted(presets)}. "
                         "Pass one with papermill -p preset NAME or set NBKERNELS_PRESET.")
    cfg = dict(presets[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["preset"] = preset
    return cfg


def verdict(name: str, claim: str, reproduced: bool, numbers: list, dataset: str = "",
            preset: str = "", write: bool = True) -> None:
    """Print the one stable line nbval checks, and record claim, numbers and verdict for the report.

    ``numbers`` is a list of dicts (one row each: what, ours, paper) shown beside the paper's values.
    """
    line = f"finding reproduced: {'yes' if reproduced else 'no'}"
    if write:
        out = plots.figures_dir() / name / "verdict.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"name": name, "claim": claim, "reproduced": bool(reproduced),
                                   "numbers": numbers, "dataset": dataset, "preset": preset},
                                  indent=1, default=str))
    print(line)


def table(rows: list):
    """The numbers behind a verdict as an HTML table in a notebook (a plain list elsewhere)."""
    try:
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover
        for r in rows:
            print(r)
        return
    if not rows:
        return
    cols = list(rows[0])
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{r.get(c, '')}</td>" for c in cols) + "</tr>" for r in rows)
    display(HTML(f"<table><tr>{head}</tr>{body}</table>"))


STATIC_WIDGETS_ENV = "NBKERNELS_STATIC_WIDGETS"


def interact(show, **controls):
    """``ipywidgets.interact(show, **controls)`` in JupyterLab; in a headless report, one static call.

    The report renders pages that no kernel will drive, so there it sets ``$NBKERNELS_STATIC_WIDGETS``
    and each control's current value is passed to ``show`` once: the same figure, without widget
    comm messages (nbclient can deadlock on an ``interact`` cell: jupyter/nbclient#312, seen here
    holding a report for 20 minutes with the kernel idle).
    """
    if os.environ.get(STATIC_WIDGETS_ENV):
        return show(**{name: getattr(c, "value", c) for name, c in controls.items()})
    import ipywidgets

    return ipywidgets.interact(show, **controls)
