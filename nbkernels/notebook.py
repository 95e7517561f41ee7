"""What every notebook does the same way: choose a preset, load data, print the verdict.

The presets themselves stay visible in each notebook, where a reader looks for them; this module only checks
the choice, loads the data and records the verdict so the report can show it.

    >>> cfg = nbk.notebook.choose_preset(PRESETS, preset)
    >>> ds, sp, scale = nbk.notebook.load(cfg, dataset, seed, note="3 seeds")   # prints the scale
    >>> test = stats.paired(best.scores, widest.scores, label="best width − widest")   # fixed beforehand
    >>> rows = [dict(what="best − widest", ours=f"{test}", paper="> 0", key=True), ...]
    >>> nbk.notebook.verdict("06_width", claim, test, rows, scale, figure="width")  # `finding reproduced: yes`
"""
from __future__ import annotations

import ast
import dataclasses
import json
import types
import typing
from typing import Any, Callable, NamedTuple, Optional, Sequence

from . import data, plots, settings, stats

PRESET_NAMES = ("ci", "default", "gpu", "paper")
# What the prepared GPU run (benchmarks/gpu_run.py) carries to the device: the class-balanced CIFAR-10
# subset of this size (32x32, about 33 MB compressed). Every notebook's `gpu` preset fits in it
# (tests/test_presets.py); a user with the full download can raise the sizes.
GPU_DATA = dict(n_train=10000, n_test=4000)


def _injected_names(source: str) -> list:
    """The names a papermill-injected cell assigns (``# Parameters`` then ``name = value`` lines)."""
    tree = ast.parse(source)
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


def _type_name(annotation) -> str:
    """``str``, ``Optional[int]``: an annotation as it is written in a parameters cell."""
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _fits(value, annotation) -> bool:
    """Whether ``value`` has the parameter's annotated type (``float`` takes ints; ``Optional[...]`` takes None)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if isinstance(option, type) and isinstance(value, option) and not (option is int and isinstance(value, bool)):
            return True
        if not isinstance(option, type):
            return True  # an annotation this check does not read (a list of ...): accepted as given
    return False


def check_parameters(namespace: Optional[dict] = None) -> None:
    """Fail on a papermill parameter this notebook does not have, or of the wrong type (papermill itself only
    warns ``Passed unknown parameter`` and runs on with the defaults).

    The parameters are the names annotated in the cell tagged ``parameters`` (``preset: str = ...``, which is
    also what ``papermill --help-notebook`` shows); the values papermill passed are in the cell it injected,
    which IPython ran just before the cell that calls this (:func:`choose_preset` does, in every notebook's
    presets cell). ``namespace``: the notebook's globals (default: the running IPython's). Outside
    papermill (JupyterLab, nbval, a script) nothing was injected and nothing is checked.
    """
    if namespace is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            return
        shell = get_ipython()
        if shell is None:
            return
        namespace = shell.user_ns
    history = namespace.get("In") or []
    injected = history[-2] if len(history) >= 2 else ""
    if not injected.startswith("# Parameters"):
        return
    known = dict(namespace.get("__annotations__") or {})
    listing = ", ".join(f"{n} ({_type_name(t)})" for n, t in known.items())
    unknown = [n for n in _injected_names(injected) if n not in known]
    if unknown:
        raise ValueError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: this "
                         f"notebook's parameters are {listing}. Check the spelling of papermill's -p NAME VALUE "
                         "(papermill --help-notebook NOTEBOOK lists them).")
    wrong = [(n, namespace[n], known[n]) for n in _injected_names(injected) if not _fits(namespace.get(n), known[n])]
    if wrong:
        raise ValueError("; ".join(f"parameter {n!r} must be {_type_name(t)}, got {v!r}" for n, v, t in wrong) +
                         f". This notebook's parameters are {listing}.")


def choose_preset(presets: dict, preset: str, **overrides: Any) -> dict:
    """The settings of ``preset`` with any non-None ``overrides``; a clear error for unknown names.

    Called in the cell right after the ``parameters`` cell, it first checks the parameters papermill passed
    (:func:`check_parameters`), so a misspelled ``-p presett ci`` stops the run instead of running the
    default preset.

    Parameters
    ----------
    presets : dict
        The notebook's ladder: preset name -> settings dict.
    preset : str
        The one to run.
    **overrides
        Settings to replace (None leaves a setting as the preset has it).

    Returns
    -------
    dict
        The preset's settings, with ``"preset"`` set to its name.
    """
    check_parameters()
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; this notebook has {sorted(presets)}. "
                         "Pass one with papermill -p preset NAME or set NBKERNELS_PRESET.")
    cfg = dict(presets[preset])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["preset"] = preset
    return cfg


class Loaded(NamedTuple):
    """A notebook's data (:func:`load`): the dataset as loaded, its prepared split, and the scale figures name."""
    ds: "data.Dataset"
    split: "data.Split"
    scale: plots.Scale


def load(cfg: dict, dataset: str, seed: int, *, n_train: Optional[int] = None, note: str = "",
         scale_n_train: Optional[plots.Count] = None) -> Loaded:
    """Load and prepare a notebook's images at its preset, class-balanced for ``seed`` and downsampled to
    ``cfg["image"]`` (:func:`nbkernels.data.prepare_split`), and print the scale.

    Parameters
    ----------
    cfg : dict
        From :func:`choose_preset`: ``n_train`` (unless given), ``n_val``, ``n_test``, ``image``, ``preset``.
    dataset : str
        ``"auto"``, ``"cifar10"`` or ``"digits"``.
    seed : int
        Draws the images.
    n_train : int, optional
        Training images (default ``cfg["n_train"]``).
    note : str
        Printed after the scale ("3 seeds").
    scale_n_train : int or sequence of int, optional
        The training-set size(s) the scale names where the experiment uses fewer images than it loads.

    Returns
    -------
    Loaded
        ``(ds, split, scale)``: the dataset as loaded, its prepared split, the :class:`plots.Scale` figures name.
    """
    ds = data.load(dataset, n_train=cfg["n_train"] if n_train is None else n_train, n_val=cfg["n_val"],
                   n_test=cfg["n_test"], seed=seed)
    split = data.prepare_split(ds, downsample_to=cfg["image"])
    scale = plots.scale(ds, split.x_train, split.x_test, cfg["preset"])
    if scale_n_train is not None:
        scale = scale.replace(n_train=scale_n_train)
    print(scale.describe(), f"| {cfg['n_val']} validation images" + (f" | {note}" if note else ""))
    return Loaded(ds, split, scale)


MAX_KEY_ROWS = 3


def _check_rows(name, rows):
    for r in rows:
        missing = {"what", "ours", "paper"} - set(r)
        if missing:
            raise ValueError(f"{name}: verdict row {r!r} lacks {sorted(missing)}; each row has what, ours, paper.")
    keys = [i for i, r in enumerate(rows) if r.get("key")]
    if not 1 <= len(keys) <= MAX_KEY_ROWS:
        raise ValueError(f"{name}: {len(keys)} verdict rows are marked key=True; mark the 1 to {MAX_KEY_ROWS} "
                         "numbers that decide the verdict (the report's index shows those).")
    return keys


def _record(name, claim, reproduced, numbers, keys, scale, figure, caveats, tests, write, arms=()):
    record = {"name": name, "claim": claim, "reproduced": reproduced, "numbers": numbers, "key": keys,
              "figure": figure, "caveats": list(caveats), "dataset": scale.describe(), "preset": scale.preset,
              "scale": {**dataclasses.asdict(scale), "image": list(scale.image)}, "tests": tests, "arms": list(arms)}
    if write:
        out = plots.figures_dir(scale.preset) / name / "verdict.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=str))
    return record


def arm_caveats(arms: Sequence[dict]) -> list[str]:
    """What a reader must know of the finite arms a verdict rests on: each one chosen at the edge of its
    grid, whose stopping step is the end of its budget, whose stopping step is its first evaluation, or whose
    every run failed."""
    out = []
    for a in arms:
        if a.get("failed"):
            out.append(f"arm {a['name']!r}: every run of its grid diverged or collapsed; it is scored as it ran")
        if not a["inside"]:
            edges = [k for k, vs in a["grid"].items() if len(vs) > 1 and a["chosen"].get(k) in (min(vs), max(vs))]
            out.append(f"arm {a['name']!r} was chosen at the edge of its grid ({', '.join(edges) or 'a setting'}): a "
                       "wider grid might do better")
        if a["budget_bound"]:
            out.append(f"arm {a['name']!r} stopped at the end of its {a['budget_steps']}-step budget on some seed "
                       f"(chosen steps {a['stop_step']}): more steps might do better")
        if a.get("early_bound"):
            out.append(f"arm {a['name']!r} stopped at its first evaluation on some seed (chosen steps {a['stop_step']}):"
                       " its best point may lie earlier; evaluate more often, or a lower learning rate may do better")
    return out


def verdict(name: str, claim: str, test: "stats.Test", numbers: list, scale: plots.Scale, *, figure: str,
            caveats: Sequence[str] = (), arms: Sequence[Any] = (), write: bool = True) -> None:
    """Print the one stable line nbval checks, and record claim, test, numbers and verdict for the report.

    The finding is reproduced when ``test`` passes; its estimate, error, z, p, alpha, images and seeds (each
    part's too) go to ``figures_dir(preset)/<name>/verdict.json``.

    Parameters
    ----------
    name : str
        The notebook's name (``"06_width_nonmonotonicity"``).
    claim : str
        The paper's claim in one sentence.
    test : stats.Test
        The decisive test (an :func:`~nbkernels.stats.all_of` for a claim with several parts), fixed in the
        notebook before the experiment; a plain bool is refused.
    numbers : list of dict
        One row per number (``what``, ``ours``, ``paper``), shown beside the paper's values; the 1 to 3 rows
        that decide the verdict carry ``key=True``.
    scale : plots.Scale
        The scale the experiment ran at.
    figure : str
        The main figure's name in ``figures/<name>/`` (shown large in the report).
    caveats : sequence of str
        What a reader must know to trust the numbers.
    arms : sequence of TunedArm (or their records)
        Every finite arm of the comparison (:func:`nbkernels.study.tune`), recorded as ``arms`` in
        ``verdict.json``; an arm chosen at the edge of its grid or at the end of its budget adds a caveat.
    write : bool
        Write ``verdict.json``.

    Returns
    -------
    None
        Prints ``finding reproduced: yes`` or ``finding reproduced: no``.
    """
    if not isinstance(test, stats.Test):
        raise TypeError(f"{name}: a verdict is decided by a nbkernels.stats test (stats.paired, pooled, all_of, "
                        f"equivalent), not by {type(test).__name__} {test!r}.")
    keys = _check_rows(name, numbers)
    arms = [a.record() if hasattr(a, "record") else dict(a) for a in arms]
    _record(name, claim, bool(test.passed), numbers, keys, scale, figure, list(caveats) + arm_caveats(arms),
            [test.record()], write, arms)
    print(f"finding reproduced: {'yes' if test.passed else 'no'}")


def tour(name: str, claim: str, numbers: list, scale: plots.Scale, *, figure: str, write: bool = True) -> None:
    """Record a notebook that shows the data and the package rather than a finding of the paper (00): the
    report lists it without a verdict and does not count it among the findings."""
    _record(name, claim, None, numbers, [], scale, figure, (), [], write)


def table(rows: list) -> None:
    """The numbers behind a verdict as an HTML table in a notebook (a plain list elsewhere)."""
    try:
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover
        for r in rows:
            print(r)
        return
    if not rows:
        return
    cols = [c for c in rows[0] if c != "key"]
    marked = any("key" in r for r in rows)  # a verdict's rows: say which decide it
    head = "".join(f"<th>{c}</th>" for c in cols) + ("<th>decides the verdict</th>" if marked else "")
    body = "".join("<tr>" + "".join(f"<td>{r.get(c, '')}</td>" for c in cols)
                   + (f"<td>{'yes' if r.get('key') else ''}</td>" if marked else "") + "</tr>" for r in rows)
    display(HTML(f"<table><tr>{head}</tr>{body}</table>"))



def interact(show: Callable[..., Any], **controls: Any) -> Any:
    """``ipywidgets.interact(show, **controls)`` in JupyterLab; in a headless report, one static call.

    The report renders pages that no kernel will drive, so there it sets ``$NBKERNELS_STATIC_WIDGETS``
    and each control's current value is passed to ``show`` once: the same figure, without widget
    comm messages (nbclient can deadlock on an ``interact`` cell: jupyter/nbclient#312, seen here
    holding a report for 20 minutes with the kernel idle).
    """
    if settings.static_widgets():
        return show(**{name: getattr(c, "value", c) for name, c in controls.items()})
    import ipywidgets

    return ipywidgets.interact(show, **controls)
