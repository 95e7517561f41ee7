"""The figure report: run every notebook with papermill at a preset and render one page of findings.

    python -m nbkernels.report --preset default          # what `make report` runs
    python -m nbkernels.report --preset ci --notebooks 00_data_tour,02_nngp_vs_ntk

Notebooks run concurrently (``--jobs``, default 2: both cores); each is rendered to HTML with its
code collapsed (the finding's page, with every number of its verdict), and ``reports/<preset>/index.html``
shows, at the top, how many findings reproduce at each preset, then per finding: the claim in one
line, the verdict, the one to three numbers that decided it (the rows its notebook marks ``key``)
beside the paper's, and its main figure at a readable size, linking to the page. A failing notebook
does not stop the others: its card says failed, with the error. Results are cached by the notebooks
themselves, so a second run is quick. Notebooks start longest first, by their wall times in the last run
at the preset (``walls.json`` beside the figures). At ``default`` the figures are written to the repository's
``figures/`` (committed); other presets keep theirs inside the report.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import html
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO, Union

from . import plots, settings
from .notebook import PRESET_NAMES

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

_COLLAPSE = """
<style>details.nbk-code>summary{cursor:pointer;color:#555;font:12px monospace;margin:4px 0}</style>
<script>
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('.jp-Cell-inputWrapper').forEach(function (el) {
    if (el.closest('.jp-MarkdownCell')) return;
    var d = document.createElement('details'); d.className = 'nbk-code';
    var s = document.createElement('summary'); s.textContent = 'show code';
    el.parentNode.insertBefore(d, el); d.appendChild(s); d.appendChild(el);
  });
});
</script>
"""


def available_notebooks() -> list:
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def split_names(text: str) -> list:
    """Notebook names as a user types them: separated by commas, spaces or both (``"06 09"``, ``06,09``)."""
    return [n for n in re.split(r"[,\s]+", text or "") if n]


def select_notebooks(names: Union[str, Sequence[str], None]) -> list[str]:
    """The notebooks ``names`` stand for, in the order given: a full name, a name without ``.ipynb``, or its
    two-digit number (``"06"``); one string is split as :func:`split_names` does. No names: every notebook."""
    valid = available_notebooks()
    if isinstance(names, str):
        names = split_names(names)
    names = [n for name in names or () for n in split_names(name)]
    if not names:
        return valid
    chosen = []
    for name in names:
        name = name.strip().removesuffix(".ipynb")
        matches = [v for v in valid if v == name or v.startswith(name + "_") or v[:2] == name]
        if not matches:
            raise SystemExit(f"unknown notebook {name!r}; valid notebooks: {', '.join(valid)} (give numbers or names, "
                             "separated by commas or spaces: NOTEBOOKS=\"06 09\")")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


# numpy/scipy's OpenBLAS spins a thread per core: two notebooks each doing so on two cores ran a
# 3000x3072 SVD 2.7x slower than one thread each (measured here), so concurrent notebooks share them out.
# Numba's thread pool (the fused CPU kernels, nbkernels.fused) likewise.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def child_env(preset: str, figures_root: Union[str, os.PathLike], jobs: int) -> dict:
    """The environment of a notebook the report runs: its preset and figures folder, widgets drawn once,
    and with ``jobs`` notebooks at a time each one's share of the cores for BLAS, Numba and XLA."""
    env = dict(os.environ, NBKERNELS_FIGURES=str(figures_root), NBKERNELS_PRESET=preset)
    env[settings.STATIC_WIDGETS_ENV] = "1"  # pages no kernel will drive: each widget's figure drawn once
    if jobs > 1:
        share = str(max(1, (os.cpu_count() or 1) // jobs))
        for var in BLAS_THREADS:
            env.setdefault(var, share)  # a user's own setting wins
        if share == "1":  # XLA's CPU thread pool likewise (one process per core is as fast, measured)
            env.setdefault("XLA_FLAGS", _XLA_ONE_THREAD)
    return env


def cells_done(executed: Union[str, os.PathLike]) -> Optional[tuple[int, int]]:
    """``(completed, total)`` code cells of a notebook papermill is running, read from the copy it saves at
    the start and end of every cell; None while that copy is missing or half written."""
    try:
        nb = json.loads(Path(executed).read_text())
    except (OSError, ValueError):
        return None
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    done = sum(1 for c in code if c.get("metadata", {}).get("papermill", {}).get("status") == "completed")
    return done, len(code)


POLL_S = 5.0  # how often a running notebook's saved copy is read for its progress


def _run_one(name, preset, out_dir, figures_root, timeout, jobs=1, on_progress=None):
    """Run one notebook with papermill, render its page and collect its figures and verdict. While it runs,
    ``on_progress(name, cells_done(...), elapsed)`` is called every :data:`POLL_S` seconds."""
    executed = out_dir / "executed" / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.unlink(missing_ok=True)  # a copy from an earlier run is not this run's progress
    env = child_env(preset, figures_root, jobs)
    t0 = time.time()
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOKS / f"{name}.ipynb"), str(executed),
           "-p", "preset", preset, "--cwd", str(NOTEBOOKS), "--no-progress-bar", "--log-level", "ERROR",
           "--execution-timeout", str(timeout)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        try:
            stdout, stderr = proc.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if on_progress is not None:
                on_progress(name, cells_done(executed), time.time() - t0)
    wall = time.time() - t0
    error = None
    if proc.returncode != 0:
        lines = [ln for ln in (stderr or stdout).strip().splitlines() if ln.strip()]
        error = "\n".join(lines[-6:]) or f"papermill exited with {proc.returncode}"
    page = None
    if executed.exists():
        strip_machine_paths(executed, figures_root)
        page = out_dir / f"{name}.html"
        conv = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(executed),
                               "--output", page.stem, "--output-dir", str(out_dir)],
                              capture_output=True, text=True)
        if conv.returncode == 0 and page.exists():
            text = page.read_text()
            page.write_text(text.replace("</head>", _COLLAPSE + "</head>", 1))
        else:
            page = None
            error = error or conv.stderr.strip().splitlines()[-1]
    fig_src = figures_root / name
    fig_dst = out_dir / "figures" / name
    if fig_src.exists() and fig_src.resolve() != fig_dst.resolve():
        shutil.rmtree(fig_dst, ignore_errors=True)
        shutil.copytree(fig_src, fig_dst)
    verdict = None
    vfile = fig_dst / "verdict.json"
    if vfile.exists() and error is None:
        verdict = json.loads(vfile.read_text())
    return dict(name=name, state="failed" if error else "done", wall=wall, error=error, page=page, verdict=verdict,
                figures=fig_dst)


def strip_machine_paths(executed: Path, figures_root: Path) -> None:
    """Rewrite an executed notebook so that it names no folder of this machine: papermill's record of its
    input, output and working folder, and any path left in an output (a traceback's files, say), become
    relative to the repository, or start ``$NBKERNELS_FIGURES``, ``$NBKERNELS_DATA`` or ``~``."""
    text = Path(executed).read_text()
    figures = Path(figures_root).resolve()
    roots = ([] if figures.is_relative_to(REPO) else [(figures, "$NBKERNELS_FIGURES")]) + [
        (REPO, "."), (settings.data_dir(), "$NBKERNELS_DATA"), (Path.home(), "~")]
    for root, shown in roots:
        if root is None:
            continue
        root = json.dumps(str(Path(root).resolve()))[1:-1]  # as the path is written inside a JSON string
        text = re.sub(re.escape(root) + r'(?=/|"|\\n|\s)', lambda _: shown, text)
    Path(executed).write_text(text)


def pending(name: str, out_dir: Path, state: str = "queued", progress: str = "", wall: float = 0.0) -> dict:
    """A notebook's result while it waits or runs: what the index shows until it finishes."""
    return dict(name=name, state=state, progress=progress, wall=wall, error=None, page=None, verdict=None,
                figures=out_dir / "figures" / name)


def progress_text(cells: Optional[tuple[int, int]], elapsed: float, last_wall: Optional[float] = None) -> str:
    """``cell 12 of 31, 340 s elapsed (last run 1,032 s)``: a running notebook's progress in words."""
    where = "starting" if cells is None else f"cell {min(cells[0] + 1, cells[1])} of {cells[1]}"
    last = f" (last run {last_wall:,.0f} s)" if last_wall else " (no earlier run timed)"
    return f"{where}, {elapsed:,.0f} s elapsed{last}"


class Progress:
    """What the report says while it works: a line per running notebook on the terminal when its cell
    changes (at most every ``every`` seconds, and at least every ``quiet`` seconds), and the index
    rewritten with each notebook's state."""

    def __init__(self, walls: dict, redraw: Callable[[str, str, float], None], every: float = 15.0, quiet: float = 120.0,
                 stream: Optional[TextIO] = None):
        self.walls, self.redraw, self.every, self.quiet = walls, redraw, every, quiet
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()
        self.last = {}  # name -> (cells printed, when)

    def __call__(self, name: str, cells: Optional[tuple[int, int]], elapsed: float) -> None:
        """News of notebook ``name``: ``cells`` (from :func:`cells_done`) after ``elapsed`` seconds."""
        now = time.time()
        with self.lock:
            shown, when = self.last.get(name, (None, now - self.quiet))
            changed = cells is not None and cells != shown
            if (changed and now - when >= self.every) or now - when >= self.quiet:
                text = progress_text(cells, elapsed, self.walls.get(name))
                print(f"  {name}: {text}", file=self.stream, flush=True)
                self.last[name] = (cells, now)
                self.redraw(name, text, elapsed)


def _main_figure(r, v):
    """The finding's main figure (the verdict names it; else its only or first PNG), or None."""
    folder = r["figures"]
    if not folder.exists():
        return None
    named = folder / f"{v['figure']}.png" if v and v.get("figure") else None
    if named is not None and named.exists():
        return named
    pngs = sorted(folder.glob("*.png"))
    return pngs[0] if pngs else None


def _design_width(png: Path):
    """A saved figure's width in CSS pixels at its design size: figures are saved at savefig.dpi and
    designed in inches at figure.dpi (plots.STYLE), so this is the size its fonts were chosen for."""
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 24:
        return None
    pixels = int.from_bytes(head[16:20], "big")
    return round(pixels * plots.STYLE["figure.dpi"] / plots.STYLE["savefig.dpi"])


def _key_rows(v):
    """The 1-3 numbers that decided the verdict (older verdicts without marks: their first row)."""
    numbers = v.get("numbers") or []
    keys = v.get("key") or [i for i, n in enumerate(numbers) if n.get("key")] or [0][:len(numbers)]
    return [numbers[i] for i in keys if i < len(numbers)]


def _estimate_text(t: dict, detail: bool = True) -> str:
    """A recorded test's estimate in points, with its error, margin, images and seeds (and z and df in detail)."""
    margin = f"margin ±{100 * t['margin']:.1f}" if t.get("margin") else ""
    seeds = f", {t['seeds']} seeds" if t.get("seeds") else ""
    stat = f"z {t['z']:.2f}" + ("" if t.get("df") is None else f", {t['df']:.1f} df") if detail else ""
    inside = "; ".join(x for x in (", ".join(x for x in (stat, margin) if x), f"{t['n']:,} images{seeds}") if x)
    return f"{100 * t['estimate']:+.2f} ± {100 * t['se']:.2f} points ({inside})"


def _test_rows(t, depth=0):
    if t.get("kind") == "all_of":
        return [(depth, t, f"all of {len(t['parts'])} parts")] + [row for p in t["parts"] for row in _test_rows(p, depth + 1)]
    return [(depth, t, _estimate_text(t))]


def _tests_html(v):
    """The decisive test (and its parts) as the verdict recorded it, or a note that none was recorded."""
    if v.get("reproduced") is None:
        return ""
    tests = v.get("tests")
    if not tests:
        return '<p class="caveat">No statistical test recorded: this verdict is a rule the verdicts issue has not yet turned into a test.</p>'
    rows = "".join(
        f"<tr><td style='padding-left:{8 + 14 * d}px'>{html.escape(str(t.get('label', '')))} ({html.escape(t.get('kind', ''))})</td>"
        f"<td>{html.escape(text)}</td><td>p = {t['p']:.3g} {'<' if t['passed'] else '≥'} α = {t['alpha']:g}: "
        f"<b>{'pass' if t['passed'] else 'fail'}</b></td></tr>"
        for test in tests for d, t, text in _test_rows(test))
    return ("<table class='tests'><tr><th>decisive test (one-sided)</th><th>estimate ± SE</th><th>p against α</th></tr>"
            + rows + "</table>")


def _arms_html(v) -> str:
    """The finite arms a verdict rests on: each one's chosen point, whether it is inside its grid and whether
    its stopping is budget-bound, and its fresh seeds' test accuracy."""
    arms = v.get("arms") or []
    if not arms:
        return ""
    from .formatting import setting_label
    rows = "".join(
        f"<tr><td>{html.escape(a['name'])}</td><td>{html.escape(setting_label(a['chosen']))}</td>"
        f"<td>{'inside' if a['inside'] else '<b>at an edge</b>'}</td>"
        f"<td>{'<b>budget-bound</b>' if a['budget_bound'] else '<b>at the first evaluation</b>' if a.get('early_bound') else 'stopped before the budget'}</td>"
        f"<td>{100 * a['test_acc']:.1f}% ({len(a['seeds'])} fresh seeds)</td></tr>" for a in arms)
    return ("<table class='tests'><tr><th>finite arm</th><th>chosen on validation</th><th>grid</th><th>stopping</th>"
            "<th>test</th></tr>" + rows + "</table>")


def _card(r, out_dir):
    """One finding: claim, verdict, the numbers that decided it beside the paper's, and its main figure."""
    name = html.escape(r["name"])
    v = r["verdict"]
    page = r["page"].name if r["page"] else None
    title = f'<a href="{page}">{name}</a>' if page else name
    notebook_file = out_dir / "executed" / f"{r['name']}.ipynb"
    if r.get("state", "done") in ("done", "failed") and notebook_file.exists():
        title += f' <a class="nb" href="executed/{name}.ipynb">executed notebook</a>'
    if r.get("state") in ("queued", "running"):
        status = (f'<span class="running">{r["state"]}' + (f': {html.escape(r["progress"])}' if r.get("progress") else "")
                  + "</span>")
    elif r["error"]:
        status = f'<span class="failed">failed</span><pre>{html.escape(r["error"])}</pre>'
    elif v is None:
        status = '<span class="failed">no verdict recorded</span>'
    elif v["reproduced"] is None:
        status = '<span class="tour">data tour (not a finding)</span>'
    else:
        status = '<span class="yes">reproduced</span>' if v["reproduced"] else '<span class="no">not reproduced</span>'
    claim = f'<p class="claim">{html.escape(v["claim"])}</p>' if v else ""
    nums = ""
    if v:
        head = "what it shows" if v["reproduced"] is None else "what decided it"
        nums = (f"<table class='key'><tr><th>{head}</th><th>ours</th><th>paper</th></tr>" + "".join(
            f"<tr><td>{html.escape(str(n.get('what', '')))}</td><td class='ours'>{html.escape(str(n.get('ours', '')))}</td>"
            f"<td class='paper'>{html.escape(str(n.get('paper', '')))}</td></tr>" for n in _key_rows(v)) + "</table>")
        more = len(v.get("numbers") or []) - len(_key_rows(v))
        if page and more > 0:
            nums += f'<p class="more"><a href="{page}#Verdict">all {len(v["numbers"])} numbers on the finding\'s page</a></p>'
        nums += _tests_html(v) + _arms_html(v)
        for c in v.get("caveats") or []:
            nums += f'<p class="caveat">Caveat: {html.escape(str(c))}</p>'
    fig = _main_figure(r, v)
    figure = ""
    if fig is not None:
        rel = fig.relative_to(out_dir).as_posix()
        alt = html.escape(f"{r['name']}: {fig.stem}")
        width = _design_width(fig)
        size = f' width="{width}"' if width else ""
        figure = f'<a href="{page or rel}"><img src="{rel}" alt="{alt}" class="main"{size}></a>'
    scale = f"{html.escape(v['dataset'])} · " if v and v.get("dataset") else ""
    return (f'<section class="finding" id="{name}"><h2>{title} {status}</h2>{claim}'
            f'<div class="body"><div class="evidence">{nums}<p class="wall">{scale}{r["wall"]:.0f} s</p></div>'
            f'<div class="figure">{figure}</div></div></section>')


def _counts(results, preset):
    """Reproduced findings per preset: this report, the other presets' reports beside it, and the
    committed `default` verdicts in figures/ (when this is not the default report)."""
    findings = [r for r in results if not (r["verdict"] and r["verdict"].get("reproduced", False) is None)]
    n_yes = sum(1 for r in findings if r["verdict"] and r["verdict"]["reproduced"] and not r["error"])
    unfinished = [r for r in results if r.get("state") in ("queued", "running")]
    failed = [r for r in results if r["error"]]
    notes = ", ".join(x for x in (f"{len(unfinished)} still running or queued" if unfinished else "",
                                   f"{len(failed)} failed" if failed else "") if x)
    counts = [(preset, f"{n_yes} of {len(findings)}", "this report" + (f"; {notes}" if notes else ""))]
    for other in PRESET_NAMES:
        if other == preset:
            continue
        summary = REPO / "reports" / other / "summary.json"
        if summary.exists():
            rs = [r for r in json.loads(summary.read_text())["results"] if r.get("reproduced", False) is not None]
            counts.append((other, f"{sum(r['reproduced'] for r in rs)} of {len(rs)}", f"reports/{other}"))
        elif other == plots.COMMITTED_PRESET:
            vs = [json.loads(f.read_text()) for f in sorted((REPO / "figures").glob("*/verdict.json"))]
            vs = [v for v in vs if v.get("reproduced", False) is not None]
            if vs:
                counts.append((other, f"{sum(v['reproduced'] for v in vs)} of {len(vs)}", "committed figures/"))
    return counts


def write_index(results: Sequence[dict], out_dir: Path, preset: str, wall: float) -> Path:
    """Write ``index.html`` and ``summary.json`` for ``results`` (finished, running or queued) into ``out_dir``."""
    cards = "\n".join(_card(r, out_dir) for r in results)
    counts = _counts(results, preset)
    summary = " · ".join(f"<span class='count'><code>{html.escape(p)}</code>: <b>{html.escape(c)}</b> reproduced "
                         f"<span class='src'>({html.escape(src)})</span></span>" for p, c, src in counts)
    datasets = sorted({r["verdict"].get("dataset", "").split(" · ")[0].split(",")[0] for r in results if r["verdict"]} - {""})
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>nbkernels report ({preset})</title>
<style>body{{font-family:sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}}
.summary{{font-size:16px;background:#f4f6f8;padding:10px 14px;border-radius:6px}}.src{{color:#777;font-size:13px}}
.finding{{border-top:1px solid #ccc;padding:14px 0}}.finding h2{{font-size:19px;margin:0 0 4px}}
.claim{{font-size:16px;margin:2px 0 10px}}.body{{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}}
.evidence{{flex:1 1 400px;min-width:380px}}.figure{{flex:0 1 auto;max-width:100%}}
img.main{{max-width:100%;height:auto;border:1px solid #eee}}
table.key{{border-collapse:collapse;width:100%}}.key td,.key th{{border-bottom:1px solid #ddd;padding:5px 8px;
vertical-align:top;text-align:left;font-size:14px;min-width:90px}}.ours{{font-weight:bold}}.paper{{color:#555}}
.yes{{color:#009E73;font-size:15px}}.no{{color:#D55E00;font-size:15px}}.failed{{color:#D55E00;font-size:15px}}.tour{{color:#555;font-size:15px}}.running{{color:#0072B2;font-size:15px}}
table.tests{{border-collapse:collapse;width:100%;margin-top:6px}}.tests td,.tests th{{border-bottom:1px solid #eee;
padding:3px 8px;text-align:left;vertical-align:top;font-size:12px;min-width:90px}}
.wall,.more{{color:#777;font-size:12px}}a.nb{{font-size:12px;font-weight:normal;margin-left:8px}}.caveat{{color:#8a5a00;font-size:13px}}pre{{white-space:pre-wrap;font-size:11px}}</style></head><body>
<h1>Finite versus infinite neural networks: findings at preset <code>{preset}</code></h1>
<p class="summary">{summary}</p>
<p>Data: {html.escape(', '.join(datasets))} (each finding names its scale). Total wall time <span id="wall">{wall:.0f}</span> s
on {os.cpu_count()} cores. Each finding: the paper's claim, our verdict, the numbers that decided it beside the paper's,
and its main figure (click it for the finding's page, with every number and figure).</p>
{cards}
</body></html>"""
    index = out_dir / "index.html"
    index.write_text(page)
    (out_dir / "summary.json").write_text(json.dumps(
        {"preset": preset, "wall_s": wall, "results": [
            {"name": r["name"], "state": r.get("state", "done"), "wall_s": r["wall"], "error": r["error"],
             "reproduced": None if r["verdict"] and r["verdict"]["reproduced"] is None
             else bool(r["verdict"] and r["verdict"]["reproduced"])} for r in results]}, indent=1))
    return index


WALLS = "walls.json"  # in the figures folder: each notebook's wall time in its last run at that preset


def read_walls(figures_root: Path) -> dict:
    """The notebooks' wall times (s) of the last run at this preset, or {} if none was recorded."""
    try:
        return {str(k): float(v) for k, v in json.loads((Path(figures_root) / WALLS).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def longest_first(names: Sequence[str], walls: dict) -> list[str]:
    """The order to start notebooks in: the longest last time first (a notebook never timed counts as
    longest), so the two workers finish together instead of one waiting on a long notebook started last
    (the 2026-12-05 `default` run ended 280 s after half the notebooks' summed time, in alphabetical order)."""
    return sorted(names, key=lambda n: -walls.get(n, float("inf")))


def _record_wall(figures_root: Path, name: str, wall: float) -> None:
    path = Path(figures_root) / WALLS
    walls = read_walls(figures_root)
    walls[name] = round(wall, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(walls.items())), indent=1) + "\n")
    tmp.replace(path)


def run(preset: str, notebooks: Union[str, Sequence[str], None] = None, jobs: int = 2,
        out: Union[str, os.PathLike, None] = None, timeout: int = 3600) -> Path:
    """Run the notebooks ``notebooks`` (every one by default; see :func:`select_notebooks`) at ``preset``,
    ``jobs`` at a time, saying on the terminal and in the index how each is getting on; returns the index."""
    if preset not in PRESET_NAMES:
        raise SystemExit(f"unknown preset {preset!r}; valid presets: {', '.join(PRESET_NAMES)}")
    names = select_notebooks(notebooks)
    out_dir = Path(out) if out else REPO / "reports" / preset
    out_dir.mkdir(parents=True, exist_ok=True)
    figures_root = plots.figures_dir(preset) if preset == plots.COMMITTED_PRESET else out_dir / "figures"
    walls = read_walls(figures_root)
    order = longest_first(names, walls)
    t0 = time.time()
    results = {n: pending(n, out_dir) for n in names}
    lock = threading.Lock()

    def redraw(name=None, text="", elapsed=0.0):
        with lock:
            if name is not None and results[name].get("state") in ("queued", "running"):
                results[name] = pending(name, out_dir, "running", text, elapsed)
            write_index([results[n] for n in names], out_dir, preset, time.time() - t0)

    progress = Progress(walls, redraw)
    redraw()
    print(f"nbkernels report: {len(names)} notebooks at preset '{preset}', {jobs} at a time -> {_shown(out_dir)}")
    print(f"  progress: {_shown(out_dir / 'index.html')} (rewritten as notebooks run)", flush=True)
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_one, n, preset, out_dir, figures_root, timeout, jobs, progress): n for n in order}
        for i, fut in enumerate(cf.as_completed(futures), 1):
            r = fut.result()
            with lock:
                results[r["name"]] = r
            if r["error"] is None:
                _record_wall(figures_root, r["name"], r["wall"])
            v = r["verdict"]
            state = "FAILED" if r["error"] else ("tour" if v and v["reproduced"] is None else ("yes" if v and v["reproduced"] else "no"))
            print(f"[{i}/{len(names)}] {r['name']}: {state} ({r['wall']:.0f} s, {time.time() - t0:.0f} s elapsed)",
                  flush=True)
            redraw()
    wall = time.time() - t0
    index = write_index([results[n] for n in names], out_dir, preset, wall)
    print(f"report written to {_shown(index)} in {wall:.0f} s")
    if preset == plots.COMMITTED_PRESET and out is None:
        if any(results[n]["error"] for n in names):
            print(f"{_shown(DOCS)} not updated: a notebook failed")
        else:
            whole = wall if names == available_notebooks() else None
            print(f"published to {_shown(publish(out_dir, wall=whole))} and {_shown(DOCS / 'index.html')}")
    return index


def _shown(path: Path) -> str:
    """A path as the terminal shows it: relative to the repository when inside it."""
    try:
        return Path(path).resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


DOCS = REPO / "docs"


def publish(out_dir: Path, docs: Path = DOCS, wall: Optional[float] = None) -> Path:
    """Put a finished ``default`` report where the repository host shows it: ``docs/index.html`` (the index;
    GitHub Pages serves ``docs/``), ``docs/README.md`` (the same findings in markdown, which the host renders
    when a reader opens ``docs/``), each finding's page ``docs/NAME.html``, its executed notebook
    ``docs/executed/NAME.ipynb`` (rendered by the host) and the figures and verdict they show,
    ``docs/figures/NAME/``.

    The notebooks of this report replace theirs; the others keep what an earlier report published, and the
    index is rebuilt over all of them, so ``docs/`` always shows the committed ``figures/``. Its total wall
    time is ``wall`` (this report's, when it ran every notebook), else the sum of the notebooks' last walls.
    Returns the markdown index."""
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    if any(r["error"] for r in summary["results"]):
        raise ValueError(f"{_shown(out_dir)} has failed notebooks: publish a report in which every notebook ran.")
    staged = docs.with_name(docs.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    (staged / "executed").mkdir(parents=True)
    for name in available_notebooks():  # what an earlier report published of each notebook (nothing else)
        for rel in (f"{name}.html", f"executed/{name}.ipynb"):
            if (docs / rel).exists():
                shutil.copy(docs / rel, staged / rel)
        if (docs / "figures" / name).exists():
            shutil.copytree(docs / "figures" / name, staged / "figures" / name)
    if (docs / "summary.json").exists():
        shutil.copy(docs / "summary.json", staged / "summary.json")
    for r in summary["results"]:
        name = r["name"]
        for src, dst in ((out_dir / f"{name}.html", staged / f"{name}.html"),
                         (out_dir / "executed" / f"{name}.ipynb", staged / "executed" / f"{name}.ipynb")):
            if src.exists():
                shutil.copy(src, dst)
        figures = out_dir / "figures" / name
        if figures.exists():
            shutil.rmtree(staged / "figures" / name, ignore_errors=True)
            (staged / "figures" / name).mkdir(parents=True)
            for f in sorted(figures.glob("*.png")) + sorted(figures.glob("verdict.json")):
                shutil.copy(f, staged / "figures" / name / f.name)
    walls = {r["name"]: r["wall_s"] for r in summary["results"]}
    previous = staged / "summary.json"
    if previous.exists() and previous.stat().st_size:
        walls = {**{r["name"]: r["wall_s"] for r in json.loads(previous.read_text())["results"]}, **walls}
    results = [dict(name=name, state="done", wall=walls.get(name, 0.0), error=None,
                    page=staged / f"{name}.html" if (staged / f"{name}.html").exists() else None,
                    verdict=json.loads(v.read_text()) if (v := staged / "figures" / name / "verdict.json").exists() else None,
                    figures=staged / "figures" / name)
               for name in available_notebooks() if (staged / "figures" / name).exists()]
    write_index(results, staged, summary["preset"], sum(r["wall"] for r in results) if wall is None else wall)
    (staged / "README.md").write_text(_markdown_index(json.loads((staged / "summary.json").read_text()), staged))
    shutil.rmtree(docs, ignore_errors=True)
    staged.rename(docs)
    return docs / "README.md"


def _markdown_index(summary: dict, docs: Path) -> str:
    """The report's index in markdown: the count, then per finding its claim, verdict, deciding numbers beside
    the paper's, main figure and links to its executed notebook and page."""
    results = summary["results"]
    findings = [r for r in results if r["reproduced"] is not None]
    lines = [f"# nbkernels: the `{summary['preset']}` report",
             "",
             f"**{sum(r['reproduced'] for r in findings)} of {len(findings)}** findings of *Finite Versus Infinite Neural "
             f"Networks* (Lee et al. 2020) reproduce at preset `{summary['preset']}`, each decided by a one-sided test at "
             f"α = 0.05 fixed before its run. Made by `make report` on {os.cpu_count()} cores (the notebooks' wall times "
             f"add up to {sum(r['wall_s'] for r in results):,.0f} s); [the same report as a web page](index.html). "
             "Each finding links to its executed "
             "notebook (every cell's output, rendered here) and its page.", ""]
    for r in results:
        name = r["name"]
        vfile = docs / "figures" / name / "verdict.json"
        v = json.loads(vfile.read_text()) if vfile.exists() else None
        verdict = ("data tour (not a finding)" if r["reproduced"] is None else
                   "**reproduced**" if r["reproduced"] else "**not reproduced**")
        lines += [f"## {name}: {verdict}", ""]
        if v:
            lines += [v["claim"] + ".", "", "| what decided it | ours | paper |", "|---|---|---|"]
            lines += [f"| {_md(n.get('what', ''))} | {_md(n.get('ours', ''))} | {_md(n.get('paper', ''))} |" for n in _key_rows(v)]
            lines += [""] + [f"- decisive test: {_md(_test_text(t))}" for t in v.get("tests") or []]
            lines += [f"- caveat: {_md(str(c))}" for c in v.get("caveats") or []]
            lines += [f"- scale: {_md(v.get('dataset', ''))}; {r['wall_s']:,.0f} s", ""]
            fig = docs / "figures" / name / f"{v.get('figure')}.png"
            if fig.exists():
                lines += [f"![{name}: {v['figure']}](figures/{name}/{fig.name})", ""]
        lines += [f"[executed notebook](executed/{name}.ipynb) · [page]({name}.html)", ""]
    return "\n".join(lines)


def _md(text) -> str:
    """Text for a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def _test_text(t: dict) -> str:
    """A recorded test in one line: the parts of an all_of (beyond three, the first two and the weakest of
    the rest), each with its estimate, error and p."""
    if t.get("kind") == "all_of":
        parts = t["parts"]
        if len(parts) <= 3:
            return "; ".join(_test_text(p) for p in parts)
        rest = parts[2:]
        weakest = max(rest, key=lambda p: p["p"])
        return ("; ".join(_test_text(p) for p in parts[:2]) + f"; {sum(p['passed'] for p in rest)} of {len(rest)} more "
                f"parts pass, the weakest {_test_text(weakest)}")
    return f"{t['label']}: {_estimate_text(t, detail=False)}, {_p_text(t['p'])}"


def _ci_expectation(name: str, repo: Path) -> str:
    """The `ci` verdict nbval holds a notebook to: its verdict cell's expected output."""
    nb = json.loads((repo / "notebooks" / f"{name}.ipynb").read_text())
    cells = [c for c in nb["cells"] if "verdict" in c.get("metadata", {}).get("tags", [])]
    return cells[0]["metadata"].get("expect", "yes") if cells else "—"


FINDINGS_BEGIN = "<!-- findings table: python -m nbkernels.report --findings-table (from figures/ and the notebooks) -->"
FINDINGS_END = "<!-- end of findings table -->"


def findings_table(repo: Path = REPO) -> str:
    """README's findings table, rebuilt from the committed results: each finding's claim, its `ci` verdict
    (what nbval checks), its `default` verdict with every decisive test from ``figures/*/verdict.json``,
    and the count over the findings (the data tour is listed, not counted)."""
    rows, yes, total, ci_yes = [], 0, 0, 0
    for name in available_notebooks():
        vfile = repo / "figures" / name / "verdict.json"
        v = json.loads(vfile.read_text()) if vfile.exists() else None
        link = f"[{name}](notebooks/{name}.ipynb)"
        if v is not None and v["reproduced"] is None:
            rows.append(f"| {link} | {v['claim']} (the data tour, not a finding) | — | — |")
            continue
        ci = _ci_expectation(name, repo)
        total += 1
        ci_yes += ci == "yes"
        if v is None:
            rows.append(f"| {link} | — | {ci} | not run at `default` |")
            continue
        yes += bool(v["reproduced"])
        tests = "; ".join(_test_text(t) for t in v.get("tests") or []) or "no statistical test recorded"
        rows.append(f"| {link} | {v['claim']} | {ci} | **{'yes' if v['reproduced'] else 'no'}**: {tests} |")
    head = (f"Reproduced at `default`: **{yes} of {total}** findings; at `ci`: {ci_yes} of {total}.\n\n"
            "| notebook | claim tested | `ci` | `default` (decisive tests, one-sided, α = 0.05; figures in `figures/`) |\n"
            "|---|---|---|---|")
    return "\n".join([FINDINGS_BEGIN, head] + rows + [FINDINGS_END])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m nbkernels.report`` (``make report``): ``--help`` lists the flags."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="default", help=f"one of {PRESET_NAMES}")
    ap.add_argument("--notebooks", default="",
                    help="names or numbers, separated by commas or spaces (default: all): '06 09', 06,09, 06_width_nonmonotonicity")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    ap.add_argument("--findings-table", action="store_true",
                    help="print README's findings table from the committed figures/ and notebooks, and exit")
    a = ap.parse_args(argv)
    if a.findings_table:
        print(findings_table())
        return 0
    index = run(a.preset, split_names(a.notebooks), a.jobs, a.out, a.timeout)
    summary = json.loads((index.parent / "summary.json").read_text())
    return 1 if any(r["error"] for r in summary["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
