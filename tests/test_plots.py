"""The shared figure helpers: titles carry the scale; the widgets' learning-curve figure."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from nbkernels import plots  # noqa: E402


def test_learning_curves_draws_curves_in_percent_and_kernel_lines():
    h = {"step": np.array([0, 10, 20]), "test_acc": np.array([0.1, 0.2, 0.3]), "member_test_acc": np.array([0.1, 0.15, 0.2])}
    fig = plots.learning_curves([("ens", h, "test_acc"), ("member", h, "member_test_acc")],
                                [("NTK", 0.25, ":")], what="a run", preset="ci")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["ens", "member", "NTK"]
    np.testing.assert_allclose(lines[0].get_ydata(), [10, 20, 30])
    np.testing.assert_allclose(lines[2].get_ydata(), [25, 25])
    assert ax.get_xlabel() == "SGD step" and ax.get_ylabel() == "test accuracy (%)"
    assert "preset 'ci'" in ax.get_title()
    matplotlib.pyplot.close(fig)
