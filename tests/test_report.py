"""The report's command line: bad names get the list of valid ones; concurrent notebooks share BLAS and XLA threads."""
import pytest

from nbkernels import report


def test_unknown_preset_lists_the_valid_ones(tmp_path):
    with pytest.raises(SystemExit, match="unknown preset 'fast'; valid presets: ci, default, gpu, paper"):
        report.run("fast", out=tmp_path)


def test_unknown_notebook_lists_the_valid_ones():
    with pytest.raises(SystemExit, match="unknown notebook '99'; valid notebooks: 00_data_tour, 01_finite_vs_infinite"):
        report.select_notebooks(["99"])
    assert report.select_notebooks(["02", "00_data_tour.ipynb"]) == ["02_nngp_vs_ntk", "00_data_tour"]


def test_notebooks_start_longest_first_by_their_last_wall_times(tmp_path):
    names = ["00_data_tour", "01_finite_vs_infinite", "02_nngp_vs_ntk", "03_centering_ensembling"]
    assert report.read_walls(tmp_path) == {}                      # never run: the given order
    assert report.longest_first(names, {}) == names
    report._record_wall(tmp_path, "00_data_tour", 93.0)
    report._record_wall(tmp_path, "01_finite_vs_infinite", 1514.2)
    report._record_wall(tmp_path, "02_nngp_vs_ntk", 460.0)
    walls = report.read_walls(tmp_path)
    assert walls == {"00_data_tour": 93.0, "01_finite_vs_infinite": 1514.2, "02_nngp_vs_ntk": 460.0}
    # a notebook never timed counts as longest; then by wall time, longest first
    assert report.longest_first(names, walls) == ["03_centering_ensembling", "01_finite_vs_infinite", "02_nngp_vs_ntk",
                                                  "00_data_tour"]
    (tmp_path / report.WALLS).write_text("not json")
    assert report.read_walls(tmp_path) == {}                      # a damaged file only loses the order


def test_concurrent_notebooks_share_the_blas_threads(monkeypatch, tmp_path):
    for var in report.BLAS_THREADS + ("XLA_FLAGS",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(report.os, "cpu_count", lambda: 2)
    env = report.child_env("ci", tmp_path, jobs=2)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["NBKERNELS_PRESET"] == "ci"
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    alone = report.child_env("ci", tmp_path, jobs=1)
    assert "OPENBLAS_NUM_THREADS" not in alone and "XLA_FLAGS" not in alone
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert report.child_env("ci", tmp_path, jobs=2)["OPENBLAS_NUM_THREADS"] == "2"


def test_report_pages_draw_each_widget_once_without_comms(monkeypatch, tmp_path):
    import ipywidgets

    from nbkernels import notebook, settings

    assert report.child_env("ci", tmp_path, jobs=1)[settings.STATIC_WIDGETS_ENV] == "1"
    calls = []
    monkeypatch.setenv(settings.STATIC_WIDGETS_ENV, "1")
    notebook.interact(lambda width, arch: calls.append((width, arch)),
                      width=ipywidgets.SelectionSlider(options=[2, 8, 32], value=8), arch=ipywidgets.Dropdown(options=["FCN", "CNN"]))
    assert calls == [(8, "FCN")]
    monkeypatch.delenv(settings.STATIC_WIDGETS_ENV)
    w = notebook.interact(lambda k: calls.append(k), k=ipywidgets.IntSlider(min=1, max=4, value=2))
    assert calls[-1] == 2 and hasattr(w, "widget")  # a live interact in JupyterLab


def _ok_result(tmp_path, **verdict):
    figs = tmp_path / "figures" / "00_data_tour"
    figs.mkdir(parents=True, exist_ok=True)
    for stem in ("samples", "spectrum"):
        (figs / f"{stem}.png").write_bytes(b"\x89PNG")
    v = dict(claim="ZCA reaches the identity", reproduced=True, figure="spectrum", key=[1],
             dataset="CIFAR-10 · 32×32×3 images · 100 train / 600 test · preset 'ci'",
             numbers=[dict(what="max dev at ε=1", ours="1.0", paper="→ 0"), dict(what="max dev at ε=0", ours="4e-08", paper="→ 0")])
    v.update(verdict)
    return dict(name="00_data_tour", wall=31.6, error=None, page=tmp_path / "00_data_tour.html", figures=figs, verdict=v)


def test_index_shows_a_failed_notebook_with_its_error_beside_the_others(tmp_path):
    ok = _ok_result(tmp_path)
    bad = dict(name="01_finite_vs_infinite", wall=5.0, error="ValueError: x has NaN", page=None, verdict=None,
               figures=tmp_path / "figures" / "01_finite_vs_infinite")
    index = report.write_index([ok, bad], tmp_path, "ci", wall=40.0)
    text = index.read_text()
    assert "<code>ci</code>: <b>1 of 2</b> reproduced" in text and "Data: CIFAR-10 (each finding names its scale)" in text
    assert "preset &#x27;ci&#x27; · 32 s" in text
    assert '<span class="failed">failed</span><pre>ValueError: x has NaN</pre>' in text
    summary = (tmp_path / "summary.json").read_text()
    assert '"error": "ValueError: x has NaN"' in summary


def test_index_shows_the_deciding_numbers_and_the_main_figure_large(tmp_path):
    text = report.write_index([_ok_result(tmp_path)], tmp_path, "ci", wall=40.0).read_text()
    assert "<td>max dev at ε=0</td><td class='ours'>4e-08</td>" in text, "the key row is shown"
    assert "max dev at ε=1" not in text, "rows that did not decide the verdict stay on the finding's page"
    assert 'all 2 numbers on the finding\'s page' in text
    assert '<a href="00_data_tour.html"><img src="figures/00_data_tour/spectrum.png"' in text and 'class="main"' in text
    assert "samples.png" not in text, "only the main figure is on the index"
    caveat = report.write_index([_ok_result(tmp_path, caveats=["solved with on_precision='ignore'"])], tmp_path, "ci", 1.0)
    assert "Caveat: solved with on_precision=&#x27;ignore&#x27;" in caveat.read_text()


def test_card_shows_the_decisive_test_and_the_tour_is_not_counted(tmp_path):
    import numpy as np
    from nbkernels import stats
    t = stats.all_of([stats.paired(np.r_[np.ones(60), np.zeros(40)], np.r_[np.ones(30), np.zeros(70)], label="GAP − VEC"),
                      stats.equivalent(np.r_[np.ones(50), np.zeros(50)], np.r_[np.ones(50), np.zeros(50)], 0.05, label="ridge vs flow")])
    finding = _ok_result(tmp_path, tests=[t.record()])
    finding["name"] = "13_cntk_depth"
    tour = _ok_result(tmp_path, reproduced=None)
    text = report.write_index([tour, finding], tmp_path, "ci", wall=1.0).read_text()
    assert "<code>ci</code>: <b>1 of 1</b> reproduced" in text, "the data tour is not a finding"
    assert "data tour (not a finding)" in text
    assert "GAP − VEC (greater)" in text and "ridge vs flow (equivalent)" in text and "margin ±5.0" in text
    assert f"{100 * t.parts[0].estimate:+.2f} ± {100 * t.parts[0].se:.2f}" in text
    legacy = report.write_index([_ok_result(tmp_path)], tmp_path, "ci", wall=1.0).read_text()
    assert "No statistical test recorded" in legacy


def test_summary_counts_each_preset(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "reports" / "default").mkdir(parents=True)
    (repo / "reports" / "default" / "summary.json").write_text(
        '{"results": [{"reproduced": true}, {"reproduced": false}, {"reproduced": true}]}')
    monkeypatch.setattr(report, "REPO", repo)
    text = report.write_index([_ok_result(tmp_path)], tmp_path, "ci", wall=1.0).read_text()
    assert "<code>ci</code>: <b>1 of 1</b> reproduced" in text
    assert "<code>default</code>: <b>2 of 3</b> reproduced <span class='src'>(reports/default)</span>" in text


def test_readme_findings_table_is_rebuilt_from_the_committed_results():
    readme = (report.REPO / "README.md").read_text()
    start, end = readme.index(report.FINDINGS_BEGIN), readme.index(report.FINDINGS_END) + len(report.FINDINGS_END)
    assert readme[start:end] == report.findings_table(), (
        "README's findings table differs from figures/ and the notebooks: paste `python -m nbkernels.report "
        "--findings-table` over it")
    assert "of 13** findings" in readme[start:end]


def test_notebooks_are_named_as_a_user_types_them():
    assert report.select_notebooks("06 09") == ["06_width_nonmonotonicity", "09_zca_whitening"]
    assert report.select_notebooks("06,09") == report.select_notebooks(["06, 09"]) == report.select_notebooks("06 ,  09")
    assert report.select_notebooks("06_width_nonmonotonicity.ipynb 09") == ["06_width_nonmonotonicity", "09_zca_whitening"]
    assert report.select_notebooks("") == report.available_notebooks()
    with pytest.raises(SystemExit, match="unknown notebook '6x'"):
        report.select_notebooks("06 6x")


def test_make_report_passes_notebooks_with_spaces_through(tmp_path):
    import subprocess
    out = subprocess.run(["make", "-n", "--no-print-directory", "report", "NOTEBOOKS=06 09", "PRESET=ci",
                          "VENV=" + __import__("sys").prefix], cwd=report.REPO, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    out = [line for line in out if "nbkernels.report" in line][-1]   # the recipe's line (also when run under make)
    import shlex
    argv = shlex.split(out)
    assert argv[argv.index("--notebooks") + 1] == "06 09"
    assert report.select_notebooks(report.split_names("06 09")) == ["06_width_nonmonotonicity", "09_zca_whitening"]


def test_progress_is_read_from_the_copy_papermill_saves(tmp_path):
    nb = {"cells": [{"cell_type": "markdown"}] + [
        {"cell_type": "code", "metadata": {"papermill": {"status": s}}} for s in ("completed", "completed", "running", "pending")]}
    (tmp_path / "x.ipynb").write_text(__import__("json").dumps(nb))
    assert report.cells_done(tmp_path / "x.ipynb") == (2, 4)
    assert report.cells_done(tmp_path / "missing.ipynb") is None
    (tmp_path / "half.ipynb").write_text('{"cells": [')
    assert report.cells_done(tmp_path / "half.ipynb") is None
    assert report.progress_text((2, 4), 340.4, 1032.0) == "cell 3 of 4, 340 s elapsed (last run 1,032 s)"
    assert report.progress_text(None, 3.0, None) == "starting, 3 s elapsed (no earlier run timed)"


def test_the_terminal_hears_from_a_running_notebook_when_its_cell_changes(monkeypatch):
    import io
    clock = [1000.0]
    monkeypatch.setattr(report.time, "time", lambda: clock[0])
    drawn, out = [], io.StringIO()
    p = report.Progress({"01_x": 1032.0}, lambda *a: drawn.append(a), every=15, quiet=120, stream=out)
    p("01_x", (2, 30), 40.0)             # first news: printed
    clock[0] += 5
    p("01_x", (3, 30), 45.0)             # a new cell, but only 5 s later: held back
    clock[0] += 20
    p("01_x", (3, 30), 65.0)             # 25 s since the last line, a cell not yet shown: printed
    clock[0] += 60
    p("01_x", (3, 30), 125.0)            # nothing new for 60 s: quiet
    clock[0] += 61
    p("01_x", (3, 30), 186.0)            # 121 s without a line: a heartbeat
    lines = out.getvalue().splitlines()
    assert lines == ["  01_x: cell 3 of 30, 40 s elapsed (last run 1,032 s)",
                     "  01_x: cell 4 of 30, 65 s elapsed (last run 1,032 s)",
                     "  01_x: cell 4 of 30, 186 s elapsed (last run 1,032 s)"]
    assert len(drawn) == 3 and drawn[0][0] == "01_x"


def test_the_index_says_which_notebooks_are_still_running_or_failed(tmp_path):
    ok = _ok_result(tmp_path)
    running = report.pending("01_finite_vs_infinite", tmp_path, "running", "cell 4 of 30, 65 s elapsed (last run 1,032 s)", 65.0)
    queued = report.pending("02_nngp_vs_ntk", tmp_path)
    failed = dict(report.pending("03_centering_ensembling", tmp_path), state="failed", error="ValueError: boom")
    text = report.write_index([ok, running, queued, failed], tmp_path, "ci", wall=70.0).read_text()
    assert "running: cell 4 of 30, 65 s elapsed" in text and ">queued<" in text
    assert "2 still running or queued, 1 failed" in text
    summary = __import__("json").loads((tmp_path / "summary.json").read_text())
    assert [r["state"] for r in summary["results"]] == ["done", "running", "queued", "failed"]
