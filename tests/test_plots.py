"""The shared figure helpers: titles carry the scale the experiment used; the house style is applied only
when asked; figures go to the committed folder only at `default`; the widgets' learning-curve figure."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nbkernels import data, plots  # noqa: E402


def _ds(n_train=30, n_test=20, side=32):
    x = np.zeros((n_train, side, side, 3), np.float32)
    return data.Dataset(x, np.zeros(n_train, int), np.zeros((n_test, side, side, 3), np.float32), np.zeros(n_test, int),
                        [str(i) for i in range(10)], "cifar10")


def test_the_scale_is_what_the_experiment_used_not_what_was_loaded():
    ds = _ds()
    x_tr, x_te = data.downsample(ds.x_train[:12], 4), data.downsample(ds.x_test, 4)
    s = plots.scale(ds, x_tr, x_te, "ci")
    assert s.describe() == "CIFAR-10 · 8×8×3 images · 12 train / 20 test · preset 'ci'"
    assert "32x32x3" in ds.describe() and "as stored" in ds.describe()
    sweep = s.replace(n_train=[2000, 250, 1000], image=16)
    assert sweep.describe() == "CIFAR-10 · 16×16×3 images · 250–2,000 train / 20 test · preset 'ci'"
    two = s.replace(image=[(8, 8, 3), (16, 16, 3)])
    assert "8×8×3 and 16×16×3 images" in two.describe()
    with pytest.raises(ValueError, match="NHWC arrays"):
        plots.scale(ds, x_tr.reshape(12, -1), x_te, "ci")


def test_every_title_names_the_scale():
    fig, ax = matplotlib.pyplot.subplots()
    s = plots.scale(_ds(), np.zeros((5, 8, 8, 3)), np.zeros((7, 8, 8, 3)), "default")
    plots.title(ax, "NNGP vs NTK", s)
    assert ax.get_title() == "NNGP vs NTK\nCIFAR-10 · 8×8×3 images · 5 train / 7 test · preset 'default'"
    with pytest.raises(TypeError, match="plots.Scale"):
        plots.title(ax, "no scale", "CIFAR-10")
    matplotlib.pyplot.close(fig)


def test_a_published_figure_is_titled_with_its_scale_and_written_where_its_preset_says(tmp_path, monkeypatch):
    monkeypatch.setenv("NBKERNELS_FIGURES", str(tmp_path))
    fig, ax = matplotlib.pyplot.subplots()
    ax.plot([1, 2, 4], [10, 20, 30], "o-", label="CNN")
    plots.width_axis(ax)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "width (channels per layer)" and ax.get_legend()
    s = plots.scale(_ds(), np.zeros((5, 8, 8, 3)), np.zeros((7, 8, 8, 3)), "ci")
    paths = plots.publish(fig, "CNN over width", s, "10_x/width")
    assert [p.name for p in paths] == ["width.png", "width.svg"] and all(p.parent == tmp_path / "10_x" for p in paths)
    assert fig._suptitle.get_text() == "CNN over width\n" + s.describe()
    matplotlib.pyplot.close(fig)


def test_importing_plots_leaves_matplotlib_alone():
    import importlib
    import subprocess
    import sys
    code = ("import matplotlib as m; before = dict(m.rcParams); import nbkernels, nbkernels.plots as p; "
            "assert dict(m.rcParams) == before, 'import changed rcParams'; "
            "p.use_style(); assert m.rcParams['axes.spines.top'] is False")
    subprocess.run([sys.executable, "-c", code], check=True)
    importlib.import_module("nbkernels.plots")
    top = matplotlib.rcParams["axes.spines.top"]
    with plots.style():
        assert matplotlib.rcParams["axes.spines.top"] is False and matplotlib.rcParams["svg.hashsalt"] == "nbkernels"
    assert matplotlib.rcParams["axes.spines.top"] == top


def test_only_the_default_preset_writes_the_committed_figures(monkeypatch):
    monkeypatch.delenv("NBKERNELS_FIGURES", raising=False)
    repo = plots.figures_dir("default").parent
    assert plots.figures_dir("default") == repo / "figures"
    assert plots.figures_dir("ci") == repo / "reports" / "ci" / "figures"
    monkeypatch.setenv("NBKERNELS_FIGURES", "/tmp/elsewhere")
    assert str(plots.figures_dir("default")) == "/tmp/elsewhere"


def test_learning_curves_draws_curves_in_percent_and_kernel_lines():
    h = {"step": np.array([0, 10, 20]), "test_acc": np.array([0.1, 0.2, 0.3]), "member_test_acc": np.array([0.1, 0.15, 0.2])}
    s = plots.Scale("CIFAR-10", (8, 8, 3), 100, 200, "ci")
    fig = plots.learning_curves([("ens", h, "test_acc"), ("member", h, "member_test_acc")],
                                [("NTK", 0.25, ":")], what="a run", scale=s)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["ens", "member", "NTK"]
    np.testing.assert_allclose(lines[0].get_ydata(), [10, 20, 30])
    np.testing.assert_allclose(lines[2].get_ydata(), [25, 25])
    assert ax.get_xlabel() == "SGD step" and ax.get_ylabel() == "accuracy (%)"
    assert "8×8×3 images · 100 train / 200 test · preset 'ci'" in ax.get_title()
    matplotlib.pyplot.close(fig)
    # a series scored at some evaluations only (test_curve=False): markers at those, no line through gaps
    part = dict(h, test_acc=np.array([np.nan, 0.2, 0.3]))
    fig = plots.learning_curves([("test (chosen step, end)", part, "test_acc")], what="a run", scale=s)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [10, 20]) and np.testing.assert_allclose(line.get_ydata(), [20, 30])
    assert line.get_linestyle() == "None" and line.get_marker() == "o"
    matplotlib.pyplot.close(fig)


def test_every_notebook_figure_is_titled_with_its_scale():
    """Statically: each notebook cell that draws a figure titles it through plots.title or plots.publish (or
    the widgets' plots.learning_curves), and no title is made from Dataset.describe (the stored, not the used, size)."""
    from pathlib import Path

    import jupytext
    missing = []
    for src in sorted((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
        for i, cell in enumerate(jupytext.read(src, fmt="py:percent").cells):
            if cell.cell_type != "code" or "plt.subplots(" not in cell.source:
                continue
            titled = "plots.title(" in cell.source or "plots.publish(" in cell.source
            if not titled or "ds.describe()" in cell.source:
                missing.append(f"{src.name} cell {i}")
    assert not missing, f"figures without a plots.title(…, scale): {missing}"


def test_published_paths_show_no_folder_of_this_machine(tmp_path, monkeypatch):
    from pathlib import Path
    monkeypatch.setenv("NBKERNELS_FIGURES", str(tmp_path))
    saved = plots.Saved([tmp_path / "06_w" / "width.png", Path(plots.__file__).resolve().parent.parent / "figures" / "a.svg"])
    assert repr(saved) == "saved $NBKERNELS_FIGURES/06_w/width.png, figures/a.svg"
    assert str(tmp_path) not in repr(saved) and str(Path.home()) not in repr(saved)


def test_a_heatmap_leaves_failed_and_missing_cells_out_of_its_colours():
    fig, ax = plt.subplots()
    values = np.array([[30.0, 40.0], [10.0, np.nan]])
    marks = np.array([[False, False], [True, False]])
    im = plots.heatmap(ax, values, ["0", "1e-3"], ["0.25", "1.5"], colorbar="test accuracy (%)", marks=marks)
    shown = im.get_array()
    assert shown.mask.tolist() == [[False, False], [True, True]]      # the failed 10% is not coloured as 10%
    assert im.norm.vmin == 30.0 and im.norm.vmax == 40.0
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["30.0", "40.0", "✕"]                              # NaN: blank; failed: ✕
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1e-3"]
    plt.close(fig)
