"""The verdict record the report reads: the numbers that decide it are marked, it names its scale and main
figure, and a run at a preset other than `default` leaves the committed figures/ alone."""
import json

import pytest

import numpy as np

from nbkernels import notebook, plots, stats

SCALE = plots.Scale("CIFAR-10", (8, 8, 3), 100, 600, "ci")
ROWS = [dict(what="gain", ours="+4.4 ± 1.7 points", paper="> 0", key=True), dict(what="base", ours="14.4%", paper="≈ kernel")]
_A = np.r_[np.ones(60), np.zeros(40)]
TEST = stats.paired(_A, np.r_[np.ones(30), np.zeros(70)], label="L2 − none")   # passes: +30 points


def test_verdict_records_claim_key_numbers_scale_and_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBKERNELS_FIGURES", str(tmp_path))
    notebook.verdict("04_l2", "L2 helps", TEST, ROWS, SCALE, figure="heatmaps", caveats=["on_precision='ignore'"])
    assert capsys.readouterr().out == "finding reproduced: yes\n"
    v = json.loads((tmp_path / "04_l2" / "verdict.json").read_text())
    assert v["key"] == [0] and v["figure"] == "heatmaps" and v["caveats"] == ["on_precision='ignore'"]
    assert v["dataset"] == SCALE.describe() and v["preset"] == "ci" and v["scale"]["image"] == [8, 8, 3]
    t = v["tests"][0]
    assert v["reproduced"] is True and t["label"] == "L2 − none" and t["n"] == 100 and t["alpha"] == 0.05
    assert t["estimate"] == TEST.estimate and t["se"] == TEST.se and t["z"] == TEST.z and t["p"] == TEST.p


def test_the_verdict_is_the_test(tmp_path, monkeypatch, capsys):
    """A failing test is a "no", whatever else; a bool is refused; the tour records no verdict."""
    monkeypatch.setenv("NBKERNELS_FIGURES", str(tmp_path))
    fails = stats.paired(np.r_[np.ones(31), np.zeros(69)], np.r_[np.ones(30), np.zeros(70)])
    notebook.verdict("x", "c", fails, ROWS, SCALE, figure="f")
    assert capsys.readouterr().out == "finding reproduced: no\n"
    assert json.loads((tmp_path / "x" / "verdict.json").read_text())["reproduced"] is False
    with pytest.raises(TypeError, match="decided by a nbkernels.stats test"):
        notebook.verdict("x", "c", True, ROWS, SCALE, figure="f", write=False)
    notebook.tour("00_data_tour", "the data", ROWS, SCALE, figure="spectrum")
    assert json.loads((tmp_path / "00_data_tour" / "verdict.json").read_text())["reproduced"] is None


def test_a_verdict_must_say_which_numbers_decide_it():
    with pytest.raises(ValueError, match="0 verdict rows are marked key=True; mark the 1 to 3"):
        notebook.verdict("x", "c", TEST, [dict(what="a", ours="1", paper="2")], SCALE, figure="f", write=False)
    with pytest.raises(ValueError, match="4 verdict rows are marked"):
        notebook.verdict("x", "c", TEST, [dict(what="a", ours="1", paper="2", key=True)] * 4, SCALE, figure="f", write=False)
    with pytest.raises(ValueError, match=r"lacks \['paper'\]"):
        notebook.verdict("x", "c", TEST, [dict(what="a", ours="1", key=True)], SCALE, figure="f", write=False)


def test_an_interactive_run_at_ci_leaves_the_committed_figures_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("NBKERNELS_FIGURES", raising=False)
    committed = plots.figures_dir("default")
    monkeypatch.setattr(plots, "figures_dir", lambda preset="default": tmp_path / ("figures" if preset == "default" else f"reports/{preset}/figures"))
    notebook.verdict("04_l2", "L2 helps", TEST, ROWS, SCALE, figure="heatmaps")
    assert (tmp_path / "reports" / "ci" / "figures" / "04_l2" / "verdict.json").exists()
    assert not (tmp_path / "figures").exists()
    assert committed.name == "figures"


def test_every_finite_arm_is_recorded_and_one_at_an_edge_or_its_budget_is_a_caveat(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NBKERNELS_FIGURES", str(tmp_path))
    inside = dict(name="CNN", grid={"lr_factor": [0.5, 1.0, 2.0]}, chosen={"lr_factor": 1.0}, inside=True,
                  budget_bound=False, stop_step=[400, 500, 450], budget_steps=1000, val_acc=0.41, test_acc=0.40,
                  seeds=[1, 2, 3])
    edge = dict(inside, name="LCN", chosen={"lr_factor": 2.0}, inside=False, budget_bound=True, stop_step=[1000, 900, 1000])
    early = dict(inside, name="LCN-early", early_bound=True, stop_step=[100, 300, 200])
    notebook.verdict("10_x", "CNN beats LCN", TEST, ROWS, SCALE, figure="width", arms=[inside, edge, early])
    v = json.loads((tmp_path / "10_x" / "verdict.json").read_text())
    assert v["arms"] == [inside, edge, early]
    assert any("'LCN-early' stopped at its first evaluation" in c for c in v["caveats"])
    assert any("'LCN' was chosen at the edge of its grid (lr_factor)" in c for c in v["caveats"])
    assert any("'LCN' stopped at the end of its 1000-step budget" in c for c in v["caveats"])
    assert not any("'CNN'" in c for c in v["caveats"])
    from nbkernels import report
    html_text = report._arms_html(v)
    assert "<b>at an edge</b>" in html_text and "<b>budget-bound</b>" in html_text and "40.0% (3 fresh seeds)" in html_text
    assert "<b>at the first evaluation</b>" in html_text
