"""Each notebook and its jupytext source (notebooks/src/*.py) say the same thing, both ways round."""
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
sys.path.insert(0, str(NOTEBOOKS))
import build  # noqa: E402  (notebooks/build.py)

NAMES = build.names()


def _cells(nb):
    return [(c.cell_type, c.source, dict(c.metadata), c.get("outputs", []), c.id) for c in nb.cells]


@pytest.mark.parametrize("name", NAMES, ids=[n[:2] for n in NAMES])
def test_notebook_is_its_source_built(name):
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    built = build.notebook_from_source(build.source_of(name))
    assert _cells(committed) == _cells(built), (
        f"notebooks/{name}.ipynb differs from notebooks/src/{name}.py: run `python notebooks/build.py {name}` "
        "after editing the source (or `jupytext --sync` after editing the notebook).")
    assert committed.metadata == built.metadata


@pytest.mark.parametrize("name", NAMES, ids=[n[:2] for n in NAMES])
def test_notebook_round_trips_to_its_source(name):
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert build.source_text(committed) == build.source_of(name).read_text()


@pytest.mark.parametrize("name", NAMES, ids=[n[:2] for n in NAMES])
def test_the_verdict_cell_keeps_its_expected_output(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    verdict = [c for c in nb.cells if "verdict" in c.metadata.get("tags", [])]
    if name == "00_data_tour":  # the data tour is not a finding: no verdict, recorded with notebook.tour
        assert not verdict and any("notebook.tour(" in c.source for c in nb.cells)
        return
    assert any("stats." in c.source for c in nb.cells), f"{name}'s verdict is not a nbkernels.stats test"
    assert len(verdict) == 1 and "# NBVAL_CHECK_OUTPUT" in verdict[0].source
    expect = verdict[0].metadata.get("expect", "yes")
    assert verdict[0].outputs[0]["text"] == f"finding reproduced: {expect}\n"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_a_changed_source_is_caught(tmp_path):
    """The check above can fail: a notebook whose verdict expectation was flipped in the source alone."""
    src = build.source_of("01_finite_vs_infinite").read_text().replace('expect="no" tags=["verdict"]', 'tags=["verdict"]')
    changed = tmp_path / "01.py"
    changed.write_text(src)
    built = build.notebook_from_source(changed)
    committed = nbformat.read(NOTEBOOKS / "01_finite_vs_infinite.ipynb", as_version=4)
    assert _cells(built) != _cells(committed)
    with pytest.raises(ValueError, match="expect='maybe'"):
        changed.write_text(src.replace('tags=["verdict"]', 'tags=["verdict"] expect="maybe"'))
        build.notebook_from_source(changed)


def test_jupytext_pairs_every_notebook_with_its_source():
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(NOTEBOOKS)))
    assert config.formats in ("ipynb,src//py:percent", ["ipynb,src//py:percent"])
