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


def test_index_shows_a_failed_notebook_with_its_error_beside_the_others(tmp_path):
    figs = tmp_path / "figures" / "00_data_tour"
    figs.mkdir(parents=True)
    (figs / "spectrum.png").write_bytes(b"\x89PNG")
    ok = dict(name="00_data_tour", wall=31.6, error=None, page=tmp_path / "00_data_tour.html", figures=figs,
              verdict=dict(claim="ZCA reaches the identity", reproduced=True, dataset="CIFAR-10, 100 train / 600 test",
                           numbers=[dict(what="max dev", ours="4e-08", paper="→ 0")]))
    bad = dict(name="01_finite_vs_infinite", wall=5.0, error="ValueError: x has NaN", page=None, verdict=None,
               figures=tmp_path / "figures" / "01_finite_vs_infinite")
    index = report.write_index([ok, bad], tmp_path, "ci", wall=40.0)
    text = index.read_text()
    assert "1 of 2 findings reproduced" in text and "Data: CIFAR-10 (each row names its subset)" in text
    assert "32 s · CIFAR-10, 100 train / 600 test" in text and 'src="figures/00_data_tour/spectrum.png"' in text
    assert '<span class="failed">failed</span><pre>ValueError: x has NaN</pre>' in text
    summary = (tmp_path / "summary.json").read_text()
    assert '"error": "ValueError: x has NaN"' in summary
