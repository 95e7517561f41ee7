"""The report's command line: bad names get the list of valid ones; concurrent notebooks share BLAS and XLA threads."""
import pytest

from nbkernels import report


def test_unknown_preset_lists_the_valid_ones(tmp_path):
    with pytest.raises(SystemExit, match="unknown preset 'fast'; valid presets: ci, default, paper"):
        report.run("fast", out=tmp_path)


def test_unknown_notebook_lists_the_valid_ones():
    with pytest.raises(SystemExit, match="unknown notebook '99'; valid notebooks: 00_data_tour, 01_finite_vs_infinite"):
        report.select_notebooks(["99"])
    assert report.select_notebooks(["02", "00_data_tour.ipynb"]) == ["02_nngp_vs_ntk", "00_data_tour"]


def test_concurrent_notebooks_share_the_blas_threads(monkeypatch, tmp_path):
    for var in report._BLAS_THREADS + ("XLA_FLAGS",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(report.os, "cpu_count", lambda: 2)
    env = report._child_env("ci", tmp_path, jobs=2)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["NBKERNELS_PRESET"] == "ci"
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    alone = report._child_env("ci", tmp_path, jobs=1)
    assert "OPENBLAS_NUM_THREADS" not in alone and "XLA_FLAGS" not in alone
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert report._child_env("ci", tmp_path, jobs=2)["OPENBLAS_NUM_THREADS"] == "2"


def test_report_pages_draw_each_widget_once_without_comms(monkeypatch, tmp_path):
    import ipywidgets

    from nbkernels import notebook

    assert report._child_env("ci", tmp_path, jobs=1)[notebook.STATIC_WIDGETS_ENV] == "1"
    calls = []
    monkeypatch.setenv(notebook.STATIC_WIDGETS_ENV, "1")
    notebook.interact(lambda width, arch: calls.append((width, arch)),
                      width=ipywidgets.SelectionSlider(options=[2, 8, 32], value=8), arch=ipywidgets.Dropdown(options=["FCN", "CNN"]))
    assert calls == [(8, "FCN")]
    monkeypatch.delenv(notebook.STATIC_WIDGETS_ENV)
    w = notebook.interact(lambda k: calls.append(k), k=ipywidgets.IntSlider(min=1, max=4, value=2))
    assert calls[-1] == 2 and hasattr(w, "widget")  # a live interact in JupyterLab
